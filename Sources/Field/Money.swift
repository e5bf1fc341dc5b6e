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
