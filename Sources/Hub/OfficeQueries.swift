import Foundation
import Store

/// What the office asks the hub between syncs: which handhelds and reps there are and when each
/// last synced, which documents came in, and who has not synced within the company's rule (a
/// successful sync every 24 hours). Everything is read from the hub's own tables and the audit
/// log; the text in it came from devices and the ERP, so whoever prints it escapes it.
public struct OfficeDevice: Codable, Equatable, Sendable {
    public var id: String
    public var rep: String
    public var revoked: Bool
    public var replaces: String?
    public var addedAt: Int64
    public var lastSuccessfulSync: Int64?
    public var lastAttempt: Int64?
    public var lastResult: String?
    public var lastError: String?
}

public struct OfficeRep: Codable, Equatable, Sendable {
    public var id: String
    public var name: String
    public var territory: String?
    public var role: String
    public var devices: Int
    public var hasPassword: Bool
    public var lastSuccessfulSync: Int64?
}

public struct OfficeDocument: Codable, Equatable, Sendable {
    public var device: String
    public var rep: String?
    public var entity: String
    public var id: String
    public var customer: String?
    /// The office's state when it has decided, else the device's latest.
    public var state: String?
    public var approval: String?
    public var lastAction: String
    public var changes: Int
    public var receivedAt: Int64
    /// What the approval rule reads (orders and quotes): total, currency, discount, the
    /// device's hold reason, and the level that must decide (ApprovalRule), when pending.
    public var totalMinor: Int64? = nil
    public var currency: String? = nil
    public var discountBasisPoints: Int64? = nil
    public var holdReason: String? = nil
    public var needs: String? = nil
}

public struct MissedSync: Codable, Equatable, Sendable {
    public var rep: String
    public var name: String
    public var devices: [String]
    public var lastSuccessfulSync: Int64?
    /// The last attempt's result and error, when it failed: why the rep did not get through.
    public var lastAttempt: Int64?
    public var lastError: String?
}

public struct DocumentFilter: Sendable {
    public var rep: String?
    public var state: String?
    public var entity: String?
    /// Received on or after / before these instants (Unix ms).
    public var from: Int64?
    public var until: Int64?
    public var limit: Int = 500
    public init(rep: String? = nil, state: String? = nil, entity: String? = nil, from: Int64? = nil, until: Int64? = nil, limit: Int = 500) {
        self.rep = rep; self.state = state; self.entity = entity; self.from = from; self.until = until; self.limit = limit
    }
}

// One reading of each office query's columns for both backends: the SQL differs per backend
// (PostgresOffice.swift), the columns it returns do not (flags through HubSQLRow.flag).

extension OfficeDevice {
    init(row: some HubSQLRow) {
        self.init(id: row.text(0), rep: row.text(1), revoked: row.flag(2), replaces: row.optionalText(3), addedAt: row.int64(4),
                  lastSuccessfulSync: row.optionalInt64(5), lastAttempt: row.optionalInt64(6), lastResult: row.optionalText(7), lastError: row.optionalText(8))
    }
}

extension OfficeRep {
    init(row: some HubSQLRow) {
        self.init(id: row.text(0), name: row.text(1), territory: row.optionalText(2), role: row.text(3), devices: row.int(4),
                  hasPassword: row.flag(5), lastSuccessfulSync: row.optionalInt64(6))
    }
}

extension OfficeDocument {
    init(row: some HubSQLRow) {
        self.init(device: row.text(0), rep: row.optionalText(1), entity: row.text(2), id: row.text(3), customer: row.optionalText(4),
                  state: row.optionalText(5), approval: row.optionalText(6), lastAction: row.text(7), changes: row.int(8), receivedAt: row.int64(9),
                  totalMinor: row.optionalInt64(10), currency: row.optionalText(11), discountBasisPoints: row.optionalInt64(12),
                  holdReason: row.optionalText(13))
    }
}

extension MissedSync {
    init(row: some HubSQLRow) {
        self.init(rep: row.text(0), name: row.text(1), devices: row.text(2).split(separator: ",").map(String.init),
                  lastSuccessfulSync: row.optionalInt64(3), lastAttempt: row.optionalInt64(4), lastError: row.optionalText(5))
    }
}

extension HubSQL {
    /// The devices with their last successful sync and last attempt, and the reps with their
    /// devices: the same SQL on both backends but for `collate` (PostgreSQL's `COLLATE "C"` sorts
    /// ids by bytes, as SQLite does).
    func officeDeviceRows(collate: String) throws -> [OfficeDevice] {
        try storageErrors {
            try rows("""
                SELECT d.id, d.rep_id, d.revoked, d.replaces, d.added_at,
                       (SELECT max(ended_at) FROM audit WHERE device_id = d.id AND result = 'ok'),
                       l.started_at, l.result, l.error
                FROM devices d LEFT JOIN audit l ON l.id = (SELECT max(id) FROM audit WHERE device_id = d.id)
                ORDER BY d.id\(collate)
                """, []) { OfficeDevice(row: $0) }
        }
    }

    func officeRepRows(collate: String) throws -> [OfficeRep] {
        try storageErrors {
            try rows("""
                SELECT r.id, r.name, r.territory_id, r.role, (SELECT count(*) FROM devices WHERE rep_id = r.id AND NOT revoked),
                       r.password_hash <> '', (SELECT max(ended_at) FROM audit WHERE rep_id = r.id AND result = 'ok')
                FROM reps r ORDER BY r.id\(collate)
                """, []) { OfficeRep(row: $0) }
        }
    }
}

extension SQLiteHubStorage {
    public func officeDevices() throws -> [OfficeDevice] { try officeDeviceRows(collate: "") }
    public func officeReps() throws -> [OfficeRep] { try officeRepRows(collate: "") }

    /// Documents received, one line per document (its changes folded), newest first. What the
    /// document says (customer, state, totals) is its latest change's summary, decoded once at
    /// ingest (DocumentSummaries.swift); a change without one (staged by hand) still lists, its
    /// fields empty.
    public func officeDocuments(_ filter: DocumentFilter) throws -> [OfficeDocument] {
        try guarded {
            try database.query("""
                WITH latest AS (
                    SELECT c.device_id, c.entity, c.entity_id, count(*) AS changes, max(c.rowid) AS last FROM device_changes c
                    GROUP BY c.device_id, c.entity, c.entity_id
                )
                SELECT l.device_id, d.rep_id, l.entity, l.entity_id, m.customer_id, coalesce(s.state, m.state), coalesce(s.approval, m.approval),
                       c.action, l.changes, c.received_at, m.total_minor, m.currency, m.discount_basis_points, m.hold_reason
                FROM latest l JOIN device_changes c ON c.rowid = l.last
                LEFT JOIN document_summaries m ON m.change_id = c.change_id
                LEFT JOIN devices d ON d.id = l.device_id
                LEFT JOIN document_states s ON s.device_id = l.device_id AND s.entity = l.entity AND s.entity_id = l.entity_id
                WHERE (?1 IS NULL OR d.rep_id = ?1) AND (?3 IS NULL OR l.entity = ?3)
                  AND (?4 IS NULL OR c.received_at >= ?4) AND (?5 IS NULL OR c.received_at < ?5)
                  AND (?2 IS NULL OR coalesce(s.state, m.state) = ?2)
                ORDER BY c.received_at DESC, l.last DESC LIMIT ?6
                """, [DatabaseValue(filter.rep), DatabaseValue(filter.state), DatabaseValue(filter.entity), DatabaseValue(filter.from),
                      DatabaseValue(filter.until), .integer(Int64(filter.limit))]) {
                OfficeDocument(row: SQLiteHubRow(statement: $0))
            }
        }
    }

    /// Reps with a handheld in service and no successful sync in the last `hours` (the audit log
    /// says; a rep who never synced is listed with none), with why their last attempt failed.
    public func missedSyncs(now: Int64, hours: Int = SyncRule.hours) throws -> [MissedSync] {
        try guarded {
            try database.query("""
                SELECT r.id, r.name, (SELECT group_concat(id, ',') FROM (SELECT id FROM devices WHERE rep_id = r.id AND revoked = 0 ORDER BY id)),
                       (SELECT max(ended_at) FROM audit WHERE rep_id = r.id AND result = 'ok'),
                       l.started_at, CASE WHEN l.result <> 'ok' THEN coalesce(l.error, l.result) END
                FROM reps r
                LEFT JOIN audit l ON l.id = (SELECT max(a.id) FROM audit a WHERE a.rep_id = r.id OR a.device_id IN (SELECT id FROM devices WHERE rep_id = r.id))
                WHERE EXISTS (SELECT 1 FROM devices WHERE rep_id = r.id AND revoked = 0)
                  AND NOT EXISTS (SELECT 1 FROM audit WHERE rep_id = r.id AND result = 'ok' AND ended_at >= ?)
                ORDER BY r.id
                """, [.integer(SyncRule.windowStart(now: now, hours: hours))]) {
                MissedSync(row: SQLiteHubRow(statement: $0))
            }
        }
    }
}
