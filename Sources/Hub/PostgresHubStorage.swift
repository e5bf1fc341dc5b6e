import Field
import Foundation
import Postgres
public import Seal
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
            if try connection.int64("SELECT count(*) FROM hub_key") == 0 {
                let key = X25519.KeyPair.generate()
                // Two processes starting on a new database at once: one key wins, both use it.
                try connection.execute("INSERT INTO hub_key(singleton, secret, public) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
                                       [.bytes(key.secretKey.withUnsafeBytes { Array($0) }), .bytes(key.publicKey)])
            }
        } catch let error as PostgresError {
            throw HubError.storage(error.description)
        }
    }

    // MARK: Schema

    /// The SQLite schema's tables in PostgreSQL's types, one version a migration (their own
    /// numbering: v1 holds SQLite's v1, v5 and the reps' and devices' v2 columns; v4 the master
    /// data of SQLite's v2, v7 SQLite's v6 office users, v8 its v7 device lifecycle);
    /// `satchel_schema` records each one applied. Not here yet: SQLite's v4 (ERP exchange).
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
        }
    }

    public var schemaVersion: Int64 {
        get throws { try guarded { try connection.int64("SELECT max(version) FROM satchel_schema") } }
    }

    func guarded<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as PostgresError { throw HubError.storage(error.description) }
    }

    // MARK: Sign-in

    public func hubKey() throws -> X25519.KeyPair {
        try guarded {
            guard let secret = try connection.first("SELECT secret FROM hub_key", row: { $0.bytes(0) }) else { throw HubError.notFound("hub key") }
            return try X25519.KeyPair(secretKey: SecretBytes(secret))
        }
    }

    public func addRep(id: String, name: String, passwordHash: String) throws {
        try guarded {
            do {
                try connection.execute("INSERT INTO reps(id, name, password_hash) VALUES ($1, $2, $3)", [.text(id), .text(name), .text(passwordHash)])
            } catch let error as PostgresError where error.isUniqueViolation {
                throw HubError.invalid("rep \(id) exists already; nothing was changed (satchel-hub rep password sets a new password)")
            }
        }
    }

    public func setPassword(rep: String, passwordHash: String) throws {
        try guarded {
            let result = try connection.execute("UPDATE reps SET password_hash = $1, failed_attempts = 0, locked_until = NULL WHERE id = $2",
                                                [.text(passwordHash), .text(rep)])
            guard result.affected == 1 else { throw HubError.notFound("rep \(rep)") }
        }
    }

    public func addDevice(id: String, rep: String, publicKey: [UInt8], now: Int64, replaces: String? = nil) throws {
        guard publicKey.count == 32 else { throw HubError.invalid("a device key is 32 bytes (64 hex digits), got \(publicKey.count)") }
        try guarded {
            guard try self.rep(id: rep) != nil else { throw HubError.notFound("rep \(rep) (add it first: satchel-hub rep add)") }
            try connection.transaction {
                try connection.execute("LOCK TABLE devices IN SHARE ROW EXCLUSIVE MODE")
                if let existing = try connection.first("SELECT rep_id, revoked, encode(public_key, 'hex') FROM devices WHERE id = $1", [.text(id)],
                                                       row: { (rep: $0.text(0), revoked: $0.bool(1), key: $0.text(2)) }) {
                    throw HubError.invalid("""
                        device \(id) is registered already (rep \(existing.rep)\(existing.revoked ? ", revoked" : ""), key \(existing.key.prefix(16))…); nothing was changed. \
                        A handheld restored from its card keeps its key (satchel keys shows it); a new handheld gets a new id: \
                        satchel-hub device add --device NEW --rep \(existing.rep) --key KEY --replaces \(id)
                        """)
                }
                if let owner = try connection.first("SELECT id FROM devices WHERE public_key = $1", [.bytes(publicKey)], row: { $0.text(0) }) {
                    throw HubError.invalid("this key is registered already, for device \(owner); nothing was changed. Each handheld has its own key (satchel keys on it)")
                }
                if let replaces {
                    guard replaces != id else { throw HubError.invalid("a device cannot replace itself") }
                    guard try connection.execute("UPDATE devices SET revoked = TRUE WHERE id = $1", [.text(replaces)]).affected == 1 else {
                        throw HubError.notFound("device \(replaces) (the one to replace)")
                    }
                }
                try connection.execute("INSERT INTO devices(id, rep_id, public_key, added_at, replaces) VALUES ($1, $2, $3, $4, $5)",
                                       [.text(id), .text(rep), .bytes(publicKey), .integer(now), PostgresValue(replaces)])
            }
        }
    }

    public func revokeDevice(id: String) throws {
        try guarded {
            guard try connection.execute("UPDATE devices SET revoked = TRUE WHERE id = $1", [.text(id)]).affected == 1 else {
                throw HubError.notFound("device \(id)")
            }
        }
    }

    public func device(publicKey: [UInt8]) throws -> HubDevice? {
        try guarded {
            try connection.first("SELECT id, rep_id, revoked, replaces FROM devices WHERE public_key = $1", [.bytes(publicKey)]) {
                HubDevice(id: $0.text(0), rep: $0.text(1), revoked: $0.bool(2), replaces: $0.optionalText(3))
            }
        }
    }

    public func rep(id: String) throws -> HubRep? {
        try guarded {
            try connection.first("SELECT id, name, password_hash, failed_attempts, locked_until FROM reps WHERE id = $1", [.text(id)]) {
                HubRep(id: $0.text(0), name: $0.text(1), passwordHash: $0.text(2), failedAttempts: $0.int(3), lockedUntil: $0.optionalInt64(4))
            }
        }
    }

    public func recordFailedLogin(rep: String, lockUntil: Int64?) throws {
        try guarded {
            try connection.execute("UPDATE reps SET failed_attempts = failed_attempts + 1, locked_until = COALESCE($1, locked_until) WHERE id = $2",
                                   [PostgresValue(lockUntil), .text(rep)])
        }
    }

    public func resetFailedLogins(rep: String) throws {
        try guarded { try connection.execute("UPDATE reps SET failed_attempts = 0, locked_until = NULL WHERE id = $1", [.text(rep)]) }
    }

    // MARK: Batches and receipts

    public func commit(_ batch: Batch, contentHash hash: [UInt8], device: String, now: Int64) throws -> Receipt {
        var epochs: [Int64] = []
        for change in batch.changes {
            guard let id = ClientID.parse(change.changeId), id.device == device else {
                throw HubError.invalid("change \(change.changeId) does not belong to device \(device)")
            }
            epochs.append(id.epoch)
        }
        return try guarded {
            try connection.transaction {
                // One commit per device at a time, whichever process holds the session.
                try connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 15))", [.text(device)])
                if let stored = try connection.first(
                    "SELECT stored, duplicates, through_seq, content_hash FROM receipts WHERE device_id = $1 AND batch_id = $2", [.text(device), .text(batch.id)],
                    row: { (Receipt(batchId: batch.id, stored: $0.int(0), duplicates: $0.int(1), throughSeq: $0.int64(2)), $0.isNull(3) ? nil : $0.bytes(3)) }) {
                    guard let storedHash = stored.1, storedHash == hash else {
                        throw BatchConflict(batch: batch.id, detail: "content hash \(Hex.encode(Array(hash.prefix(8)))) differs from the stored \(Hex.encode(Array((stored.1 ?? []).prefix(8))))")
                    }
                    return stored.0
                }
                // The whole batch in one statement (one round trip, however many changes).
                let changes = batch.changes
                // Every payload decodes, as its kind, to the document it names, or nothing is stored;
                // the hub keeps the office's JSON rendering of it (as on SQLite).
                let documents = try changes.map(SQLiteHubStorage.document(of:))
                let payloads = try documents.map { try $0.json() }
                let inserted = Set(try connection.query("""
                    INSERT INTO device_changes(change_id, device_id, seq, at, entity, entity_id, action, payload, received_at, epoch)
                    SELECT c, $2::text, s, a, e, i, x, p, $3::bigint, ep
                    FROM unnest($1::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[]) AS t(c, s, a, e, i, x, p, ep)
                    ON CONFLICT (change_id) DO NOTHING RETURNING change_id
                    """, [.text(PostgresArray.text(changes.map(\.changeId))), .text(device), .integer(now),
                          .text(PostgresArray.integers(changes.map(\.seq))), .text(PostgresArray.integers(changes.map(\.at))),
                          .text(PostgresArray.text(changes.map(\.entity))), .text(PostgresArray.text(changes.map(\.entityId))),
                          .text(PostgresArray.text(changes.map(\.action))), .text(PostgresArray.text(payloads)),
                          .text(PostgresArray.integers(epochs))]) { $0.text(0) })
                let held = changes.filter { !inserted.contains($0.changeId) }
                if !held.isEmpty {
                    // Held already: a duplicate only if it is the same change.
                    let rows = try connection.query("SELECT change_id, entity, entity_id, action, payload FROM device_changes WHERE change_id = ANY($1::text[])",
                                                    [.text(PostgresArray.text(held.map(\.changeId)))]) { ($0.text(0), [$0.text(1), $0.text(2), $0.text(3), $0.text(4)]) }
                    let byID = Dictionary(rows, uniquingKeysWith: { first, _ in first })
                    for (change, payload) in zip(changes, payloads) where !inserted.contains(change.changeId)
                        && byID[change.changeId] != [change.entity, change.entityId, change.action, payload] {
                        throw BatchConflict(batch: batch.id, detail: "change \(change.changeId) is held with other content")
                    }
                }
                // Only orders the office has decided on can conflict: one query finds them.
                let orders = zip(changes, documents).filter { inserted.contains($0.0.changeId) && $0.0.entity == "order" }
                if !orders.isEmpty {
                    let decided = Set(try connection.query(
                        "SELECT entity_id FROM document_states WHERE device_id = $1 AND entity = 'order' AND entity_id = ANY($2::text[])",
                        [.text(device), .text(PostgresArray.text(orders.map(\.0.entityId)))]) { $0.text(0) })
                    for (change, document) in orders where decided.contains(change.entityId) {
                        try reconcileDocumentState(change, document: document, device: device, now: now)
                    }
                }
                let receipt = Receipt(batchId: batch.id, stored: inserted.count, duplicates: held.count, throughSeq: changes.map(\.seq).max() ?? 0)
                try connection.execute(
                    "INSERT INTO receipts(device_id, batch_id, stored, duplicates, through_seq, committed_at, content_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    [.text(device), .text(batch.id), .integer(Int64(receipt.stored)), .integer(Int64(receipt.duplicates)), .integer(receipt.throughSeq),
                     .integer(now), .bytes(hash)])
                return receipt
            }
        }
    }

    /// The office's state of a document wins over a device's move it does not allow (as on SQLite:
    /// OfficeDecisions.swift); the device's value goes into sync_errors.
    func reconcileDocumentState(_ change: SyncChange, document: Document, device: String, now: Int64) throws {
        guard case .order(let order) = document else { return }
        let state = order.state.rawValue
        guard let office = try connection.first("SELECT state FROM document_states WHERE device_id = $1 AND entity = $2 AND entity_id = $3",
                                                [.text(device), .text(change.entity), .text(change.entityId)], row: { $0.text(0) }),
              office != state else { return }
        if let from = OrderState(rawValue: office), let to = OrderState(rawValue: state), from.canMove(to: to) {
            try connection.execute("UPDATE document_states SET state = $1, updated_at = $2 WHERE device_id = $3 AND entity = $4 AND entity_id = $5",
                                   [.text(state), .integer(now), .text(device), .text(change.entity), .text(change.entityId)])
            return
        }
        // The office answered before this change reached it: the device is only behind (as on SQLite).
        if let from = OrderState(rawValue: state), let to = OrderState(rawValue: office), SQLiteHubStorage.lifecycle(from, reaches: to) { return }
        try connection.execute("""
            INSERT INTO sync_errors(device_id, id, change_id, entity, entity_id, field, device_value, hub_value, reason, at)
            VALUES ($1, $2, $3, $4, $5, 'state', $6, $7, $8, $9) ON CONFLICT DO NOTHING
            """, [.text(device), .text(change.changeId + "/state"), .text(change.changeId), .text(change.entity), .text(change.entityId),
                  .text(state), .text(office), .text("the office had already set this \(change.entity) to \(office); its value stands"), .integer(now)])
    }

    public func holding(device: String, epoch: Int64) throws -> HubHolding {
        try guarded {
            let highest = try connection.int64("SELECT COALESCE(max(epoch), 1) FROM device_changes WHERE device_id = $1", [.text(device)])
            let sequence = try connection.int64("SELECT COALESCE(max(seq), 0) FROM device_changes WHERE device_id = $1 AND epoch = $2",
                                                [.text(device), .integer(epoch)])
            return HubHolding(highestEpoch: highest, sequenceInEpoch: sequence)
        }
    }

    // MARK: Audit

    public func audit(_ entry: AuditEntry) throws {
        try guarded {
            try connection.execute("""
                INSERT INTO audit(device_id, rep_id, mode, started_at, ended_at, bytes_up, bytes_down, records_up, records_down, result, error)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                """, [PostgresValue(entry.device), PostgresValue(entry.rep), PostgresValue(entry.mode), .integer(entry.startedAt), .integer(entry.endedAt),
                      .integer(Int64(entry.bytesUp)), .integer(Int64(entry.bytesDown)), .integer(Int64(entry.recordsUp)), .integer(Int64(entry.recordsDown)),
                      .text(entry.result), PostgresValue(entry.error)])
        }
    }

    public func auditLog(limit: Int) throws -> [AuditEntry] {
        try guarded {
            try connection.query("""
                SELECT device_id, rep_id, mode, started_at, ended_at, bytes_up, bytes_down, records_up, records_down, result, error
                FROM audit ORDER BY id DESC LIMIT $1
                """, [.integer(Int64(limit))]) {
                AuditEntry(device: $0.optionalText(0), rep: $0.optionalText(1), mode: $0.optionalText(2), startedAt: $0.int64(3), endedAt: $0.int64(4),
                           bytesUp: $0.int(5), bytesDown: $0.int(6), recordsUp: $0.int(7), recordsDown: $0.int(8), result: $0.text(9), error: $0.optionalText(10))
            }
        }
    }

    public func changeCount(device: String?) throws -> Int64 {
        try guarded {
            try connection.int64("SELECT count(*) FROM device_changes WHERE $1::text IS NULL OR device_id = $1", [PostgresValue(device)])
        }
    }
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
