public import Field
public import Foundation
public import Seal
import Store
public import Sync

/// What the hub keeps, behind one protocol so the embedded SQLite backend (one file, no set-up)
/// and a PostgreSQL backend (production, several hub processes) are interchangeable.
public protocol HubStorage: AnyObject {
    func hubKey() throws -> X25519.KeyPair
    func addRep(id: String, name: String, passwordHash: String) throws
    func setPassword(rep: String, passwordHash: String) throws
    /// `replaces`: the device this one takes over from (lost or broken); that one is revoked,
    /// and this one may upload its recovered changes and receive a copy of its documents.
    func addDevice(id: String, rep: String, publicKey: [UInt8], now: Int64, replaces: String?) throws
    func revokeDevice(id: String) throws
    func device(publicKey: [UInt8]) throws -> HubDevice?
    func rep(id: String) throws -> HubRep?
    func recordFailedLogin(rep: String, lockUntil: Int64?) throws
    func resetFailedLogins(rep: String) throws
    /// Stores a batch and its receipt (with the batch's content hash) in one transaction; a batch
    /// seen before with the same content gets its stored receipt back and changes nothing. A known
    /// batch id, or a known change id, with other content throws `BatchConflict` and stores nothing.
    /// `contentHash`: `Batch.contentHash`, over the batch's canonical form, not the bytes as they
    /// arrived: version 4's column layout may send the same batch as other bytes (a device updated
    /// between an upload and its retry), and that retry must still be a replay.
    func commit(_ batch: Batch, contentHash: [UInt8], device: String, now: Int64) throws -> Receipt
    /// What the hub holds of the device: its highest epoch, and the highest sequence in `epoch`.
    func holding(device: String, epoch: Int64) throws -> HubHolding
    func audit(_ entry: AuditEntry) throws
    func auditLog(limit: Int) throws -> [AuditEntry]
    func changeCount(device: String?) throws -> Int64
    /// Settles what the device reports of its last download, then plans the next one: the
    /// device's scope minus what the hub knows it holds (everything, on a reset).
    func startDownload(device: HubDevice, request: Pull, now: Int64, policy: ScopePolicy) throws -> PlannedDownload
    /// The device applied `ack.applied` rows of the plan: from now on the hub counts them as held.
    func acknowledgeDownload(device: String, ack: DownloadAck) throws
    /// The replaced device's documents as it uploaded them, oldest first, and its office answers
    /// copied onto the replacement (duplicate mode).
    func documentsForDuplicate(of old: String, to new: String, now: Int64) throws -> [SyncChange]
    /// The office's approval limits per role and currency (Approvals.swift); a role and
    /// currency without a row has `ApprovalRule`'s defaults.
    func approvalLimits() throws -> [ApprovalLimit]
    /// Sets one role's limits in one currency, replacing what was set.
    func setApprovalLimit(_ limit: ApprovalLimit, now: Int64) throws
    /// Replaces the master data with the working-set tables of an SQLite extract (a seeded device
    /// database, or an ERP extract in the same shape), in one transaction, after every row was
    /// checked against the handhelds' schema; `assignTo`: every customer of it goes to that rep.
    func importMasterData(from path: String, assignTo rep: String?) throws
    /// The rep's territory, catalogue channel (`.some(nil)`: every product) and role, each only
    /// when given; one the master data does not have is refused by name and nothing changes.
    func setRepScope(rep: String, territory: String?, channel: String??, role: String?) throws
    /// The office's decision on one of a device's documents (accepted, rejected, approved...):
    /// it travels down with the next full sync and wins over the device's value.
    func setDocumentState(device: String, entity: String, entityId: String, state: String, approval: String?, now: Int64) throws
    /// The device's changes that lost to the office's value, oldest first.
    func syncErrors(device: String) throws -> [SyncErrorRecord]
}

extension HubStorage {
    /// A batch made here rather than received (tools, tests, the simulator): hashed as its
    /// canonical encoding, which is what a device sends.
    public func commit(_ batch: Batch, device: String, now: Int64) throws -> Receipt {
        try commit(batch, contentHash: batch.contentHash, device: device, now: now)
    }

    public func importMasterData(from path: String) throws { try importMasterData(from: path, assignTo: nil) }

    public func setRepScope(rep: String, territory: String?, channel: String??) throws {
        try setRepScope(rep: rep, territory: territory, channel: channel, role: nil)
    }

    /// A new handheld that replaces none.
    public func addDevice(id: String, rep: String, publicKey: [UInt8], now: Int64) throws {
        try addDevice(id: id, rep: rep, publicKey: publicKey, now: now, replaces: nil)
    }
}

public struct HubDevice: Equatable, Sendable {
    public var id: String
    public var rep: String
    public var revoked: Bool
    /// The device this one replaced, if any.
    public var replaces: String? = nil
}

public struct HubRep: Equatable, Sendable {
    public var id: String
    public var name: String
    public var passwordHash: String
    public var failedAttempts: Int
    public var lockedUntil: Int64?
}

/// One sync session as the audit log keeps it: managers check from it that reps keep the schedule.
public struct AuditEntry: Codable, Equatable, Sendable {
    public var device: String?
    public var rep: String?
    public var mode: String?
    public var startedAt: Int64
    public var endedAt: Int64
    public var bytesUp: Int
    public var bytesDown: Int
    public var recordsUp: Int
    public var recordsDown: Int
    public var result: String
    public var error: String?

    /// For tools and tests that write the audit log as the sync server does.
    public init(device: String?, rep: String?, mode: String?, startedAt: Int64, endedAt: Int64, bytesUp: Int, bytesDown: Int,
                recordsUp: Int, recordsDown: Int, result: String, error: String?) {
        self.device = device; self.rep = rep; self.mode = mode; self.startedAt = startedAt; self.endedAt = endedAt
        self.bytesUp = bytesUp; self.bytesDown = bytesDown; self.recordsUp = recordsUp; self.recordsDown = recordsDown
        self.result = result; self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case device, rep, mode, result, error
        case startedAt = "started_at"
        case endedAt = "ended_at"
        case bytesUp = "bytes_up"
        case bytesDown = "bytes_down"
        case recordsUp = "records_up"
        case recordsDown = "records_down"
    }
}

/// A batch the hub must refuse because it would not be a replay: its id, or the id of one of its
/// changes, is already held with other content. Nothing of it is stored.
public struct BatchConflict: Error, Equatable, CustomStringConvertible {
    public var batch: String
    public var detail: String
    public var description: String {
        "the hub already holds batch \(batch) or its changes with other content (\(detail)); nothing of it was stored"
    }
}

public enum HubError: Error, Equatable, CustomStringConvertible {
    case notFound(String)
    case invalid(String)
    case storage(String)

    public var description: String {
        switch self {
        case .notFound(let what): return "not found: \(what)"
        case .invalid(let what): return what
        case .storage(let what): return "hub storage: \(what)"
        }
    }
}

/// The embedded default: one SQLite file. Each session opens its own connection; SQLite's WAL
/// and `BEGIN IMMEDIATE` with a busy deadline serialise the writers.
public final class SQLiteHubStorage: HubStorage {
    public let path: String
    let database: Database
    static let applicationID: Int32 = 0x5361_4862  // "SaHb"

    static let migrations = [Migration("hub v1", """
        CREATE TABLE hub_key (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), secret BLOB NOT NULL, public BLOB NOT NULL);
        CREATE TABLE reps (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, password_hash TEXT NOT NULL,
            failed_attempts INTEGER NOT NULL DEFAULT 0, locked_until INTEGER
        );
        CREATE TABLE devices (
            id TEXT PRIMARY KEY, rep_id TEXT NOT NULL REFERENCES reps(id), public_key BLOB NOT NULL UNIQUE,
            revoked INTEGER NOT NULL DEFAULT 0, added_at INTEGER NOT NULL
        );
        CREATE TABLE receipts (
            device_id TEXT NOT NULL, batch_id TEXT NOT NULL, stored INTEGER NOT NULL, duplicates INTEGER NOT NULL,
            through_seq INTEGER NOT NULL, committed_at INTEGER NOT NULL, PRIMARY KEY (device_id, batch_id)
        );
        CREATE TABLE device_changes (
            change_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
            entity TEXT NOT NULL, entity_id TEXT NOT NULL, action TEXT NOT NULL, payload TEXT NOT NULL, received_at INTEGER NOT NULL
        );
        CREATE INDEX device_changes_by_entity ON device_changes(entity, entity_id);
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY, device_id TEXT, rep_id TEXT, mode TEXT, started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL,
            bytes_up INTEGER NOT NULL, bytes_down INTEGER NOT NULL, records_up INTEGER NOT NULL, records_down INTEGER NOT NULL,
            result TEXT NOT NULL, error TEXT
        );
        """), Migration("hub v2 master data, device shadows, downloads", MasterDataSchema.v2),
        Migration("hub v3 history append-only", historyAppendOnly),
        Migration("hub v4 ERP exchange: currencies, open items, export cursor", ERPExchangeSchema.v4),
        Migration("hub v5 receipts keep the batch's content hash; changes keep the epoch of their id", """
            ALTER TABLE receipts ADD COLUMN content_hash BLOB;
            ALTER TABLE device_changes ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;
            CREATE INDEX device_changes_by_epoch ON device_changes(device_id, epoch, seq);
            """),
        Migration("hub v6 office users and their tokens (admin API, office web page)", OfficeUsersSchema.v6),
        Migration("hub v7 device lifecycle: technicians, device states, key escrow, offline policy, lifecycle events", lifecycleSchema),
        // The pull a download continues and how far the device had applied it (committed to the
        // shadow when this plan was made): a device whose link dropped before this plan's
        // DOWNLOAD header arrived still names that pull, and resumes instead of starting over.
        Migration("hub v8 downloads remember the pull they continue", """
            ALTER TABLE downloads ADD COLUMN continues_pull TEXT;
            ALTER TABLE downloads ADD COLUMN continues_applied INTEGER;
            """),
        Migration("hub v9 approval limits per role and currency", ApprovalLimitsSchema.sqlite),
        // The ERP import keeps open items in erp_open_items (v4); devices download them under
        // the wire table's name, so a download stays a SELECT.
        Migration("hub v10 open items travel to the devices (payment reminders)", """
            CREATE VIEW open_items AS SELECT customer_id, ref, issued_on, due_on, amount_minor, currency FROM erp_open_items;
            """),
        // The values of each row's integer columns outside the key, as the device holds them
        // (protocol 5): a download sends a changed count or price as the difference to them.
        // NULL for rows shadowed before (they go as values until sent again).
        Migration("hub v11 shadows keep the integers the device holds", """
            ALTER TABLE device_shadow ADD COLUMN held BLOB;
            ALTER TABLE download_plan ADD COLUMN held BLOB;
            """),
        // What the office's queries read of each document, decoded once with the codec at ingest
        // (DocumentSummaries.swift); the rows stored before are backfilled by the hub in Swift
        // when it opens the file (completePendingBackfills), not by SQL reading their JSON.
        Migration("hub v12 document summaries: the office's fields of each change, typed", DocumentSummaries.sqlite),
    ]

    /// The hub's own history, what it acknowledged and what happened in each session, is written
    /// once and never changed: the audit log (managers check the work schedule from it), the
    /// receipts (a batch stored once, so a retried upload is a duplicate, never a second copy)
    /// and the changes devices sent. Triggers refuse an UPDATE or DELETE from any connection,
    /// this code's or an `sqlite3` shell's, and the statement's transaction is rolled back.
    static let historyTables = ["audit": "the audit log entries", "receipts": "the receipts", "device_changes": "the changes devices sent"]
        .sorted { $0.key < $1.key }
    static let historyAppendOnly = appendOnly(historyTables)

    /// Triggers that refuse every UPDATE and DELETE of each table, naming what it holds.
    static func appendOnly(_ tables: [(key: String, value: String)]) -> String {
        tables.map { table, what in
            """
            CREATE TRIGGER \(table)_append_only_update BEFORE UPDATE ON \(table)
            BEGIN SELECT RAISE(ABORT, '\(what) are append-only (\(table)): rows cannot be edited'); END;
            CREATE TRIGGER \(table)_append_only_delete BEFORE DELETE ON \(table)
            BEGIN SELECT RAISE(ABORT, '\(what) are append-only (\(table)): rows cannot be deleted'); END;
            """
        }
        .joined(separator: "\n")
    }

    /// What the file's permission bits were when this opening found others allowed to read or
    /// write it (they are owner-only now); nil when they already were.
    public let tightenedFrom: mode_t?

    /// How long a write waits for its turn (in this process's queue, then for another process's
    /// lock): a session's whole timeout, so a busy morning queues rather than fails.
    public let writeWaitSeconds: Double
    let writers: SQLiteWriterQueue

    public init(path: String, writeWaitSeconds: Double = 120) throws {
        self.path = path
        self.writeWaitSeconds = writeWaitSeconds
        writers = SQLiteWriterQueue.forFile(path)
        tightenedFrom = try Self.ownerOnly(path)
        do {
            var options = Database.Options()
            options.busyTimeoutMilliseconds = Int32(min(writeWaitSeconds, 600) * 1000)
            database = try Database(path: path, options: options)
            try database.migrate(Self.migrations, applicationID: Self.applicationID)
            guard try database.applicationID == Int64(Self.applicationID) else {
                throw HubError.invalid("\(path) is not a satchel-hub database")
            }
            try completePendingBackfills()
            try createHubKeyIfNone()
        } catch let error as StoreError {
            throw HubError.storage(error.description)
        }
    }

    /// The hub's file holds its private key and the reps' password hashes. It is created 0600
    /// here, before SQLite writes a byte (SQLite gives the -wal and -shm files the main file's
    /// mode), and an existing file, -wal or -shm that group or others may use is made owner-only.
    /// Returns the main file's old mode when it had to be tightened.
    ///
    /// An existing file is checked and changed by its path, never opened here: closing any
    /// descriptor of the file releases every POSIX lock this process holds on it, SQLite's locks
    /// of the connections already open included (each session opens one). Another process (a
    /// `satchel-hub audit`, the admin server) then took itself for the file's last user, and its
    /// close checkpointed and deleted the WAL under the serving hub: rows the hub had committed,
    /// and a reader had seen, were gone after the hub stopped.
    static func ownerOnly(_ path: String) throws -> mode_t? {
        var info = stat()
        if stat(path, &info) != 0 {
            guard errno == ENOENT else {
                throw HubError.storage("cannot read \(path): \(String(cString: strerror(errno))) (errno \(errno))")
            }
            // A new file: no connection has it open yet, so this open and close release no lock.
            let fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 { close(fd) } else if errno != EEXIST {
                throw HubError.storage("cannot open or create \(path): \(String(cString: strerror(errno))) (errno \(errno))")
            }
            guard stat(path, &info) == 0 else {
                throw HubError.storage("cannot read \(path): \(String(cString: strerror(errno))) (errno \(errno))")
            }
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw HubError.invalid("\(path) is not a regular file") }
        var tightened: mode_t?
        if info.st_mode & 0o077 != 0 {
            guard chmod(path, info.st_mode & 0o700) == 0 else {
                throw HubError.storage("\(path) is open to other users (mode \(String(info.st_mode & 0o777, radix: 8))) and cannot be made owner-only: "
                                       + "\(String(cString: strerror(errno))); run satchel-hub as the file's owner, or chmod 600 it")
            }
            tightened = info.st_mode & 0o777
        }
        for suffix in ["-wal", "-shm", "-journal"] {
            var side = stat()
            if stat(path + suffix, &side) == 0, side.st_mode & 0o077 != 0 { _ = chmod(path + suffix, side.st_mode & 0o700) }
        }
        return tightened
    }

    func guarded<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as StoreError { throw HubError.storage(error.description) }
          catch let timeout as SQLiteWriterQueue.Timeout { throw HubError.storage(timeout.description) }
    }

    /// `guarded` around `writeTransaction`: a write of its own.
    func write<T>(_ body: () throws -> T) throws -> T { try guarded { try writeTransaction(body) } }

    /// A write transaction (BEGIN IMMEDIATE), after this process's earlier writers on the file
    /// (SQLiteWriterQueue): every write of the hub goes through here.
    func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        try writers.exclusive(path: path, deadline: Date(timeIntervalSinceNow: writeWaitSeconds)) {
            try database.transaction(.immediate, body)
        }
    }

    public func addRep(id: String, name: String, passwordHash: String) throws {
        try write { try database.execute("INSERT INTO reps(id, name, password_hash) VALUES (?, ?, ?)", [.text(id), .text(name), .text(passwordHash)]) }
    }

    public func commit(_ batch: Batch, contentHash hash: [UInt8], device: String, now: Int64) throws -> Receipt {
        try guarded {
            try writeTransaction {
                if let stored = try database.first(
                    "SELECT stored, duplicates, through_seq, content_hash FROM receipts WHERE device_id = ? AND batch_id = ?", [.text(device), .text(batch.id)],
                    row: { (Receipt(batchId: batch.id, stored: $0.int(0), duplicates: $0.int(1), throughSeq: $0.int64(2)), ($0.isNull(3) ? nil : $0.blob(3))) }) {
                    if let storedHash = stored.1 {
                        guard storedHash == hash else {
                            throw BatchConflict(batch: batch.id, detail: "content hash \(Hex.encode(Array(hash.prefix(8)))) differs from the stored \(Hex.encode(Array(storedHash.prefix(8))))")
                        }
                    } else {
                        // A receipt from before hashes were kept: the changes themselves decide.
                        for change in batch.changes { try checkSameAsHeld(change, payload: try officeJSON(try Self.document(of: change)), batch: batch.id) }
                    }
                    return stored.0
                }
                var stored = 0, duplicates = 0
                for change in batch.changes {
                    guard let id = ClientID.parse(change.changeId), id.device == device else {
                        throw HubError.invalid("change \(change.changeId) does not belong to device \(device)")
                    }
                    let document = try Self.document(of: change)
                    let payload = try officeJSON(document)
                    try database.execute("""
                        INSERT INTO device_changes(change_id, device_id, seq, at, entity, entity_id, action, payload, received_at, epoch)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(change_id) DO NOTHING
                        """, [.text(change.changeId), .text(device), .integer(change.seq), .integer(change.at), .text(change.entity),
                              .text(change.entityId), .text(change.action), .text(payload), .integer(now), .integer(id.epoch)])
                    if database.changes == 1 {
                        stored += 1
                        try putSummary(changeId: change.changeId, DocumentSummary(document))
                        try reconcileDocumentState(change, document: document, device: device, now: now)
                    } else {
                        // Held already: a duplicate only if it is the same change.
                        try checkSameAsHeld(change, payload: payload, batch: batch.id)
                        duplicates += 1
                    }
                }
                let receipt = Receipt(batchId: batch.id, stored: stored, duplicates: duplicates, throughSeq: batch.changes.map(\.seq).max() ?? 0)
                try database.execute(
                    "INSERT INTO receipts(device_id, batch_id, stored, duplicates, through_seq, committed_at, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [.text(device), .text(batch.id), .integer(Int64(stored)), .integer(Int64(duplicates)), .integer(receipt.throughSeq), .integer(now), .blob(hash)])
                return receipt
            }
        }
    }

    /// A change id the hub holds must come back with the same content (an id issued twice would
    /// otherwise pass for a replay, and the second document would be lost).
    private func checkSameAsHeld(_ change: SyncChange, payload: String, batch: String) throws {
        let held = try database.first("SELECT entity, entity_id, action, payload FROM device_changes WHERE change_id = ?", [.text(change.changeId)]) {
            [$0.text(0), $0.text(1), $0.text(2), $0.text(3)]
        }
        guard let held else { throw BatchConflict(batch: batch, detail: "its receipt is stored but change \(change.changeId) is not") }
        guard held == [change.entity, change.entityId, change.action, payload] else {
            throw BatchConflict(batch: batch, detail: "change \(change.changeId) is held with other content")
        }
    }

    public func startDownload(device: HubDevice, request: Pull, now: Int64, policy: ScopePolicy) throws -> PlannedDownload {
        try guarded {
            try writeTransaction {
                let previous = try database.first("SELECT pull_id, rows, committed, continues_pull, continues_applied FROM downloads WHERE device_id = ?",
                                                  [.text(device.id)]) {
                    (pull: $0.text(0), rows: $0.int(1), committed: $0.int64(2) != 0, continues: $0.optionalText(3), continuesApplied: $0.optionalInt64(4))
                }
                let reset = try request.startsOver(
                    after: previous,
                    shadowHoldsRows: { try database.int64("SELECT count(*) FROM device_shadow WHERE device_id = ?", [.text(device.id)]) > 0 },
                    commitPrevious: { try commitPlan(device: device.id, through: $0) })
                if reset { try database.execute("DELETE FROM device_shadow WHERE device_id = ?", [.text(device.id)]) }
                try database.execute("DELETE FROM download_plan WHERE device_id = ?", [.text(device.id)])
                let today = try database.text("SELECT date(? / 1000, 'unixepoch')", [.integer(now)])
                let pull = "\(device.id)-\(Hex.encode(Random.bytes(6)))"
                let plan = try DownloadPlanner(database: database, policy: policy)
                    .plan(device: device, pull: pull, reset: reset, today: today, now: now, budgets: request.budgets)
                let insert = try database.statement("INSERT INTO download_plan(device_id, position, tbl, key, hash, held) VALUES (?, ?, ?, ?, ?, ?)")
                for (position, entry) in plan.entries.enumerated() {
                    let held = entry.phase == .purge ? nil : entry.table.heldValues(of: entry.row)
                    try insert.run([.text(device.id), .integer(Int64(position)), .integer(Int64(entry.table.id)), .blob(entry.key),
                                    entry.phase == .purge ? .null : .integer(Int64(bitPattern: entry.hash)), held.map { .blob($0) } ?? .null])
                }
                return try recordDownload(device: device.id, pull: pull, plan: plan, reset: reset, request: request, now: now)
            }
        }
    }

    public func acknowledgeDownload(device: String, ack: DownloadAck) throws {
        try guarded {
            try writeTransaction {
                guard let rows = try database.first("SELECT rows FROM downloads WHERE device_id = ? AND pull_id = ? AND committed = 0",
                                                    [.text(device), .text(ack.pull)], row: { $0.int(0) }) else { return }
                try commitPlan(device: device, through: min(ack.applied, rows))
                if ack.applied >= rows { try database.execute("UPDATE downloads SET committed = 1 WHERE device_id = ?", [.text(device)]) }
            }
        }
    }

    /// Moves the first `applied` plan rows into the shadow (inside the caller's transaction).
    func commitPlan(device: String, through applied: Int) throws {
        try database.execute("""
            DELETE FROM device_shadow WHERE device_id = ?1 AND (tbl, key) IN
                (SELECT tbl, key FROM download_plan WHERE device_id = ?1 AND position < ?2 AND hash IS NULL)
            """, [.text(device), .integer(Int64(applied))])
        try database.execute("""
            INSERT INTO device_shadow(device_id, tbl, key, hash, held)
            SELECT device_id, tbl, key, hash, held FROM download_plan WHERE device_id = ?1 AND position < ?2 AND hash IS NOT NULL
            ON CONFLICT(device_id, tbl, key) DO UPDATE SET hash = excluded.hash, held = excluded.held
            """, [.text(device), .integer(Int64(applied))])
        try database.execute("DELETE FROM download_plan WHERE device_id = ? AND position < ?", [.text(device), .integer(Int64(applied))])
    }

    /// Replaces the master data with the working-set tables of another SQLite file that has
    /// them (a seeded device database, or an ERP extract in the same shape), in one transaction.
    /// With `assignTo`, every customer of the extract is assigned to that rep. An extract holding
    /// a row a handheld's schema refuses is refused whole, every such row named
    /// (DeviceSchemaCheck), and nothing changes: one bad row would otherwise stop every device
    /// whose scope holds it.
    public func importMasterData(from path: String, assignTo rep: String?) throws {
        try guarded {
            let extract: Database
            do {
                var options = Database.Options()
                options.readOnly = true
                extract = try Database(path: path, options: options)
                try database.execute("ATTACH DATABASE ? AS source", [.text(path)])
                try database.execute("SELECT count(*) FROM source.sqlite_schema")
            } catch let error as StoreError {
                try? database.execute("DETACH DATABASE source")
                throw HubError.invalid("extract \(path) is not an SQLite database (\(error.message)); nothing imported")
            }
            defer { try? database.execute("DETACH DATABASE source") }
            // Every table and column checked before anything is replaced.
            for table in MasterDataSchema.importedTables + [WorkingSetTables.named("reps")!] {
                do {
                    try database.execute("SELECT \(table.columnList) FROM source.\(table.name) LIMIT 0")
                } catch let error as StoreError {
                    throw HubError.invalid("extract \(path): table \(table.name) with columns \(table.columnList) expected (\(error.message)); nothing imported")
                }
            }
            // A rep to assign the customers to is one the hub or the ERP knows (a typo is not).
            if let rep, try self.rep(id: rep) == nil,
               try database.first("SELECT 1 FROM source.reps WHERE id = ?", [.text(rep)], row: { _ in true }) == nil {
                throw HubError.notFound("rep \(Displayed.text(rep)) (to assign the extract's customers to): neither the hub nor the extract has it; nothing imported")
            }
            // Then every row, as the handhelds will hold it: the extract's tables, and the hub's
            // reps with the territory and role the extract gives them.
            let reps = try database.query("""
                SELECT r.id, r.name, CASE WHEN s.id IS NULL THEN r.territory_id ELSE s.territory_id END,
                       CASE WHEN s.id IS NULL THEN r.role ELSE s.role END
                FROM main.reps AS r LEFT JOIN source.reps AS s ON s.id = r.id ORDER BY r.id
                """) { statement in (0..<4).map { statement.value(Int32($0)) } }
            let imported = Set(MasterDataSchema.importedTables.map(\.name))
            let rows = try WorkingSetTables.all.map { table in
                table.name == "reps" ? reps : imported.contains(table.name) ? try table.rows(in: extract) : []
            }
            try MasterDataSchema.refuseRowsHandheldsRefuse(extract: path, rows: rows)
            try writeTransaction {
                for table in MasterDataSchema.importedTables {
                    try database.execute("DELETE FROM main.\(table.name)")
                    try database.execute("INSERT INTO main.\(table.name)(\(table.columnList)) SELECT \(table.columnList) FROM source.\(table.name)")
                }
                if let rep {
                    try database.execute("DELETE FROM rep_customers WHERE rep_id = ?", [.text(rep)])
                    try database.execute("INSERT INTO rep_customers(rep_id, customer_id) SELECT ?, id FROM source.customers", [.text(rep)])
                }
                // Reps the hub knows keep their sign-in; their territory and role come from the source.
                try database.execute("""
                    UPDATE main.reps SET territory_id = s.territory_id, role = s.role FROM source.reps AS s WHERE s.id = main.reps.id
                    """)
            }
        }
    }
}

extension HubSQL {
    /// The download under way for `device`, recorded (what a later request continues or
    /// acknowledges: `Pull.startsOver`), and what goes to the device. The one SQL of both backends.
    func recordDownload(device: String, pull: String, plan: DownloadPlanner.Plan, reset: Bool, request: Pull, now: Int64) throws -> PlannedDownload {
        let continues = !reset && !request.lastPull.isEmpty
        try run("""
            INSERT INTO downloads(device_id, pull_id, rows, committed, created_at, continues_pull, continues_applied) VALUES (?, ?, ?, FALSE, ?, ?, ?)
            ON CONFLICT (device_id) DO UPDATE SET pull_id = excluded.pull_id, rows = excluded.rows, committed = FALSE, created_at = excluded.created_at,
                continues_pull = excluded.continues_pull, continues_applied = excluded.continues_applied
            """, [.text(device), .text(pull), .integer(Int64(plan.entries.count)), .integer(now),
                  continues ? .text(request.lastPull) : .null, continues ? .integer(Int64(request.applied)) : .null])
        return PlannedDownload(header: DownloadHeader(pull: pull, rows: plan.entries.count, reset: reset), frames: plan.frames(),
                               done: DownloadDone(pull: pull, checksums: plan.checksums, written: Set(plan.entries.map(\.table.id))),
                               catalogue: plan.catalogue,
                               heldBack: plan.heldBack.map(\.description))
    }
}

extension Pull {
    /// Whether this request starts the device's working set over (its shadow cleared), given the
    /// download the hub last planned for it; when the request acknowledges that plan, the plan is
    /// committed first (through its last row, or the rows the device applied). The one rule of
    /// SQLite and PostgreSQL.
    func startsOver(after previous: (pull: String, rows: Int, committed: Bool, continues: String?, continuesApplied: Int64?)?,
                    shadowHoldsRows: () throws -> Bool, commitPrevious: (Int) throws -> Void) rethrows -> Bool {
        if reset { return true }
        if lastPull.isEmpty {
            // A device that remembers no download, where the hub believes it holds rows, has lost
            // its working set: start it over rather than trust either side.
            return try shadowHoldsRows()
        }
        if let previous, previous.pull == lastPull {
            if !previous.committed { try commitPrevious(complete ? previous.rows : applied) }
            return false
        }
        if let previous, !previous.committed, previous.continues == lastPull, previous.continuesApplied == Int64(applied) {
            // The plan made for this very request never reached the device (the link dropped
            // before its DOWNLOAD header, which since protocol 5 shares a frame with the first
            // TABLEs): what the device holds is what that request committed, so plan again from
            // the shadow as it stands (hub v8).
            return false
        }
        return true
    }
}
