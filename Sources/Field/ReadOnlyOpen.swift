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
    /// created (`Database.Options.immutable`). When a `-wal` is there, its commits must be read,
    /// so it is opened read-only through the existing WAL index.
    public static func openReadOnly(home: String, clock: any WallClock = SystemClock()) throws -> DeviceDatabase {
        let path = try existingDatabasePath(home: home)
        if access(path, R_OK) != 0 {
            throw FieldError.noPermission(path: path, detail: "the database file is not readable by this user")
        }
        // The same refusals as a writer's open, from plain reads of the header and the marker.
        try refuseUnusable(path: path)
        try DamageMarker(home: home).refuseIfMarked(path)
        var options = Database.Options()
        options.readOnly = true
        options.create = false
        options.immutable = true
        options.cacheSizeKiB = 256
        let device: DeviceDatabase
        do {
            device = DeviceDatabase(database: try Database(path: path, options: options), home: home, clock: clock)
        } catch let error as StoreError {
            throw translate(error, path: path, home: home)
        }
        _ = try device.guarded { try device.refuseForeignOrNewer() }
        return device
    }

    /// Whether the schema is the one this satchel writes (a read-only open does not migrate).
    public func schemaIsCurrent() throws -> Bool {
        try guarded { try database.userVersion == Int64(FieldSchema.migrations.count) }
    }
}
