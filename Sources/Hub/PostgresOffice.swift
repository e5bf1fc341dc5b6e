import Field
import Foundation
import Postgres
import Seal

/// The back office on PostgreSQL: the same questions and rules as on SQLite (OfficeQueries.swift,
/// OfficeUsers.swift; the rules without SQL are shared there), in PostgreSQL's SQL.
enum PostgresOfficeSchema {
    /// SQLite's v6: office users, their tokens (kept as hashes) and the append-only decisions.
    static let users = """
        CREATE TABLE office_users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('supervisor', 'sales_manager', 'office', 'admin')),
            territory_id TEXT, added_at BIGINT NOT NULL,
            CHECK ((role IN ('supervisor', 'sales_manager')) = (territory_id IS NOT NULL))
        );
        CREATE TABLE office_tokens (
            token_hash BYTEA PRIMARY KEY, user_name TEXT NOT NULL REFERENCES office_users(name),
            issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL
        );
        CREATE TABLE office_decisions (
            id BIGSERIAL PRIMARY KEY, user_name TEXT NOT NULL, device_id TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL,
            decision TEXT NOT NULL, reason TEXT, at BIGINT NOT NULL
        );
        """ + PostgresHubStorage.appendOnly(OfficeUsersSchema.history)
}

extension PostgresHubStorage: OfficeStore {
    public func officeDevices() throws -> [OfficeDevice] { try officeDeviceRows(collate: " COLLATE \"C\"") }
    public func officeReps() throws -> [OfficeRep] { try officeRepRows(collate: " COLLATE \"C\"") }

    /// As on SQLite: a document's latest change (the device's highest epoch and sequence) with
    /// the count of its changes and its summary (DocumentSummaries.swift: decoded once at
    /// ingest, never read from the JSON here); the office's state and approval over the device's.
    public func officeDocuments(_ filter: DocumentFilter) throws -> [OfficeDocument] {
        try guarded {
            try connection.query("""
                WITH latest AS (
                    SELECT DISTINCT ON (c.device_id, c.entity, c.entity_id)
                           c.device_id, c.entity, c.entity_id, c.change_id, c.action, c.received_at, c.epoch, c.seq,
                           count(*) OVER (PARTITION BY c.device_id, c.entity, c.entity_id) AS changes
                    FROM device_changes c
                    ORDER BY c.device_id, c.entity, c.entity_id, c.epoch DESC, c.seq DESC
                )
                SELECT l.device_id, d.rep_id, l.entity, l.entity_id, m.customer_id, coalesce(s.state, m.state), coalesce(s.approval, m.approval),
                       l.action, l.changes, l.received_at, m.total_minor, m.currency, m.discount_basis_points, m.hold_reason
                FROM latest l
                LEFT JOIN document_summaries m ON m.change_id = l.change_id
                LEFT JOIN devices d ON d.id = l.device_id
                LEFT JOIN document_states s ON s.device_id = l.device_id AND s.entity = l.entity AND s.entity_id = l.entity_id
                WHERE ($1::text IS NULL OR d.rep_id = $1) AND ($3::text IS NULL OR l.entity = $3)
                  AND ($4::bigint IS NULL OR l.received_at >= $4) AND ($5::bigint IS NULL OR l.received_at < $5)
                  AND ($2::text IS NULL OR coalesce(s.state, m.state) = $2)
                ORDER BY l.received_at DESC, l.epoch DESC, l.seq DESC, l.device_id COLLATE "C" LIMIT $6
                """, [PostgresValue(filter.rep), PostgresValue(filter.state), PostgresValue(filter.entity), PostgresValue(filter.from),
                      PostgresValue(filter.until), .integer(Int64(filter.limit))]) {
                OfficeDocument(row: PostgresHubRow(row: $0))
            }
        }
    }

    public func missedSyncs(now: Int64, hours: Int = SyncRule.hours) throws -> [MissedSync] {
        try guarded {
            try connection.query("""
                SELECT r.id, r.name, (SELECT string_agg(id, ',' ORDER BY id COLLATE "C") FROM devices WHERE rep_id = r.id AND NOT revoked),
                       (SELECT max(ended_at) FROM audit WHERE rep_id = r.id AND result = 'ok'),
                       l.started_at, CASE WHEN l.result <> 'ok' THEN coalesce(l.error, l.result) END
                FROM reps r
                LEFT JOIN audit l ON l.id = (SELECT max(a.id) FROM audit a WHERE a.rep_id = r.id OR a.device_id IN (SELECT id FROM devices WHERE rep_id = r.id))
                WHERE EXISTS (SELECT 1 FROM devices WHERE rep_id = r.id AND NOT revoked)
                  AND NOT EXISTS (SELECT 1 FROM audit WHERE rep_id = r.id AND result = 'ok' AND ended_at >= $1)
                ORDER BY r.id COLLATE "C"
                """, [.integer(SyncRule.windowStart(now: now, hours: hours))]) {
                MissedSync(row: PostgresHubRow(row: $0))
            }
        }
    }

    public func visibleReps(for user: OfficeUser) throws -> Set<String>? {
        guard let territory = user.territory else { return nil }
        return Set(try guarded {
            try connection.query("""
                WITH RECURSIVE scope(id) AS (
                    SELECT $1::text COLLATE "C" UNION SELECT t.id FROM territories t JOIN scope s ON t.parent_id = s.id
                )
                SELECT r.id FROM reps r WHERE r.territory_id IN (SELECT id FROM scope)
                """, [.text(territory)]) { $0.text(0) }
        })
    }

    public func decide(_ decision: OfficeDecision, on document: OfficeDocument, by user: OfficeUser, reason: String?, now: Int64) throws {
        let (state, approval) = try decision.outcome(for: document, reason: reason)
        try guarded {
            try connection.transaction {
                // One decision on a document at a time, whichever process the office reached.
                try connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 17))",
                                       [.text(document.device + "\u{0}" + document.entity + "\u{0}" + document.id)])
                // The limits as they are now, read in the decision's transaction.
                try ApprovalRule(limits: try approvalLimits()).check(user, may: document)
                try setDocumentState(device: document.device, entity: document.entity, entityId: document.id, state: state, approval: approval, now: now)
                try connection.execute("""
                    INSERT INTO office_decisions(user_name, device_id, entity, entity_id, decision, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7)
                    """, [.text(user.name), .text(document.device), .text(document.entity), .text(document.id), .text(decision.rawValue),
                          PostgresValue(reason), .integer(now)])
            }
        }
    }
}
