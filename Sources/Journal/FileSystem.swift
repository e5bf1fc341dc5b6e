/// The file operations the journal and the backups need, as a protocol: the one seam where
/// tests put a file system that tears writes, loses unsynced data, fills up, turns read-only
/// or fails with EIO, because a real card cannot be made to do that on demand.
///
/// Operations are path-based and small. Durability is explicit: data written to a file is
/// durable only after `sync(file)`, and a new or removed directory entry only after
/// `syncDirectory(parent)`. Implementations must not promise more.
public protocol FileSystem: AnyObject {
    func createDirectory(_ path: String) throws(FileSystemError)
    /// Names (not paths) in a directory, sorted.
    func listDirectory(_ path: String) throws(FileSystemError) -> [String]
    func syncDirectory(_ path: String) throws(FileSystemError)
    /// Size in bytes, or nil when there is no such file.
    func fileSize(_ path: String) throws(FileSystemError) -> Int64?
    /// Reads `count` bytes at `offset` (fewer at the end of the file).
    func read(_ path: String, at offset: Int64, count: Int) throws(FileSystemError) -> [UInt8]
    /// Creates an empty file; fails with `.exists` when it is already there.
    func createFile(_ path: String) throws(FileSystemError)
    func write(_ path: String, at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError)
    func truncate(_ path: String, to size: Int64) throws(FileSystemError)
    /// fsync: when it returns, what was written to the file is on stable storage.
    func sync(_ path: String) throws(FileSystemError)
    func remove(_ path: String) throws(FileSystemError)
    /// Whether the file system accepts writes (a card can be write-protected or remounted read-only).
    func isWritable(_ path: String) -> Bool
    /// Bytes an unprivileged writer can still use on the file system holding `path`, or nil when
    /// it cannot tell (checked before a write that must fit, such as a card's first backup).
    func freeBytes(_ path: String) -> Int64?
    /// Removes an empty directory (after a failed set-up); a missing one is not an error.
    func removeDirectory(_ path: String) throws(FileSystemError)
}

extension FileSystem {
    public func readAll(_ path: String) throws(FileSystemError) -> [UInt8] {
        guard let size = try fileSize(path) else { throw FileSystemError(.notFound, operation: "read", path: path) }
        return try read(path, at: 0, count: Int(size))
    }

    public func exists(_ path: String) -> Bool { ((try? fileSize(path)) ?? nil) != nil }

    /// Creates (or replaces) a small file and makes it and its directory entry durable.
    public func writeDurably(_ path: String, _ bytes: [UInt8]) throws(FileSystemError) {
        if try fileSize(path) == nil {
            try createFile(path)
        } else {
            try truncate(path, to: 0)
        }
        try write(path, at: 0, bytes)
        try sync(path)
        try syncDirectory(Paths.directory(of: path))
    }
}

/// Why a file operation failed, by the errno families the agent treats differently.
public struct FileSystemError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case notFound, exists, noSpace, readOnly, permission, io, notADirectory, other(Int32)
    }

    public let kind: Kind
    public let operation: String
    public let path: String

    public init(_ kind: Kind, operation: String, path: String) {
        self.kind = kind
        self.operation = operation
        self.path = path
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
        }
        return "\(operation) \(path): \(reason)"
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
}
