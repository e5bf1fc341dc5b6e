/// The column codings of a BATCH body (docs/protocol.md §6, which is the spec). A batch sends
/// like values together: all customer ids, then all states, then every order line's quantity,
/// so the deflate stream behind it sees long runs of similar bytes, and numbers travel as
/// small differences instead of text.
///
/// Decoding trusts nothing: every count is checked against a limit before it is used, every
/// index against its table, and every value costs at least one byte of the body, so the columns
/// a hostile body makes the hub hold are bounded by its size, and the JSON rebuilt from them by
/// the limits in `Batch`.

// MARK: Cost estimate

/// The encoder's estimate of what a column of residuals costs after deflate: the significant
/// bits of their zig-zag forms. Cheap, and it ranks the choices the way deflate does on our
/// documents (random quantities are cheaper as they are than as steps, sequences the other way).
func estimatedBits(_ residuals: [Int64]) -> Int {
    residuals.reduce(0) { total, value in
        total + UInt64.bitWidth - UInt64(bitPattern: (value << 1) ^ (value >> 63)).leadingZeroBitCount
    }
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
        let asSteps = estimatedBits(differences) < estimatedBits(numbers)
        writer.varint(asSteps ? 1 : 0)
        for value in asSteps ? differences : numbers { writer.int(value) }
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

// MARK: Shapes

/// The key lists of the batch's objects, numbered in order of first use.
struct ShapeTable {
    static let maxShapes = 1_024
    private(set) var keyLists: [[String]] = []
    private var known: [[ByteKey]: Int] = [:]

    /// Adds the shapes `value` uses; false (and nothing added) if the table would overflow.
    mutating func admit(_ value: CompactJSON.Value) -> Bool {
        var new: [[String]] = [], seen = Set<[ByteKey]>()
        collect(value, into: &new, seen: &seen)
        guard keyLists.count + new.count <= Self.maxShapes else { return false }
        for keys in new {
            known[keys.map(ByteKey.init)] = keyLists.count
            keyLists.append(keys)
        }
        return true
    }

    private func collect(_ value: CompactJSON.Value, into new: inout [[String]], seen: inout Set<[ByteKey]>) {
        switch value {
        case .null, .bool, .int, .string: return
        case .array(let items): for item in items { collect(item, into: &new, seen: &seen) }
        case .object(let keys, let values):
            let key = keys.map(ByteKey.init)
            if known[key] == nil, seen.insert(key).inserted { new.append(keys) }
            for item in values { collect(item, into: &new, seen: &seen) }
        }
    }

    func index(_ keys: [String]) -> Int { known[keys.map(ByteKey.init)]! }
}

// MARK: Integer predictors

/// How a column's integers become the residuals on the wire.
enum IntegerPredictor: Equatable {
    /// The value itself.
    case plain
    /// The difference to the previous integer of the column (the first to 0).
    case delta
    /// The difference to field `key` of the same object (0 where that field is no integer):
    /// a field that repeats another (an order line's `quantity` and `base_quantity`).
    case difference(key: Int)
    /// The difference to the product of fields `first` and `second` of the same object (0 unless
    /// both are integers): a line's amount is its quantity times its unit price.
    case product(first: Int, second: Int)

    var references: [Int] {
        switch self {
        case .plain, .delta: return []
        case .difference(let key): return [key]
        case .product(let first, let second): return [first, second]
        }
    }

    func write(into writer: inout WireWriter) {
        switch self {
        case .plain: writer.varint(0)
        case .delta: writer.varint(1)
        case .difference(let key):
            writer.varint(2)
            writer.varint(UInt64(key))
        case .product(let first, let second):
            writer.varint(3)
            writer.varint(UInt64(first))
            writer.varint(UInt64(second))
        }
    }

    /// `field` is the column's place among its object's keys; predictors across fields only
    /// exist there, and only refer to other fields of the same shape.
    static func read(from reader: inout WireReader, field: (key: Int, keyCount: Int)?) throws(WireReader.Failure) -> IntegerPredictor {
        let kind = try reader.varint()
        func reference() throws(WireReader.Failure) -> Int {
            let key = try reader.varint()
            guard let field, key < UInt64(field.keyCount), key != UInt64(field.key) else { throw .tooLarge(what: "predictor field", value: key) }
            return Int(key)
        }
        switch kind {
        case 0: return .plain
        case 1: return .delta
        case 2: return .difference(key: try reference())
        case 3:
            let first = try reference()
            return .product(first: first, second: try reference())
        default: throw .tooLarge(what: "integer predictor", value: kind)
        }
    }

    func prediction(object: Int, fields: [[Int64?]]) -> Int64 {
        switch self {
        case .plain, .delta: return 0
        case .difference(let key): return fields[key][object] ?? 0
        case .product(let first, let second):
            guard let a = fields[first][object], let b = fields[second][object] else { return 0 }
            return a &* b
        }
    }

    /// The cheaper of plain and delta for a column on its own.
    static func sequenceCoding(_ integers: [Int64]) -> (IntegerPredictor, [Int64]) {
        let differences = steps(integers)
        return estimatedBits(differences) < estimatedBits(integers) ? (.delta, differences) : (.plain, integers)
    }

    /// Beyond this many integer fields in one shape the search across fields (quadratic in
    /// pairs times fields) is not worth the device's time; such shapes use plain or delta.
    static let maxSearchedFields = 16

    /// A coding per field of one shape's objects (nil for fields without integers). Fields
    /// are predicted from others where the estimate says that is cheaper (each field tries only
    /// its best such option); a field another one refers to
    /// keeps a plain or delta coding, so the hub resolves every field in one step.
    static func choose(for fields: [ValueColumn]) -> [(IntegerPredictor, [Int64])?] {
        var codings = fields.map { $0.integers.isEmpty ? nil : sequenceCoding($0.integers) }
        let candidates = fields.indices.filter { !fields[$0].integers.isEmpty }
        guard candidates.count >= 2, candidates.count <= maxSearchedFields else { return codings }
        let byObject = fields.map { $0.integersByObject() }
        func residuals(_ predictor: IntegerPredictor, for key: Int) -> [Int64] {
            var result: [Int64] = []
            for object in byObject[key].indices {
                if let value = byObject[key][object] { result.append(value &- predictor.prediction(object: object, fields: byObject)) }
            }
            return result
        }
        var options: [(key: Int, saving: Int, coding: (IntegerPredictor, [Int64]))] = []
        for key in candidates {
            let own = estimatedBits(codings[key]!.1)
            var best: (bits: Int, coding: (IntegerPredictor, [Int64]))?
            func consider(_ predictor: IntegerPredictor) {
                let coded = residuals(predictor, for: key)
                let bits = estimatedBits(coded)
                if bits < best?.bits ?? own { best = (bits, (predictor, coded)) }
            }
            for first in candidates where first != key {
                consider(.difference(key: first))
                for second in candidates where second > first && second != key { consider(.product(first: first, second: second)) }
            }
            if let best { options.append((key, own - best.bits, best.coding)) }
        }
        var referenced = Set<Int>(), derived = Set<Int>()
        for option in options.sorted(by: { ($0.saving, -$0.key) > ($1.saving, -$1.key) }) {
            let references = option.coding.0.references
            guard !referenced.contains(option.key), references.allSatisfy({ !derived.contains($0) }) else { continue }
            codings[option.key] = option.coding
            derived.insert(option.key)
            referenced.formUnion(references)
        }
        return codings
    }
}

// MARK: Value columns

/// The values at one place of the documents' structure: the documents themselves, the elements
/// of the arrays found at a place, or one field of the objects of one shape found at a place.
/// A column's values go together on the wire, then the columns below it.
struct ValueColumn {
    enum Tag: UInt8 {
        case null = 0, falseValue, trueValue, integer, string, array, object
    }

    static let maxDepth = CompactJSON.Limits.depth

    var tags: [UInt8] = []
    /// One per array value.
    var lengths: [Int] = []
    /// One shape index per object value.
    var shapes: [Int] = []
    var integers: [Int64] = []
    var strings: [String] = []
    /// The column of all elements of this column's arrays, in order (none when there are no arrays).
    var elements: [ValueColumn] = []
    /// Per shape index, one column per key, holding that field of this column's objects of the shape.
    var fields: [Int: [ValueColumn]] = [:]
    /// How the integers came (decoding): resolved by the parent when it refers to sibling fields.
    var predictor = IntegerPredictor.plain
    var cursor = Cursor()

    struct Cursor {
        var tag = 0, length = 0, shape = 0, integer = 0, string = 0
    }

    var isEmpty: Bool { tags.isEmpty }

    /// Per value, its integer if it is one.
    func integersByObject() -> [Int64?] {
        var next = 0
        return tags.map { tag in
            guard tag == Tag.integer.rawValue else { return nil }
            defer { next += 1 }
            return integers[next]
        }
    }

    // MARK: Encoding

    mutating func append(_ value: CompactJSON.Value, shapes table: ShapeTable) {
        switch value {
        case .null: tags.append(Tag.null.rawValue)
        case .bool(let flag): tags.append(flag ? Tag.trueValue.rawValue : Tag.falseValue.rawValue)
        case .int(let number):
            tags.append(Tag.integer.rawValue)
            integers.append(number)
        case .string(let text):
            tags.append(Tag.string.rawValue)
            strings.append(text)
        case .array(let items):
            tags.append(Tag.array.rawValue)
            lengths.append(items.count)
            if elements.isEmpty { elements = [ValueColumn()] }
            for item in items { elements[0].append(item, shapes: table) }
        case .object(let keys, let values):
            let shape = table.index(keys)
            tags.append(Tag.object.rawValue)
            shapes.append(shape)
            if fields[shape] == nil { fields[shape] = Array(repeating: ValueColumn(), count: keys.count) }
            for (key, item) in values.enumerated() { fields[shape]![key].append(item, shapes: table) }
        }
    }

    /// An empty column writes nothing: its size is always known from the column above it.
    func write(into writer: inout WireWriter, integerCoding: (IntegerPredictor, [Int64])? = nil) {
        guard !isEmpty else { return }
        for tag in tags { writer.byte(tag) }
        for length in lengths { writer.varint(UInt64(length)) }
        for shape in shapes { writer.varint(UInt64(shape)) }
        if !integers.isEmpty {
            let (predictor, residuals) = integerCoding ?? IntegerPredictor.sequenceCoding(integers)
            predictor.write(into: &writer)
            for residual in residuals { writer.int(residual) }
        }
        if !strings.isEmpty { TextColumn.write(strings, into: &writer) }
        if let elements = elements.first { elements.write(into: &writer) }
        for shape in fields.keys.sorted() {
            let columns = fields[shape]!
            let codings = IntegerPredictor.choose(for: columns)
            for key in columns.indices { columns[key].write(into: &writer, integerCoding: codings[key]) }
        }
    }

    // MARK: Decoding

    /// What one batch may make the hub hold; every value also costs a byte of the body.
    struct Budget {
        static let maxValues = 4 << 20
        var values = 0

        mutating func spend(_ count: Int) throws(WireReader.Failure) {
            values += count
            guard values <= Self.maxValues else { throw .tooLarge(what: "values in the batch", value: UInt64(values)) }
        }
    }

    static func read(_ count: Int, depth: Int, field: (key: Int, keyCount: Int)?, shapeTable: [[String]],
                     budget: inout Budget, from reader: inout WireReader) throws(WireReader.Failure) -> ValueColumn {
        var column = ValueColumn()
        guard count > 0 else { return column }
        guard depth < maxDepth else { throw .tooLarge(what: "nesting", value: UInt64(depth)) }
        try budget.spend(count)
        var arrays = 0, objects = 0, integers = 0, strings = 0
        for _ in 0..<count {
            let tag = try reader.byte()
            switch Tag(rawValue: tag) {
            case .null, .falseValue, .trueValue: break
            case .integer: integers += 1
            case .string: strings += 1
            case .array: arrays += 1
            case .object: objects += 1
            case nil: throw .tooLarge(what: "value tag", value: UInt64(tag))
            }
            column.tags.append(tag)
        }
        var elementCount = 0
        for _ in 0..<arrays {
            let length = try reader.count("array length", limit: CompactJSON.Limits.arrayLength)
            column.lengths.append(length)
            elementCount += length
        }
        var objectsOfShape: [Int: Int] = [:]
        for _ in 0..<objects {
            let shape = try reader.varint()
            guard shape < UInt64(shapeTable.count) else { throw .tooLarge(what: "shape index", value: shape) }
            column.shapes.append(Int(shape))
            objectsOfShape[Int(shape), default: 0] += 1
        }
        if integers > 0 {
            column.predictor = try IntegerPredictor.read(from: &reader, field: field)
            var previous: Int64 = 0
            for _ in 0..<integers {
                let residual = try reader.int()
                // Predictions from sibling fields are added by the parent, once all are read.
                let value = column.predictor == .delta ? previous &+ residual : residual
                previous = value
                column.integers.append(value)
            }
        }
        if strings > 0 { column.strings = try TextColumn.read(strings, maxBytes: CompactJSON.Limits.stringBytes, from: &reader) }
        if arrays > 0 {
            column.elements = [try read(elementCount, depth: depth + 1, field: nil, shapeTable: shapeTable, budget: &budget, from: &reader)]
        }
        for (shape, objectCount) in objectsOfShape.sorted(by: { $0.key < $1.key }) {
            let keyCount = shapeTable[shape].count
            var columns: [ValueColumn] = []
            for key in 0..<keyCount {
                columns.append(try read(objectCount, depth: depth + 1, field: (key, keyCount), shapeTable: shapeTable, budget: &budget, from: &reader))
            }
            try resolvePredictions(&columns)
            column.fields[shape] = columns
        }
        return column
    }

    /// Adds the predictions of fields coded against their siblings. A referenced field must be
    /// coded on its own (plain or delta): chains and cycles are refused, not followed.
    static func resolvePredictions(_ columns: inout [ValueColumn]) throws(WireReader.Failure) {
        let byObject = columns.map { $0.integersByObject() }
        for key in columns.indices {
            let predictor = columns[key].predictor
            guard !predictor.references.isEmpty, !columns[key].integers.isEmpty else { continue }
            for reference in predictor.references where !columns[reference].predictor.references.isEmpty {
                throw .tooLarge(what: "predictor field (itself predicted)", value: UInt64(reference))
            }
            var next = 0
            for object in columns[key].tags.indices where columns[key].tags[object] == Tag.integer.rawValue {
                columns[key].integers[next] = columns[key].integers[next] &+ predictor.prediction(object: object, fields: byObject)
                next += 1
            }
        }
    }

    /// The next value of this column, with everything below it. The decoder built the columns
    /// from the counts it read, so every column holds exactly the values asked of it.
    mutating func take(shapeTable: [[String]]) -> CompactJSON.Value {
        let tag = tags[cursor.tag]
        cursor.tag += 1
        switch Tag(rawValue: tag)! {
        case .null: return .null
        case .falseValue: return .bool(false)
        case .trueValue: return .bool(true)
        case .integer:
            defer { cursor.integer += 1 }
            return .int(integers[cursor.integer])
        case .string:
            defer { cursor.string += 1 }
            return .string(strings[cursor.string])
        case .array:
            let length = lengths[cursor.length]
            cursor.length += 1
            var items: [CompactJSON.Value] = []
            for _ in 0..<length { items.append(elements[0].take(shapeTable: shapeTable)) }
            return .array(items)
        case .object:
            let shape = shapes[cursor.shape]
            cursor.shape += 1
            var values: [CompactJSON.Value] = []
            for key in shapeTable[shape].indices { values.append(fields[shape]![key].take(shapeTable: shapeTable)) }
            return .object(keys: shapeTable[shape], values: values)
        }
    }
}
