public import Journal

/// An in-memory file system that remembers what is durable and what is only written, so a test
/// can ask "what could the card hold if power died right now?" at every step of a workload, and
/// replay recovery on each answer: the method of ALICE and CrashMonkey, and SQLite's crash VFS.
///
/// Model: names point at files (inodes); a write lands in the file's volatile content at once and
/// becomes durable only when the file is synced. A created, renamed or removed name becomes
/// durable only when its directory is synced. At a crash, any subset of a file's unsynced writes
/// may have reached the medium, in any order (SQLite's crash VFS reorders them), any of them may
/// be torn, the part after the tear left as it was or filled with garbage (ALICE); each unsynced
/// name change may or may not have landed, so a rename or a create not followed by a directory
/// sync can vanish. An open file keeps writing to its inode after its name is removed.
/// Faults: `failNext(_:)` makes the next matching operation fail with the given kind; `capacity`
/// bounds the total bytes (ENOSPC); `readOnly` refuses writes (EROFS).
public final class CrashFileSystem: FileSystem, @unchecked Sendable {
    public struct State: Sendable, Equatable {
        public var files: [String: [UInt8]] = [:]
        public var directories: Set<String> = ["/"]
        public init() {}
    }

    enum Pending {
        case write(offset: Int64, bytes: [UInt8])
        case truncate(size: Int64)
    }

    /// What the medium holds for sure: names made durable by a directory sync, with the data
    /// their file's last sync made durable.
    public var durable: State {
        var state = State()
        state.directories = directories
        for (path, inode) in durableNames { state.files[path] = syncedData[inode] ?? [] }
        return state
    }

    /// What a reader sees now.
    public var volatile: State {
        var state = State()
        state.directories = directories
        for (path, inode) in names { state.files[path] = content[inode] ?? [] }
        return state
    }

    private var directories: Set<String> = ["/"]
    private var names: [String: Int] = [:]
    private var content: [Int: [UInt8]] = [:]
    private var syncedData: [Int: [UInt8]] = [:]
    private var durableNames: [String: Int] = [:]
    private var pendingData: [Int: [Pending]] = [:]
    private var pendingEntries: Set<String> = []  // created, renamed or removed since their directory was synced
    private var nextInode = 1
    public private(set) var operations = 0
    public var onOperation: ((CrashFileSystem) -> Void)?
    public var capacity: Int?
    public var readOnly = false
    private var faults: [(operation: String, kind: FileSystemError.Kind, skip: Int)] = []

    public init(_ state: State = State()) {
        directories = state.directories
        for (path, bytes) in state.files {
            let inode = newInode()
            names[path] = inode
            content[inode] = bytes
            syncedData[inode] = bytes
            durableNames[path] = inode
        }
    }

    private func newInode() -> Int {
        defer { nextInode += 1 }
        return nextInode
    }

    /// The next operation named `operation` ("write", "fsync", "create", "open", "close", "remove",
    /// "rename", "fsync directory", "truncate", "read", "list") fails, or the one after `skip` more
    /// of them (SQLite's ioerr method: fail the 1st, 2nd, 3rd ... I/O in turn).
    public func failNext(_ operation: String, with kind: FileSystemError.Kind, after skip: Int = 0) { faults.append((operation, kind, skip)) }

    fileprivate func begin(_ operation: String, _ path: String) throws(FileSystemError) {
        if let index = faults.firstIndex(where: { $0.operation == operation }) {
            if faults[index].skip > 0 {
                faults[index].skip -= 1
            } else {
                let fault = faults.remove(at: index)
                throw FileSystemError(fault.kind, operation: operation, path: path)
            }
        }
        if readOnly && ["write", "create", "remove", "truncate", "mkdir", "rename"].contains(operation) {
            throw FileSystemError(.readOnly, operation: operation, path: path)
        }
    }

    fileprivate func end() {
        operations += 1
        onOperation?(self)
    }

    public func createDirectory(_ path: String) throws(FileSystemError) {
        try begin("mkdir", path)
        directories.insert(path)  // directories are made at set-up time, before any workload
        end()
    }

    private func children(of path: String) -> [String] {
        let prefix = path.hasSuffix("/") ? path : path + "/"
        return (Array(names.keys) + Array(directories)).filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains("/") && $0.count > prefix.count }
    }

    public func listDirectory(_ path: String) throws(FileSystemError) -> [String] {
        try begin("list", path)
        guard directories.contains(path) else { throw FileSystemError(.notFound, operation: "list", path: path) }
        let prefix = path.hasSuffix("/") ? path : path + "/"
        return Set(children(of: path).map { String($0.dropFirst(prefix.count)) }).sorted()
    }

    public func syncDirectory(_ path: String) throws(FileSystemError) {
        try begin("fsync directory", path)
        let prefix = path.hasSuffix("/") ? path : path + "/"
        for entry in pendingEntries where entry.hasPrefix(prefix) && !entry.dropFirst(prefix.count).contains("/") {
            durableNames[entry] = names[entry]
            pendingEntries.remove(entry)
        }
        end()
    }

    public func fileSize(_ path: String) throws(FileSystemError) -> Int64? {
        names[path].map { Int64(content[$0]?.count ?? 0) }
    }

    public func openFile(_ path: String, _ mode: OpenMode) throws(FileSystemError) -> any OpenFile {
        if mode == .create {
            try createFile(path)
        } else {
            try begin("open", path)
            guard names[path] != nil else { throw FileSystemError(.notFound, operation: "open", path: path) }
        }
        return CrashOpenFile(fileSystem: self, path: path, inode: names[path]!)
    }

    public func read(_ path: String, at offset: Int64, count: Int) throws(FileSystemError) -> [UInt8] {
        try begin("read", path)
        guard let inode = names[path] else { throw FileSystemError(.notFound, operation: "read", path: path) }
        return read(inode, at: offset, count: count)
    }

    fileprivate func read(_ inode: Int, at offset: Int64, count: Int) -> [UInt8] {
        let bytes = content[inode] ?? []
        let start = min(Int(offset), bytes.count)
        return Array(bytes[start..<(start + min(count, bytes.count - start))])
    }

    public func createFile(_ path: String) throws(FileSystemError) {
        try begin("create", path)
        guard names[path] == nil else { throw FileSystemError(.exists, operation: "create", path: path) }
        guard directories.contains(Paths.directory(of: path)) else { throw FileSystemError(.notFound, operation: "create", path: path) }
        let inode = newInode()
        names[path] = inode
        content[inode] = []
        syncedData[inode] = []
        pendingEntries.insert(path)
        end()
    }

    public func write(_ path: String, at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError) {
        try begin("write", path)
        guard let inode = names[path] else { throw FileSystemError(.notFound, operation: "write", path: path) }
        try write(inode, path: path, at: offset, bytes)
    }

    fileprivate func write(_ inode: Int, path: String, at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError) {
        var data = content[inode] ?? []
        let used = content.values.reduce(0) { $0 + $1.count }
        let growth = max(0, Int(offset) + bytes.count - data.count)
        if let capacity, used + growth > capacity { throw FileSystemError(.noSpace, operation: "write", path: path) }
        Self.apply(&data, offset: offset, bytes: bytes)
        content[inode] = data
        pendingData[inode, default: []].append(.write(offset: offset, bytes: bytes))
        end()
    }

    public func truncate(_ path: String, to size: Int64) throws(FileSystemError) {
        try begin("truncate", path)
        guard let inode = names[path] else { throw FileSystemError(.notFound, operation: "truncate", path: path) }
        truncate(inode, to: size)
    }

    fileprivate func truncate(_ inode: Int, to size: Int64) {
        let data = content[inode] ?? []
        content[inode] = Array(data.prefix(Int(size))) + [UInt8](repeating: 0, count: max(0, Int(size) - data.count))
        pendingData[inode, default: []].append(.truncate(size: size))
        end()
    }

    public func sync(_ path: String) throws(FileSystemError) {
        try begin("fsync", path)
        guard let inode = names[path] else { throw FileSystemError(.notFound, operation: "fsync", path: path) }
        sync(inode)
    }

    fileprivate func sync(_ inode: Int) {
        syncedData[inode] = content[inode] ?? []  // the data is durable; the name only once its directory is synced
        pendingData[inode] = nil
        end()
    }

    fileprivate func isNamed(_ path: String, inode: Int) -> Bool { names[path] == inode }

    public func rename(_ from: String, to: String) throws(FileSystemError) {
        try begin("rename", from)
        guard let inode = names[from] else { throw FileSystemError(.notFound, operation: "rename", path: from) }
        names[from] = nil
        names[to] = inode
        pendingEntries.insert(from)
        pendingEntries.insert(to)
        end()
    }

    public func remove(_ path: String) throws(FileSystemError) {
        try begin("remove", path)
        names[path] = nil
        pendingEntries.insert(path)
        end()
    }

    public func isWritable(_ path: String) -> Bool { !readOnly }

    public func freeBytes(_ path: String) -> Int64? {
        capacity.map { Int64(max(0, $0 - content.values.reduce(0) { $0 + $1.count })) }
    }

    public func removeDirectory(_ path: String) throws(FileSystemError) {
        try begin("rmdir", path)
        let prefix = path.hasSuffix("/") ? path : path + "/"
        guard !names.keys.contains(where: { $0.hasPrefix(prefix) }),
              !directories.contains(where: { $0.hasPrefix(prefix) }) else {
            throw FileSystemError(.other(39), operation: "rmdir", path: path)  // ENOTEMPTY
        }
        directories.remove(path)
        end()
    }

    static func apply(_ content: inout [UInt8], offset: Int64, bytes: [UInt8]) {
        let start = Int(offset)
        if content.count < start { content += [UInt8](repeating: 0, count: start - content.count) }
        let overlap = min(bytes.count, content.count - start)
        if overlap > 0 { content.replaceSubrange(start..<(start + overlap), with: bytes[0..<overlap]) }
        if overlap < bytes.count { content += bytes[overlap...] }
    }

    /// The states the medium could be in if power died now: nothing unsynced landed; everything
    /// landed; and, seeded, `variants` random ones: a random subset of the unsynced name changes,
    /// and of each file's unsynced writes a random subset applied in a random order, each maybe
    /// torn (the rest of it missing, or garbage).
    public func crashStates(variants: Int = 3, seed: UInt64) -> [State] {
        var random = seed &+ UInt64(operations) &* 0x9E37_79B9_7F4A_7C15 | 1
        func next() -> UInt64 {
            random ^= random << 13; random ^= random >> 7; random ^= random << 17
            return random
        }
        func state(randomly: Bool) -> State {
            var state = State()
            state.directories = directories
            var landedNames = durableNames
            for entry in pendingEntries.sorted() where !randomly || next() % 2 == 0 { landedNames[entry] = names[entry] }
            for (path, inode) in landedNames {
                var data = syncedData[inode] ?? []
                var writes = pendingData[inode] ?? []
                if randomly {
                    writes = writes.filter { _ in next() % 3 != 0 }
                    if writes.count > 1 {
                        for index in stride(from: writes.count - 1, to: 0, by: -1) { writes.swapAt(index, Int(next() % UInt64(index + 1))) }
                    }
                }
                for write in writes {
                    let tear: (at: Int, garbage: UInt64?)? = randomly && next() % 4 == 0 ? (Int(next() % 512), next() % 2 == 0 ? next() : nil) : nil
                    Self.replay(write, into: &data, tear: tear)
                }
                state.files[path] = data
            }
            return state
        }
        var states = [state(randomly: false)]
        // Nothing unsynced landed: the durable state.
        states.insert(durable, at: 0)
        for _ in 0..<variants { states.append(state(randomly: true)) }
        return states
    }

    static func replay(_ pending: Pending, into content: inout [UInt8], tear: (at: Int, garbage: UInt64?)?) {
        switch pending {
        case .write(let offset, let bytes):
            guard let tear, tear.at < bytes.count else { return apply(&content, offset: offset, bytes: bytes) }
            var landed = Array(bytes.prefix(tear.at))
            if var noise = tear.garbage {
                // The sectors after the tear were allocated but hold whatever was there: garbage.
                for _ in tear.at..<bytes.count {
                    noise ^= noise << 13; noise ^= noise >> 7; noise ^= noise << 17
                    landed.append(UInt8(truncatingIfNeeded: noise))
                }
            }
            apply(&content, offset: offset, bytes: landed)
        case .truncate(let size):
            content = Array(content.prefix(Int(size))) + [UInt8](repeating: 0, count: max(0, Int(size) - content.count))
        }
    }
}

/// A file of the crash file system open on its inode: writes after its name was removed or
/// replaced still go to it, as on a real one.
final class CrashOpenFile: OpenFile {
    let path: String
    let inode: Int
    private let fileSystem: CrashFileSystem
    private var closed = false

    init(fileSystem: CrashFileSystem, path: String, inode: Int) {
        self.fileSystem = fileSystem
        self.path = path
        self.inode = inode
    }

    private func begin(_ operation: String) throws(FileSystemError) {
        guard !closed else { throw FileSystemError(.other(9), operation: "\(operation) after close", path: path) }
        try fileSystem.begin(operation, path)
    }

    func read(at offset: Int64, count: Int) throws(FileSystemError) -> [UInt8] {
        try begin("read")
        return fileSystem.read(inode, at: offset, count: count)
    }

    func write(at offset: Int64, _ bytes: [UInt8]) throws(FileSystemError) {
        try begin("write")
        try fileSystem.write(inode, path: path, at: offset, bytes)
    }

    func truncate(to size: Int64) throws(FileSystemError) {
        try begin("truncate")
        fileSystem.truncate(inode, to: size)
    }

    func size() throws(FileSystemError) -> Int64 { Int64(fileSystem.read(inode, at: 0, count: Int.max).count) }

    func sync() throws(FileSystemError) {
        try begin("fsync")
        fileSystem.sync(inode)
    }

    func isStillNamed() -> Bool { fileSystem.isNamed(path, inode: inode) }

    func close() throws(FileSystemError) {
        guard !closed else { return }
        closed = true
        try fileSystem.begin("close", path)
    }
}
