import Field
import Foundation
import Postgres
import Seal
public import Sync

/// The production backend: one PostgreSQL database shared by any number of `satchel-hub serve`
/// processes, none of which keeps state of its own. Each session opens its own connection
/// (the hub's thread per session fits libpq's blocking calls).
///
/// Exactly once across processes: a batch is committed under a transaction-scoped advisory lock
/// on its device, so two processes receiving the same batch (a device that retried against the
/// other one after a cut) run one after the other; the second finds the first's receipt and
/// answers with it. Unique keys (receipts, change ids) back this up should anything write
/// around the lock. A process killed mid-commit leaves nothing: PostgreSQL rolls the open
/// transaction back when the connection drops, and the device, which got no receipt, sends the
/// batch again.
public final class PostgresHubStorage: HubStorage {
    let connection: PostgresConnection
    public var shownURL: String { connection.shownURL }

    public init(url: String) throws {
        do {
            connection = try PostgresConnection(url: url)
            try Self.migrate(connection)
            try createHubKeyIfNone()
        } catch let error as PostgresError {
            throw HubError.storage(error.description)
        }
    }

    // MARK: Schema

    /// The SQLite schema's tables in PostgreSQL's types, one version a migration (their own
    /// numbering: v1 holds SQLite's v1, v5 and the reps' and devices' v2 columns; v4 the master
    /// data of SQLite's v2, v7 SQLite's v6 office users, v8 its v7 device lifecycle);
    /// `satchel_schema` records each one applied. SQLite's v4 (ERP exchange): v11.
    static let migrations: [(name: String, sql: String)] = [
        ("hub v1 sign-in, devices, changes, receipts, audit", """
            CREATE TABLE hub_key (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), secret BYTEA NOT NULL, public BYTEA NOT NULL);
            CREATE TABLE reps (
                id TEXT PRIMARY KEY, name TEXT NOT NULL, password_hash TEXT NOT NULL,
                failed_attempts INTEGER NOT NULL DEFAULT 0, locked_until BIGINT,
                territory_id TEXT, role TEXT NOT NULL DEFAULT 'rep', channel TEXT
            );
            CREATE TABLE devices (
                id TEXT PRIMARY KEY, rep_id TEXT NOT NULL REFERENCES reps(id), public_key BYTEA NOT NULL UNIQUE,
                added_at BIGINT NOT NULL, revoked BOOLEAN NOT NULL DEFAULT FALSE, replaces TEXT REFERENCES devices(id)
            );
            CREATE TABLE device_changes (
                change_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq BIGINT NOT NULL, at BIGINT NOT NULL,
                entity TEXT NOT NULL, entity_id TEXT NOT NULL, action TEXT NOT NULL, payload TEXT NOT NULL,
                received_at BIGINT NOT NULL, epoch BIGINT NOT NULL DEFAULT 1
            );
            CREATE INDEX device_changes_by_epoch ON device_changes(device_id, epoch, seq);
            CREATE TABLE receipts (
                device_id TEXT NOT NULL, batch_id TEXT NOT NULL, stored INTEGER NOT NULL, duplicates INTEGER NOT NULL,
                through_seq BIGINT NOT NULL, committed_at BIGINT NOT NULL, content_hash BYTEA,
                PRIMARY KEY (device_id, batch_id)
            );
            CREATE TABLE audit (
                id BIGSERIAL PRIMARY KEY, device_id TEXT, rep_id TEXT, mode TEXT, started_at BIGINT NOT NULL, ended_at BIGINT NOT NULL,
                bytes_up BIGINT NOT NULL, bytes_down BIGINT NOT NULL, records_up BIGINT NOT NULL, records_down BIGINT NOT NULL,
                result TEXT NOT NULL, error TEXT
            );
            """),
        ("hub v2 office decisions: document states, sync errors", """
            CREATE TABLE document_states (
                device_id TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, state TEXT NOT NULL,
                approval TEXT, updated_at BIGINT NOT NULL, PRIMARY KEY (device_id, entity, entity_id)
            );
            CREATE TABLE sync_errors (
                device_id TEXT NOT NULL, id TEXT NOT NULL, change_id TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL,
                field TEXT NOT NULL, device_value TEXT, hub_value TEXT, reason TEXT NOT NULL, at BIGINT NOT NULL,
                PRIMARY KEY (device_id, id)
            );
            """),
        ("hub v3 history append-only", """
            CREATE FUNCTION satchel_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% are append-only (%): rows cannot be %', TG_ARGV[0], TG_TABLE_NAME,
                    CASE TG_OP WHEN 'UPDATE' THEN 'edited' ELSE 'deleted' END;
            END $$;
            """ + appendOnly(SQLiteHubStorage.historyTables)),
        ("hub v4 master data, device shadows, downloads", masterDataSchema),
        ("hub v5 approval limits per role and currency", ApprovalLimitsSchema.postgres),
        ("hub v6 open items for the devices' payment reminders", openItemsSchema),
        ("hub v7 office users, tokens and decisions", PostgresOfficeSchema.users),
        ("hub v8 device lifecycle: technicians, states, escrow, offline policy", lifecycleSchema),
        // As SQLite's v11: the integers outside the key of each row the device holds (protocol 5);
        // and SQLite's v8: a download remembers the pull it continues.
        ("hub v9 shadows keep the integers the device holds; downloads remember the pull they continue", """
            ALTER TABLE device_shadow ADD COLUMN held BYTEA;
            ALTER TABLE download_plan ADD COLUMN held BYTEA;
            ALTER TABLE downloads ADD COLUMN continues_pull TEXT;
            ALTER TABLE downloads ADD COLUMN continues_applied BIGINT;
            """),
        // SQLite's v12; the rows stored before are backfilled in Swift in the migration's own
        // transaction (migrate, completePendingBackfills).
        ("hub v10 document summaries: the office's fields of each change, typed", DocumentSummaries.postgres),
        // SQLite's v4: the currencies the ERP prices in (its open items go to v6's open_items)
        // and the export's cursor. SQLite's cursor is device_changes' rowid; here an identity
        // column (ERPExportPostgres.swift says why the export takes it under a lock). The rows
        // stored before get theirs in the table's physical order, each one once.
        ("hub v11 ERP exchange: currencies, export positions and cursor", """
            CREATE TABLE erp_currencies (code TEXT COLLATE "C" PRIMARY KEY, minor_units BIGINT NOT NULL);
            ALTER TABLE device_changes ADD COLUMN position BIGINT GENERATED ALWAYS AS IDENTITY;
            CREATE UNIQUE INDEX device_changes_by_position ON device_changes(position);
            CREATE TABLE erp_exports (cursor BIGINT PRIMARY KEY, after BIGINT NOT NULL, documents BIGINT NOT NULL, written_at BIGINT NOT NULL);
            CREATE TABLE erp_export_state (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), acknowledged BIGINT NOT NULL);
            INSERT INTO erp_export_state(singleton, acknowledged) VALUES (1, 0);
            """),
    ]

    /// Triggers (v3's function) that refuse every UPDATE and DELETE of each table.
    static func appendOnly(_ tables: [(key: String, value: String)]) -> String {
        tables.map { table, what in
            "CREATE TRIGGER \(table)_append_only BEFORE UPDATE OR DELETE ON \(table) FOR EACH ROW EXECUTE FUNCTION satchel_append_only('\(what)');"
        }.joined(separator: "\n")
    }

    /// Brings the schema up to date, one migration a transaction with its row in satchel_schema,
    /// under an advisory lock: hub processes starting together migrate once.
    static func migrate(_ connection: PostgresConnection) throws {
        try connection.transaction {
            try connection.execute("SELECT pg_advisory_xact_lock(7410001)")
            try connection.execute("CREATE TABLE IF NOT EXISTS satchel_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            let current = try connection.int64("SELECT COALESCE(max(version), 0) FROM satchel_schema")
            guard current <= Int64(migrations.count) else {
                throw HubError.storage("the hub's PostgreSQL schema is at version \(current), newer than this satchel-hub knows (\(migrations.count)); update satchel-hub")
            }
            for (index, migration) in migrations.enumerated() where Int64(index) >= current {
                try connection.execute(script: migration.sql)
                try connection.execute("INSERT INTO satchel_schema(version, name) VALUES ($1, $2)", [.integer(Int64(index + 1)), .text(migration.name)])
            }
            // What a migration left for Swift to do (decoding documents), before anyone reads it.
            try completePendingBackfills(connection)
        }
    }

    public var schemaVersion: Int64 {
        get throws { try guarded { try connection.int64("SELECT max(version) FROM satchel_schema") } }
    }

    func guarded<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as PostgresError { throw HubError.storage(error.description) }
    }

    // MARK: Sign-in

    public func addRep(id: String, name: String, passwordHash: String) throws {
        try guarded {
            do {
                try connection.execute("INSERT INTO reps(id, name, password_hash) VALUES ($1, $2, $3)", [.text(id), .text(name), .text(passwordHash)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw HubError.invalid("rep \(id) exists already; nothing was changed (satchel-hub rep password sets a new password)")
            }
        }
    }

    // MARK: Batches and receipts

    public func commit(_ batch: Batch, contentHash hash: [UInt8], device: String, now: Int64) throws -> Receipt {
        var epochs: [Int64?] = []
        for change in batch.changes {
            guard let id = ClientID.parse(change.changeId), id.device == device else {
                throw HubError.invalid("change \(change.changeId) does not belong to device \(device)")
            }
            epochs.append(id.epoch)
        }
        let changes = batch.changes
        return try guarded {
            // Three round trips, as a plain INSERT in a transaction of its own takes (BEGIN, the
            // INSERT, COMMIT): BEGIN, the device's lock (one commit per device at a time,
            // whichever process holds the session), the receipt if the batch is known and the
            // orders of the batch the office has decided on (only those can conflict) go in one
            // pipeline; the changes, their summaries and the receipt in one statement; COMMIT.
            // Each statement is prepared once per connection. Each runs with its own snapshot,
            // taken after the lock is held, so the receipt a process that held it before has
            // committed is seen.
            try connection.transaction(pipelining: [
                PostgresStatement("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 15))", [.text(device)], prepareAs: "satchel_commit_lock"),
                PostgresStatement("SELECT stored, duplicates, through_seq, content_hash FROM receipts WHERE device_id = $1::text AND batch_id = $2::text",
                                  [.text(device), .text(batch.id)], prepareAs: "satchel_commit_receipt"),
                PostgresStatement("SELECT entity_id FROM document_states WHERE device_id = $1::text AND entity = 'order' AND entity_id = ANY($2::text[])",
                                  [.text(device), .textArray(changes.filter { $0.entity == "order" }.map(\.entityId))], prepareAs: "satchel_commit_decided"),
            ], meanwhile: {
                // While the server takes the lock and looks: every payload decodes, as its kind,
                // to the document it names, or nothing is stored; the hub keeps the office's JSON
                // rendering of it (as on SQLite) and its summary (DocumentSummaries.swift).
                let documents = try changes.map(SQLiteHubStorage.document(of:))
                return (documents: documents, payloads: try documents.map { try $0.json() }, summaries: documents.map(DocumentSummary.init))
            }) { results, prepared in
                // A known batch answers with its receipt before anything of its content counts.
                if let stored = results[1].rows(row: {
                    (Receipt(batchId: batch.id, stored: $0.int(0), duplicates: $0.int(1), throughSeq: $0.int64(2)), $0.isNull(3) ? nil : $0.bytes(3))
                }).first {
                    guard let storedHash = stored.1, storedHash == hash else {
                        throw BatchConflict(batch: batch.id, detail: "content hash \(Hex.encode(Array(hash.prefix(8)))) differs from the stored \(Hex.encode(Array((stored.1 ?? []).prefix(8))))")
                    }
                    return stored.0
                }
                let decided = Set(results[2].rows { $0.text(0) })
                let (documents, payloads, summaries) = try prepared.get()
                // The changes, their summaries and the batch's receipt in one statement. A change
                // id twice in a batch: its first. Columns travel as binary arrays, one parameter each.
                let throughSeq = changes.map(\.seq).max() ?? 0
                let inserted = Set(try connection.pipeline([PostgresStatement(Self.insertBatch, [
                    .textArray(changes.map(\.changeId)), .text(device), .integer(now),
                    .integerArray(changes.map(\.seq)), .integerArray(changes.map(\.at)),
                    .textArray(changes.map(\.entity)), .textArray(changes.map(\.entityId)),
                    .textArray(changes.map(\.action)), .textArray(payloads), .integerArray(epochs),
                    .textArray(summaries.map(\.customer)), .textArray(summaries.map(\.state)), .textArray(summaries.map(\.approval)),
                    .integerArray(summaries.map(\.totalMinor)), .textArray(summaries.map(\.currency)),
                    .integerArray(summaries.map(\.discountBasisPoints)), .textArray(summaries.map(\.holdReason)),
                    .text(batch.id), .integer(Int64(changes.count)), .integer(throughSeq), .bytes(hash),
                ], prepareAs: "satchel_commit_insert")])[0].rows { $0.text(0) })
                let held = changes.filter { !inserted.contains($0.changeId) }
                if !held.isEmpty {
                    // Held already: a duplicate only if it is the same change.
                    let rows = try connection.query("SELECT change_id, entity, entity_id, action, payload FROM device_changes WHERE change_id = ANY($1::text[])",
                                                    [.textArray(held.map(\.changeId))]) { ($0.text(0), [$0.text(1), $0.text(2), $0.text(3), $0.text(4)]) }
                    let byID = Dictionary(rows, uniquingKeysWith: { first, _ in first })
                    for (change, payload) in zip(changes, payloads) where !inserted.contains(change.changeId)
                        && byID[change.changeId] != [change.entity, change.entityId, change.action, payload] {
                        throw BatchConflict(batch: batch.id, detail: "change \(change.changeId) is held with other content")
                    }
                }
                if !decided.isEmpty {
                    for (change, document) in zip(changes, documents)
                        where change.entity == "order" && inserted.contains(change.changeId) && decided.contains(change.entityId) {
                        try reconcileDocumentState(change, document: document, device: device, now: now)
                    }
                }
                return Receipt(batchId: batch.id, stored: inserted.count, duplicates: held.count, throughSeq: throughSeq)
            }
        }
    }

    /// A batch's changes, their summaries and its receipt, in one statement; answers the change
    /// ids inserted (those not held already). The receipt counts what the statement inserted.
    static let insertBatch = """
        WITH inserted AS (
            INSERT INTO device_changes(change_id, device_id, seq, at, entity, entity_id, action, payload, received_at, epoch)
            SELECT c, $2::text, s, a, e, i, x, p, $3::bigint, ep
            FROM unnest($1::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[]) AS t(c, s, a, e, i, x, p, ep)
            ON CONFLICT (change_id) DO NOTHING RETURNING change_id
        ), summarised AS (
            INSERT INTO document_summaries(change_id, customer_id, state, approval, total_minor, currency, discount_basis_points, hold_reason)
            SELECT DISTINCT ON (c) c, cu, st, ap, tm, cy, db, hr
            FROM unnest($1::text[], $11::text[], $12::text[], $13::text[], $14::bigint[], $15::text[], $16::bigint[], $17::text[])
                 WITH ORDINALITY AS t(c, cu, st, ap, tm, cy, db, hr, n)
            WHERE c IN (SELECT change_id FROM inserted)
            ORDER BY c, n
            ON CONFLICT (change_id) DO UPDATE SET customer_id = excluded.customer_id, state = excluded.state, approval = excluded.approval,
                total_minor = excluded.total_minor, currency = excluded.currency, discount_basis_points = excluded.discount_basis_points,
                hold_reason = excluded.hold_reason, unreadable = NULL
        ), receipt AS (
            INSERT INTO receipts(device_id, batch_id, stored, duplicates, through_seq, committed_at, content_hash)
            SELECT $2::text, $18::text, count(*), $19::bigint - count(*), $20::bigint, $3::bigint, $21::bytea FROM inserted
        )
        SELECT change_id FROM inserted
        """

}

/// PostgreSQL array literals for `unnest($n::text[])`: one parameter for a whole column.
enum PostgresArray {
    static func text(_ values: [String]) -> String {
        var literal: [UInt8] = [UInt8(ascii: "{")]
        literal.reserveCapacity(values.reduce(2) { $0 + $1.utf8.count + 3 })
        for (index, value) in values.enumerated() {
            if index > 0 { literal.append(UInt8(ascii: ",")) }
            literal.append(UInt8(ascii: "\""))
            append(value, to: &literal)
            literal.append(UInt8(ascii: "\""))
        }
        literal.append(UInt8(ascii: "}"))
        return String(decoding: literal, as: UTF8.self)
    }

    /// One element's bytes, `"` and `\` escaped. Most values have neither and go in as one copy
    /// (memchr finds the others): a loop over every byte was a sixth of the hub's ingest time
    /// (perf, debug build, `bench hub-ingest`).
    private static func append(_ value: String, to literal: inout [UInt8]) {
        var value = value
        value.withUTF8 { bytes in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
            if memchr(base, Int32(UInt8(ascii: "\"")), bytes.count) == nil && memchr(base, Int32(UInt8(ascii: "\\")), bytes.count) == nil {
                literal.append(contentsOf: bytes)
                return
            }
            for byte in bytes {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { literal.append(UInt8(ascii: "\\")) }
                literal.append(byte)
            }
        }
    }

    static func integers(_ values: [Int64]) -> String {
        "{" + values.map(String.init).joined(separator: ",") + "}"
    }

    /// NULL for nil.
    static func optionalIntegers(_ values: [Int64?]) -> String {
        "{" + values.map { $0.map(String.init) ?? "NULL" }.joined(separator: ",") + "}"
    }

    /// NULL for nil (a quoted "NULL" is the text).
    static func optionalText(_ values: [String?]) -> String {
        "{" + values.map { value in value.map { text([$0]).dropFirst().dropLast() }.map(String.init) ?? "NULL" }.joined(separator: ",") + "}"
    }
}
