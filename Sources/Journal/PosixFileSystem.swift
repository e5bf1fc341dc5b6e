#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import SystemCalls

/// The real file system, through the SystemCalls shim (EINTR retried there). Every failure
/// becomes a `FileSystemError` naming the operation, the path and the errno family.
public final class PosixFileSystem: FileSystem {
    public init() {}

    static func fail(_ operation: String, _ path: String, _ error: Errno) -> FileSystemError {
        let kind: FileSystemError.Kind
        switch error.rawValue {
        case ENOENT: kind = .notFound
        case EEXIST: kind = .exists
        case ENOSPC, EDQUOT, EFBIG: kind = .noSpace
        case EROFS: kind = .readOnly
        case EACCES, EPERM: kind = .permission
        case EIO, ENXIO, ENODEV: kind = .io
        case ENOTDIR: kind = .notADirectory
        default: kind = .other(error.rawValue)
        }
        return FileSystemError(kind, operation: operation, path: path, errno: error)
    }

    public func openFile(_ path: String, _ mode: OpenMode) throws(FileSystemError) -> any OpenFile {
        let flags: Int32
        switch mode {
        case .read: flags = O_RDONLY
        case .write: flags = O_RDWR
        case .create: flags = O_RDWR | O_CREAT | O_EXCL
        }
        do {
            return PosixOpenFile(path: path, fd: try SystemCalls.open(path, flags | O_NOFOLLOW, 0o600))
        } catch {
            throw Self.fail(mode == .create ? "create" : "open", path, error)
        }
    }

    public func createDirectory(_ path: String) throws(FileSystemError) {
        do { try SystemCalls.mkdir(path, 0o700) } catch where error == .exists {} catch { throw Self.fail("mkdir", path, error) }
    }

    public func listDirectory(_ path: String) throws(FileSystemError) -> [String] {
        do { return try SystemCalls.listDirectory(path).sorted() } catch { throw Self.fail("list", path, error) }
    }

    public func syncDirectory(_ path: String) throws(FileSystemError) {
        let fd: Int32
        do { fd = try SystemCalls.open(path, O_RDONLY | O_DIRECTORY) } catch { throw Self.fail("fsync directory", path, error) }
        do {
            try SystemCalls.fsync(fd)
        } catch where error == .invalid {
            // Some file systems (vfat on older kernels) refuse fsync on a directory with EINVAL:
            // there the entry is written with the file's own metadata, so that is not a failure.
        } catch {
            try? SystemCalls.close(fd)
            throw Self.fail("fsync directory", path, error)
        }
        do { try SystemCalls.close(fd) } catch { throw Self.fail("close directory", path, error) }
    }

    public func fileSize(_ path: String) throws(FileSystemError) -> Int64? {
        do { return try SystemCalls.status(ofPath: path).map { Int64($0.st_size) } } catch { throw Self.fail("stat", path, error) }
    }

    public func fingerprint(_ path: String) -> FileFingerprint? {
        guard let info = (try? SystemCalls.status(ofPath: path)) ?? nil, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        return FileFingerprint(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                               modifiedNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec),
                               changedNanoseconds: Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec))
    }

    public func rename(_ from: String, to: String) throws(FileSystemError) {
        do { try SystemCalls.rename(from, to) } catch { throw Self.fail("rename to \(to)", from, error) }
    }

    public func remove(_ path: String) throws(FileSystemError) {
        do { try SystemCalls.unlink(path) } catch where error == .noEntry {} catch { throw Self.fail("remove", path, error) }
    }

    public func freeBytes(_ path: String) -> Int64? {
        guard let info = try? SystemCalls.fileSystemStatus(path) else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    public func removeDirectory(_ path: String) throws(FileSystemError) {
        do { try SystemCalls.rmdir(path) } catch where error == .noEntry {} catch { throw Self.fail("rmdir", path, error) }
    }

    public func isWritable(_ path: String) -> Bool {
        guard let info = try? SystemCalls.fileSystemStatus(path) else { return false }
        // A failure to ask (EIO from a failing card) is "not writable": the caller reports the card.
        return (info.f_flag & UInt(ST_RDONLY)) == 0 && (try? SystemCalls.access(path, W_OK)) == true
    }
}

/// A file open on one descriptor, closed by `close()` (or, unchecked, when dropped unclosed).
final class PosixOpenFile: OpenFile {
    let path: String
    private var fd: Int32
    private let identity: (device: UInt64, inode: UInt64)?

    init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
        identity = (try? SystemCalls.status(of: fd)).map { (UInt64($0.st_dev), UInt64($0.st_ino)) }
    }

    deinit { if fd >= 0 { try? SystemCalls.close(fd) } }

    private func fail(_ operation: String, _ error: Errno) -> FileSystemError { PosixFileSystem.fail(operation, path, error) }

    private func open() throws(FileSystemError) -> Int32 {
        guard fd >= 0 else { throw FileSystemError(.other(EBADF), operation: "use after close", path: path) }
        return fd
    }

    func read(at offset: Int64, count: Int) throws(FileSystemError) -> [UInt8] {
        let fd = try open()
        // Not zero-filled first: `count` is a format's bound (a whole segment), usually far more
        // than the file holds, and clearing it was most of a capture's CPU (callgrind: 1.46 M
        // instructions of memset per `satchel order new`). Only the bytes read are kept.
        var failure: Errno?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count {
                let got: Int
                do throws(Errno) {
                    got = try SystemCalls.pread(fd, into: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[done...]), at: offset + Int64(done))
                } catch {
                    failure = error
                    break
                }
                if got == 0 { break }
                done += got
            }
            initialized = failure == nil ? done : 0
        }
        if let failure { throw fail("read", failure) }
        return bytes
    }

    func write(at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError) {
        let fd = try open()
        var done = 0
        while done < bytes.count {
            let put: Int
            do {
                put = try bytes.withUnsafeBytes { buffer in
                    Result { () throws(Errno) in try SystemCalls.pwrite(fd, UnsafeRawBufferPointer(rebasing: buffer[done...]), at: offset + Int64(done)) }
                }.get()
            } catch {
                throw fail("write", error)
            }
            if put == 0 { throw fail("write", .noSpace) }
            done += put
        }
    }

    func truncate(to size: Int64) throws(FileSystemError) {
        let fd = try open()
        do { try SystemCalls.ftruncate(fd, size) } catch { throw fail("truncate", error) }
    }

    func size() throws(FileSystemError) -> Int64 {
        let fd = try open()
        do { return Int64(try SystemCalls.status(of: fd).st_size) } catch { throw fail("stat", error) }
    }

    func sync() throws(FileSystemError) {
        let fd = try open()
        // An fsync failure means the data may be gone: the caller must treat the write as failed.
        do { try SystemCalls.fsync(fd) } catch { throw fail("fsync", error) }
    }

    func isStillNamed() -> Bool {
        guard let identity, let info = try? SystemCalls.status(ofPath: path) else { return false }
        return UInt64(info.st_dev) == identity.device && UInt64(info.st_ino) == identity.inode
    }

    func close() throws(FileSystemError) {
        guard fd >= 0 else { return }
        let closing = fd
        fd = -1
        do { try SystemCalls.close(closing) } catch { throw fail("close", error) }
    }
}

extension FileSystemError {
    /// A failed `SystemCalls.replaceFile` in the seam's terms: the kind from its errno, the step
    /// and the file it names (which may be the temporary file or the directory, not the target).
    public init(_ error: ReplaceFileError) {
        self = PosixFileSystem.fail("writing \(error.target): \(error.step)", error.path, error.errno)
    }
}
