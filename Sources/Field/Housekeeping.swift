import Store

/// Keeps the device database bounded over weeks in the field. The hub holds every document and
/// change the device has uploaded, so once one is older than the retention period and finished
/// with, the device lets it go: visits, payments and maintenance records after `retentionDays`;
/// orders once settled or rejected (any order after `orderDays`); complaints, quotes and display
/// requests once closed. Nothing not yet uploaded is ever touched, and the newest change stays.
/// (Working-set rows kept only for a document are released by the download side, which knows
/// their keys: `DeviceDownload.releaseRetained`.)
public struct Housekeeping {
    public struct Policy: Sendable, Equatable {
        public var retentionDays: Int64 = 30
        public var orderDays: Int64 = 90
        public init() {}
    }

    public struct Report: Codable, Sendable, Equatable {
        public var documents = 0
        public var changes = 0
    }

    let device: DeviceDatabase
    let policy: Policy
    public init(_ device: DeviceDatabase, policy: Policy = Policy()) {
        self.device = device
        self.policy = policy
    }

    @discardableResult
    public func run() throws -> Report {
        let now = device.clock.nowMilliseconds()
        let cutoff = now - policy.retentionDays * 86_400_000
        let orderCutoff = now - policy.orderDays * 86_400_000
        var report = Report()
        try device.write {
            let database = device.database
            // Documents whose every change the hub has acknowledged.
            let uploaded = "(SELECT CAST(value AS INTEGER) FROM sync_state WHERE key = 'uploaded_through_seq')"
            func synced(_ entity: String, _ column: String = "id") -> String {
                "NOT EXISTS (SELECT 1 FROM changes c WHERE c.entity = '\(entity)' AND c.entity_id = \(column) AND c.seq > \(uploaded))"
            }
            // Removes each document of `ids` with the rows that go with it: `statements` run in
            // order, each with the document's id as its one parameter.
            func remove(_ ids: [String], _ statements: String...) throws {
                for id in ids {
                    for statement in statements { try database.execute(statement, [.text(id)]) }
                }
                report.documents += ids.count
            }
            // Lines go with their order; the lines' guard only protects lines of a living order.
            try database.execute("PRAGMA defer_foreign_keys = ON")
            let orders = try database.query("""
                SELECT id FROM orders WHERE \(synced("order")) AND (
                    (state IN ('settled', 'rejected') AND coalesce(confirmed_at, created_at) < ?1) OR created_at < ?2)
                """, [.integer(cutoff), .integer(orderCutoff)]) { $0.text(0) }
            try remove(orders, "DELETE FROM orders WHERE id = ?", "DELETE FROM order_lines WHERE order_id = ?")
            let quotes = try database.query("SELECT id FROM quotes WHERE \(synced("quote")) AND approval IN ('approved', 'rejected', 'none') AND at < ?",
                                            [.integer(cutoff)]) { $0.text(0) }
            try remove(quotes, "DELETE FROM quote_lines WHERE quote_id = ?", "DELETE FROM quotes WHERE id = ?")
            // A closed display request gives its reserved materials back.
            let displays = try database.query("SELECT id FROM display_requests WHERE \(synced("display_request")) AND state IN ('built', 'rejected') AND at < ?",
                                              [.integer(cutoff)]) { $0.text(0) }
            try remove(displays, """
                UPDATE stock SET reserved = max(0, reserved - (SELECT r.quantity FROM display_reservations r
                    WHERE r.request_id = ?1 AND r.part_number = stock.part_number AND r.location = stock.location))
                WHERE EXISTS (SELECT 1 FROM display_reservations r WHERE r.request_id = ?1 AND r.part_number = stock.part_number AND r.location = stock.location)
                """, "DELETE FROM display_reservations WHERE request_id = ?", "DELETE FROM display_requests WHERE id = ?")
            // A void goes before (or with) its payment, never after: a payment stays while a void points at it.
            for (table, entity, time, extra) in [("visits", "visit", "at", ""), ("payment_voids", "payment_void", "at", ""),
                                                 ("payments", "payment", "collected_at",
                                                  " AND NOT EXISTS (SELECT 1 FROM payment_voids v WHERE v.payment_id = payments.id)"),
                                                 ("maintenance", "maintenance", "at", ""),
                                                 ("complaints", "complaint", "at", " AND state IN ('resolved', 'rejected')")] {
                try database.execute("DELETE FROM \(table) WHERE \(synced(entity)) AND \(time) < ?\(extra)", [.integer(cutoff)])
                report.documents += Int(database.changes)
            }
            try database.execute("DELETE FROM changes WHERE seq <= \(uploaded) AND at < ? AND seq < (SELECT max(seq) FROM changes)", [.integer(cutoff)])
            report.changes = Int(database.changes)
        }
        return report
    }
}
