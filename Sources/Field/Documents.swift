/// The documents a rep creates on the device, as they are stored, journaled and shown. The
/// journal, the card and the wire carry them in `DocumentCodec`'s binary form; their `Codable`
/// conformance (snake_case keys) is for `--json` output and for reading journal payloads
/// written before the codec (`LegacyJournalPayload`). Enumerations are coded by their position
/// in `allCases`: add new cases last.

/// An order's life: the rep drafts and confirms it; sync sends it; the office accepts or
/// rejects it; the rep asks for the invoice; finance settles it. A draft the rep cancels is
/// `cancelled`: its journal entry says so and the hub gets it, while the device drops the row
/// (the state exists in journal payloads only; the orders table never holds it).
public enum OrderState: String, Codable, Sendable, CaseIterable {
    case draft, confirmed, sent, accepted, rejected
    case invoiceRequested = "invoice_requested"
    case settled
    case cancelled

    /// The moves the lifecycle allows; anything else is refused with `invalidTransition`.
    public func canMove(to next: OrderState) -> Bool {
        switch (self, next) {
        case (.draft, .confirmed), (.draft, .cancelled), (.confirmed, .sent), (.sent, .accepted), (.sent, .rejected),
             (.accepted, .invoiceRequested), (.invoiceRequested, .settled):
            return true
        default:
            return false
        }
    }
}

/// Whether an order or quote waits for a supervisor before the office acts on it.
public enum Approval: String, Codable, Sendable, CaseIterable {
    case none, pending, approved, rejected
}

public enum PriceLevel: String, Codable, Sendable, CaseIterable {
    case customer, dealer, promo
}

public struct OrderLine: Codable, Sendable, Equatable {
    public var lineNo: Int64
    public var partNumber: String
    public var unit: String
    public var quantity: Int64
    /// Quantity in the product's base unit (12 for one box of 12).
    public var baseQuantity: Int64
    /// Price of one base unit at the order's price level.
    public var unitPriceMinor: Int64
    public var amountMinor: Int64


    public init(lineNo: Int64, partNumber: String, unit: String, quantity: Int64, baseQuantity: Int64, unitPriceMinor: Int64, amountMinor: Int64) {
        self.lineNo = lineNo; self.partNumber = partNumber; self.unit = unit; self.quantity = quantity; self.baseQuantity = baseQuantity; self.unitPriceMinor = unitPriceMinor; self.amountMinor = amountMinor
    }

    enum CodingKeys: String, CodingKey {
        case lineNo = "line_no"
        case partNumber = "part_number"
        case unit
        case quantity
        case baseQuantity = "base_quantity"
        case unitPriceMinor = "unit_price_minor"
        case amountMinor = "amount_minor"
    }
}

public struct OrderDocument: Codable, Sendable, Equatable {
    public var id: String
    public var customerId: String
    public var state: OrderState
    public var approval: Approval
    public var holdReason: String?
    public var priceLevel: String
    public var currency: String
    public var totalMinor: Int64
    public var note: String
    public var createdAt: Int64
    public var confirmedAt: Int64?
    public var lines: [OrderLine]

    /// The state as a rep reads it: "confirmed, held for approval: ...".
    public var stateSummary: String {
        switch approval {
        case .pending: return "\(state.rawValue), held for approval: \(holdReason ?? "")"
        case .rejected: return "\(state.rawValue), approval refused"
        case .approved: return "\(state.rawValue), approved"
        case .none: return state.rawValue
        }
    }


    public init(id: String, customerId: String, state: OrderState, approval: Approval, holdReason: String?, priceLevel: String, currency: String, totalMinor: Int64, note: String, createdAt: Int64, confirmedAt: Int64?, lines: [OrderLine]) {
        self.id = id; self.customerId = customerId; self.state = state; self.approval = approval; self.holdReason = holdReason; self.priceLevel = priceLevel; self.currency = currency; self.totalMinor = totalMinor; self.note = note; self.createdAt = createdAt; self.confirmedAt = confirmedAt; self.lines = lines
    }

    enum CodingKeys: String, CodingKey {
        case id
        case customerId = "customer_id"
        case state
        case approval
        case holdReason = "hold_reason"
        case priceLevel = "price_level"
        case currency
        case totalMinor = "total_minor"
        case note
        case createdAt = "created_at"
        case confirmedAt = "confirmed_at"
        case lines
    }
}

/// One line as the rep asks for it: `PART:QTY` or `PART:QTY:UNIT`.
public struct OrderLineRequest: Sendable, Equatable {
    public var partNumber: String
    public var quantity: Int64
    public var unit: String?

    public init(partNumber: String, quantity: Int64, unit: String? = nil) {
        self.partNumber = partNumber
        self.quantity = quantity
        self.unit = unit
    }

    /// Parses `PART:QTY[:UNIT]`; `position` (1-based) names the line in errors.
    public static func parse(_ text: String, position: Int) throws -> OrderLineRequest {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3, !parts[0].isEmpty else {
            throw FieldError.invalidInput(what: "line \(position)", value: text, reason: "expected PART:QTY or PART:QTY:UNIT")
        }
        let quantity = try Quantity.parse(parts[1], what: "line \(position) (\(text)): quantity")
        if parts.count == 3 && parts[2].isEmpty {
            throw FieldError.invalidInput(what: "line \(position)", value: text, reason: "empty unit")
        }
        return OrderLineRequest(partNumber: parts[0], quantity: quantity, unit: parts.count == 3 ? parts[2] : nil)
    }
}

public enum VisitOutcome: String, Codable, Sendable, CaseIterable {
    case order
    case noOrder = "no_order"
    case closed
    case notMet = "not_met"
    case merchandising, service
}

public struct VisitDocument: Codable, Sendable, Equatable {
    public var id: String
    public var customerId: String
    public var at: Int64
    public var outcome: VisitOutcome
    public var note: String


    public init(id: String, customerId: String, at: Int64, outcome: VisitOutcome, note: String) {
        self.id = id; self.customerId = customerId; self.at = at; self.outcome = outcome; self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case id
        case customerId = "customer_id"
        case at
        case outcome
        case note
    }
}

public enum PaymentMethod: String, Codable, Sendable, CaseIterable {
    case cash, card, transfer, cheque
}

public struct PaymentDocument: Codable, Sendable, Equatable {
    public var id: String
    public var customerId: String
    public var amountMinor: Int64
    public var currency: String
    public var method: PaymentMethod
    public var receipt: String
    public var collectedAt: Int64


    public init(id: String, customerId: String, amountMinor: Int64, currency: String, method: PaymentMethod, receipt: String, collectedAt: Int64) {
        self.id = id; self.customerId = customerId; self.amountMinor = amountMinor; self.currency = currency; self.method = method; self.receipt = receipt; self.collectedAt = collectedAt
    }

    enum CodingKeys: String, CodingKey {
        case id
        case customerId = "customer_id"
        case amountMinor = "amount_minor"
        case currency
        case method
        case receipt
        case collectedAt = "collected_at"
    }
}

/// The compensating document that voids a payment recorded by mistake. It carries the payment's
/// amount, currency and receipt, so the office can match it without the payment at hand.
public struct PaymentVoidDocument: Codable, Sendable, Equatable {
    public var id: String
    public var paymentId: String
    public var customerId: String
    public var amountMinor: Int64
    public var currency: String
    public var receipt: String
    public var reason: String
    public var at: Int64


    public init(id: String, paymentId: String, customerId: String, amountMinor: Int64, currency: String, receipt: String, reason: String, at: Int64) {
        self.id = id; self.paymentId = paymentId; self.customerId = customerId; self.amountMinor = amountMinor; self.currency = currency; self.receipt = receipt; self.reason = reason; self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case id
        case paymentId = "payment_id"
        case customerId = "customer_id"
        case amountMinor = "amount_minor"
        case currency
        case receipt
        case reason
        case at
    }
}

public struct MaterialReservation: Codable, Sendable, Equatable {
    public var partNumber: String
    public var location: String
    public var quantity: Int64
    /// How much of `quantity` the location did not have on hand when reserved.
    public var shortQuantity: Int64

    public init(partNumber: String, location: String, quantity: Int64, shortQuantity: Int64) {
        self.partNumber = partNumber; self.location = location; self.quantity = quantity; self.shortQuantity = shortQuantity
    }

    enum CodingKeys: String, CodingKey {
        case partNumber = "part_number"
        case location
        case quantity
        case shortQuantity = "short_quantity"
    }
}

public struct DisplayRequestDocument: Codable, Sendable, Equatable {
    public var id: String
    public var customerId: String
    public var typeCode: String
    public var widthCm: Int64
    public var heightCm: Int64
    public var depthCm: Int64?
    public var note: String
    public var state: String
    public var at: Int64
    public var materials: [MaterialReservation]


    public init(id: String, customerId: String, typeCode: String, widthCm: Int64, heightCm: Int64, depthCm: Int64?, note: String, state: String, at: Int64, materials: [MaterialReservation]) {
        self.id = id; self.customerId = customerId; self.typeCode = typeCode; self.widthCm = widthCm; self.heightCm = heightCm; self.depthCm = depthCm; self.note = note; self.state = state; self.at = at; self.materials = materials
    }

    enum CodingKeys: String, CodingKey {
        case id
        case customerId = "customer_id"
        case typeCode = "type_code"
        case widthCm = "width_cm"
        case heightCm = "height_cm"
        case depthCm = "depth_cm"
        case note
        case state
        case at
        case materials
    }
}

public enum ComplaintCategory: String, Codable, Sendable, CaseIterable {
    case quality, damaged, missing
    case wrongItem = "wrong_item"
    case delivery, invoice, other
}

public struct ComplaintDocument: Codable, Sendable, Equatable {
    public var id: String
    public var customerId: String
    public var orderRef: String?
    public var partNumber: String?
    public var category: ComplaintCategory
    public var description: String
    public var state: String
    public var at: Int64


    public init(id: String, customerId: String, orderRef: String?, partNumber: String?, category: ComplaintCategory, description: String, state: String, at: Int64) {
        self.id = id; self.customerId = customerId; self.orderRef = orderRef; self.partNumber = partNumber; self.category = category; self.description = description; self.state = state; self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case id
        case customerId = "customer_id"
        case orderRef = "order_ref"
        case partNumber = "part_number"
        case category
        case description
        case state
        case at
    }
}

public struct QuoteLine: Codable, Sendable, Equatable {
    public var lineNo: Int64
    public var partNumber: String
    public var quantity: Int64
    public var unitPriceMinor: Int64
    public var amountMinor: Int64


    public init(lineNo: Int64, partNumber: String, quantity: Int64, unitPriceMinor: Int64, amountMinor: Int64) {
        self.lineNo = lineNo; self.partNumber = partNumber; self.quantity = quantity; self.unitPriceMinor = unitPriceMinor; self.amountMinor = amountMinor
    }

    enum CodingKeys: String, CodingKey {
        case lineNo = "line_no"
        case partNumber = "part_number"
        case quantity
        case unitPriceMinor = "unit_price_minor"
        case amountMinor = "amount_minor"
    }
}

public struct QuoteDocument: Codable, Sendable, Equatable {
    public var id: String
    public var customerId: String
    public var currency: String
    public var discountBasisPoints: Int64
    public var totalMinor: Int64
    public var approval: Approval
    public var holdReason: String?
    public var at: Int64
    public var lines: [QuoteLine]


    public init(id: String, customerId: String, currency: String, discountBasisPoints: Int64, totalMinor: Int64, approval: Approval, holdReason: String?, at: Int64, lines: [QuoteLine]) {
        self.id = id; self.customerId = customerId; self.currency = currency; self.discountBasisPoints = discountBasisPoints; self.totalMinor = totalMinor; self.approval = approval; self.holdReason = holdReason; self.at = at; self.lines = lines
    }

    enum CodingKeys: String, CodingKey {
        case id
        case customerId = "customer_id"
        case currency
        case discountBasisPoints = "discount_basis_points"
        case totalMinor = "total_minor"
        case approval
        case holdReason = "hold_reason"
        case at
        case lines
    }
}

public enum MaintenanceKind: String, Codable, Sendable, CaseIterable {
    case inspection, cleaning, repair, replacement, removal
}

public struct MaintenanceDocument: Codable, Sendable, Equatable {
    public var id: String
    public var equipmentId: String
    public var at: Int64
    public var kind: MaintenanceKind
    public var note: String


    public init(id: String, equipmentId: String, at: Int64, kind: MaintenanceKind, note: String) {
        self.id = id; self.equipmentId = equipmentId; self.at = at; self.kind = kind; self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case id
        case equipmentId = "equipment_id"
        case at
        case kind
        case note
    }
}

/// What the rep is told once a document is acknowledged: its id and the change-journal entry
/// that carries it.
/// `Document` is only `Sendable`: a Codable requirement here made the runtime check the
/// conformance (a scan of every conformance record in the binary) the first time each
/// `Acknowledged<...>` was built, about 470,000 instructions per `satchel order new` (callgrind).
public struct Acknowledged<Document: Sendable>: Sendable {
    public var document: Document
    public var changeId: String
}
