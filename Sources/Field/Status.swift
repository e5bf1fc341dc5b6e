import Store

/// What `satchel status` reports: who this device is, what it holds, and what has not reached
/// the hub yet. Counts only, so it stays cheap on a full working set.
public struct DeviceStatus: Codable, Sendable, Equatable {
    public var device: String
    public var rep: String
    public var home: String
    public var databaseBytes: Int64
    public var schemaVersion: Int64
    public var sqliteVersion: String
    public var customers: Int64
    public var products: Int64
    public var prices: Int64
    public var stockRows: Int64
    public var routeStopsToday: Int64
    public var orders: [String: Int64]
    public var ordersHeldForApproval: Int64
    public var visitsToday: Int64
    public var paymentsToday: Int64
    public var changes: Int64
    public var unsyncedChanges: Int64
    public var lastChangeAt: Int64?
    public var lastSyncAt: Int64?
    /// Changes the hub did not take as they were (its value won); `satchel sync-errors` lists them.
    public var syncErrors: Int64 = 0

    /// The statements `read` runs, public so `satchel-sim bench capture` can run the very same
    /// SQL in its SQLite hello-world (the memory baseline of `satchel status`).
    public enum SQL {
        public static let ordersByState = "SELECT state, count(*) FROM orders GROUP BY state"
        /// ?1: today (YYYY-MM-DD), ?2: the start of today in milliseconds.
        public static let counts = """
        SELECT d.id, d.rep_id,
               (SELECT count(*) FROM customers), (SELECT count(*) FROM products), (SELECT count(*) FROM prices),
               (SELECT count(*) FROM stock),
               (SELECT count(*) FROM routes r JOIN route_stops s ON s.route_id = r.id WHERE r.day = ?1),
               (SELECT count(*) FROM orders WHERE approval = 'pending'),
               (SELECT count(*) FROM visits WHERE at >= ?2), (SELECT count(*) FROM payments WHERE collected_at >= ?2),
               (SELECT count(*) FROM changes),
               (SELECT count(*) FROM changes WHERE seq > (SELECT CAST(value AS INTEGER) FROM sync_state WHERE key = 'uploaded_through_seq')),
               (SELECT max(at) FROM changes),
               (SELECT CAST(value AS INTEGER) FROM sync_state WHERE key = 'last_sync_at'),
               (SELECT count(*) FROM sync_errors)
        FROM device d
        """
    }

    public static func read(_ device: DeviceDatabase) throws -> DeviceStatus {
        try device.guarded {
            let database = device.database
            let now = device.clock.nowMilliseconds()
            let today = CalendarDay.string(fromMilliseconds: now)
            var orders: [String: Int64] = [:]
            for (state, count) in try database.query(SQL.ordersByState, row: { ($0.text(0), $0.int64(1)) }) {
                orders[state] = count
            }
            let dayStart = CalendarDay.startOfDay(containing: now)
            // One statement for all the counts: each prepared statement costs memory, and
            // `satchel status` must stay small on a full working set.
            return try database.first(SQL.counts, [.text(today), .integer(dayStart)]) { row in
                DeviceStatus(
                    device: row.text(0), rep: row.text(1), home: device.home, databaseBytes: 0, schemaVersion: 0,
                    sqliteVersion: Store.sqliteVersion, customers: row.int64(2), products: row.int64(3), prices: row.int64(4),
                    stockRows: row.int64(5), routeStopsToday: row.int64(6), orders: orders, ordersHeldForApproval: row.int64(7),
                    visitsToday: row.int64(8), paymentsToday: row.int64(9), changes: row.int64(10), unsyncedChanges: row.int64(11),
                    lastChangeAt: row.optionalInt64(12), lastSyncAt: row.optionalInt64(13), syncErrors: row.int64(14))
            }.map { status in
                var status = status
                status.databaseBytes = try database.fileSize()
                status.schemaVersion = try database.userVersion
                return status
            } ?? { throw FieldError.internalError("device row missing in \(device.path)") }()
        }
    }
}

/// A change of this device the hub did not take as it was: what the rep had, what the office
/// has, and why. Kept until the hub stops sending it (30 days).
public struct SyncErrorEntry: Codable, Sendable, Equatable {
    public var changeId: String
    public var entity: String
    public var entityId: String
    public var field: String
    public var deviceValue: String?
    public var hubValue: String?
    public var reason: String
    public var at: Int64

    enum CodingKeys: String, CodingKey {
        case entity, field, reason, at
        case changeId = "change_id"
        case entityId = "entity_id"
        case deviceValue = "device_value"
        case hubValue = "hub_value"
    }

    public static func all(_ device: DeviceDatabase) throws -> [SyncErrorEntry] {
        try device.guarded {
            try device.database.query("SELECT change_id, entity, entity_id, field, device_value, hub_value, reason, at FROM sync_errors ORDER BY at, id") {
                SyncErrorEntry(changeId: $0.text(0), entity: $0.text(1), entityId: $0.text(2), field: $0.text(3), deviceValue: $0.optionalText(4),
                               hubValue: $0.optionalText(5), reason: $0.text(6), at: $0.int64(7))
            }
        }
    }
}
