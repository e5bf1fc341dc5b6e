#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The real file system, through one thin call per operation. EINTR is retried; every other
/// failure becomes a `FileSystemError` naming the operation and the path.
public final class PosixFileSystem: FileSystem {
    public init() {}

    private func fail(_ operation: String, _ path: String, _ code: Int32 = errno) -> FileSystemError {
        let kind: FileSystemError.Kind
        switch code {
        case ENOENT: kind = .notFound
        case EEXIST: kind = .exists
        case ENOSPC, EDQUOT, EFBIG: kind = .noSpace
        case EROFS: kind = .readOnly
        case EACCES, EPERM: kind = .permission
        case EIO, ENXIO, ENODEV: kind = .io
        case ENOTDIR: kind = .notADirectory
        default: kind = .other(code)
        }
        return FileSystemError(kind, operation: operation, path: path)
    }

    private func withFile<T>(_ path: String, _ flags: Int32, _ operation: String, _ body: (Int32) throws(FileSystemError) -> T) throws(FileSystemError) -> T {
        var fd: Int32
        repeat { fd = open(path, flags | O_CLOEXEC, 0o600) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw fail(operation, path) }
        defer { close(fd) }
        return try body(fd)
    }

    public func createDirectory(_ path: String) throws(FileSystemError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw fail("mkdir", path) }
    }

    public func listDirectory(_ path: String) throws(FileSystemError) -> [String] {
        guard let directory = opendir(path) else { throw fail("list", path) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func syncDirectory(_ path: String) throws(FileSystemError) {
        try withFile(path, O_RDONLY | O_DIRECTORY, "fsync directory") { fd throws(FileSystemError) in
            // Some file systems (vfat on older kernels) refuse fsync on a directory with EINVAL:
            // there the entry is written with the file's own metadata, so that is not a failure.
            if fsync(fd) != 0 && errno != EINVAL { throw fail("fsync directory", path) }
        }
    }

    public func fileSize(_ path: String) throws(FileSystemError) -> Int64? {
        var info = stat()
        if stat(path, &info) != 0 {
            if errno == ENOENT { return nil }
            throw fail("stat", path)
        }
        return Int64(info.st_size)
    }

    public func read(_ path: String, at offset: Int64, count: Int) throws(FileSystemError) -> [UInt8] {
        try withFile(path, O_RDONLY, "read") { fd throws(FileSystemError) in
            var bytes = [UInt8](repeating: 0, count: count)
            var done = 0
            while done < count {
                let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
                if got < 0 && errno == EINTR { continue }
                if got < 0 { throw fail("read", path) }
                if got == 0 { break }
                done += got
            }
            return Array(bytes[0..<done])
        }
    }

    public func createFile(_ path: String) throws(FileSystemError) {
        try withFile(path, O_WRONLY | O_CREAT | O_EXCL, "create") { _ in }
    }

    public func write(_ path: String, at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError) {
        try withFile(path, O_WRONLY, "write") { fd throws(FileSystemError) in
            var done = 0
            while done < bytes.count {
                let put = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done)) }
                if put < 0 && errno == EINTR { continue }
                if put <= 0 { throw fail("write", path, put == 0 ? ENOSPC : errno) }
                done += put
            }
        }
    }

    public func truncate(_ path: String, to size: Int64) throws(FileSystemError) {
        try withFile(path, O_WRONLY, "truncate") { fd throws(FileSystemError) in
            if ftruncate(fd, off_t(size)) != 0 { throw fail("truncate", path) }
        }
    }

    public func sync(_ path: String) throws(FileSystemError) {
        try withFile(path, O_RDONLY, "fsync") { fd throws(FileSystemError) in
            // An fsync failure means the data may be gone: the caller must treat the write as failed.
            if fsync(fd) != 0 { throw fail("fsync", path) }
        }
    }

    public func remove(_ path: String) throws(FileSystemError) {
        if unlink(path) != 0 && errno != ENOENT { throw fail("remove", path) }
    }

    public func freeBytes(_ path: String) -> Int64? {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    public func removeDirectory(_ path: String) throws(FileSystemError) {
        if rmdir(path) != 0 && errno != ENOENT { throw fail("rmdir", path) }
    }

    public func isWritable(_ path: String) -> Bool {
        var info = statvfs()
        guard statvfs(path, &info) == 0 else { return false }
        return (info.f_flag & UInt(ST_RDONLY)) == 0 && access(path, W_OK) == 0
    }
}
