import FoundationEssentials

/// One JSON style for the change-journal payloads and for `--json` output: snake_case keys,
/// sorted, so the same document always encodes to the same bytes.
public enum FieldJSON {
    public static func encode<T: Encodable>(_ value: T, pretty: Bool = false) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw FieldError.internalError("cannot encode \(T.self) as JSON: \(error)")
        }
    }

    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(type, from: Data(text.utf8))
        } catch {
            throw FieldError.invalidInput(what: "JSON \(T.self)", value: String(text.prefix(60)), reason: "\(error)")
        }
    }
}
