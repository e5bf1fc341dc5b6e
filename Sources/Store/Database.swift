import CSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection to one SQLite file, used from one thread at a time (the agent is plain
/// synchronous code; the hub opens one connection per task). Opening applies the settings
/// the product's durability rests on: WAL, `synchronous=FULL`, foreign keys, a busy deadline.
public final class Database {
    let handle: OpaquePointer
    public let path: String
    private var statements: [String: Statement] = [:]
    /// Held while an immutable read-only connection is open; released after it closes.
    private var quietReader: QuietReader?
    /// The key and VFS of an encrypted file, kept as long as the connection that uses them.
    public let encryption: PageEncryption?

    public struct Options: Sendable {
        /// How long a write waits for another connection's lock before failing with `.busy`.
        /// Every wait has a deadline; SQLite's default is to not wait at all.
        public var busyTimeoutMilliseconds: Int32 = 5_000
        /// `FULL` makes a WAL commit durable at the moment it returns (sqlite.org/pragma.html#pragma_synchronous):
        /// what the product calls "acknowledged".
        public var synchronous: Synchronous = .full
        public var readOnly = false
        /// With `readOnly`: leave no trace. When no `-wal` is beside the file (no connection has
        /// it open, everything is in the main file), open it `immutable`
        /// (sqlite.org/uri.html#uriimmutable): SQLite then creates no `-wal` or `-shm`, and a
        /// SHARED lock taken by hand (`QuietReader`) keeps a writer that comes and goes meanwhile
        /// from checkpointing into the main file. With a `-wal` there, a plain read-only open
        /// (it must read the WAL's commits through the existing `-shm`).
        public var immutable = false
        /// Create the file if it is missing. Off for commands that must find an existing database.
        public var create = true
        public var foreignKeys = true
        public var walMode = true
        /// Page cache size in KiB (`PRAGMA cache_size=-N`); nil keeps SQLite's default (2 MiB).
        public var cacheSizeKiB: Int?
        /// Whether the file is sealed page by page (`PageEncryption`). `.automatic`: when a key
        /// is registered for the file's directory (`PageEncryption.register`), with it.
        public var encryption: Encryption = .automatic
        /// Lets `vacuum(into:)` name a URI (the encrypted VFS of the copy). Off by default: a
        /// path that starts with "file:" stays a path.
        public var uriFilenames = false

        public init() {}
    }

    public enum Encryption: Sendable {
        case automatic
        case plain
        case key(PageEncryption)
    }


    public enum Synchronous: String, Sendable { case off = "OFF", normal = "NORMAL", full = "FULL" }

    public init(path: String, options: Options = Options()) throws {
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        flags |= options.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE
        if options.create && !options.readOnly { flags |= SQLITE_OPEN_CREATE }
        if options.uriFilenames { flags |= SQLITE_OPEN_URI }
        var handle: OpaquePointer?
        var name = path
        var reader: QuietReader?
        let encryption: PageEncryption?
        switch options.encryption {
        case .automatic:
            // A plain SQLite file stays plain (a restore from a card made before the password,
            // the upgrade's source): only new, empty and sealed files take the directory's key.
            encryption = PageEncryption.registered(for: path).flatMap { key in
                if case .sqlite = DatabaseFile.inspect(path) { return nil }
                return key
            }
        case .plain: encryption = nil
        case .key(let key): encryption = key
        }
        if options.readOnly && options.immutable, let locked = QuietReader(path: path, timeoutMilliseconds: options.busyTimeoutMilliseconds),
           access(path + "-wal", F_OK) != 0 {
            // Checked under the lock: a writer that opened since has made its -wal by now.
            reader = locked
            flags |= SQLITE_OPEN_URI
            name = "file:" + Self.uriEscaped(path) + "?immutable=1"
        }
        let code = sqlite3_open_v2(name, &handle, flags, encryption?.vfsName)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
            if let handle { sqlite3_close_v2(handle) }
            throw StoreError(extendedCode: code, message: message, path: path)
        }
        self.handle = handle
        self.path = path
        self.quietReader = reader
        self.encryption = encryption
        sqlite3_extended_result_codes(handle, 1)
        do {
            try configure(options)
        } catch {
            statements.removeAll()
            sqlite3_close_v2(handle)
            throw error
        }
    }

    /// Whether this connection was opened immutable (read-only, no `-wal`/`-shm`, see `Options.immutable`).
    public var isImmutable: Bool { quietReader != nil }

    /// A path as the path part of an SQLite URI: '%', '?' and '#' escaped (sqlite.org/uri.html).
    static func uriEscaped(_ path: String) -> String {
        var out = ""
        for character in path {
            switch character {
            case "%": out += "%25"
            case "?": out += "%3f"
            case "#": out += "%23"
            default: out.append(character)
            }
        }
        return out
    }

    deinit {
        statements.removeAll()   // finalize before closing
        sqlite3_close_v2(handle)
        quietReader = nil        // the SHARED lock goes only after the connection is closed
    }

    private func configure(_ options: Options) throws {
        sqlite3_busy_timeout(handle, options.busyTimeoutMilliseconds)
        if encryption != nil { try prepareForSealing() }
        if let cacheSizeKiB = options.cacheSizeKiB { try execute("PRAGMA cache_size=-\(cacheSizeKiB)") }
        // Reading the header is the first real I/O: a file that is not a database fails here
        // with SQLITE_NOTADB instead of at some later, less obvious statement.
        _ = try int64("PRAGMA schema_version")
        if options.readOnly { return }
        if options.walMode {
            let mode = try text("PRAGMA journal_mode=WAL")
            guard mode.lowercased() == "wal" else {
                throw StoreError(extendedCode: SQLITE_CANTOPEN, message: "could not switch to WAL mode (journal_mode is \(mode))", path: path)
            }
        }
        try execute("PRAGMA synchronous=\(options.synchronous.rawValue)")
        if options.foreignKeys { try execute("PRAGMA foreign_keys=ON") }
    }

    // MARK: Errors

    func error(_ code: Int32, sql: String?) -> StoreError {
        let extended = sqlite3_extended_errcode(handle)
        // sqlite3_extended_errcode describes the most recent failure on this connection; use it
        // only if it belongs to the same primary code we were handed.
        let chosen = (extended & 0xff) == (code & 0xff) ? extended : code
        return StoreError(extendedCode: chosen, message: String(cString: sqlite3_errmsg(handle)), sql: sql, path: path)
    }

    // MARK: Statements

    /// A cached prepared statement for `sql`, reset and ready to bind.
    public func statement(_ sql: String) throws -> Statement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        let statement = try Statement(database: self, sql: sql)
        statements[sql] = statement
        return statement
    }

    /// Runs one statement that returns no rows.
    public func execute(_ sql: String, _ values: [DatabaseValue] = []) throws {
        try statement(sql).run(values)
    }

    /// Runs a script of several statements (migrations). No parameters: scripts are ours, never user text.
    public func execute(script: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, script, nil, nil, &message)
        if code != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(code))
            sqlite3_free(message)
            throw StoreError(extendedCode: sqlite3_extended_errcode(handle), message: text, sql: script, path: path)
        }
    }

    /// Runs a query and maps every row.
    public func query<T>(_ sql: String, _ values: [DatabaseValue] = [], row: (Statement) throws -> T) throws -> [T] {
        let statement = try statement(sql)
        try statement.bind(values)
        defer { statement.reset() }
        var rows: [T] = []
        while try statement.step() { rows.append(try row(statement)) }
        return rows
    }

    /// The first row, mapped, or nil when there is none.
    public func first<T>(_ sql: String, _ values: [DatabaseValue] = [], row: (Statement) throws -> T) throws -> T? {
        let statement = try statement(sql)
        try statement.bind(values)
        defer { statement.reset() }
        return try statement.step() ? try row(statement) : nil
    }

    /// The first column of the first row as an integer (0 when there is no row or it is NULL).
    public func int64(_ sql: String, _ values: [DatabaseValue] = []) throws -> Int64 {
        try first(sql, values) { $0.int64(0) } ?? 0
    }

    public func text(_ sql: String, _ values: [DatabaseValue] = []) throws -> String {
        try first(sql, values) { $0.text(0) } ?? ""
    }

    public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }
    public var changes: Int64 { Int64(sqlite3_changes64(handle)) }
    public var isInTransaction: Bool { sqlite3_get_autocommit(handle) == 0 }

    // MARK: Transactions

    public enum TransactionKind: String, Sendable {
        case deferred = "DEFERRED"
        /// Takes the write lock at BEGIN, so a busy database fails before any work is done
        /// rather than at the first write (sqlite.org/lang_transaction.html).
        case immediate = "IMMEDIATE"
        case exclusive = "EXCLUSIVE"
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    /// When `commit` returns, the change is durable (with `synchronous=FULL`).
    public func transaction<T>(_ kind: TransactionKind = .immediate, _ body: () throws -> T) throws -> T {
        try bracketed(begin: "BEGIN \(kind.rawValue)", end: "COMMIT", undo: { if isInTransaction { try? execute("ROLLBACK") } }, body)
    }

    /// Runs `body` inside a savepoint of the current transaction: if it throws, only its own
    /// changes are undone (the transaction goes on) and the error is rethrown.
    public func savepoint<T>(_ name: String, _ body: () throws -> T) throws -> T {
        try bracketed(begin: "SAVEPOINT \(name)", end: "RELEASE \(name)", undo: {
            try execute("ROLLBACK TO \(name)")
            try execute("RELEASE \(name)")
        }, body)
    }

    /// `begin`, then `body`, then `end`; when `body` or `end` throws, `undo` runs and the error
    /// is rethrown (an error of `undo` itself is thrown instead). Transactions and savepoints
    /// differ only in these three statements.
    private func bracketed<T>(begin: String, end: String, undo: () throws -> Void, _ body: () throws -> T) throws -> T {
        try execute(begin)
        do {
            let result = try body()
            try execute(end)
            return result
        } catch {
            try undo()
            throw error
        }
    }

    // MARK: Schema versions

    public var userVersion: Int64 {
        get throws { try int64("PRAGMA user_version") }
    }

    /// Brings the schema to `migrations.count` by running the ones not applied yet, each in its
    /// own transaction together with the bump of `user_version`, so a power cut leaves either
    /// version n or n+1, never a half-built schema.
    public func migrate(_ migrations: [Migration], applicationID: Int32? = nil) throws {
        let current = try userVersion
        guard current <= Int64(migrations.count) else {
            throw StoreError(
                extendedCode: SQLITE_ERROR,
                message: "schema version \(current) is newer than this program knows (\(migrations.count)); update satchel",
                path: path)
        }
        for (index, migration) in migrations.enumerated() where Int64(index) >= current {
            try transaction(.immediate) {
                try execute(script: migration.sql)
                try execute("PRAGMA user_version=\(index + 1)")
                if let applicationID { try execute("PRAGMA application_id=\(applicationID)") }
            }
        }
    }

    // MARK: Checks

    /// `PRAGMA quick_check`: O(N) structural check without index cross-checks. Returns the
    /// problems found; empty means "ok".
    public func quickCheck() throws -> [String] { try check("quick_check") }

    /// `PRAGMA integrity_check`: the thorough version, also verifying indexes against tables.
    public func integrityCheck() throws -> [String] { try check("integrity_check") }

    private func check(_ pragma: String) throws -> [String] {
        let lines = try query("PRAGMA \(pragma)") { $0.text(0) }
        return lines == ["ok"] ? [] : lines
    }

    /// Before the first page is read or written: the page size the VFS seals, room in every
    /// page for its nonce and tag (honoured by a new file; an existing one has it in its header),
    /// and temporary files kept in memory, where nothing plaintext reaches the disk.
    private func prepareForSealing() throws {
        try execute("PRAGMA page_size=\(PageEncryption.pageSize)")
        var reserve = Int32(PageEncryption.reservedBytes)
        let code = sqlite3_file_control(handle, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve)
        guard code == SQLITE_OK else { throw error(code, sql: "SQLITE_FCNTL_RESERVE_BYTES") }
        try execute("PRAGMA temp_store=MEMORY")
        try execute("PRAGMA mmap_size=0")
    }

    /// Writes the WAL back into the main file and truncates it (before a snapshot or on low battery).
    public func checkpoint() throws {
        var logFrames: Int32 = 0, checkpointed: Int32 = 0
        let code = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_TRUNCATE, &logFrames, &checkpointed)
        guard code == SQLITE_OK else { throw error(code, sql: "wal_checkpoint(TRUNCATE)") }
    }

    // MARK: Online backup

    /// Copies this database into a new file at `destination` with SQLite's online backup API,
    /// `pagesPerStep` pages at a time so writers on this connection's file are held up only
    /// briefly (sqlite.org/backup.html). The destination is created with `synchronous=FULL`.
    /// `busyLimitMilliseconds` bounds the time spent waiting out BUSY or LOCKED (a writer holding
    /// the database): past it the backup fails with SQLITE_BUSY instead of waiting forever, which
    /// under the card lock would hold up every capture behind it.
    public func backup(to destination: String, pagesPerStep: Int32 = 256, busyLimitMilliseconds: Int32 = 30_000) throws {
        var options = Options()
        // The copy is sealed as this file is (same key), or plain as it is.
        options.encryption = encryption.map { .key($0) } ?? .plain
        options.walMode = false
        options.foreignKeys = false
        let target = try Database(path: destination, options: options)
        guard let backup = sqlite3_backup_init(target.handle, "main", handle, "main") else {
            throw target.error(sqlite3_errcode(target.handle), sql: "backup to \(destination)")
        }
        var code: Int32
        var busyWaited: Int32 = 0
        repeat {
            code = sqlite3_backup_step(backup, pagesPerStep)
            if code == SQLITE_BUSY || code == SQLITE_LOCKED {
                guard busyWaited < busyLimitMilliseconds else { break }
                busyWaited += max(1, sqlite3_sleep(5))
            }
        } while code == SQLITE_OK || code == SQLITE_BUSY || code == SQLITE_LOCKED
        let finish = sqlite3_backup_finish(backup)
        guard code == SQLITE_DONE, finish == SQLITE_OK else {
            throw target.error(code == SQLITE_DONE ? finish : code, sql: "backup to \(destination)")
        }
    }

    /// Writes a compacted copy of this database to the new file `destination`, sealed with
    /// `encryption` (`VACUUM INTO` through its VFS, with room reserved in every page for the
    /// nonce and tag). Needs a connection opened with `uriFilenames`. The copy is not fsynced.
    public func vacuum(into destination: String, encryption: PageEncryption) throws {
        var reserve = Int32(PageEncryption.reservedBytes)
        let code = sqlite3_file_control(handle, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve)
        guard code == SQLITE_OK else { throw error(code, sql: "SQLITE_FCNTL_RESERVE_BYTES") }
        try execute("PRAGMA temp_store=MEMORY")
        try execute("VACUUM INTO ?", [.text("file:" + Self.uriEscaped(destination) + "?vfs=" + encryption.vfsName)])
    }

    public var applicationID: Int64 {
        get throws { try int64("PRAGMA application_id") }
    }

    /// Size of the main file in bytes (page_count x page_size), without the WAL.
    public func fileSize() throws -> Int64 {
        try int64("PRAGMA page_count") * int64("PRAGMA page_size")
    }
}

/// One step of the schema. Applied in order; never edited once released, only appended to.
public struct Migration: Sendable {
    public let name: String
    public let sql: String
    public init(_ name: String, _ sql: String) {
        self.name = name
        self.sql = sql
    }
}

/// Version of the SQLite library in use (for `satchel status` and bug reports).
public var sqliteVersion: String { String(cString: sqlite3_libversion()) }
