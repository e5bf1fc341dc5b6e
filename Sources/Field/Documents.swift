/// The documents a rep creates on the device, as they are stored, journaled and shown.
/// Field names are encoded in snake_case (see `FieldJSON`).

/// An order's life: the rep drafts and confirms it; sync sends it; the office accepts or
/// rejects it; the rep asks for the invoice; finance settles it.
public enum OrderState: String, Codable, Sendable, CaseIterable {
    case draft, confirmed, sent, accepted, rejected
    case invoiceRequested = "invoice_requested"
    case settled

    /// The moves the lifecycle allows; anything else is refused with `invalidTransition`.
    public func canMove(to next: OrderState) -> Bool {
        switch (self, next) {
        case (.draft, .confirmed), (.confirmed, .sent), (.sent, .accepted), (.sent, .rejected),
             (.accepted, .invoiceRequested), (.invoiceRequested, .settled):
            return true
        default:
            return false
        }
    }
}

/// Whether an order or quote waits for a supervisor before the office acts on it.
public enum Approval: String, Codable, Sendable {
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
}

public struct QuoteLine: Codable, Sendable, Equatable {
    public var lineNo: Int64
    public var partNumber: String
    public var quantity: Int64
    public var unitPriceMinor: Int64
    public var amountMinor: Int64
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
}

/// What the rep is told once a document is acknowledged: its id and the change-journal entry
/// that carries it.
public struct Acknowledged<Document: Codable & Sendable>: Sendable {
    public var document: Document
    public var changeId: String
}
