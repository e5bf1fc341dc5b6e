#if canImport(Glibc)
public import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why `SystemCalls.replaceFile` did not write `target`: the step that failed, the path it was
/// made on (the temporary file, the target or its directory) and errno. The target is as it was
/// (up to the rename; a failed directory fsync comes after it and says so).
public struct ReplaceFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public var target: String
    public var step: String
    public var path: String
    public var errno: Errno

    public init(target: String, step: String, path: String, errno: Errno) {
        self.target = target
        self.step = step
        self.path = path
        self.errno = errno
    }

    public var description: String { "cannot write \(target): \(step) \(path): \(errno)" }
}

extension SystemCalls {
    /// Writes `bytes` to `path` whole or not at all (see the other `replaceFile`).
    public static func replaceFile(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600,
                                   temporarySuffix: String = ".tmp", overwrite: Bool = true) throws(ReplaceFileError) {
        do {
            try replaceFile(path, mode: mode, temporarySuffix: temporarySuffix, overwrite: overwrite) { fd in try writeAll(fd, bytes) }
        } catch let error as ReplaceFileError {
            throw error
        } catch {
            // Unreachable: writeAll throws Errno, which the other replaceFile turns into a ReplaceFileError.
            throw ReplaceFileError(target: path, step: "write", path: path + temporarySuffix, errno: .ioError)
        }
    }

    /// The one way the agent (and the hub's ERP export) replaces a file, so a power cut leaves
    /// the old content or the new, never a mix: `body` writes to a new temporary file beside
    /// `path` (same file system, so the rename is atomic), which is fsynced, closed (close's
    /// result checked), renamed over `path` and then the directory is fsynced for the new entry.
    ///
    /// The temporary file is created with O_CREAT|O_EXCL|O_NOFOLLOW (and O_CLOEXEC, as every
    /// open here): a symbolic link planted at its predictable name is never followed, so nothing
    /// is written through it. One left by an interrupted write (a plain file of this user with one
    /// name) is removed and made again; anything else there is refused and left for a technician
    /// to look at. With `overwrite: false` an existing `path` is an error (`.exists`).
    ///
    /// A failure of the body's descriptor writes (`Errno`) is reported as a `ReplaceFileError`
    /// naming the temporary file; any other error of `body` is rethrown as it is. Either way the
    /// temporary file is removed and `path` is unchanged.
    public static func replaceFile(_ path: String, mode: mode_t = 0o600, temporarySuffix: String = ".tmp",
                                   overwrite: Bool = true, writing body: (Int32) throws -> Void) throws {
        let temporary = path + temporarySuffix
        func failure(_ step: String, _ on: String, _ errno: Errno) -> ReplaceFileError {
            ReplaceFileError(target: path, step: step, path: on, errno: errno)
        }
        let fd = try createTemporary(temporary, mode: mode, for: path)
        do {
            do { try body(fd) } catch let error as Errno { throw failure("write", temporary, error) }
            do { try fsync(fd) } catch { throw failure("fsync", temporary, error) }
        } catch {
            try? close(fd)
            try? unlink(temporary)
            throw error
        }
        do { try close(fd) } catch {
            try? unlink(temporary)
            throw failure("close", temporary, error)  // a deferred write error (full card, NFS)
        }
        if !overwrite {
            var info = Glibc.stat()
            if linkStatus(path, &info) == 0 {
                try? unlink(temporary)
                throw failure("keep the file already at", path, .exists)
            }
        }
        do { try rename(temporary, path) } catch {
            try? unlink(temporary)
            throw failure("rename \(temporary) to", path, error)
        }
        try syncDirectory(of: path, for: path)
    }

    /// Creates `temporary` exclusively, never through a symbolic link (see `replaceFile`).
    static func createTemporary(_ temporary: String, mode: mode_t, for target: String) throws(ReplaceFileError) -> Int32 {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
        do {
            return try open(temporary, flags, mode)
        } catch where error == .exists {
            var info = Glibc.stat()
            guard linkStatus(temporary, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
                  info.st_uid == geteuid(), info.st_nlink == 1 else {
                throw ReplaceFileError(
                    target: target, step: "found a symbolic link or a file no interrupted write of ours left (refused, left as it is) at",
                    path: temporary, errno: .exists)
            }
            do {
                try unlink(temporary)
                return try open(temporary, flags, mode)
            } catch {
                throw ReplaceFileError(target: target, step: "create", path: temporary, errno: error)
            }
        } catch {
            throw ReplaceFileError(target: target, step: "create", path: temporary, errno: error)
        }
    }

    /// fsync of the directory holding `path`, so a new or renamed entry survives a power cut.
    /// EINVAL is not a failure: some file systems (vfat on older kernels) refuse fsync on a
    /// directory and write the entry with the file's own metadata.
    static func syncDirectory(of path: String, for target: String) throws(ReplaceFileError) {
        let directory: String
        if let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) {
            directory = slash == path.utf8.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        let fd: Int32
        do { fd = try open(directory, O_RDONLY | O_DIRECTORY) } catch {
            throw ReplaceFileError(target: target, step: "open the directory", path: directory, errno: error)
        }
        do { try fsync(fd) } catch where error == .invalid {} catch {
            try? close(fd)
            throw ReplaceFileError(target: target, step: "fsync the directory", path: directory, errno: error)
        }
        try? close(fd)  // read-only: nothing of ours can be lost at its close
    }
}

private func linkStatus(_ path: String, _ info: inout stat) -> Int32 { lstat(path, &info) }
