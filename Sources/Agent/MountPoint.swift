import Journal
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Whether a card's mount point has a file system mounted on it. An empty mount point is a
/// directory of the file system around it (internal flash): same device number as its parent.
/// The mount point itself (and not a path below it) is what the device configuration names.
enum MountPoint {
    static func isMounted(_ path: String) -> Bool {
        var own = stat(), parent = stat()
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard stat(trimmed, &own) == 0, stat(Paths.directory(of: trimmed), &parent) == 0 else { return false }
        // The root directory is its own parent; anything else is mounted when the devices differ.
        return own.st_dev != parent.st_dev || own.st_ino == parent.st_ino
    }
}
