public import Journal

/// An in-memory file system that remembers what is durable and what is only written, so a test
/// can ask "what could the card hold if power died right now?" at every step of a workload, and
/// replay recovery on each answer: the method of ALICE and CrashMonkey, and SQLite's crash VFS.
///
/// Model: a write lands in the file's volatile content at once; it becomes durable only when the
/// file is synced. A created or removed directory entry becomes durable only when its directory is
/// synced. At a crash, any subset of the unsynced writes of a file may have reached the medium, in
/// any order, and the last of them may be torn; unsynced entries may or may not have.
/// Faults: `failNext(_:)` makes the next matching operation fail with the given kind; `capacity`
/// bounds the total bytes (ENOSPC); `readOnly` refuses writes (EROFS).
public final class CrashFileSystem: FileSystem, @unchecked Sendable {
    public struct State: Sendable, Equatable {
        public var files: [String: [UInt8]] = [:]
        public var directories: Set<String> = ["/"]
        public init() {}
    }

    enum Pending {
        case write(path: String, offset: Int64, bytes: [UInt8])
        case truncate(path: String, size: Int64)
    }

    /// What the medium holds for sure: entries made durable by a directory sync, with the data
    /// their last file sync made durable.
    public var durable: State {
        var state = State()
        state.directories = volatile.directories
        for path in durableEntries { state.files[path] = syncedData[path] ?? [] }
        return state
    }
    public private(set) var volatile = State()
    private var syncedData: [String: [UInt8]] = [:]
    private var durableEntries: Set<String> = []
    private var pendingData: [String: [Pending]] = [:]
    private var pendingEntries: Set<String> = []  // created or removed since their directory was synced
    public private(set) var operations = 0
    public var onOperation: ((CrashFileSystem) -> Void)?
    public var capacity: Int?
    public var readOnly = false
    private var faults: [(operation: String, kind: FileSystemError.Kind, skip: Int)] = []

    public init(_ state: State = State()) {
        volatile = state
        syncedData = state.files
        durableEntries = Set(state.files.keys)
    }

    /// The next operation named `operation` ("write", "fsync", "create", "remove", "fsync directory",
    /// "truncate", "read", "list") fails, or the one after `skip` more of them (SQLite's ioerr method:
    /// fail the 1st, 2nd, 3rd ... I/O in turn).
    public func failNext(_ operation: String, with kind: FileSystemError.Kind, after skip: Int = 0) { faults.append((operation, kind, skip)) }

    private func begin(_ operation: String, _ path: String) throws(FileSystemError) {
        if let index = faults.firstIndex(where: { $0.operation == operation }) {
            if faults[index].skip > 0 {
                faults[index].skip -= 1
            } else {
                let fault = faults.remove(at: index)
                throw FileSystemError(fault.kind, operation: operation, path: path)
            }
        }
        if readOnly && ["write", "create", "remove", "truncate", "mkdir"].contains(operation) {
            throw FileSystemError(.readOnly, operation: operation, path: path)
        }
    }

    private func end() {
        operations += 1
        onOperation?(self)
    }

    public func createDirectory(_ path: String) throws(FileSystemError) {
        try begin("mkdir", path)
        volatile.directories.insert(path)  // directories are made at set-up time, before any workload
        end()
    }

    public func listDirectory(_ path: String) throws(FileSystemError) -> [String] {
        try begin("list", path)
        guard volatile.directories.contains(path) else { throw FileSystemError(.notFound, operation: "list", path: path) }
        let prefix = path.hasSuffix("/") ? path : path + "/"
        let children = (Array(volatile.files.keys) + Array(volatile.directories)).filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains("/") && $0.count > prefix.count }
        return Set(children.map { String($0.dropFirst(prefix.count)) }).sorted()
    }

    public func syncDirectory(_ path: String) throws(FileSystemError) {
        try begin("fsync directory", path)
        let prefix = path.hasSuffix("/") ? path : path + "/"
        for entry in pendingEntries where entry.hasPrefix(prefix) && !entry.dropFirst(prefix.count).contains("/") {
            if volatile.files[entry] != nil { durableEntries.insert(entry) } else {
                durableEntries.remove(entry)
                syncedData[entry] = nil
            }
            pendingEntries.remove(entry)
        }
        end()
    }

    public func fileSize(_ path: String) throws(FileSystemError) -> Int64? {
        volatile.files[path].map { Int64($0.count) }
    }

    public func read(_ path: String, at offset: Int64, count: Int) throws(FileSystemError) -> [UInt8] {
        try begin("read", path)
        guard let bytes = volatile.files[path] else { throw FileSystemError(.notFound, operation: "read", path: path) }
        let start = min(Int(offset), bytes.count)
        return Array(bytes[start..<min(bytes.count, start + count)])
    }

    public func createFile(_ path: String) throws(FileSystemError) {
        try begin("create", path)
        guard volatile.files[path] == nil else { throw FileSystemError(.exists, operation: "create", path: path) }
        guard volatile.directories.contains(Paths.directory(of: path)) else { throw FileSystemError(.notFound, operation: "create", path: path) }
        volatile.files[path] = []
        syncedData[path] = []
        pendingEntries.insert(path)
        end()
    }

    public func write(_ path: String, at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError) {
        try begin("write", path)
        guard var content = volatile.files[path] else { throw FileSystemError(.notFound, operation: "write", path: path) }
        let used = volatile.files.values.reduce(0) { $0 + $1.count }
        let growth = max(0, Int(offset) + bytes.count - content.count)
        if let capacity, used + growth > capacity { throw FileSystemError(.noSpace, operation: "write", path: path) }
        Self.apply(&content, offset: offset, bytes: bytes)
        volatile.files[path] = content
        pendingData[path, default: []].append(.write(path: path, offset: offset, bytes: bytes))
        end()
    }

    public func truncate(_ path: String, to size: Int64) throws(FileSystemError) {
        try begin("truncate", path)
        guard var content = volatile.files[path] else { throw FileSystemError(.notFound, operation: "truncate", path: path) }
        content = Array(content.prefix(Int(size))) + [UInt8](repeating: 0, count: max(0, Int(size) - content.count))
        volatile.files[path] = content
        pendingData[path, default: []].append(.truncate(path: path, size: size))
        end()
    }

    public func sync(_ path: String) throws(FileSystemError) {
        try begin("fsync", path)
        guard let content = volatile.files[path] else { throw FileSystemError(.notFound, operation: "fsync", path: path) }
        syncedData[path] = content  // the data is durable; the entry only once its directory is synced
        pendingData[path] = nil
        end()
    }

    public func remove(_ path: String) throws(FileSystemError) {
        try begin("remove", path)
        volatile.files[path] = nil
        pendingData[path] = nil
        pendingEntries.insert(path)
        end()
    }

    public func isWritable(_ path: String) -> Bool { !readOnly }

    public func freeBytes(_ path: String) -> Int64? {
        capacity.map { Int64(max(0, $0 - volatile.files.values.reduce(0) { $0 + $1.count })) }
    }

    public func removeDirectory(_ path: String) throws(FileSystemError) {
        try begin("rmdir", path)
        let prefix = path.hasSuffix("/") ? path : path + "/"
        guard !volatile.files.keys.contains(where: { $0.hasPrefix(prefix) }),
              !volatile.directories.contains(where: { $0.hasPrefix(prefix) }) else {
            throw FileSystemError(.other(39), operation: "rmdir", path: path)  // ENOTEMPTY
        }
        volatile.directories.remove(path)
        end()
    }

    static func apply(_ content: inout [UInt8], offset: Int64, bytes: [UInt8]) {
        let start = Int(offset)
        if content.count < start { content += [UInt8](repeating: 0, count: start - content.count) }
        for (index, byte) in bytes.enumerated() {
            if start + index < content.count { content[start + index] = byte } else { content.append(byte) }
        }
    }

    /// The states the medium could be in if power died now: nothing unsynced landed; everything
    /// landed; and, seeded, random subsets of the unsynced entries and writes, the last write torn.
    public func crashStates(variants: Int = 3, seed: UInt64) -> [State] {
        var random = seed &+ UInt64(operations) &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> UInt64 {
            random ^= random << 13; random ^= random >> 7; random ^= random << 17
            return random
        }
        func state(entries landEntry: (String) -> Bool, writes landWrite: () -> Bool, tear: () -> Int?) -> State {
            var state = State()
            state.directories = volatile.directories
            var entries = durableEntries
            for entry in pendingEntries where landEntry(entry) {
                if volatile.files[entry] != nil { entries.insert(entry) } else { entries.remove(entry) }
            }
            for path in entries {
                var content = syncedData[path] ?? []
                if volatile.files[path] != nil, let writes = pendingData[path] {
                    let landed = writes.filter { _ in landWrite() }
                    for (index, write) in landed.enumerated() {
                        Self.replay(write, into: &content, tornAt: index == landed.count - 1 ? tear() : nil)
                    }
                }
                state.files[path] = content
            }
            return state
        }
        var states = [state(entries: { _ in false }, writes: { false }, tear: { nil }),
                      state(entries: { _ in true }, writes: { true }, tear: { nil })]
        for _ in 0..<variants {
            states.append(state(entries: { _ in next() % 2 == 0 }, writes: { next() % 3 != 0 },
                                tear: { next() % 2 == 0 ? Int(next() % 512) : nil }))
        }
        return states
    }

    static func replay(_ pending: Pending, into content: inout [UInt8], tornAt: Int?) {
        switch pending {
        case .write(_, let offset, let bytes):
            apply(&content, offset: offset, bytes: tornAt.map { Array(bytes.prefix($0)) } ?? bytes)
        case .truncate(_, let size):
            content = Array(content.prefix(Int(size))) + [UInt8](repeating: 0, count: max(0, Int(size) - content.count))
        }
    }
}
