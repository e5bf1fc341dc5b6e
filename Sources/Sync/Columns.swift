import Deflate

/// The column codings of a BATCH body (docs/protocol.md §6, which is the spec). A batch sends
/// like values together: all customer ids, then all states, then every order line's quantity,
/// so the deflate stream behind it sees long runs of similar bytes, and numbers travel as
/// small differences instead of text.
///
/// Decoding trusts nothing: every count is checked against a limit before it is used, every
/// index against its table, and every value costs at least one byte of the body, so the columns
/// a hostile body makes the hub hold are bounded by its size. The documents themselves travel
/// in the device's binary document codec (Field's `DocumentCodec`), as opaque payloads here.

// MARK: Cost estimate

/// The encoder's estimate of what a column of residuals costs after deflate: the significant
/// bits of their zig-zag forms. Cheap, and it ranks the choices the way deflate does on our
/// documents (random quantities are cheaper as they are than as steps, sequences the other way).
func estimatedBits(_ residuals: [Int64]) -> Int {
    residuals.reduce(0) { total, value in
        total + UInt64.bitWidth - UInt64(bitPattern: (value << 1) ^ (value >> 63)).leadingZeroBitCount
    }
}

/// What `bytes` deflate to on their own (level 6, no dictionary): how the encoder ranks the
/// codings it shortlisted for a column by their estimate, since the column travels deflated and
/// the estimate misses what deflate makes of repeats (a draft sent again, a popular part).
/// Zero when deflate fails (it cannot, for bytes in memory): then every choice costs the same.
func deflatedSize(_ bytes: [UInt8]) -> Int {
    (try? Deflate.compress(bytes, level: 6, format: .raw).count) ?? 0
}

/// Each value minus the one before it, the first minus 0 (wrapping: residuals are 64-bit patterns).
func steps(_ values: [Int64]) -> [Int64] {
    var previous: Int64 = 0
    return values.map { value in
        defer { previous = value }
        return value &- previous
    }
}

/// Strings compared and looked up by their bytes. Swift's `==` on strings holds canonically
/// equivalent text equal (é as one scalar or as e + combining accent); a table keyed that way
/// would send the second spelling as the first, and the hub must rebuild every byte.
struct ByteKey: Hashable {
    let bytes: [UInt8]
    init(_ text: String) { bytes = Array(text.utf8) }
}

// MARK: Text columns

/// A column of strings: literals once each, repeats as an index, and identifiers that end in
/// digits (`WAW07-000123`, `CPL100241`, `PN-10268`, `KP/448`) as a prefix from a small table,
/// the digit count (so zero padding comes back) and the number, as a difference to the
/// previous one when that is cheaper. Ids made from one counter then cost the same four bytes
/// each, which deflate all but removes.
enum TextColumn {
    static let literal: UInt64 = 0
    static let numbered: UInt64 = 1
    static let firstRepeat: UInt64 = 2
    /// 18 decimal digits always fit in an Int64.
    static let maxDigits = 18

    /// `text` split before its trailing digits (at most 18; any before them stay in the prefix).
    static func split(_ text: String) -> (prefix: String, digits: Int, number: Int64)? {
        let bytes = Array(text.utf8)
        var start = bytes.count
        while start > 0, bytes.count - start < maxDigits, (0x30...0x39).contains(bytes[start - 1]) { start -= 1 }
        guard start < bytes.count else { return nil }
        let number = bytes[start...].reduce(Int64(0)) { $0 * 10 + Int64($1 - 0x30) }
        // The prefix ends before an ASCII digit, so it is whole UTF-8.
        return (String(decoding: bytes[..<start], as: UTF8.self), bytes.count - start, number)
    }

    static func write(_ strings: [String], into writer: inout WireWriter) {
        var literals: [ByteKey: Int] = [:], prefixes: [ByteKey: Int] = [:]
        var kinds: [UInt64] = [], newLiterals: [String] = []
        var prefixCodes: [(code: UInt64, new: String?)] = [], widths: [Int] = [], numbers: [Int64] = []
        for text in strings {
            if let (prefix, digits, number) = split(text) {
                kinds.append(numbered)
                if let known = prefixes[ByteKey(prefix)] {
                    prefixCodes.append((UInt64(known) + 1, nil))
                } else {
                    prefixes[ByteKey(prefix)] = prefixes.count
                    prefixCodes.append((0, prefix))
                }
                widths.append(digits)
                numbers.append(number)
            } else if let known = literals[ByteKey(text)] {
                kinds.append(firstRepeat + UInt64(known))
            } else {
                literals[ByteKey(text)] = literals.count
                kinds.append(literal)
                newLiterals.append(text)
            }
        }
        for kind in kinds { writer.varint(kind) }
        for text in newLiterals { writer.string(text) }
        guard !numbers.isEmpty else { return }
        for (code, new) in prefixCodes {
            writer.varint(code)
            if let new { writer.string(new) }
        }
        for width in widths { writer.varint(UInt64(width)) }
        let differences = steps(numbers)
        func coded(_ values: [Int64]) -> [UInt8] {
            var out = WireWriter()
            for value in values { out.int(value) }
            return out.bytes
        }
        let (raw, stepped) = (coded(numbers), coded(differences))
        let asSteps = deflatedSize(stepped) < deflatedSize(raw)
        writer.varint(asSteps ? 1 : 0)
        writer.raw(asSteps ? stepped : raw)
    }

    static func read(_ count: Int, maxBytes: Int, from reader: inout WireReader) throws(WireReader.Failure) -> [String] {
        var kinds: [UInt64] = []
        var literalCount = 0, numberedCount = 0
        for _ in 0..<count {
            let kind = try reader.varint()
            // A repeat may only name a literal sent before it.
            guard kind < firstRepeat + UInt64(literalCount) else { throw .tooLarge(what: "text kind", value: kind) }
            if kind == literal { literalCount += 1 } else if kind == numbered { numberedCount += 1 }
            kinds.append(kind)
        }
        var literals: [String] = []
        for _ in 0..<literalCount { literals.append(try reader.string(limit: maxBytes)) }
        var numberedTexts: [String] = []
        if numberedCount > 0 {
            var prefixTable: [String] = [], prefixes: [String] = []
            for _ in 0..<numberedCount {
                let code = try reader.varint()
                if code == 0 {
                    prefixTable.append(try reader.string(limit: maxBytes))
                    prefixes.append(prefixTable[prefixTable.count - 1])
                } else {
                    guard code <= UInt64(prefixTable.count) else { throw .tooLarge(what: "prefix index", value: code - 1) }
                    prefixes.append(prefixTable[Int(code - 1)])
                }
            }
            var widths: [Int] = []
            for _ in 0..<numberedCount {
                let width = try reader.count("digit count", limit: maxDigits)
                guard width > 0 else { throw .tooLarge(what: "digit count", value: 0) }
                widths.append(width)
            }
            let numbering = try reader.varint()
            guard numbering <= 1 else { throw .tooLarge(what: "numbering", value: numbering) }
            var previous: Int64 = 0
            for index in 0..<numberedCount {
                let residual = try reader.int()
                let number = numbering == 1 ? previous &+ residual : residual
                previous = number
                guard number >= 0 else { throw .tooLarge(what: "negative number", value: number.magnitude) }
                let digits = String(number)
                guard digits.utf8.count <= widths[index] else { throw .tooLarge(what: "number for \(widths[index]) digits", value: UInt64(number)) }
                let text = prefixes[index] + String(repeating: "0", count: widths[index] - digits.utf8.count) + digits
                guard text.utf8.count <= maxBytes else { throw .tooLarge(what: "text bytes", value: UInt64(text.utf8.count)) }
                numberedTexts.append(text)
            }
        }
        var result: [String] = [], nextLiteral = 0, nextNumbered = 0
        for kind in kinds {
            switch kind {
            case literal:
                result.append(literals[nextLiteral])
                nextLiteral += 1
            case numbered:
                result.append(numberedTexts[nextNumbered])
                nextNumbered += 1
            default:
                result.append(literals[Int(kind - firstRepeat)])
            }
        }
        return result
    }
}
