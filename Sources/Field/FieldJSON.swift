import FoundationEssentials

/// JSON in two styles. Journal payloads (`payload`, `decodePayload`) rely on each document's
/// explicit snake_case `CodingKeys`: the journal format must not change when a Swift property is
/// renamed, and skipping the encoder's key conversion keeps capture fast. `encode` is for
/// `--json` output of any type, converting camelCase names itself. Keys are sorted in both, so
/// the same value always encodes to the same bytes.
public enum FieldJSON {
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return try run(T.self) { try encoder.encode(value) }
    }

    /// A document as the change journal stores it. Written by `SortedJSON` (the same bytes,
    /// several times faster); a value it does not do (floating point) goes to JSONEncoder.
    public static func payload<T: Encodable>(_ value: T) throws -> String {
        if let text = try? SortedJSON.text(value) { return text }
        return try encoderPayload(value)
    }

    /// `payload` through JSONEncoder: the reference `SortedJSON` is tested against.
    public static func encoderPayload<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try run(T.self) { try encoder.encode(value) }
    }

    public static func decodePayload<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(text.utf8))
        } catch {
            throw FieldError.invalidInput(what: "journal payload for \(T.self)", value: String(text.prefix(60)), reason: "\(error)")
        }
    }

    private static func run<T>(_ type: T.Type, _ body: () throws -> Data) throws -> String {
        do {
            return String(decoding: try body(), as: UTF8.self)
        } catch {
            throw FieldError.internalError("cannot encode \(T.self) as JSON: \(error)")
        }
    }
}

extension Document {
    /// The document as JSON text with its snake_case keys, sorted: the form `--json` shows and
    /// the hub's office queries read (the same text journal payloads were before the codec).
    public func json() throws -> String {
        switch self {
        case .order(let order): return try FieldJSON.payload(order)
        case .visit(let visit): return try FieldJSON.payload(visit)
        case .payment(let payment): return try FieldJSON.payload(payment)
        case .paymentVoid(let void): return try FieldJSON.payload(void)
        case .displayRequest(let request): return try FieldJSON.payload(request)
        case .complaint(let complaint): return try FieldJSON.payload(complaint)
        case .quote(let quote): return try FieldJSON.payload(quote)
        case .maintenance(let record): return try FieldJSON.payload(record)
        }
    }
}
