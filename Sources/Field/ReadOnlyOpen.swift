import Store
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension DeviceDatabase {
    /// Opens the database of this data directory for reading only, for the commands that must
    /// change nothing (`status`, `doctor`, lists and shows): no migration, no switch of journal
    /// mode, no file created or rewritten. A missing database is `notInitialised` (never made).
    ///
    /// A WAL database opened read-only normally gets a `-wal` and a `-shm` created beside it
    /// (sqlite.org/wal.html#readonly). When no `-wal` is there, no connection has the database
    /// open and everything is in the main file, so it is opened `immutable` and nothing is
    /// created. When a `-wal` is there, its commits must be read, so it is opened read-only
    /// through the existing WAL index.
    public static func openReadOnly(home: String, clock: any WallClock = SystemClock()) throws -> DeviceDatabase {
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
        if access(path, R_OK) != 0 {
            throw FieldError.noPermission(path: path, detail: "the database file is not readable by this user")
        }
        var options = Database.Options()
        options.readOnly = true
        options.create = false
        options.immutable = access(path + "-wal", F_OK) != 0
        options.cacheSizeKiB = 256
        let device: DeviceDatabase
        do {
            device = DeviceDatabase(database: try Database(path: path, options: options), home: home, clock: clock)
        } catch let error as StoreError {
            throw FieldError.from(error, path: path)
        }
        try device.guarded {
            let applicationID = try device.database.applicationID
            guard applicationID == Int64(FieldSchema.applicationID) else {
                throw FieldError.foreignDatabase(path: path, detail: "application_id \(applicationID), expected \(FieldSchema.applicationID)")
            }
            let version = try device.database.userVersion
            guard version <= Int64(FieldSchema.migrations.count) else {
                throw FieldError.newerSchema(path: path, detail: "schema \(version), this satchel knows \(FieldSchema.migrations.count)")
            }
        }
        return device
    }

    /// Whether the schema is the one this satchel writes (a read-only open does not migrate).
    public func schemaIsCurrent() throws -> Bool {
        try guarded { try database.userVersion == Int64(FieldSchema.migrations.count) }
    }
}
