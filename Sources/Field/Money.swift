/// Amounts are whole minor units (grosz, stotinka, kopek): binary floating point cannot hold
/// 0.10 exactly, and a rep's cash count must add up to the grosz.
public enum Money {
    /// Parses "123", "123.45" or "123,45" (reps type either separator) into minor units.
    /// Refuses signs, more than two decimals, thousands separators and absurd sizes.
    public static func parseMinor(_ text: String, what: String = "amount") throws -> Int64 {
        let trimmed = text.trimmingASCIISpaces()
        var whole: Int64 = 0, fraction: Int64 = 0, fractionDigits = 0, seenSeparator = false, digits = 0
        for byte in trimmed.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                let digit = Int64(byte - UInt8(ascii: "0"))
                if seenSeparator {
                    fractionDigits += 1
                    guard fractionDigits <= 2 else {
                        throw FieldError.invalidInput(what: what, value: text, reason: "at most two decimal places")
                    }
                    fraction = fraction * 10 + digit
                } else {
                    digits += 1
                    guard digits <= 12 else {
                        throw FieldError.invalidInput(what: what, value: text, reason: "too large")
                    }
                    whole = whole * 10 + digit
                }
            case UInt8(ascii: "."), UInt8(ascii: ","):
                guard !seenSeparator, digits > 0 else {
                    throw FieldError.invalidInput(what: what, value: text, reason: "not an amount like 123.45")
                }
                seenSeparator = true
            default:
                throw FieldError.invalidInput(what: what, value: text, reason: "not an amount like 123.45")
            }
        }
        guard digits > 0, !seenSeparator || fractionDigits > 0 else {
            throw FieldError.invalidInput(what: what, value: text, reason: "not an amount like 123.45")
        }
        if fractionDigits == 1 { fraction *= 10 }
        return whole * 100 + fraction
    }

    /// "1234.50 PLN"; negative amounts keep their sign.
    public static func format(_ minor: Int64, _ currency: String) -> String {
        let sign = minor < 0 ? "-" : ""
        let magnitude = minor.magnitude
        let cents = magnitude % 100
        return "\(sign)\(magnitude / 100).\(cents < 10 ? "0" : "")\(cents) \(currency)"
    }
}

/// The largest amounts one document may carry, per currency: a payment of 1,000,000,000.00 is a
/// slip of the finger, and left in, it would clear every hold rule for the customer. The bounds
/// are set per currency because a ruble is not a złoty; a currency without a bound is refused
/// rather than taken unbounded. `standard` is what a device uses unless its configuration says
/// otherwise (`Capture(device, limits:)`).
public struct MoneyLimits: Sendable, Equatable {
    public struct Limit: Sendable, Equatable {
        /// One payment, in minor units.
        public var paymentMinor: Int64
        /// One order's or quote's total (and so any line of it), in minor units.
        public var documentMinor: Int64

        public init(paymentMinor: Int64, documentMinor: Int64) {
            self.paymentMinor = paymentMinor
            self.documentMinor = documentMinor
        }
    }

    public var byCurrency: [String: Limit]

    public init(byCurrency: [String: Limit]) { self.byCurrency = byCurrency }

    /// About EUR 50,000 a payment and EUR 500,000 a document in each currency.
    public static let standard = MoneyLimits(byCurrency: [
        "PLN": Limit(paymentMinor: 200_000_00, documentMinor: 2_000_000_00),
        "EUR": Limit(paymentMinor: 50_000_00, documentMinor: 500_000_00),
        "BGN": Limit(paymentMinor: 100_000_00, documentMinor: 1_000_000_00),
        "RUB": Limit(paymentMinor: 5_000_000_00, documentMinor: 50_000_000_00),
    ])

    public func limit(for currency: String, what: String) throws -> Limit {
        guard let limit = byCurrency[currency] else {
            let known = byCurrency.keys.sorted().joined(separator: ", ")
            throw FieldError.invalidInput(what: "\(what) currency", value: currency,
                                          reason: "this device has no amount limit for \(currency) (it has one for \(known)); ask the office to configure one")
        }
        return limit
    }

    /// Refuses a payment over the currency's bound, naming the bound.
    public func checkPayment(_ minor: Int64, currency: String) throws {
        let limit = try limit(for: currency, what: "payment")
        guard minor <= limit.paymentMinor else {
            throw FieldError.invalidInput(what: "amount", value: Money.format(minor, currency),
                                          reason: "more than the \(Money.format(limit.paymentMinor, currency)) one payment may be on this device; check the amount (the office records larger payments)")
        }
    }

    /// `quantity` x `unitPrice`, refused (never overflowing) when over the currency's document bound.
    public func lineAmount(quantity: Int64, unitPriceMinor: Int64, currency: String, what: String) throws -> Int64 {
        let limit = try limit(for: currency, what: what)
        let (amount, overflow) = quantity.multipliedReportingOverflow(by: unitPriceMinor)
        guard !overflow, amount <= limit.documentMinor else {
            throw FieldError.invalidInput(what: what, value: "\(quantity) x \(Money.format(unitPriceMinor, currency))",
                                          reason: "more than the \(Money.format(limit.documentMinor, currency)) one document may total on this device; split it, or ask the office")
        }
        return amount
    }

    /// `total` + `amount`, refused when over the currency's document bound.
    public func documentTotal(_ total: Int64, adding amount: Int64, currency: String, what: String) throws -> Int64 {
        let limit = try limit(for: currency, what: what)
        let (sum, overflow) = total.addingReportingOverflow(amount)
        guard !overflow, sum <= limit.documentMinor else {
            throw FieldError.invalidInput(what: what, value: "total over \(Money.format(limit.documentMinor, currency))",
                                          reason: "more than the \(Money.format(limit.documentMinor, currency)) one document may total on this device; split it, or ask the office")
        }
        return sum
    }
}

extension String {
    func trimmingASCIISpaces() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
        return String(scalars)
    }
}

/// Whole positive quantities, as typed by a rep ("12"). Fractions of a unit are sold by
/// choosing a smaller unit, never by decimals.
public enum Quantity {
    public static let maximum: Int64 = 1_000_000

    public static func parse(_ text: String, what: String = "quantity") throws -> Int64 {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            let reason = text.hasPrefix("-") ? "must be a positive whole number" : "not a whole number"
            throw FieldError.invalidInput(what: what, value: text, reason: reason)
        }
        guard text.utf8.count <= 9, let value = Int64(text) else {
            throw FieldError.invalidInput(what: what, value: text, reason: "more than \(maximum)")
        }
        guard value > 0 else { throw FieldError.invalidInput(what: what, value: text, reason: "must be at least 1") }
        guard value <= maximum else { throw FieldError.invalidInput(what: what, value: text, reason: "more than \(maximum)") }
        return value
    }
}
