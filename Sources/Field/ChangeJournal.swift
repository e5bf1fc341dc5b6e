public import Store

/// One row of the change journal (`changes`), as it is mirrored to the card and replayed on
/// restore. The payload is the whole document after the change, so replaying the entries in
/// order rebuilds every document the device acknowledged.
public struct ChangeEntry: Codable, Sendable, Equatable {
    public var seq: Int64
    public var changeId: String
    public var at: Int64
    public var entity: String
    public var entityId: String
    public var action: String
    public var payload: String

    public init(seq: Int64, changeId: String, at: Int64, entity: String, entityId: String, action: String, payload: String) {
        self.seq = seq; self.changeId = changeId; self.at = at; self.entity = entity
        self.entityId = entityId; self.action = action; self.payload = payload
    }

    enum CodingKeys: String, CodingKey {
        case seq, at, entity, action, payload
        case changeId = "change_id"
        case entityId = "entity_id"
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
                            entityId: row.text(4), action: row.text(5), payload: row.text(6))
            }
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
            [.integer(entry.seq), .text(entry.changeId), .integer(entry.at), .text(entry.entity), .text(entry.entityId), .text(entry.action), .text(entry.payload)])
        if let id = ClientID.parse(entry.changeId) {
            // Past every sequence seen, and in at least the epoch the entry was issued in (a
            // restore then moves on from there).
            try database.execute("UPDATE device SET next_seq = max(next_seq, ?), epoch = max(epoch, ?)",
                                 [.integer(id.sequence + 1), .integer(id.epoch)])
        }
        lastSeq = entry.seq
        return true
    }

    /// Writes the document a journal payload describes (upsert), without journaling it: for
    /// documents that belong to another device's history (a replaced handheld's, in duplicate mode).
    public func storeDocument(entity: String, payload: String, seq: Int64) throws {
        switch entity {
        case "order": try upsert(order: FieldJSON.decodePayload(OrderDocument.self, from: payload))
        case "visit":
            let visit = try FieldJSON.decodePayload(VisitDocument.self, from: payload)
            try database.execute("INSERT OR REPLACE INTO visits(id, customer_id, at, outcome, note) VALUES (?, ?, ?, ?, ?)",
                                 [.text(visit.id), .text(visit.customerId), .integer(visit.at), .text(visit.outcome.rawValue), .text(visit.note)])
        case "payment":
            let payment = try FieldJSON.decodePayload(PaymentDocument.self, from: payload)
            try database.execute(
                "INSERT OR REPLACE INTO payments(id, customer_id, amount_minor, currency, method, receipt, collected_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(payment.id), .text(payment.customerId), .integer(payment.amountMinor), .text(payment.currency),
                 .text(payment.method.rawValue), .text(payment.receipt), .integer(payment.collectedAt)])
        case "payment_void":
            let void = try FieldJSON.decodePayload(PaymentVoidDocument.self, from: payload)
            try database.execute(
                "INSERT OR REPLACE INTO payment_voids(id, payment_id, customer_id, amount_minor, currency, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(void.id), .text(void.paymentId), .text(void.customerId), .integer(void.amountMinor), .text(void.currency),
                 .text(void.reason), .integer(void.at)])
        case "display_request": try upsert(display: FieldJSON.decodePayload(DisplayRequestDocument.self, from: payload))
        case "complaint":
            let complaint = try FieldJSON.decodePayload(ComplaintDocument.self, from: payload)
            try database.execute(
                "INSERT OR REPLACE INTO complaints(id, customer_id, order_ref, part_number, category, description, state, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(complaint.id), .text(complaint.customerId), DatabaseValue(complaint.orderRef), DatabaseValue(complaint.partNumber),
                 .text(complaint.category.rawValue), .text(complaint.description), .text(complaint.state), .integer(complaint.at)])
        case "quote": try upsert(quote: FieldJSON.decodePayload(QuoteDocument.self, from: payload))
        case "maintenance":
            let record = try FieldJSON.decodePayload(MaintenanceDocument.self, from: payload)
            try database.execute("INSERT OR REPLACE INTO maintenance(id, equipment_id, at, kind, note) VALUES (?, ?, ?, ?, ?)",
                                 [.text(record.id), .text(record.equipmentId), .integer(record.at), .text(record.kind.rawValue), .text(record.note)])
        default:
            throw Failure.unknownEntity(entity, seq: seq)
        }
    }

    private func upsert(order: OrderDocument) throws {
        // A cancelled draft is dropped, as it was when the rep cancelled it.
        if order.state == .cancelled { return try Capture.dropOrder(order.id, in: database) }
        // Lines may only be written while the order is a draft (schema triggers), so the order is
        // rewritten as a draft, its lines replaced, then moved to its journaled state.
        try database.execute("""
            INSERT INTO orders(id, customer_id, state, approval, hold_reason, price_level, currency, total_minor, note, created_at, confirmed_at)
            VALUES (?, ?, 'draft', 'none', NULL, ?, ?, 0, ?, ?, NULL)
            ON CONFLICT(id) DO UPDATE SET state = 'draft'
            """, [.text(order.id), .text(order.customerId), .text(order.priceLevel), .text(order.currency), .text(order.note), .integer(order.createdAt)])
        try database.execute("DELETE FROM order_lines WHERE order_id = ?", [.text(order.id)])
        for line in order.lines {
            try database.execute("""
                INSERT INTO order_lines(order_id, line_no, part_number, unit, quantity, base_quantity, unit_price_minor, amount_minor)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(order.id), .integer(line.lineNo), .text(line.partNumber), .text(line.unit), .integer(line.quantity),
                      .integer(line.baseQuantity), .integer(line.unitPriceMinor), .integer(line.amountMinor)])
        }
        try database.execute(
            "UPDATE orders SET state = ?, approval = ?, hold_reason = ?, total_minor = ?, confirmed_at = ? WHERE id = ?",
            [.text(order.state.rawValue), .text(order.approval.rawValue), DatabaseValue(order.holdReason), .integer(order.totalMinor),
             DatabaseValue(order.confirmedAt), .text(order.id)])
    }

    private func upsert(display request: DisplayRequestDocument) throws {
        guard try database.int64("SELECT count(*) FROM display_requests WHERE id = ?", [.text(request.id)]) == 0 else { return }
        try database.execute(
            "INSERT INTO display_requests(id, customer_id, type_code, width_cm, height_cm, depth_cm, note, state, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [.text(request.id), .text(request.customerId), .text(request.typeCode), .integer(request.widthCm), .integer(request.heightCm),
             DatabaseValue(request.depthCm), .text(request.note), .text(request.state), .integer(request.at)])
        for material in request.materials {
            try database.execute("""
                INSERT INTO stock(location, part_number, quantity, reserved) VALUES (?, ?, 0, ?)
                ON CONFLICT(location, part_number) DO UPDATE SET reserved = reserved + excluded.reserved
                """, [.text(material.location), .text(material.partNumber), .integer(material.quantity)])
            try database.execute(
                "INSERT INTO display_reservations(request_id, part_number, location, quantity, short_quantity) VALUES (?, ?, ?, ?, ?)",
                [.text(request.id), .text(material.partNumber), .text(material.location), .integer(material.quantity), .integer(material.shortQuantity)])
        }
    }

    private func upsert(quote: QuoteDocument) throws {
        guard try database.int64("SELECT count(*) FROM quotes WHERE id = ?", [.text(quote.id)]) == 0 else { return }
        try database.execute(
            "INSERT INTO quotes(id, customer_id, currency, discount_basis_points, total_minor, approval, hold_reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [.text(quote.id), .text(quote.customerId), .text(quote.currency), .integer(quote.discountBasisPoints), .integer(quote.totalMinor),
             .text(quote.approval.rawValue), DatabaseValue(quote.holdReason), .integer(quote.at)])
        for line in quote.lines {
            try database.execute(
                "INSERT INTO quote_lines(quote_id, line_no, part_number, quantity, unit_price_minor, amount_minor) VALUES (?, ?, ?, ?, ?, ?)",
                [.text(quote.id), .integer(line.lineNo), .text(line.partNumber), .integer(line.quantity), .integer(line.unitPriceMinor), .integer(line.amountMinor)])
        }
    }
}
