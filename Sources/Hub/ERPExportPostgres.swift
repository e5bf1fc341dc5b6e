import Foundation
import Postgres

/// The ERP export on the PostgreSQL hub (issue 17): the same file (docs/erp-export.xsd) and the
/// same exactly-once cursor as on SQLite (ERPExport.swift), where the cursor is SQLite's rowid.
///
/// Here the position is `device_changes.position`, an identity column (v12). Identity values are
/// handed out when a row is inserted but become visible only when its transaction commits, and
/// several hub processes commit batches at once: a row with a smaller position can become visible
/// after one with a larger. An export that took the newest visible position as its cursor could
/// then skip that row for good. So the cursor is taken under `LOCK TABLE device_changes IN SHARE
/// MODE`, which waits until every transaction inserting into the table has ended (each holds ROW
/// EXCLUSIVE from its INSERT until its end) and holds new ones off for that one statement: every
/// position up to the cursor is then committed or never will be, and a later insert gets a larger
/// one. The lock is released at once; the documents are read in a second, repeatable-read
/// transaction through a cursor, a page at a time (bounded memory), and the rows up to the cursor
/// never change (device_changes is append-only).
extension PostgresHubStorage {
    /// `waitMilliseconds`: how long the export waits for the hub's batch commits in flight
    /// before giving up (each is a round trip or two; 30 s is a hub in trouble).
    public func exportERP(to path: String, since: Int64? = nil, now: Int64, waitMilliseconds: Int = 30_000) throws -> ERPExportResult {
        try guarded {
            if let since { try acknowledgeERPExport(cursor: since) }
            let newest: Int64
            do {
                newest = try connection.transaction {
                    try connection.execute("SET LOCAL lock_timeout = \(waitMilliseconds)")
                    try connection.execute("LOCK TABLE device_changes IN SHARE MODE")
                    return try connection.int64("SELECT coalesce(max(position), 0) FROM device_changes")
                }
            } catch let error as PostgresError where error.state == "55P03" {
                throw HubError.storage("the export waited \(waitMilliseconds) ms for the hub's batch commits in flight to end and gave up (\(error.message)); nothing exported, the cursor is unchanged; run it again")
            }
            return try connection.transaction(.repeatableRead) {
                let after = try connection.int64("SELECT acknowledged FROM erp_export_state")
                let cursor = max(after, newest)
                let documents = try connection.int64("SELECT count(*) FROM device_changes WHERE position > $1 AND position <= $2", [.integer(after), .integer(cursor)])
                try ERPExportWriter.write(path: path) { out in
                    out.write(ERPExportWriter.header(after: after, cursor: cursor, documents: documents, now: now))
                    try connection.execute("""
                        DECLARE erp_export NO SCROLL CURSOR FOR
                        SELECT c.position, c.change_id, c.device_id, d.rep_id, c.seq, c.at, c.received_at, c.entity, c.entity_id, c.action, c.payload
                        FROM device_changes c LEFT JOIN devices d ON d.id = c.device_id WHERE c.position > \(after) AND c.position <= \(cursor) ORDER BY c.position
                        """)
                    var written: Int64 = 0
                    while true {
                        let page = try connection.query("FETCH 2048 FROM erp_export") { row in
                            var attributes: [(String, String)] = [("position", row.text(0)), ("change-id", row.text(1)), ("device", row.text(2))]
                            if !row.isNull(3) { attributes.append(("rep", row.text(3))) }
                            attributes += [("seq", row.text(4)), ("at", ERPExportWriter.instant(row.int64(5))),
                                           ("received-at", ERPExportWriter.instant(row.int64(6))), ("entity", row.text(7)),
                                           ("id", row.text(8)), ("action", row.text(9))]
                            ERPExportWriter.document(attributes: attributes, payload: row.text(10), into: out)
                        }.count
                        if page == 0 { break }
                        written += Int64(page)
                    }
                    try connection.execute("CLOSE erp_export")
                    // The count and the rows come from one snapshot; a difference is a bug, never a file.
                    guard written == documents else {
                        throw HubError.storage("the export read \(written) documents after counting \(documents) in the same snapshot; nothing exported, the cursor is unchanged")
                    }
                    out.write("</erp-export>\n")
                }
                try connection.execute("""
                    INSERT INTO erp_exports(cursor, after, documents, written_at) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (cursor) DO UPDATE SET after = excluded.after, documents = excluded.documents, written_at = excluded.written_at
                    """, [.integer(cursor), .integer(after), .integer(documents), .integer(now)])
                return ERPExportResult(path: path, after: after, cursor: cursor, documents: Int(documents))
            }
        }
    }

    /// The ERP has read the export with this cursor: the next export starts after it.
    public func acknowledgeERPExport(cursor: Int64) throws {
        try guarded {
            try connection.transaction {
                // The row lock: two acknowledgements at once run one after the other.
                let acknowledged = try connection.int64("SELECT acknowledged FROM erp_export_state FOR UPDATE")
                if cursor == acknowledged { return }
                guard try connection.first("SELECT 1 FROM erp_exports WHERE cursor = $1", [.integer(cursor)], row: { _ in true }) != nil else {
                    throw HubError.notFound("export cursor \(cursor): no export wrote it (the cursor is the one `satchel-hub erp export` printed, and the file's cursor attribute)")
                }
                guard cursor > acknowledged else {
                    throw HubError.invalid("export cursor \(cursor) is older than the acknowledged \(acknowledged): the ERP has read up to \(acknowledged) already; nothing changed")
                }
                try connection.execute("UPDATE erp_export_state SET acknowledged = $1", [.integer(cursor)])
            }
        }
    }

    /// The acknowledged cursor (0 before the first acknowledgement).
    public func acknowledgedERPCursor() throws -> Int64 {
        try guarded { try connection.int64("SELECT acknowledged FROM erp_export_state") }
    }
}
