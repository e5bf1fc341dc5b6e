/// JSON text of an `Encodable` value, byte for byte what `JSONEncoder` writes with
/// `[.sortedKeys, .withoutEscapingSlashes]` (`FieldJSON.payload`), for the kinds of values
/// documents are made of: strings, integers, booleans, nil, arrays and nested objects.
///
/// Why it exists: the hub renders every uploaded document's JSON at ingest (the office's queries
/// and the ERP export read it), and JSONEncoder's boxing and generic dispatch were most of the
/// hub's own work per batch (docs/benchmarks.md, hub ingest). The output must not change by one
/// byte, since a held change is compared with the office's by that text:
/// `SortedJSONTests` compares the two over random documents.
///
/// A value of any other kind (a floating-point number, a super encoder) throws `Unsupported`, and
/// `FieldJSON.payload` then falls back to JSONEncoder, so nothing is ever written differently.
enum SortedJSON {
    struct Unsupported: Error {}

    static func text<T: Encodable>(_ value: T) throws -> String {
        let context = Context()
        let node = try Node.of(value, context)
        guard !context.unsupported else { throw Unsupported() }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        node.write(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// One encoding's shared state: set when a value asked for something this writer does not
    /// do in a place that cannot throw (a super encoder).
    final class Context {
        var unsupported = false
    }

    /// A value being built; objects and arrays are boxes, since containers handed out by the
    /// encoder keep writing into them after `container(keyedBy:)` returns.
    enum Node {
        case string(String)
        /// Already JSON: a number, `true`, `false` or `null`.
        case literal(String)
        case object(ObjectBox)
        case array(ArrayBox)

        static func of<T: Encodable>(_ value: T, _ context: Context) throws -> Node {
            switch value {
            case let text as String: return .string(text)
            case let number as Int64: return .literal(String(number))
            case let number as Int: return .literal(String(number))
            case let flag as Bool: return .literal(flag ? "true" : "false")
            default:
                let encoder = NodeEncoder(context)
                try value.encode(to: encoder)
                // An Encodable that encoded nothing: JSONEncoder's answer differs by context.
                guard let root = encoder.root else { throw Unsupported() }
                return root
            }
        }

        func write(into out: inout [UInt8]) {
            switch self {
            case .string(let text): SortedJSON.writeString(text, into: &out)
            case .literal(let text): out.append(contentsOf: text.utf8)
            case .array(let box):
                out.append(UInt8(ascii: "["))
                for (index, item) in box.items.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    item.write(into: &out)
                }
                out.append(UInt8(ascii: "]"))
            case .object(let box):
                out.append(UInt8(ascii: "{"))
                for (index, field) in box.sortedFields().enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    SortedJSON.writeString(field.key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    field.value.write(into: &out)
                }
                out.append(UInt8(ascii: "}"))
            }
        }
    }

    final class ObjectBox {
        var fields: [(key: String, value: Node)] = []
        func set(_ key: String, _ value: Node) {
            // A key written twice keeps its last value, as JSONEncoder's dictionary does.
            if let index = fields.firstIndex(where: { $0.key == key }) { fields[index].value = value } else { fields.append((key, value)) }
        }
        func sortedFields() -> [(key: String, value: Node)] {
            // JSONEncoder's .sortedKeys orders keys as String's `<` does (checked on mixed case,
            // digits and non-ASCII keys: "B" < "Z_" < "a" < "a10" < "a9" < "é").
            fields.sorted { $0.key < $1.key }
        }
    }

    final class ArrayBox {
        var items: [Node] = []
    }

    /// Escapes as JSONEncoder does: `"` and `\` with a backslash, the C0 controls as \b \t \n \f
    /// \r or \u00XX (lowercase hex), everything else (DEL, U+2028, any non-ASCII) as it is, and
    /// `/` unescaped (`.withoutEscapingSlashes`).
    static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(byte)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case 0x08: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "b"))
            case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case 0x0C: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "f"))
            case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// The `Encoder` behind `SortedJSON`: builds a `Node` tree, written out once it is complete.
final class NodeEncoder: Encoder {
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    var root: SortedJSON.Node?
    let context: SortedJSON.Context
    init(_ context: SortedJSON.Context) { self.context = context }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: SortedJSON.ObjectBox
        if case .object(let existing)? = root { box = existing } else {
            box = SortedJSON.ObjectBox()
            root = .object(box)
        }
        return KeyedEncodingContainer(KeyedNodes<Key>(box: box, context: context, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box: SortedJSON.ArrayBox
        if case .array(let existing)? = root { box = existing } else {
            box = SortedJSON.ArrayBox()
            root = .array(box)
        }
        return UnkeyedNodes(box: box, context: context, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleNode(encoder: self) }
}

struct KeyedNodes<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: SortedJSON.ObjectBox
    let context: SortedJSON.Context
    var codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { box.set(key.stringValue, .literal("null")) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { box.set(key.stringValue, .literal(value ? "true" : "false")) }
    mutating func encode(_ value: String, forKey key: Key) throws { box.set(key.stringValue, .string(value)) }
    mutating func encode(_ value: Double, forKey key: Key) throws { throw SortedJSON.Unsupported() }
    mutating func encode(_ value: Float, forKey key: Key) throws { throw SortedJSON.Unsupported() }
    mutating func encode(_ value: Int, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { box.set(key.stringValue, .literal(String(value))) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { box.set(key.stringValue, try SortedJSON.Node.of(value, context)) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let nested = SortedJSON.ObjectBox()
        box.set(key.stringValue, .object(nested))
        return KeyedEncodingContainer(KeyedNodes<NestedKey>(box: nested, context: context, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = SortedJSON.ArrayBox()
        box.set(key.stringValue, .array(nested))
        return UnkeyedNodes(box: nested, context: context, codingPath: codingPath + [key])
    }

    // A super encoder writes into the same object in JSONEncoder; not done here, so the value
    // is flagged and written by JSONEncoder instead.
    mutating func superEncoder() -> any Encoder { unsupported() }
    mutating func superEncoder(forKey key: Key) -> any Encoder { unsupported() }

    func unsupported() -> any Encoder {
        context.unsupported = true
        return NodeEncoder(context)
    }
}

struct UnkeyedNodes: UnkeyedEncodingContainer {
    let box: SortedJSON.ArrayBox
    let context: SortedJSON.Context
    var codingPath: [any CodingKey]
    var count: Int { box.items.count }

    mutating func encodeNil() throws { box.items.append(.literal("null")) }
    mutating func encode(_ value: Bool) throws { box.items.append(.literal(value ? "true" : "false")) }
    mutating func encode(_ value: String) throws { box.items.append(.string(value)) }
    mutating func encode(_ value: Double) throws { throw SortedJSON.Unsupported() }
    mutating func encode(_ value: Float) throws { throw SortedJSON.Unsupported() }
    mutating func encode(_ value: Int) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: Int8) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: Int16) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: Int32) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: Int64) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt8) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt16) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt32) throws { box.items.append(.literal(String(value))) }
    mutating func encode(_ value: UInt64) throws { box.items.append(.literal(String(value))) }
    mutating func encode<T: Encodable>(_ value: T) throws { box.items.append(try SortedJSON.Node.of(value, context)) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let nested = SortedJSON.ObjectBox()
        box.items.append(.object(nested))
        return KeyedEncodingContainer(KeyedNodes<NestedKey>(box: nested, context: context, codingPath: codingPath))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = SortedJSON.ArrayBox()
        box.items.append(.array(nested))
        return UnkeyedNodes(box: nested, context: context, codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder { unsupported() }

    func unsupported() -> any Encoder {
        context.unsupported = true
        return NodeEncoder(context)
    }
}

struct SingleNode: SingleValueEncodingContainer {
    let encoder: NodeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { encoder.root = .literal("null") }
    mutating func encode(_ value: Bool) throws { encoder.root = .literal(value ? "true" : "false") }
    mutating func encode(_ value: String) throws { encoder.root = .string(value) }
    mutating func encode(_ value: Double) throws { throw SortedJSON.Unsupported() }
    mutating func encode(_ value: Float) throws { throw SortedJSON.Unsupported() }
    mutating func encode(_ value: Int) throws { encoder.root = .literal(String(value)) }
    mutating func encode(_ value: Int8) throws { encoder.root = .literal(String(value)) }
    mutating func encode(_ value: Int16) throws { encoder.root = .literal(String(value)) }
    mutating func encode(_ value: Int32) throws { encoder.root = .literal(String(value)) }
    mutating func encode(_ value: Int64) throws { encoder.root = .literal(String(value)) }
    mutating func encode(_ value: UInt) throws { encoder.root = .literal(String(value)) }
    mutating func encode(_ value: UInt8) throws { encoder.root = .literal(String(value)) }
    mutating func encode(_ value: UInt16) throws { encoder.root = .literal(String(value)) }
    mutating func encode(_ value: UInt32) throws { encoder.root = .literal(String(value)) }
    mutating func encode(_ value: UInt64) throws { encoder.root = .literal(String(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws { encoder.root = try SortedJSON.Node.of(value, encoder.context) }
}
