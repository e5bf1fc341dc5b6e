import Field
import Foundation
import Postgres
import Store

/// What the office's queries and the download planner read of a document, decoded once at
/// ingest with the device's codec (`Document`) and kept in typed columns of
/// `document_summaries`, one row per change in device_changes. The SQL never interprets the
/// payload's JSON text: device_changes keeps that text as it was stored (the ERP export and
/// duplicate mode read it in Swift), and these columns are what the office sees of it.
///
/// Which kinds carry what: the customer (every kind but maintenance), the office's state
/// (orders, complaints, display requests), the approval (orders, quotes), the total (orders,
/// quotes), the currency (orders, quotes, payments and their voids), the discount (quotes) and
/// the device's hold reason (orders, quotes): the fields each kind's JSON has under these names.
struct DocumentSummary: Equatable, Sendable {
    var customer: String?
    var state: String?
    var approval: String?
    var totalMinor: Int64?
    var currency: String?
    var discountBasisPoints: Int64?
    var holdReason: String?
    /// Why the stored payload did not decode as its kind (a row an older hub stored as the device
    /// sent it, before the hub decoded payloads at ingest); nil when it did.
    var unreadable: String?

    init(_ document: Document) {
        customer = document.customerID
        state = document.state
        approval = document.approval?.rawValue
        switch document {
        case .order(let order):
            totalMinor = order.totalMinor; currency = order.currency; holdReason = order.holdReason
        case .quote(let quote):
            totalMinor = quote.totalMinor; currency = quote.currency; discountBasisPoints = quote.discountBasisPoints; holdReason = quote.holdReason
        case .payment(let payment): currency = payment.currency
        case .paymentVoid(let void): currency = void.currency
        case .visit, .displayRequest, .complaint, .maintenance: break
        }
    }

    init(customer: String? = nil, state: String? = nil, approval: String? = nil, totalMinor: Int64? = nil, currency: String? = nil,
         discountBasisPoints: Int64? = nil, holdReason: String? = nil, unreadable: String? = nil) {
        self.customer = customer; self.state = state; self.approval = approval; self.totalMinor = totalMinor; self.currency = currency
        self.discountBasisPoints = discountBasisPoints; self.holdReason = holdReason; self.unreadable = unreadable
    }

    /// The summary of a payload as device_changes holds it (the document's JSON text, `Document.json`),
    /// for rows stored before summaries were kept: read with the codec's JSON form
    /// (`LegacyJournalPayload`). A row that does not decode as its kind (an older hub stored what
    /// the device sent without decoding it) keeps what the office's queries showed of it before,
    /// the same keys read one by one, each of the wrong type or absent left empty, and says why
    /// in `unreadable`: the office goes on seeing the document, and nothing is guessed.
    init(storedPayload json: String, entity: String) {
        do {
            self.init(try LegacyJournalPayload.document(entity: entity, json: json))
        } catch {
            let fields = try? JSONDecoder().decode(LooseFields.self, from: Data(json.utf8))
            self.init(customer: fields?.customer_id, state: fields?.state, approval: fields?.approval, totalMinor: fields?.total_minor,
                      currency: fields?.currency, discountBasisPoints: fields?.discount_basis_points, holdReason: fields?.hold_reason,
                      unreadable: String(describing: error).prefix(500).description)
        }
    }

    /// The keys the office's queries read before summaries, each on its own: a missing or
    /// mistyped one is nil, not a failure of the others.
    private struct LooseFields: Decodable {
        var customer_id, state, approval, currency, hold_reason: String?
        var total_minor, discount_basis_points: Int64?

        enum CodingKeys: String, CodingKey { case customer_id, state, approval, currency, hold_reason, total_minor, discount_basis_points }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            func text(_ key: CodingKeys) -> String? { (try? container.decodeIfPresent(String.self, forKey: key)) ?? nil }
            func integer(_ key: CodingKeys) -> Int64? { (try? container.decodeIfPresent(Int64.self, forKey: key)) ?? nil }
            customer_id = text(.customer_id); state = text(.state); approval = text(.approval); currency = text(.currency)
            hold_reason = text(.hold_reason); total_minor = integer(.total_minor); discount_basis_points = integer(.discount_basis_points)
        }
    }
}

/// The summaries' schema and the one-time backfill a hub file or database from before them needs.
/// The migration only creates the table and marks the backfill pending (SQL cannot decode a
/// document with the codec); the hub, opening the store, decodes every change without a summary
/// in Swift, writes the summaries and clears the mark in one transaction. Crash-safe (a cut leaves
/// the mark, and the next opening starts over), and hub processes opening together backfill once.
enum DocumentSummaries {
    static let backfill = "document_summaries"
    static let backfillWhat = "summaries of the changes stored before the hub kept them (decoded with the device codec)"
    /// Changes decoded and written per round.
    static let page = 1_000

    static let columns = "change_id, customer_id, state, approval, total_minor, currency, discount_basis_points, hold_reason, unreadable"

    /// SQLite's v12 (PostgreSQL's v10). No foreign key to device_changes: a summary is derived from its change and
    /// written in the change's transaction; a test or repair that stages device_changes by hand
    /// (dropping its append-only triggers) must not be stopped by it.
    static let sqlite = """
        CREATE TABLE document_summaries (
            change_id TEXT PRIMARY KEY, customer_id TEXT, state TEXT, approval TEXT, total_minor INTEGER, currency TEXT,
            discount_basis_points INTEGER, hold_reason TEXT, unreadable TEXT
        ) WITHOUT ROWID;
        CREATE TABLE pending_backfills (name TEXT PRIMARY KEY, what TEXT NOT NULL);
        INSERT INTO pending_backfills(name, what) VALUES ('\(backfill)', '\(backfillWhat)');
        """

    /// PostgreSQL's v9, the same.
    static let postgres = """
        CREATE TABLE document_summaries (
            change_id TEXT PRIMARY KEY, customer_id TEXT, state TEXT, approval TEXT, total_minor BIGINT, currency TEXT,
            discount_basis_points BIGINT, hold_reason TEXT, unreadable TEXT
        );
        CREATE TABLE pending_backfills (name TEXT PRIMARY KEY, what TEXT NOT NULL);
        INSERT INTO pending_backfills(name, what) VALUES ('\(backfill)', '\(backfillWhat)');
        """
}

extension SQLiteHubStorage {
    /// Writes the summary of a change just stored (inside the caller's transaction). A summary
    /// already there belongs to a change row no longer held (a hand-staged file): replaced.
    func putSummary(changeId: String, _ summary: DocumentSummary) throws {
        try database.execute("""
            INSERT INTO document_summaries(\(DocumentSummaries.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(change_id) DO UPDATE SET customer_id = excluded.customer_id, state = excluded.state, approval = excluded.approval,
                total_minor = excluded.total_minor, currency = excluded.currency, discount_basis_points = excluded.discount_basis_points,
                hold_reason = excluded.hold_reason, unreadable = excluded.unreadable
            """, [.text(changeId), DatabaseValue(summary.customer), DatabaseValue(summary.state), DatabaseValue(summary.approval),
                  DatabaseValue(summary.totalMinor), DatabaseValue(summary.currency), DatabaseValue(summary.discountBasisPoints),
                  DatabaseValue(summary.holdReason), DatabaseValue(summary.unreadable)])
    }

    /// The backfill v12 (PostgreSQL's v10) left pending, if it still is: a read on every opening, the work once.
    func completePendingBackfills() throws {
        guard try database.first("SELECT 1 FROM pending_backfills WHERE name = ?", [.text(DocumentSummaries.backfill)], row: { _ in true }) != nil else { return }
        try writeTransaction {
            // Another process may have done it while this one waited for the write lock.
            guard try database.first("SELECT 1 FROM pending_backfills WHERE name = ?", [.text(DocumentSummaries.backfill)], row: { _ in true }) != nil else { return }
            var after: Int64 = 0
            while true {
                let rows = try database.query("""
                    SELECT c.rowid, c.change_id, c.entity, c.payload FROM device_changes c
                    WHERE c.rowid > ? AND NOT EXISTS (SELECT 1 FROM document_summaries s WHERE s.change_id = c.change_id)
                    ORDER BY c.rowid LIMIT ?
                    """, [.integer(after), .integer(Int64(DocumentSummaries.page))]) { ($0.int64(0), $0.text(1), $0.text(2), $0.text(3)) }
                for (_, change, entity, payload) in rows { try putSummary(changeId: change, DocumentSummary(storedPayload: payload, entity: entity)) }
                guard let last = rows.last, rows.count == DocumentSummaries.page else { break }
                after = last.0
            }
            try database.execute("DELETE FROM pending_backfills WHERE name = ?", [.text(DocumentSummaries.backfill)])
        }
    }
}

extension PostgresHubStorage {
    /// Writes the summaries of changes just stored, in one statement (inside the caller's transaction).
    static func putSummaries(_ summaries: [(change: String, summary: DocumentSummary)], _ connection: PostgresConnection) throws {
        guard !summaries.isEmpty else { return }
        let all = summaries.map(\.summary)
        try connection.execute("""
            INSERT INTO document_summaries(\(DocumentSummaries.columns))
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::text[])
            ON CONFLICT (change_id) DO UPDATE SET customer_id = excluded.customer_id, state = excluded.state, approval = excluded.approval,
                total_minor = excluded.total_minor, currency = excluded.currency, discount_basis_points = excluded.discount_basis_points,
                hold_reason = excluded.hold_reason, unreadable = excluded.unreadable
            """, [.text(PostgresArray.text(summaries.map(\.change))), .text(PostgresArray.optionalText(all.map(\.customer))),
                  .text(PostgresArray.optionalText(all.map(\.state))), .text(PostgresArray.optionalText(all.map(\.approval))),
                  .text(PostgresArray.optionalIntegers(all.map(\.totalMinor))), .text(PostgresArray.optionalText(all.map(\.currency))),
                  .text(PostgresArray.optionalIntegers(all.map(\.discountBasisPoints))), .text(PostgresArray.optionalText(all.map(\.holdReason))),
                  .text(PostgresArray.optionalText(all.map(\.unreadable)))])
    }

    /// The backfill v9 left pending, inside `migrate`'s transaction and advisory lock: the
    /// migration and its backfill commit together, and processes starting together do it once.
    static func completePendingBackfills(_ connection: PostgresConnection) throws {
        guard try connection.first("SELECT 1 FROM pending_backfills WHERE name = $1", [.text(DocumentSummaries.backfill)], row: { _ in true }) != nil else { return }
        var after = ""
        while true {
            let rows = try connection.query("""
                SELECT c.change_id, c.entity, c.payload FROM device_changes c
                WHERE c.change_id > $1 AND NOT EXISTS (SELECT 1 FROM document_summaries s WHERE s.change_id = c.change_id)
                ORDER BY c.change_id LIMIT $2
                """, [.text(after), .integer(Int64(DocumentSummaries.page))]) { ($0.text(0), $0.text(1), $0.text(2)) }
            try putSummaries(rows.map { ($0.0, DocumentSummary(storedPayload: $0.2, entity: $0.1)) }, connection)
            guard let last = rows.last, rows.count == DocumentSummaries.page else { break }
            after = last.0
        }
        try connection.execute("DELETE FROM pending_backfills WHERE name = $1", [.text(DocumentSummaries.backfill)])
    }
}
