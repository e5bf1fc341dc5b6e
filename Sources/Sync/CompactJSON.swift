/// Document payloads travel without their JSON keys: each object is sent as the index of its
/// key list ("shape", once per batch) and its values in order, so deflate sees the values alone.
/// The hub rebuilds the same JSON text. The device checks the round trip before it relies on
/// it; a payload that would not come back byte for byte travels as plain JSON instead.
enum CompactJSON {
    indirect enum Value: Equatable {
        case null, bool(Bool), int(Int64), string(String), array([Value]), object(keys: [String], values: [Value])
    }

    // MARK: Parsing (integers only: our payloads carry money and quantities as minor units)

    static func parse(_ text: String) -> Value? {
        var parser = Parser(bytes: Array(text.utf8))
        guard let value = parser.value(), parser.atEnd() else { return nil }
        return value
    }

    struct Parser {
        let bytes: [UInt8]
        var index = 0
        var depth = 0

        mutating func skipSpace() { while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 } }
        mutating func atEnd() -> Bool { skipSpace(); return index == bytes.count }

        mutating func value() -> Value? {
            skipSpace()
            guard index < bytes.count, depth < 16 else { return nil }
            switch bytes[index] {
            case UInt8(ascii: "{"): return object()
            case UInt8(ascii: "["): return array()
            case UInt8(ascii: "\""): return string().map { .string($0) }
            case UInt8(ascii: "t"): return literal("true", .bool(true))
            case UInt8(ascii: "f"): return literal("false", .bool(false))
            case UInt8(ascii: "n"): return literal("null", .null)
            default: return integer()
            }
        }

        mutating func literal(_ word: String, _ value: Value) -> Value? {
            let expected = Array(word.utf8)
            guard bytes.count - index >= expected.count, Array(bytes[index..<(index + expected.count)]) == expected else { return nil }
            index += expected.count
            return value
        }

        mutating func integer() -> Value? {
            let start = index
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") { index += 1 }
            guard index > start, let number = Int64(String(decoding: bytes[start..<index], as: UTF8.self)) else { return nil }
            return .int(number)
        }

        mutating func string() -> String? {
            guard bytes[index] == UInt8(ascii: "\"") else { return nil }
            index += 1
            var scalars = String.UnicodeScalarView()
            var run: [UInt8] = []
            func flushRun() { scalars.append(contentsOf: String(decoding: run, as: UTF8.self).unicodeScalars); run.removeAll() }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\"") { flushRun(); return String(scalars) }
                guard byte == UInt8(ascii: "\\") else { run.append(byte); continue }
                flushRun()
                guard index < bytes.count else { return nil }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                default: return nil  // \u escapes: not worth it here, such payloads go as plain JSON
                }
            }
            return nil
        }

        mutating func array() -> Value? {
            index += 1
            depth += 1
            defer { depth -= 1 }
            var items: [Value] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
            while true {
                guard let item = value() else { return nil }
                items.append(item)
                skipSpace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                return nil
            }
        }

        mutating func object() -> Value? {
            index += 1
            depth += 1
            defer { depth -= 1 }
            var keys: [String] = [], values: [Value] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { index += 1; return .object(keys: keys, values: values) }
            while true {
                skipSpace()
                guard index < bytes.count, let key = string() else { return nil }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                guard let value = value() else { return nil }
                keys.append(key)
                values.append(value)
                skipSpace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(keys: keys, values: values) }
                return nil
            }
        }
    }

    // MARK: Writing: compact JSON, keys in the order given, as the device's encoder writes it

    static func write(_ value: Value, into out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .int(let number): out += String(number)
        case .string(let text): writeString(text, into: &out)
        case .array(let items):
            out += "["
            for (position, item) in items.enumerated() {
                if position > 0 { out += "," }
                write(item, into: &out)
            }
            out += "]"
        case .object(let keys, let values):
            out += "{"
            for position in keys.indices {
                if position > 0 { out += "," }
                writeString(keys[position], into: &out)
                out += ":"
                write(values[position], into: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ text: String, into out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += "\\u00" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16) } else { out.unicodeScalars.append(scalar) }
            }
        }
        out += "\""
    }

    // MARK: Wire form

    /// Shapes (key lists) are numbered per batch, in order of first use.
    struct Shapes {
        var table: [[String]] = []
        mutating func index(_ keys: [String]) -> Int {
            if let found = table.firstIndex(of: keys) { return found }
            table.append(keys)
            return table.count - 1
        }
    }

    static func encode(_ value: Value, shapes: inout Shapes, into writer: inout WireWriter) {
        switch value {
        case .null: writer.varint(0)
        case .bool(let flag): writer.varint(flag ? 2 : 1)
        case .int(let number): writer.varint(3); writer.int(number)
        case .string(let text): writer.varint(4); writer.string(text)
        case .array(let items):
            writer.varint(5)
            writer.varint(UInt64(items.count))
            for item in items { encode(item, shapes: &shapes, into: &writer) }
        case .object(let keys, let values):
            writer.varint(6)
            writer.varint(UInt64(shapes.index(keys)))
            for item in values { encode(item, shapes: &shapes, into: &writer) }
        }
    }

    static func decode(_ reader: inout WireReader, shapes: [[String]], depth: Int = 0) throws -> Value {
        guard depth < 16 else { throw WireReader.Failure.tooLarge(what: "nesting", value: UInt64(depth)) }
        let tag = try reader.varint()
        switch tag {
        case 0: return .null
        case 1: return .bool(false)
        case 2: return .bool(true)
        case 3: return .int(try reader.int())
        case 4: return .string(try reader.string(limit: 64 * 1024))
        case 5:
            let count = try reader.count("array length", limit: 10_000)
            return .array(try (0..<count).map { _ in try decode(&reader, shapes: shapes, depth: depth + 1) })
        case 6:
            let shape = try reader.varint()
            guard shape < UInt64(shapes.count) else { throw WireReader.Failure.tooLarge(what: "shape index", value: shape) }
            let keys = shapes[Int(shape)]
            return .object(keys: keys, values: try keys.map { _ in try decode(&reader, shapes: shapes, depth: depth + 1) })
        default:
            throw WireReader.Failure.tooLarge(what: "value tag", value: tag)
        }
    }

    /// The compact form of `payload`, or nil when it would not come back byte for byte.
    static func compactable(_ payload: String) -> Value? {
        guard let value = parse(payload) else { return nil }
        var rebuilt = ""
        write(value, into: &rebuilt)
        return rebuilt == payload ? value : nil
    }
}
