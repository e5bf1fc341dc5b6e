public import Store
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The device's SQLite database in its data directory (`--home`, `SATCHEL_HOME`), opened with
/// the settings that make "saved" mean "survives a power cut": WAL with `synchronous=FULL`.
/// It refuses to open a file that is damaged, foreign or from a newer version rather than
/// "repairing" it: a rep's unsynced orders may be inside, and only a restore is safe.
public final class DeviceDatabase {
    public static let fileName = "satchel.db"

    public let database: Database
    public let home: String
    public let path: String
    public let clock: any WallClock

    init(database: Database, home: String, clock: any WallClock) {
        self.database = database
        self.home = home
        self.path = database.path
        self.clock = clock
    }

    /// Creates the data directory (0700) and a new database for this device.
    public static func create(home: String, deviceID: String, repID: String, clock: any WallClock = SystemClock()) throws -> DeviceDatabase {
        try validateIdentifier(deviceID, what: "device id")
        try validateIdentifier(repID, what: "rep id")
        try ensureDirectory(home)
        let path = join(home, fileName)
        if access(path, F_OK) == 0 {
            let existing = try open(home: home, clock: clock)
            throw FieldError.alreadyInitialised(home: home, device: try existing.deviceID())
        }
        DamageMarker(home: home).clear()  // left by a database that is gone: this is a new one
        let device = try openChecked(path: path, home: home, create: true, clock: clock)
        try device.guarded {
            try device.database.migrate(FieldSchema.migrations, applicationID: FieldSchema.applicationID)
            try device.database.transaction {
                try device.database.execute(
                    "INSERT INTO device(id, rep_id, created_at) VALUES (?, ?, ?)",
                    [.text(deviceID), .text(repID), .integer(clock.nowMilliseconds())])
            }
        }
        return device
    }

    /// Opens the existing database of this data directory, bringing its schema up to date.
    public static func open(home: String, clock: any WallClock = SystemClock()) throws -> DeviceDatabase {
        let path = try existingDatabasePath(home: home)
        let device = try openChecked(path: path, home: home, create: false, clock: clock)
        try device.guarded {
            // Checked again through SQLite, which sees what the file's header and WAL hold together.
            let version = try device.refuseForeignOrNewer()
            if version < Int64(FieldSchema.migrations.count) {
                try device.database.migrate(FieldSchema.migrations, applicationID: FieldSchema.applicationID)
            }
        }
        return device
    }

    /// The path of this data directory's database; `notInitialised` when there is none.
    static func existingDatabasePath(home: String) throws -> String {
        var info = stat()
        guard stat(home, &info) == 0 else {
            if errno == EACCES { throw FieldError.noPermission(path: home, detail: "cannot look into the data directory") }
            throw FieldError.notInitialised(home: home)
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw FieldError.invalidInput(what: "data directory", value: home, reason: "is not a directory")
        }
        let path = join(home, fileName)
        guard access(path, F_OK) == 0 else {
            if errno == EACCES { throw FieldError.noPermission(path: home, detail: "cannot look into the data directory") }
            throw FieldError.notInitialised(home: home)
        }
        return path
    }

    /// Refuses a database that is not Satchel's or is from a newer satchel; returns its schema version.
    func refuseForeignOrNewer() throws -> Int64 {
        let applicationID = try database.applicationID
        guard applicationID == Int64(FieldSchema.applicationID) else {
            throw FieldError.foreignDatabase(path: path, detail: "application_id \(applicationID), expected \(FieldSchema.applicationID)")
        }
        let version = try database.userVersion
        guard version <= Int64(FieldSchema.migrations.count) else {
            throw FieldError.newerSchema(path: path, detail: "schema \(version), this satchel knows \(FieldSchema.migrations.count)")
        }
        return version
    }

    /// Refuses a file that is not this device's database before SQLite opens it read-write:
    /// opening alone would rewrite a rollback-mode header to WAL, turn a 0-byte file into a
    /// database, and leave `-wal`/`-shm` beside it. A refused file stays byte-identical, with no
    /// new files beside it.
    static func refuseUnusable(path: String) throws {
        // A sealed file says nothing in plain reads: SQLite checks it through the encrypted VFS,
        // where a foreign file fails authentication on the first read, before anything is written.
        if PageEncryption.registered(for: path) != nil {
            if PageEncryption.looksSealed(path) { return }
            if case .sqlite = DatabaseFile.inspect(path) {
                throw FieldError.damagedDatabase(path: path, detail: "a plain database where this device keeps an encrypted one (an interrupted `satchel password set`, or a file put there): `satchel unlock` encrypts it, or restore from the card")
            }
        }
        switch DatabaseFile.inspect(path) {
        case .missing, .unreadable:
            return  // the open that follows reports it with SQLite's words
        case .empty:
            throw FieldError.damagedDatabase(path: path, detail: "the file is empty (0 bytes), not a database; an interrupted `satchel init` leaves this")
        case .notSQLite(let detail):
            throw FieldError.damagedDatabase(path: path, detail: "not an SQLite database: \(detail)")
        case .sqlite(let header):
            guard header.applicationID == Int64(FieldSchema.applicationID) else {
                throw FieldError.foreignDatabase(path: path, detail: "application_id \(header.applicationID), expected \(FieldSchema.applicationID)")
            }
            guard header.userVersion <= Int64(FieldSchema.migrations.count) else {
                throw FieldError.newerSchema(path: path, detail: "schema \(header.userVersion), this satchel knows \(FieldSchema.migrations.count)")
            }
        }
    }

    private static func openChecked(path: String, home: String, create: Bool, clock: any WallClock) throws -> DeviceDatabase {
        // SQLite reports a directory we may not write as a bare "unable to open database file";
        // asking first lets the message name the real problem. (root passes every access check.)
        if access(home, W_OK | X_OK) != 0 {
            throw FieldError.noPermission(path: home, detail: "the data directory is not writable by this user")
        }
        if !create, access(path, R_OK | W_OK) != 0 {
            throw FieldError.noPermission(path: path, detail: "the database file is not readable and writable by this user")
        }
        if !create {
            try refuseUnusable(path: path)
            try DamageMarker(home: home).refuseIfMarked(path)
        }
        var options = Database.Options()
        options.create = create
        // A command touches a few pages; a whole-table count would otherwise fill SQLite's 2 MiB
        // default cache, which on a handheld is memory better left to the page cache of the OS.
        options.cacheSizeKiB = 256
        do {
            return DeviceDatabase(database: try Database(path: path, options: options), home: home, clock: clock)
        } catch let error as StoreError {
            throw translate(error, path: path, home: home)
        }
    }

    /// A storage failure as the rep reads it. Damage (`SQLITE_CORRUPT`) is recorded on the way,
    /// wherever it surfaced, so every later write is refused too (`DamageMarker`).
    static func translate(_ error: StoreError, path: String, home: String) -> FieldError {
        if error.kind == .corrupt {
            try? DamageMarker(home: home).record(database: path, detail: "SQLite reported \(error.message) (code \(error.extendedCode))")
        }
        return FieldError.from(error, path: path)
    }

    /// Runs `body`, translating storage failures into what they mean for the rep.
    public func guarded<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as StoreError {
            throw Self.translate(error, path: path, home: home)
        }
    }

    /// A write transaction (BEGIN IMMEDIATE): all of `body` or nothing. When it returns, the
    /// change is on stable storage. Refused once damage has been recorded for this file (by this
    /// or another satchel process since it was opened).
    public func write<T>(_ body: () throws -> T) throws -> T {
        try DamageMarker(home: home).refuseIfMarked(path)
        return try guarded { try database.transaction(.immediate, body) }
    }

    /// `quick_check` of the whole file, for the cheap moments (before a snapshot, when the daemon
    /// starts): O(pages), so not before every command. A problem is recorded like `SQLITE_CORRUPT`
    /// and thrown as `damagedDatabase`.
    public func checkForDamage() throws {
        let problems = try guarded { try database.quickCheck() }
        guard problems.isEmpty else {
            let detail = "quick_check: " + problems.prefix(3).joined(separator: "; ")
            try? DamageMarker(home: home).record(database: path, detail: detail)
            throw FieldError.damagedDatabase(path: path, detail: detail)
        }
    }

    // MARK: Identity and the change journal

    public func deviceID() throws -> String {
        try guarded { try database.text("SELECT id FROM device") }
    }

    public func repID() throws -> String {
        try guarded { try database.text("SELECT rep_id FROM device") }
    }

    static let nextSequenceSQL = "UPDATE device SET next_seq = next_seq + 1 RETURNING id, epoch, next_seq - 1"
    static let appendChangeSQL = "INSERT INTO changes(seq, change_id, at, entity, entity_id, action, payload) VALUES (NULL, ?, ?, ?, ?, ?, ?)"

    /// The next client-generated id (`ClientID`: `<device>-<sequence>`, `<device>~<epoch>-<sequence>`
    /// after a restore). Must run inside a write transaction, so the id is used exactly when the
    /// change that uses it commits.
    func nextID() throws -> String {
        let statement = try database.statement(Self.nextSequenceSQL)
        defer { statement.reset() }
        guard try statement.step() else { throw FieldError.internalError("device row missing in \(path)") }
        return ClientID.make(device: statement.text(0), epoch: statement.int64(1), sequence: statement.int64(2))
    }

    /// The epoch of the device's id space: 1 until the first restore, one more after each.
    public func epoch() throws -> Int64 {
        try guarded { try database.int64("SELECT epoch FROM device") }
    }

    /// Appends one entry to the change journal. Must run in the transaction of the change.
    @discardableResult
    func appendChange(_ document: Document, action: String, at: Int64) throws -> String {
        let changeID = try nextID()
        let statement = try database.statement(Self.appendChangeSQL)
        try statement.bind(changeID, at: 1)
        try statement.bind(at, at: 2)
        try statement.bind(document.kind.entity, at: 3)
        try statement.bind(document.id, at: 4)
        try statement.bind(action, at: 5)
        try statement.bind(DocumentCodec.encode(document), at: 6)
        try statement.runBound()
        return changeID
    }

    // MARK: Paths

    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    static func ensureDirectory(_ path: String) throws {
        var info = stat()
        if stat(path, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw FieldError.invalidInput(what: "data directory", value: path, reason: "exists and is not a directory")
            }
            return
        }
        // mkdir -p, one component at a time; the data directory itself is private to the rep.
        var built = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            built += "/" + component
            if mkdir(built, 0o700) != 0 && errno != EEXIST {
                if errno == EACCES || errno == EROFS || errno == EPERM {
                    throw FieldError.noPermission(path: built, detail: "cannot create the data directory")
                }
                throw FieldError.storageFailed(path: built, detail: "mkdir failed with errno \(errno)")
            }
        }
    }

    public static func validateIdentifier(_ value: String, what: String) throws {
        let allowed = value.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
        guard !value.isEmpty, value.utf8.count <= 32, allowed else {
            throw FieldError.invalidInput(what: what, value: value, reason: "use 1 to 32 letters, digits, '_' or '.' (it becomes part of every document id)")
        }
    }
}
