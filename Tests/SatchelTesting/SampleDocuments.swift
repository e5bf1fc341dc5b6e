public import Field

/// Documents as capture makes them, for tests that need a journal payload without a device:
/// Polish, Bulgarian and Russian text, ids in the device's form.
public enum SampleDocuments {
    public static let at: Int64 = 1_795_428_000_000

    public static func order(_ id: String, customer: String = "CPL100241", state: OrderState = .confirmed, approval: Approval = .none,
                             holdReason: String? = nil, lines: Int = 1, note: String = "Dostawa do 10:00 — Доставка сутрин") -> OrderDocument {
        let orderLines = (0..<lines).map {
            OrderLine(lineNo: Int64($0 + 1), partNumber: "PN-\(10_001 + $0)", unit: "szt", quantity: 3, baseQuantity: 3, unitPriceMinor: 1_250, amountMinor: 3_750)
        }
        return OrderDocument(id: id, customerId: customer, state: state, approval: approval, holdReason: holdReason, priceLevel: "customer",
                             currency: "PLN", totalMinor: Int64(lines) * 3_750, note: note, createdAt: at,
                             confirmedAt: state == .draft ? nil : at, lines: orderLines)
    }

    public static func visit(_ id: String, customer: String = "CPL100241", note: String = "Rozmowa z właścicielem — разговор с владельцем") -> VisitDocument {
        VisitDocument(id: id, customerId: customer, at: at, outcome: .order, note: note)
    }

    public static func payment(_ id: String, customer: String = "CBG2001", amountMinor: Int64 = 15_000, receipt: String = "КП/7") -> PaymentDocument {
        PaymentDocument(id: id, customerId: customer, amountMinor: amountMinor, currency: "BGN", method: .cash, receipt: receipt, collectedAt: at)
    }

    public static func paymentVoid(_ id: String, payment: String, customer: String = "CBG2001", amountMinor: Int64 = 15_000) -> PaymentVoidDocument {
        PaymentVoidDocument(id: id, paymentId: payment, customerId: customer, amountMinor: amountMinor, currency: "BGN", receipt: "КП/7",
                            reason: "грешна сума — zła kwota", at: at)
    }

    public static func complaint(_ id: String, customer: String = "CRU3001") -> ComplaintDocument {
        ComplaintDocument(id: id, customerId: customer, orderRef: nil, partNumber: nil, category: .damaged,
                          description: "Повреждённая упаковка — pęknięte opakowania", state: "open", at: at)
    }

    /// The journal payload of `document` (`DocumentCodec`).
    public static func payload(_ document: Document) -> [UInt8] { DocumentCodec.encode(document) }
}
