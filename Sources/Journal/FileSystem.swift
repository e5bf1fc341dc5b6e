public import SystemCalls

/// The file operations the journal and the backups need, as a protocol: the one seam where
/// tests put a file system that tears writes, loses unsynced data, reorders it, loses directory
/// entries, fills up, turns read-only or fails with EIO, because a real card cannot be made to
/// do that on demand.
///
/// Files are written through an `OpenFile`, one descriptor from open to close: a write and the
/// fsync that makes it durable go to the same descriptor, so a write error the kernel reports at
/// fsync (or at close) reaches the writer that made it. The path-based calls are conveniences
/// that open, do one thing and close. Durability is explicit: data written to a file is durable
/// only after its `sync()`, and a new, renamed or removed directory entry only after
/// `syncDirectory(parent)`. Implementations must not promise more.
public protocol FileSystem: AnyObject {
    func createDirectory(_ path: String) throws(FileSystemError)
    /// Names (not paths) in a directory, sorted.
    func listDirectory(_ path: String) throws(FileSystemError) -> [String]
    func syncDirectory(_ path: String) throws(FileSystemError)
    /// Size in bytes, or nil when there is no such file.
    func fileSize(_ path: String) throws(FileSystemError) -> Int64?
    /// Opens a file for reading, for writing, or creates it (failing with `.exists` when it is
    /// already there). The caller closes it and checks what close says.
    func openFile(_ path: String, _ mode: OpenMode) throws(FileSystemError) -> any OpenFile
    /// Renames a file. The new name is durable only after the directory's `syncDirectory`.
    func rename(_ from: String, to: String) throws(FileSystemError)
    func remove(_ path: String) throws(FileSystemError)
    /// Whether the file system accepts writes (a card can be write-protected or remounted read-only).
    func isWritable(_ path: String) -> Bool
    /// Bytes an unprivileged writer can still use on the file system holding `path`, or nil when
    /// it cannot tell (checked before a write that must fit, such as a card's first backup).
    func freeBytes(_ path: String) -> Int64?
    /// Removes an empty directory (after a failed set-up); a missing one is not an error.
    func removeDirectory(_ path: String) throws(FileSystemError)
    /// What tells this version of the file from any other at `path` in one `stat`, or nil when
    /// there is no file there or the file system cannot say (the default: a test file system).
    /// A caller that keeps what it read compares fingerprints and reads again on any difference
    /// or on nil, so nil costs a re-read, never a stale answer.
    func fingerprint(_ path: String) -> FileFingerprint?

    // One-shot calls through a file opened for them (implemented below; a test file system may
    // keep its own).
    /// Reads `count` bytes at `offset` (fewer at the end of the file).
    func read(_ path: String, at offset: Int64, count: Int) throws(FileSystemError) -> [UInt8]
    /// Creates an empty file; fails with `.exists` when it is already there.
    func createFile(_ path: String) throws(FileSystemError)
    func write(_ path: String, at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError)
    func truncate(_ path: String, to size: Int64) throws(FileSystemError)
    /// fsync: when it returns, what was written to the file is on stable storage.
    func sync(_ path: String) throws(FileSystemError)
}

public enum OpenMode: Sendable {
    case read, write, create
}

/// One open file: every call goes to the same descriptor.
public protocol OpenFile: AnyObject {
    var path: String { get }
    func read(at offset: Int64, count: Int) throws(FileSystemError) -> [UInt8]
    func write(at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError)
    func truncate(to size: Int64) throws(FileSystemError)
    func size() throws(FileSystemError) -> Int64
    /// fsync: when it returns, what was written through this file is on stable storage.
    func sync() throws(FileSystemError)
    /// Whether `path` still names this file (it was not removed or replaced by another writer).
    func isStillNamed() -> Bool
    /// Closes it; a failure here is a write that may not have landed.
    func close() throws(FileSystemError)
}

extension FileSystem {
    /// Runs `body` on `path` opened in `mode`, closes it, and reports the first failure, close's too.
    public func withFile<T>(_ path: String, _ mode: OpenMode, _ body: (any OpenFile) throws(FileSystemError) -> T) throws(FileSystemError) -> T {
        let file = try openFile(path, mode)
        let result: T
        do {
            result = try body(file)
        } catch {
            try? file.close()
            throw error
        }
        try file.close()
        return result
    }

    public func read(_ path: String, at offset: Int64, count: Int) throws(FileSystemError) -> [UInt8] {
        try withFile(path, .read) { file throws(FileSystemError) in try file.read(at: offset, count: count) }
    }

    public func createFile(_ path: String) throws(FileSystemError) {
        try withFile(path, .create) { _ in }
    }

    public func write(_ path: String, at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError) {
        try withFile(path, .write) { file throws(FileSystemError) in try file.write(at: offset, bytes) }
    }

    public func truncate(_ path: String, to size: Int64) throws(FileSystemError) {
        try withFile(path, .write) { file throws(FileSystemError) in try file.truncate(to: size) }
    }

    public func sync(_ path: String) throws(FileSystemError) {
        try withFile(path, .read) { file throws(FileSystemError) in try file.sync() }
    }

    /// The whole file, refused with `.tooLarge` when it holds more than `max` bytes: the bound is
    /// what the file's format allows, never what `stat` says (a damaged card can claim any size).
    /// Reads at most `max + 1` bytes, whatever the file's size.
    public func read(_ path: String, max: Int) throws(FileSystemError) -> [UInt8] {
        try withFile(path, .read) { file throws(FileSystemError) in
            let bytes = try file.read(at: 0, count: max &+ 1 > max ? max + 1 : max)
            guard bytes.count <= max else { throw FileSystemError(.tooLarge(limit: max), operation: "read", path: path) }
            return bytes
        }
    }

    public func exists(_ path: String) -> Bool { ((try? fileSize(path)) ?? nil) != nil }

    public func fingerprint(_ path: String) -> FileFingerprint? { nil }

    /// Creates (or replaces) a small file and makes it and its directory entry durable, through
    /// one descriptor from the write to the fsync.
    public func writeDurably(_ path: String, _ bytes: [UInt8]) throws(FileSystemError) {
        let isNew = try fileSize(path) == nil
        try withFile(path, isNew ? .create : .write) { file throws(FileSystemError) in
            if !isNew { try file.truncate(to: 0) }
            try file.write(at: 0, bytes)
            try file.sync()
        }
        try syncDirectory(Paths.directory(of: path))
    }
}

/// A file's identity and version as `stat` reports them: the file system it is on (another card
/// in the slot, or an empty mount point, differs here or has no file), its inode (a file replaced
/// by rename differs), size and modification and change times to the nanosecond (a file
/// rewritten in place differs in at least one on any file system that keeps them).
public struct FileFingerprint: Equatable, Sendable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modifiedNanoseconds: Int64
    public var changedNanoseconds: Int64

    public init(device: UInt64, inode: UInt64, size: Int64, modifiedNanoseconds: Int64, changedNanoseconds: Int64) {
        self.device = device; self.inode = inode; self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds; self.changedNanoseconds = changedNanoseconds
    }
}

/// Why a file operation failed, by the errno families the agent treats differently.
public struct FileSystemError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case notFound, exists, noSpace, readOnly, permission, io, notADirectory, other(Int32)
        /// The file holds more than its format allows (`read(_:max:)`): damaged or not ours.
        case tooLarge(limit: Int)
    }

    public let kind: Kind
    public let operation: String
    public let path: String
    /// The errno the system gave, when it was the system (a test file system's faults have none):
    /// kept so the message names the exact cause (EDQUOT or EFBIG, not only "no space").
    public let errno: Errno?

    public init(_ kind: Kind, operation: String, path: String, errno: Errno? = nil) {
        self.kind = kind
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    /// Equal by what the agent acts on (kind, operation, path); the errno is detail for people.
    public static func == (a: FileSystemError, b: FileSystemError) -> Bool {
        a.kind == b.kind && a.operation == b.operation && a.path == b.path
    }

    public var description: String {
        let reason: String
        switch kind {
        case .notFound: reason = "no such file or directory"
        case .exists: reason = "already exists"
        case .noSpace: reason = "no space left"
        case .readOnly: reason = "read-only file system"
        case .permission: reason = "permission denied"
        case .io: reason = "I/O error (the medium may be failing or was removed)"
        case .notADirectory: reason = "not a directory"
        case .other(let code): reason = "errno \(code)"
        case .tooLarge(let limit): reason = "larger than the \(limit) bytes its format allows (damaged, or not a Satchel file)"
        }
        if let errno, case .other = kind { return "\(operation) \(path): \(errno)" }
        return "\(operation) \(path): \(reason)\(errno.map { " (errno \($0.rawValue))" } ?? "")"
    }
}

public enum Paths {
    public static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static func name(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Whether `name` is one plain file name: not empty, no `/`, not `.` or `..`, no NUL. A name
    /// read from a card (a snapshot pointer's) must be one before it is joined to a directory.
    public static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(UInt8(ascii: "/")) && !name.utf8.contains(0)
    }
}

public enum FileSystemLimits {
    /// The files of a few lines the agent keeps beside its database (markers, counters, seals,
    /// sealed keys): none holds more than a few hundred bytes, so a larger one is damage.
    public static let smallFile = 64 * 1024
}
