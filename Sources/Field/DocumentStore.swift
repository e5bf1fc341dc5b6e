import Store

/// The one write path of every document table: capture writes a document through it, and
/// replay (restore, a replaced handheld's history) writes the same document from its journal
/// payload through it, so the device and its restored copy cannot drift apart. Writes are
/// upserts: writing a document again leaves the tables as one write would.
struct DocumentStore {
    let database: Database

    func write(_ document: Document) throws {
        switch document {
        case .order(let order): try write(order: order)
        case .visit(let visit):
            try database.execute("INSERT OR REPLACE INTO visits(id, customer_id, at, outcome, note) VALUES (?, ?, ?, ?, ?)",
                                 [.text(visit.id), .text(visit.customerId), .integer(visit.at), .text(visit.outcome.rawValue), .text(visit.note)])
        case .payment(let payment):
            try database.execute(
                "INSERT OR REPLACE INTO payments(id, customer_id, amount_minor, currency, method, receipt, collected_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(payment.id), .text(payment.customerId), .integer(payment.amountMinor), .text(payment.currency),
                 .text(payment.method.rawValue), .text(payment.receipt), .integer(payment.collectedAt)])
        case .paymentVoid(let void):
            try database.execute(
                "INSERT OR REPLACE INTO payment_voids(id, payment_id, customer_id, amount_minor, currency, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [.text(void.id), .text(void.paymentId), .text(void.customerId), .integer(void.amountMinor), .text(void.currency),
                 .text(void.reason), .integer(void.at)])
        case .displayRequest(let request): try write(display: request)
        case .complaint(let complaint):
            try database.execute(
                "INSERT OR REPLACE INTO complaints(id, customer_id, order_ref, part_number, category, description, state, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(complaint.id), .text(complaint.customerId), DatabaseValue(complaint.orderRef), DatabaseValue(complaint.partNumber),
                 .text(complaint.category.rawValue), .text(complaint.description), .text(complaint.state), .integer(complaint.at)])
        case .quote(let quote): try write(quote: quote)
        case .maintenance(let record):
            try database.execute("INSERT OR REPLACE INTO maintenance(id, equipment_id, at, kind, note) VALUES (?, ?, ?, ?, ?)",
                                 [.text(record.id), .text(record.equipmentId), .integer(record.at), .text(record.kind.rawValue), .text(record.note)])
        }
    }

    /// Deletes a draft and its lines (a cancelled draft leaves nothing on the device).
    func dropOrder(_ orderID: String) throws {
        try database.execute("DELETE FROM order_lines WHERE order_id = ?", [.text(orderID)])
        try database.execute("DELETE FROM orders WHERE id = ?", [.text(orderID)])
    }

    /// Typed binds on cached statements: this is the capture's hot path (docs/benchmarks.md).
    private func write(order: OrderDocument) throws {
        if order.state == .cancelled { return try dropOrder(order.id) }
        // Lines may only be written while the order is a draft (schema triggers), so the order is
        // (re)written as a draft, its lines replaced, then moved to its state.
        let insert = try database.statement(Capture.SQL.insertOrder)
        try insert.bind(order.id, at: 1)
        try insert.bind(order.customerId, at: 2)
        try insert.bind(order.priceLevel, at: 3)
        try insert.bind(order.currency, at: 4)
        try insert.bind(order.note, at: 5)
        try insert.bind(order.createdAt, at: 6)
        try insert.runBound()
        let clear = try database.statement(Capture.SQL.clearLines)
        try clear.bind(order.id, at: 1)
        try clear.runBound()
        for line in order.lines {
            let statement = try database.statement(Capture.SQL.insertLine)
            try statement.bind(order.id, at: 1)
            try statement.bind(line.lineNo, at: 2)
            try statement.bind(line.partNumber, at: 3)
            try statement.bind(line.unit, at: 4)
            try statement.bind(line.quantity, at: 5)
            try statement.bind(line.baseQuantity, at: 6)
            try statement.bind(line.unitPriceMinor, at: 7)
            try statement.bind(line.amountMinor, at: 8)
            try statement.runBound()
        }
        let finish = try database.statement(Capture.SQL.finishOrder)
        try finish.bind(order.state.rawValue, at: 1)
        try finish.bind(order.approval.rawValue, at: 2)
        try finish.bind(order.holdReason, at: 3)
        try finish.bind(order.totalMinor, at: 4)
        try finish.bind(order.confirmedAt, at: 5)
        try finish.bind(order.id, at: 6)
        try finish.runBound()
    }

    /// A display request reserves its materials once: written again, it changes nothing.
    private func write(display request: DisplayRequestDocument) throws {
        guard try database.int64("SELECT count(*) FROM display_requests WHERE id = ?", [.text(request.id)]) == 0 else { return }
        try database.execute(
            "INSERT INTO display_requests(id, customer_id, type_code, width_cm, height_cm, depth_cm, note, state, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [.text(request.id), .text(request.customerId), .text(request.typeCode), .integer(request.widthCm), .integer(request.heightCm),
             DatabaseValue(request.depthCm), .text(request.note), .text(request.state), .integer(request.at)])
        for material in request.materials {
            // Only a row the hub sent is raised: a part with no stock row here takes its open
            // reservations when the hub sends one (schema v9's trigger), so the device never holds
            // a stock row the hub does not have (the download's checksums would disagree).
            try database.execute(
                "INSERT INTO display_reservations(request_id, part_number, location, quantity, short_quantity) VALUES (?, ?, ?, ?, ?)",
                [.text(request.id), .text(material.partNumber), .text(material.location), .integer(material.quantity), .integer(material.shortQuantity)])
            try database.execute("UPDATE stock SET reserved = reserved + ? WHERE location = ? AND part_number = ?",
                                 [.integer(material.quantity), .text(material.location), .text(material.partNumber)])
        }
    }

    private func write(quote: QuoteDocument) throws {
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

/// Journal payloads as satchel wrote them before `DocumentCodec` (JSON text with snake_case
/// keys): read only where such entries can still be met, a card written by an older satchel
/// being restored and `changes` rows of a device database from before the upgrade.
public enum LegacyJournalPayload {
    public static func document(entity: String, json: String) throws -> Document {
        guard let kind = DocumentKind(entity: entity) else {
            throw FieldError.invalidInput(what: "journal entry", value: entity, reason: "is about a document kind this satchel does not know")
        }
        switch kind {
        case .order: return .order(try FieldJSON.decodePayload(OrderDocument.self, from: json))
        case .visit: return .visit(try FieldJSON.decodePayload(VisitDocument.self, from: json))
        case .payment: return .payment(try FieldJSON.decodePayload(PaymentDocument.self, from: json))
        case .paymentVoid: return .paymentVoid(try FieldJSON.decodePayload(PaymentVoidDocument.self, from: json))
        case .displayRequest: return .displayRequest(try FieldJSON.decodePayload(DisplayRequestDocument.self, from: json))
        case .complaint: return .complaint(try FieldJSON.decodePayload(ComplaintDocument.self, from: json))
        case .quote: return .quote(try FieldJSON.decodePayload(QuoteDocument.self, from: json))
        case .maintenance: return .maintenance(try FieldJSON.decodePayload(MaintenanceDocument.self, from: json))
        }
    }
}

extension LegacyJournalPayload {
    /// A whole journal entry as card format 1 stored it (JSON, the payload JSON text inside).
    private struct Entry: Decodable {
        var seq: Int64
        var change_id: String
        var at: Int64
        var entity: String
        var entity_id: String
        var action: String
        var payload: String
    }

    public static func entry(json: String) throws -> ChangeEntry {
        let entry = try FieldJSON.decodePayload(Entry.self, from: json)
        let document = try document(entity: entry.entity, json: entry.payload)
        return ChangeEntry(seq: entry.seq, changeId: entry.change_id, at: entry.at, entity: entry.entity, entityId: entry.entity_id,
                           action: entry.action, payload: DocumentCodec.encode(document))
    }
}
