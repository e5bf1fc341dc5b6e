/// The documents the device captures, declared once (as Sync's `WorkingSetTables` declares the
/// working-set tables): each kind's journal entity name, its code in the binary codec and the
/// actions it is journaled under. Capture, replay, the card journal, the wire and the hub all
/// go through `Document` and its codec; JSON is only for `--json` output at the CLI edge (and
/// `LegacyJournalPayload`, which reads cards written before this codec).
public enum DocumentKind: UInt8, CaseIterable, Sendable {
    // Codes are part of the card and wire formats: append, never renumber.
    case order = 1, visit, payment, paymentVoid, displayRequest, complaint, quote, maintenance

    /// The `entity` of its change-journal entries.
    public var entity: String {
        switch self {
        case .order: return "order"
        case .visit: return "visit"
        case .payment: return "payment"
        case .paymentVoid: return "payment_void"
        case .displayRequest: return "display_request"
        case .complaint: return "complaint"
        case .quote: return "quote"
        case .maintenance: return "maintenance"
        }
    }

    /// The actions a change of this kind is journaled under.
    public var actions: [String] {
        switch self {
        case .order: return ["created", "confirmed", "lines_added", "line_removed", "cancelled"] + OrderState.allCases.map(\.rawValue).filter { !["draft", "confirmed", "cancelled"].contains($0) }
        case .visit, .maintenance: return ["recorded"]
        case .payment: return ["collected"]
        case .paymentVoid: return ["voided"]
        case .displayRequest: return ["requested"]
        case .complaint: return ["filed"]
        case .quote: return ["created"]
        }
    }

    public init?(entity: String) {
        guard let kind = Self.allCases.first(where: { $0.entity == entity }) else { return nil }
        self = kind
    }
}

/// One document of any kind, as the journal carries it.
public enum Document: Sendable, Equatable {
    case order(OrderDocument)
    case visit(VisitDocument)
    case payment(PaymentDocument)
    case paymentVoid(PaymentVoidDocument)
    case displayRequest(DisplayRequestDocument)
    case complaint(ComplaintDocument)
    case quote(QuoteDocument)
    case maintenance(MaintenanceDocument)

    public var kind: DocumentKind {
        switch self {
        case .order: return .order
        case .visit: return .visit
        case .payment: return .payment
        case .paymentVoid: return .paymentVoid
        case .displayRequest: return .displayRequest
        case .complaint: return .complaint
        case .quote: return .quote
        case .maintenance: return .maintenance
        }
    }

    public var id: String {
        switch self {
        case .order(let document): return document.id
        case .visit(let document): return document.id
        case .payment(let document): return document.id
        case .paymentVoid(let document): return document.id
        case .displayRequest(let document): return document.id
        case .complaint(let document): return document.id
        case .quote(let document): return document.id
        case .maintenance(let document): return document.id
        }
    }

    /// The customer the document is about (maintenance is about equipment: nil).
    public var customerID: String? {
        switch self {
        case .order(let document): return document.customerId
        case .visit(let document): return document.customerId
        case .payment(let document): return document.customerId
        case .paymentVoid(let document): return document.customerId
        case .displayRequest(let document): return document.customerId
        case .complaint(let document): return document.customerId
        case .quote(let document): return document.customerId
        case .maintenance: return nil
        }
    }

    /// The state the office tracks (orders, complaints, display requests), as the journal names it.
    public var state: String? {
        switch self {
        case .order(let document): return document.state.rawValue
        case .complaint(let document): return document.state
        case .displayRequest(let document): return document.state
        default: return nil
        }
    }

    /// The approval of an order or a quote.
    public var approval: Approval? {
        switch self {
        case .order(let document): return document.approval
        case .quote(let document): return document.approval
        default: return nil
        }
    }
}

/// The binary form of a `Document` (docs/protocol.md §6): version byte (1) | kind code byte |
/// the kind's fields in declaration order. Integers are zigzag varints, text is a varint byte
/// length and UTF-8, an optional is a 0/1 byte and the value, a list a varint count and the
/// items, an enumeration its position in the declared cases. Every length and count is checked
/// against the format's bound before anything is allocated or converted, so hostile or erased
/// input (0xFF bytes, lengths of 2^31 and more) is a `Failure`, never a trap, on 32-bit too.
public enum DocumentCodec {
    public static let version: UInt8 = 1

    /// What the format allows. Capture holds documents far below these (notes 2,000 bytes,
    /// complaint texts 4,000); the bounds are what a reader refuses beyond.
    public enum Limits {
        public static let documentBytes = 1 << 20
        public static let identifierBytes = 256
        public static let textBytes = 16 * 1024
        public static let lines = 10_000
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unsupportedVersion(UInt8)
        case unknownKind(UInt8)
        case kindMismatch(entity: String, found: String)
        case truncated(field: String, offset: Int)
        case tooLarge(field: String, value: UInt64, limit: Int)
        case invalidText(field: String, offset: Int)
        case unknownCode(field: String, value: UInt64)
        case trailingBytes(Int)

        public var description: String {
            switch self {
            case .unsupportedVersion(let version):
                return "document codec version \(version) is newer than this satchel reads (\(DocumentCodec.version)); update satchel"
            case .unknownKind(let code): return "unknown document kind \(code)"
            case .kindMismatch(let entity, let found): return "the entry is about '\(entity)' but carries a \(found) document"
            case .truncated(let field, let offset): return "document ends inside \(field) (at byte \(offset))"
            case .tooLarge(let field, let value, let limit): return "\(field) is \(value), more than the \(limit) the format allows"
            case .invalidText(let field, let offset): return "\(field) is not valid UTF-8 (at byte \(offset))"
            case .unknownCode(let field, let value): return "\(field) has unknown code \(value)"
            case .trailingBytes(let count): return "\(count) bytes after the end of the document"
            }
        }
    }

    public static func encode(_ document: Document) -> [UInt8] {
        var out = Writer()
        out.bytes.reserveCapacity(256)
        out.bytes.append(version)
        out.bytes.append(document.kind.rawValue)
        switch document {
        case .order(let order):
            out.text(order.id); out.text(order.customerId); out.code(order.state); out.code(order.approval)
            out.optionalText(order.holdReason); out.text(order.priceLevel); out.text(order.currency); out.int(order.totalMinor)
            out.text(order.note); out.int(order.createdAt); out.optionalInt(order.confirmedAt)
            out.count(order.lines.count)
            for line in order.lines {
                out.int(line.lineNo); out.text(line.partNumber); out.text(line.unit); out.int(line.quantity)
                out.int(line.baseQuantity); out.int(line.unitPriceMinor); out.int(line.amountMinor)
            }
        case .visit(let visit):
            out.text(visit.id); out.text(visit.customerId); out.int(visit.at); out.code(visit.outcome); out.text(visit.note)
        case .payment(let payment):
            out.text(payment.id); out.text(payment.customerId); out.int(payment.amountMinor); out.text(payment.currency)
            out.code(payment.method); out.text(payment.receipt); out.int(payment.collectedAt)
        case .paymentVoid(let void):
            out.text(void.id); out.text(void.paymentId); out.text(void.customerId); out.int(void.amountMinor); out.text(void.currency)
            out.text(void.receipt); out.text(void.reason); out.int(void.at)
        case .displayRequest(let request):
            out.text(request.id); out.text(request.customerId); out.text(request.typeCode); out.int(request.widthCm)
            out.int(request.heightCm); out.optionalInt(request.depthCm); out.text(request.note); out.text(request.state); out.int(request.at)
            out.count(request.materials.count)
            for material in request.materials {
                out.text(material.partNumber); out.text(material.location); out.int(material.quantity); out.int(material.shortQuantity)
            }
        case .complaint(let complaint):
            out.text(complaint.id); out.text(complaint.customerId); out.optionalText(complaint.orderRef); out.optionalText(complaint.partNumber)
            out.code(complaint.category); out.text(complaint.description); out.text(complaint.state); out.int(complaint.at)
        case .quote(let quote):
            out.text(quote.id); out.text(quote.customerId); out.text(quote.currency); out.int(quote.discountBasisPoints)
            out.int(quote.totalMinor); out.code(quote.approval); out.optionalText(quote.holdReason); out.int(quote.at)
            out.count(quote.lines.count)
            for line in quote.lines {
                out.int(line.lineNo); out.text(line.partNumber); out.int(line.quantity); out.int(line.unitPriceMinor); out.int(line.amountMinor)
            }
        case .maintenance(let record):
            out.text(record.id); out.text(record.equipmentId); out.int(record.at); out.code(record.kind); out.text(record.note)
        }
        return out.bytes
    }

    /// Decodes one document; with `entity`, refuses a document of another kind (a journal entry
    /// names its entity apart from the payload, and the two must agree).
    public static func decode(_ bytes: [UInt8], entity: String? = nil) throws(Failure) -> Document {
        let (start, kind) = try header(bytes)
        var input = start
        if let entity, entity != kind.entity { throw .kindMismatch(entity: entity, found: kind.entity) }
        let document: Document
        switch kind {
        case .order:
            var order = OrderDocument(
                id: try input.identifier("order id"), customerId: try input.identifier("customer id"), state: try input.code("order state"),
                approval: try input.code("approval"), holdReason: try input.optionalText("hold reason"), priceLevel: try input.identifier("price level"),
                currency: try input.identifier("currency"), totalMinor: try input.int("total"), note: try input.text("note"),
                createdAt: try input.int("created at"), confirmedAt: try input.optionalInt("confirmed at"), lines: [])
            let count = try input.count("order lines", limit: Limits.lines, minimumItemBytes: 7)
            order.lines.reserveCapacity(count)
            for _ in 0..<count {
                order.lines.append(OrderLine(
                    lineNo: try input.int("line number"), partNumber: try input.identifier("part number"), unit: try input.identifier("unit"),
                    quantity: try input.int("quantity"), baseQuantity: try input.int("base quantity"),
                    unitPriceMinor: try input.int("unit price"), amountMinor: try input.int("line amount")))
            }
            document = .order(order)
        case .visit:
            document = .visit(VisitDocument(id: try input.identifier("visit id"), customerId: try input.identifier("customer id"),
                                            at: try input.int("at"), outcome: try input.code("visit outcome"), note: try input.text("note")))
        case .payment:
            document = .payment(PaymentDocument(
                id: try input.identifier("payment id"), customerId: try input.identifier("customer id"), amountMinor: try input.int("amount"),
                currency: try input.identifier("currency"), method: try input.code("payment method"), receipt: try input.identifier("receipt"),
                collectedAt: try input.int("collected at")))
        case .paymentVoid:
            document = .paymentVoid(PaymentVoidDocument(
                id: try input.identifier("void id"), paymentId: try input.identifier("payment id"), customerId: try input.identifier("customer id"),
                amountMinor: try input.int("amount"), currency: try input.identifier("currency"), receipt: try input.identifier("receipt"),
                reason: try input.text("void reason"), at: try input.int("at")))
        case .displayRequest:
            var request = DisplayRequestDocument(
                id: try input.identifier("display request id"), customerId: try input.identifier("customer id"),
                typeCode: try input.identifier("display type"), widthCm: try input.int("width"), heightCm: try input.int("height"),
                depthCm: try input.optionalInt("depth"), note: try input.text("note"), state: try input.identifier("state"),
                at: try input.int("at"), materials: [])
            let count = try input.count("materials", limit: Limits.lines, minimumItemBytes: 4)
            for _ in 0..<count {
                request.materials.append(MaterialReservation(
                    partNumber: try input.identifier("part number"), location: try input.identifier("location"),
                    quantity: try input.int("quantity"), shortQuantity: try input.int("short quantity")))
            }
            document = .displayRequest(request)
        case .complaint:
            document = .complaint(ComplaintDocument(
                id: try input.identifier("complaint id"), customerId: try input.identifier("customer id"),
                orderRef: try input.optionalIdentifier("order reference"), partNumber: try input.optionalIdentifier("part number"),
                category: try input.code("complaint category"), description: try input.text("description"), state: try input.identifier("state"),
                at: try input.int("at")))
        case .quote:
            var quote = QuoteDocument(
                id: try input.identifier("quote id"), customerId: try input.identifier("customer id"), currency: try input.identifier("currency"),
                discountBasisPoints: try input.int("discount"), totalMinor: try input.int("total"), approval: try input.code("approval"),
                holdReason: try input.optionalText("hold reason"), at: try input.int("at"), lines: [])
            let count = try input.count("quote lines", limit: Limits.lines, minimumItemBytes: 5)
            for _ in 0..<count {
                quote.lines.append(QuoteLine(
                    lineNo: try input.int("line number"), partNumber: try input.identifier("part number"), quantity: try input.int("quantity"),
                    unitPriceMinor: try input.int("unit price"), amountMinor: try input.int("line amount")))
            }
            document = .quote(quote)
        case .maintenance:
            document = .maintenance(MaintenanceDocument(
                id: try input.identifier("maintenance id"), equipmentId: try input.identifier("equipment id"), at: try input.int("at"),
                kind: try input.code("maintenance kind"), note: try input.text("note")))
        }
        guard input.offset == bytes.count else { throw .trailingBytes(bytes.count - input.offset) }
        return document
    }

    /// A reader past the version and kind bytes, once the size, version and kind are checked.
    static func header(_ bytes: [UInt8]) throws(Failure) -> (Reader, DocumentKind) {
        guard bytes.count <= Limits.documentBytes else { throw .tooLarge(field: "document bytes", value: UInt64(bytes.count), limit: Limits.documentBytes) }
        var input = Reader(bytes: bytes)
        let version = try input.byte("codec version")
        guard version == Self.version else { throw .unsupportedVersion(version) }
        let code = try input.byte("document kind")
        guard let kind = DocumentKind(rawValue: code) else { throw .unknownKind(code) }
        return (input, kind)
    }

    // MARK: Writing and reading the parts

    struct Writer {
        var bytes: [UInt8] = []

        mutating func varint(_ value: UInt64) {
            var rest = value
            while rest >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
                rest >>= 7
            }
            bytes.append(UInt8(truncatingIfNeeded: rest))
        }

        mutating func int(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
        mutating func count(_ value: Int) { varint(UInt64(value)) }

        mutating func text(_ value: String) {
            var value = value
            value.withUTF8 { utf8 in
                varint(UInt64(utf8.count))
                bytes.append(contentsOf: utf8)
            }
        }

        mutating func optionalText(_ value: String?) {
            guard let value else { return bytes.append(0) }
            bytes.append(1)
            text(value)
        }

        mutating func optionalInt(_ value: Int64?) {
            guard let value else { return bytes.append(0) }
            bytes.append(1)
            int(value)
        }

        mutating func code<T: CaseIterable & Equatable>(_ value: T) {
            let position = T.allCases.firstIndex(of: value).map { T.allCases.distance(from: T.allCases.startIndex, to: $0) } ?? 0
            count(position)
        }
    }

    struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func byte(_ field: String) throws(Failure) -> UInt8 {
            guard offset < bytes.count else { throw .truncated(field: field, offset: offset) }
            defer { offset += 1 }
            return bytes[offset]
        }

        /// At most 10 bytes, and the tenth may carry only the top bit: anything longer or larger
        /// (0xFF filled input) is refused, not wrapped.
        mutating func varint(_ field: String) throws(Failure) -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let part = try byte(field)
                if shift == 63 && part > 1 { throw .tooLarge(field: field, value: UInt64.max, limit: Int.max) }
                value |= UInt64(part & 0x7F) << shift
                if part < 0x80 { return value }
                shift += 7
            }
        }

        mutating func int(_ field: String) throws(Failure) -> Int64 {
            let raw = try varint(field)
            return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
        }

        /// A count checked against `limit` and against what is left of the input (each item
        /// takes at least `minimumItemBytes`) while still a UInt64, so the conversion to Int
        /// cannot trap, whatever the word size.
        mutating func count(_ field: String, limit: Int, minimumItemBytes: Int = 1) throws(Failure) -> Int {
            let start = offset
            let raw = try varint(field)
            guard raw <= UInt64(limit) else { throw .tooLarge(field: field, value: raw, limit: limit) }
            guard raw * UInt64(minimumItemBytes) <= UInt64(bytes.count - offset) else { throw .truncated(field: field, offset: start) }
            return Int(raw)
        }

        mutating func text(_ field: String, limit: Int = Limits.textBytes) throws(Failure) -> String {
            let length = try count(field, limit: limit)
            let start = offset
            offset += length
            guard let text = String(validating: bytes[start..<offset], as: UTF8.self) else { throw .invalidText(field: field, offset: start) }
            return text
        }

        mutating func identifier(_ field: String) throws(Failure) -> String { try text(field, limit: Limits.identifierBytes) }

        mutating func present(_ field: String) throws(Failure) -> Bool {
            let flag = try byte(field)
            guard flag <= 1 else { throw .unknownCode(field: field, value: UInt64(flag)) }
            return flag == 1
        }

        mutating func optionalText(_ field: String) throws(Failure) -> String? { try present(field) ? try text(field) : nil }
        mutating func optionalIdentifier(_ field: String) throws(Failure) -> String? { try present(field) ? try identifier(field) : nil }
        mutating func optionalInt(_ field: String) throws(Failure) -> Int64? { try present(field) ? try int(field) : nil }

        mutating func code<T: CaseIterable>(_ field: String) throws(Failure) -> T {
            let raw = try varint(field)
            guard raw < UInt64(T.allCases.count) else { throw .unknownCode(field: field, value: raw) }
            return T.allCases[T.allCases.index(T.allCases.startIndex, offsetBy: Int(raw))]
        }
    }
}
