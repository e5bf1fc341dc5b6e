/// Document payloads as values, so a BATCH can send them as columns without their JSON keys
/// (`ValueColumn`, docs/protocol.md §6) and the hub can rebuild the same JSON text. The device
/// checks the round trip before it relies on it; a payload that would not come back byte for
/// byte, or that the hub's limits would refuse in this form, travels as JSON text instead.
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
            guard index < bytes.count, depth < Limits.depth else { return nil }
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

    /// JSON text under construction. The limit is checked as it grows: a few bytes of a hostile
    /// batch can name the same long string many times, so the size is only known while writing.
    struct Text {
        var bytes: [UInt8] = []
        let limit: Int

        init(limit: Int) { self.limit = limit }

        mutating func append(_ part: some Sequence<UInt8>) throws(WireReader.Failure) {
            bytes.append(contentsOf: part)
            guard bytes.count <= limit else { throw .tooLarge(what: "rebuilt payload bytes", value: UInt64(bytes.count)) }
        }

        mutating func append(_ byte: UInt8) throws(WireReader.Failure) { try append(CollectionOfOne(byte)) }
    }

    static func write(_ value: Value, into out: inout Text) throws(WireReader.Failure) {
        switch value {
        case .null: try out.append("null".utf8)
        case .bool(let flag): try out.append((flag ? "true" : "false").utf8)
        case .int(let number): try out.append(String(number).utf8)
        case .string(let text): try writeString(text, into: &out)
        case .array(let items):
            try out.append(UInt8(ascii: "["))
            for (position, item) in items.enumerated() {
                if position > 0 { try out.append(UInt8(ascii: ",")) }
                try write(item, into: &out)
            }
            try out.append(UInt8(ascii: "]"))
        case .object(let keys, let values):
            try out.append(UInt8(ascii: "{"))
            for position in keys.indices {
                if position > 0 { try out.append(UInt8(ascii: ",")) }
                try writeString(keys[position], into: &out)
                try out.append(UInt8(ascii: ":"))
                try write(values[position], into: &out)
            }
            try out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ text: String, into out: inout Text) throws(WireReader.Failure) {
        var escaped: [UInt8] = [UInt8(ascii: "\"")]
        escaped.reserveCapacity(text.utf8.count + 2)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): escaped += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): escaped += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: escaped += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: escaped += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: escaped += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case ..<0x20: escaped += Array("\\u00".utf8) + [hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]
            default: escaped.append(byte)  // multi-byte UTF-8 sequences never contain bytes below 0x80
            }
        }
        escaped.append(UInt8(ascii: "\""))
        try out.append(escaped)
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    // MARK: What the compact form can carry

    /// The hub's limits on a compact payload (docs/protocol.md §6). The parser already stops at
    /// 16 levels of nesting; what exceeds the rest goes as JSON text.
    enum Limits {
        static let depth = 16
        static let arrayLength = 10_000
        static let stringBytes = 64 * 1024
        static let keys = 256
        static let keyBytes = 128
    }

    static func fitsLimits(_ value: Value) -> Bool {
        switch value {
        case .null, .bool, .int: return true
        case .string(let text): return text.utf8.count <= Limits.stringBytes
        case .array(let items): return items.count <= Limits.arrayLength && items.allSatisfy(fitsLimits)
        case .object(let keys, let values):
            return keys.count <= Limits.keys && keys.allSatisfy { $0.utf8.count <= Limits.keyBytes } && values.allSatisfy(fitsLimits)
        }
    }

    /// The compact form of `payload`, or nil when it would not come back byte for byte or is
    /// beyond what the hub accepts in this form. Compared as bytes: Swift's `==` on strings
    /// treats canonically equivalent text (é as one scalar or as e + accent) as equal.
    static func compactable(_ payload: String) -> Value? {
        guard let value = parse(payload), fitsLimits(value) else { return nil }
        var rebuilt = Text(limit: Int.max)
        do { try write(value, into: &rebuilt) } catch { return nil }
        return rebuilt.bytes.elementsEqual(payload.utf8) ? value : nil
    }
}
