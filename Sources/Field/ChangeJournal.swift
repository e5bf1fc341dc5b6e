public import Store

/// One row of the change journal (`changes`), as it is mirrored to the card and replayed on
/// restore. The payload is the whole document after the change in `DocumentCodec`'s form, so
/// replaying the entries in order rebuilds every document the device acknowledged.
public struct ChangeEntry: Sendable, Equatable {
    public var seq: Int64
    public var changeId: String
    public var at: Int64
    public var entity: String
    public var entityId: String
    public var action: String
    public var payload: [UInt8]

    public init(seq: Int64, changeId: String, at: Int64, entity: String, entityId: String, action: String, payload: [UInt8]) {
        self.seq = seq; self.changeId = changeId; self.at = at; self.entity = entity
        self.entityId = entityId; self.action = action; self.payload = payload
    }

    /// The document the entry carries (of the kind its entity names).
    public func document() throws -> Document {
        do { return try DocumentCodec.decode(payload, entity: entity) } catch {
            throw FieldError.invalidInput(what: "journal entry \(seq) (\(entity) \(entityId))", value: "\(payload.count) bytes",
                                          reason: "\(error); the entry is kept as it is")
        }
    }
}

extension DeviceDatabase {
    /// Journal entries after `seq`, oldest first, at most `limit`.
    public func changes(after seq: Int64, limit: Int = 10_000) throws -> [ChangeEntry] {
        try guarded {
            try database.query(
                "SELECT seq, change_id, at, entity, entity_id, action, payload FROM changes WHERE seq > ? ORDER BY seq LIMIT ?",
                [.integer(seq), .integer(Int64(limit))]) { row in
                ChangeEntry(seq: row.int64(0), changeId: row.text(1), at: row.int64(2), entity: row.text(3),
                            entityId: row.text(4), action: row.text(5), payload: try Self.payload(of: row, entity: row.text(3)))
            }
        }
    }

    /// A row's payload in the codec's form. Rows written before the codec (a device database
    /// from an older satchel) hold JSON text: read through `LegacyJournalPayload`, once, here.
    static func payload(of row: Statement, entity: String) throws -> [UInt8] {
        switch row.value(6) {
        case .blob(let bytes): return bytes
        case .text(let json): return DocumentCodec.encode(try LegacyJournalPayload.document(entity: entity, json: json))
        default: return []
        }
    }

    public func lastChangeSeq() throws -> Int64 {
        try guarded { try database.int64("SELECT COALESCE(max(seq), 0) FROM changes") }
    }

    // MARK: Sync bookkeeping (`sync_state`)

    public func syncState(_ key: String) throws -> String? {
        try guarded { try database.first("SELECT value FROM sync_state WHERE key = ?", [.text(key)]) { $0.text(0) } }
    }

    /// Sets (nil: removes) one entry; call inside `write`, with the change it belongs to.
    public func setSyncState(_ key: String, _ value: String?) throws {
        guard let value else { return try database.execute("DELETE FROM sync_state WHERE key = ?", [.text(key)]) }
        try database.execute("INSERT INTO sync_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                             [.text(key), .text(value)])
    }

    /// How far the hub has acknowledged this device's journal.
    public func uploadedThroughSeq() throws -> Int64 {
        Int64(try syncState("uploaded_through_seq") ?? "0") ?? 0
    }
}

/// Re-applies journal entries to a database being rebuilt from a snapshot (or from nothing):
/// each document is upserted from its payload, the entry itself is appended to `changes` with
/// its original sequence, and the device's id counter moves past every id seen (and its epoch to
/// the highest one seen), so the next document never reuses an id the hub may already hold.
public final class Replay {
    let database: Database
    /// The database's last change sequence, read once and then advanced as entries apply.
    private var lastSeq: Int64?
    public init(_ database: Database) { self.database = database }

    public enum Failure: Error, CustomStringConvertible {
        case unknownEntity(String, seq: Int64)
        case outOfOrder(seq: Int64, last: Int64)
        public var description: String {
            switch self {
            case .unknownEntity(let entity, let seq): return "journal entry \(seq) is about '\(entity)', which this satchel does not know"
            case .outOfOrder(let seq, let last): return "journal entry \(seq) comes after \(last)"
            }
        }
    }

    /// Applies one entry. Must run inside a transaction; entries at or below the database's last
    /// sequence are already there and are skipped (replay is idempotent).
    @discardableResult
    public func apply(_ entry: ChangeEntry) throws -> Bool {
        let last = try lastSeq ?? database.int64("SELECT COALESCE(max(seq), 0) FROM changes")
        lastSeq = last
        guard entry.seq > last else { return false }
        try storeDocument(entity: entry.entity, payload: entry.payload, seq: entry.seq)
        try database.execute(
            "INSERT INTO changes(seq, change_id, at, entity, entity_id, action, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [.integer(entry.seq), .text(entry.changeId), .integer(entry.at), .text(entry.entity), .text(entry.entityId), .text(entry.action), .blob(entry.payload)])
        if let id = ClientID.parse(entry.changeId) {
            // Past every sequence seen, and in at least the epoch the entry was issued in (a
            // restore then moves on from there).
            try database.execute("UPDATE device SET next_seq = max(next_seq, ?), epoch = max(epoch, ?)",
                                 [.integer(id.sequence + 1), .integer(id.epoch)])
        }
        lastSeq = entry.seq
        return true
    }

    /// Writes the document a journal payload describes (upsert, through the path capture uses),
    /// without journaling it: for documents that belong to another device's history (a replaced
    /// handheld's, in duplicate mode).
    public func storeDocument(entity: String, payload: [UInt8], seq: Int64) throws {
        guard DocumentKind(entity: entity) != nil else { throw Failure.unknownEntity(entity, seq: seq) }
        let document: Document
        do { document = try DocumentCodec.decode(payload, entity: entity) } catch {
            throw FieldError.invalidInput(what: "journal entry \(seq) (\(entity))", value: "\(payload.count) bytes", reason: "\(error)")
        }
        try DocumentStore(database: database).write(document)
    }
}

extension ChangeEntry {
    /// The entry as a card journal record carries it (docs/protocol.md §10, card format 2):
    /// change id | at (zigzag varint) | action | the document (`DocumentCodec`). The sequence is
    /// the record's own, and the entity and entity id are the document's kind and id (capture
    /// journals every document under its own kind and id).
    public func record() -> [UInt8] {
        var out = DocumentCodec.Writer()
        out.bytes.reserveCapacity(payload.count + changeId.utf8.count + 16)
        out.text(changeId)
        out.int(at)
        out.text(action)
        out.bytes += payload
        return out.bytes
    }

    /// Reads a record `record()` wrote, at sequence `seq`.
    public init(record bytes: [UInt8], seq: Int64) throws(DocumentCodec.Failure) {
        var input = DocumentCodec.Reader(bytes: bytes)
        let changeId = try input.identifier("change id")
        let at = try input.int("at")
        let action = try input.identifier("action")
        let payload = Array(bytes[input.offset...])
        let document = try DocumentCodec.decode(payload)
        self.init(seq: seq, changeId: changeId, at: at, entity: document.kind.entity, entityId: document.id, action: action, payload: payload)
    }
}
