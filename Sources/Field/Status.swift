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

    public static func read(_ device: DeviceDatabase) throws -> DeviceStatus {
        try device.guarded {
            let database = device.database
            let now = device.clock.nowMilliseconds()
            let today = CalendarDay.string(fromMilliseconds: now)
            var orders: [String: Int64] = [:]
            for (state, count) in try database.query("SELECT state, count(*) FROM orders GROUP BY state", row: { ($0.text(0), $0.int64(1)) }) {
                orders[state] = count
            }
            let dayStart = CalendarDay.startOfDay(containing: now)
            let uploadedThrough = Int64(try database.text("SELECT value FROM sync_state WHERE key = 'uploaded_through_seq'")) ?? 0
            return DeviceStatus(
                device: try database.text("SELECT id FROM device"),
                rep: try database.text("SELECT rep_id FROM device"),
                home: device.home,
                databaseBytes: try database.fileSize(),
                schemaVersion: try database.userVersion,
                sqliteVersion: Store.sqliteVersion,
                customers: try database.int64("SELECT count(*) FROM customers"),
                products: try database.int64("SELECT count(*) FROM products"),
                prices: try database.int64("SELECT count(*) FROM prices"),
                stockRows: try database.int64("SELECT count(*) FROM stock"),
                routeStopsToday: try database.int64("SELECT count(*) FROM routes r JOIN route_stops s ON s.route_id = r.id WHERE r.day = ?", [.text(today)]),
                orders: orders,
                ordersHeldForApproval: try database.int64("SELECT count(*) FROM orders WHERE approval = 'pending'"),
                visitsToday: try database.int64("SELECT count(*) FROM visits WHERE at >= ?", [.integer(dayStart)]),
                paymentsToday: try database.int64("SELECT count(*) FROM payments WHERE collected_at >= ?", [.integer(dayStart)]),
                changes: try database.int64("SELECT count(*) FROM changes"),
                unsyncedChanges: try database.int64("SELECT count(*) FROM changes WHERE seq > ?", [.integer(uploadedThrough)]),
                lastChangeAt: try database.first("SELECT max(at) FROM changes") { $0.optionalInt64(0) } ?? nil)
        }
    }
}
