public import Field

/// The document payloads of a BATCH body as columns (protocol version 4, docs/protocol.md §6).
/// Each payload that is a canonical document of the codec (Field's `DocumentCodec`) is taken
/// apart through its kind's layout (`DocumentCodec.layout(of:)`, the registry's one list of
/// fields): the batch's documents of one kind become one column per field, and a list field
/// (order lines) one count per document, then one column per item field across every item of
/// every document of that kind. Anything else (a payload this side cannot read, or one whose
/// bytes are not what the codec would write for its values) travels whole, so every payload
/// comes back byte for byte whatever its bytes.
///
/// A column says how it is coded, chosen by the encoder's estimate (`estimatedBits`) over the
/// batch it carries:
/// - numbers as residuals against a prediction: nothing (raw), the value before in the column,
///   the value before in the same document's list (line numbers), another number of the same
///   row (the change's instant, a list's sum: an order's total is the sum of its amounts), the
///   product of two (amount = base quantity × unit price), or the last value seen with the same
///   text in a text column (a part's unit price);
/// - text as `TextColumn` (repeats as an index, identifiers as prefix + number), or as "the same
///   as another text column of the row" (a document's id is its change's entity id) with the
///   exceptions listed.
/// A group lays out its list fields first, so the numbers of the document can be predicted from
/// the sums of its items.
///
/// Decoding checks every tag, reference and count against what the layout and the body allow:
/// items of all lists together at most the bytes left of the body, every value within its
/// field's bound, and the rebuilt payloads at most `maxRebuiltBytes` together.
public enum DocumentColumns {
    /// What the rebuilt payloads of one body may come to (a body inflates to at most 4 MiB).
    public static let maxRebuiltBytes = 8 << 20

    /// The columns of the change envelope a top-level column may be predicted from.
    struct Context {
        var ints: [[Int64]]
        var texts: [[String]]
    }

    enum IntCoding: UInt64 {
        case raw = 0, step, stepInParent, difference, product, keyed
    }

    enum TextCoding: UInt64 {
        case plain = 0, sameAs
    }

    /// Whether Sync can lay a kind out as columns (every layout of today's registry: a kind
    /// added with a shape this coder does not know travels whole, it is not refused).
    static func columnable(_ fields: [DocumentCodec.Field]) -> Bool {
        fields.allSatisfy { field in
            switch field.type {
            case .int, .text, .code: return true
            case .optional(let inner):
                switch inner {
                case .int, .text, .code: return true
                default: return false
                }
            case .list(_, _, let items): return columnable(items)
            }
        }
    }

    // MARK: Writing

    /// The spans of `out` each column took (for the per-column breakdown, `Batch.columnSpans`).
    struct Output {
        var writer = WireWriter()
        var spans: [(name: String, range: Range<Int>)] = []
        var recording = false

        mutating func column(_ name: String, _ body: (inout WireWriter) -> Void) {
            let start = writer.bytes.count
            body(&writer)
            if recording { spans.append((name, start..<writer.bytes.count)) }
        }
    }

    static func write(_ payloads: [[UInt8]], context: Context, into out: inout Output) {
        var forms: [UInt64] = [], groups: [DocumentKind: [(index: Int, values: [DocumentCodec.Value])]] = [:]
        for (index, payload) in payloads.enumerated() {
            if let (kind, values) = try? DocumentCodec.values(payload), columnable(DocumentCodec.layout(of: kind)),
               DocumentCodec.encode(kind, values: values) == payload {
                forms.append(UInt64(kind.rawValue))
                groups[kind, default: []].append((index, values))
            } else {
                forms.append(0)
            }
        }
        out.column("payload form") { writer in for form in forms { writer.varint(form) } }
        out.column("whole payloads") { writer in
            for (index, form) in forms.enumerated() where form == 0 { writer.data(payloads[index]) }
        }
        for kind in DocumentKind.allCases {
            guard let documents = groups[kind] else { continue }
            let rows = documents.map(\.values)
            let local = Context(ints: context.ints.map { column in documents.map { column[$0.index] } },
                                texts: context.texts.map { column in documents.map { column[$0.index] } })
            writeGroup(DocumentCodec.layout(of: kind), rows: rows, parents: nil, context: local, path: kind.entity, into: &out)
        }
    }

    /// Processing order: list fields first, then the rest, each in layout order.
    static func order(_ fields: [DocumentCodec.Field]) -> [Int] {
        let lists = fields.indices.filter { if case .list = fields[$0].type { return true } else { return false } }
        return lists + fields.indices.filter { !lists.contains($0) }
    }

    static func sums(of fields: [DocumentCodec.Field], items: [[DocumentCodec.Value]], parents: [Int], rows: Int) -> [[Int64]] {
        fields.indices.filter { fields[$0].type == .int }.map { field in
            var sums = [Int64](repeating: 0, count: rows)
            for (item, parent) in zip(items, parents) { if case .int(let value) = item[field] { sums[parent] &+= value } }
            return sums
        }
    }

    static func writeGroup(_ fields: [DocumentCodec.Field], rows: [[DocumentCodec.Value]], parents: [Int]?, context: Context,
                           path: String, into out: inout Output) {
        var ints = context.ints, texts = context.texts
        for index in order(fields) {
            let field = fields[index], name = path + "." + field.name
            let column = rows.map { $0[index] }
            switch field.type {
            case .list(_, _, let itemFields):
                var items: [[DocumentCodec.Value]] = [], itemParents: [Int] = []
                out.column(name + " count") { writer in
                    for (row, value) in column.enumerated() {
                        guard case .list(let list) = value else { writer.varint(0); continue }
                        writer.varint(UInt64(list.count))
                        items += list
                        itemParents += repeatElement(row, count: list.count)
                    }
                }
                writeGroup(itemFields, rows: items, parents: itemParents, context: Context(ints: [], texts: []), path: name, into: &out)
                ints += sums(of: itemFields, items: items, parents: itemParents, rows: rows.count)
            case .int, .code:
                let values = column.map { if case .int(let value) = $0 { return value } else { return 0 } }
                out.column(name) { writeInts(values, rows: Array(values.indices), parents: parents, ints: ints, texts: texts, into: &$0) }
                ints.append(values)
            case .text:
                let values = column.map { if case .text(let value) = $0 { return value } else { return "" } }
                out.column(name) { writeTexts(values, rows: Array(values.indices), texts: texts, into: &$0) }
                texts.append(values)
            case .optional(let inner):
                let present = column.indices.filter { column[$0] != .absent }
                out.column(name + " present") { writer in for value in column { writer.varint(value == .absent ? 0 : 1) } }
                if case .text = inner {
                    let values = present.map { if case .text(let value) = column[$0] { return value } else { return "" } }
                    out.column(name) { writeTexts(values, rows: present, texts: texts, into: &$0) }
                } else {
                    let values = present.map { if case .int(let value) = column[$0] { return value } else { return 0 } }
                    out.column(name) { writeInts(values, rows: present, parents: parents, ints: ints, texts: texts, into: &$0) }
                }
            }
        }
    }

    /// `values` sit at `rows` of the group; `ints` and `texts` are the group's full columns so far.
    static func writeInts(_ values: [Int64], rows: [Int], parents: [Int]?, ints: [[Int64]], texts: [[String]], into writer: inout WireWriter) {
        var best: (arguments: [UInt64], residuals: [Int64]) = ([IntCoding.raw.rawValue], values)
        var bestBits = estimatedBits(values)
        func consider(_ arguments: [UInt64], _ residuals: [Int64]) {
            let bits = estimatedBits(residuals)
            if bits < bestBits { best = (arguments, residuals); bestBits = bits }
        }
        consider([IntCoding.step.rawValue], steps(values))
        if let parents {
            var previous: (parent: Int, value: Int64)? = nil
            consider([IntCoding.stepInParent.rawValue], zip(values, rows).map { value, row in
                defer { previous = (parents[row], value) }
                return previous.map { $0.parent == parents[row] ? value &- $0.value : value } ?? value
            })
        }
        for (j, reference) in ints.enumerated() {
            consider([IntCoding.difference.rawValue, UInt64(j)], zip(values, rows).map { $0 &- reference[$1] })
        }
        for j in ints.indices {
            for k in j..<ints.count {
                consider([IntCoding.product.rawValue, UInt64(j), UInt64(k)], zip(values, rows).map { $0 &- ints[j][$1] &* ints[k][$1] })
            }
        }
        for (t, keys) in texts.enumerated() {
            var last: [ByteKey: Int64] = [:]
            consider([IntCoding.keyed.rawValue, UInt64(t)], zip(values, rows).map { value, row in
                let key = ByteKey(keys[row])
                defer { last[key] = value }
                return value &- (last[key] ?? 0)
            })
        }
        for argument in best.arguments { writer.varint(argument) }
        for residual in best.residuals { writer.int(residual) }
    }

    static func writeTexts(_ values: [String], rows: [Int], texts: [[String]], into writer: inout WireWriter) {
        var best: (reference: Int, matches: Int)? = nil
        for (j, reference) in texts.enumerated() {
            let matches = zip(values, rows).filter { ByteKey($0) == ByteKey(reference[$1]) }.count
            if matches * 2 > values.count, matches > (best?.matches ?? 0) { best = (j, matches) }
        }
        guard let best else {
            writer.varint(TextCoding.plain.rawValue)
            return TextColumn.write(values, into: &writer)
        }
        writer.varint(TextCoding.sameAs.rawValue)
        writer.varint(UInt64(best.reference))
        let same = zip(values, rows).map { ByteKey($0) == ByteKey(texts[best.reference][$1]) }
        writer.varint(UInt64(values.count - best.matches))
        if best.matches < values.count { for flag in same { writer.varint(flag ? 0 : 1) } }
        TextColumn.write(zip(values, same).filter { !$1 }.map(\.0), into: &writer)
    }

    // MARK: Reading

    /// What decoding has left to spend: list items (bounded by the body) and rebuilt bytes.
    struct Budget {
        var items: Int
        var rebuiltBytes = DocumentColumns.maxRebuiltBytes
    }

    static func read(_ count: Int, context: Context, from reader: inout WireReader) throws(WireReader.Failure) -> [[UInt8]] {
        var forms: [UInt8] = []
        for _ in 0..<count {
            let form = try reader.varint()
            guard form == 0 || (form <= 255 && DocumentKind(rawValue: UInt8(form)) != nil) else { throw .tooLarge(what: "payload form", value: form) }
            forms.append(UInt8(form))
        }
        var payloads = [[UInt8]](repeating: [], count: count)
        var budget = Budget(items: reader.bytes.count - reader.offset)
        for (index, form) in forms.enumerated() where form == 0 {
            payloads[index] = try reader.data(limit: Batch.maxPayloadBytes)
            budget.rebuiltBytes -= payloads[index].count
        }
        guard budget.rebuiltBytes >= 0 else { throw .tooLarge(what: "rebuilt payload bytes", value: UInt64(maxRebuiltBytes - budget.rebuiltBytes)) }
        for kind in DocumentKind.allCases {
            let indexes = forms.indices.filter { forms[$0] == kind.rawValue }
            guard !indexes.isEmpty else { continue }
            let fields = DocumentCodec.layout(of: kind)
            guard columnable(fields) else { throw .tooLarge(what: "columns of kind", value: UInt64(kind.rawValue)) }
            let local = Context(ints: context.ints.map { column in indexes.map { column[$0] } },
                                texts: context.texts.map { column in indexes.map { column[$0] } })
            budget.items = reader.bytes.count - reader.offset
            let rows = try readGroup(fields, count: indexes.count, parents: nil, context: local, budget: &budget, from: &reader)
            for (row, index) in zip(rows, indexes) {
                let payload = DocumentCodec.encode(kind, values: row)
                guard payload.count <= Batch.maxPayloadBytes else { throw .tooLarge(what: "document bytes", value: UInt64(payload.count)) }
                budget.rebuiltBytes -= payload.count
                guard budget.rebuiltBytes >= 0 else { throw .tooLarge(what: "rebuilt payload bytes", value: UInt64(maxRebuiltBytes - budget.rebuiltBytes)) }
                payloads[index] = payload
            }
        }
        return payloads
    }

    static func readGroup(_ fields: [DocumentCodec.Field], count: Int, parents: [Int]?, context: Context, budget: inout Budget,
                          from reader: inout WireReader) throws(WireReader.Failure) -> [[DocumentCodec.Value]] {
        var columns = [[DocumentCodec.Value]](repeating: [], count: fields.count)
        var ints = context.ints, texts = context.texts
        for index in order(fields) {
            let field = fields[index]
            switch field.type {
            case .list(let limit, _, let itemFields):
                var counts: [Int] = [], itemParents: [Int] = [], total = 0
                for row in 0..<count {
                    let items = try reader.count("\(field.name) count", limit: limit)
                    total += items
                    // Every item costs at least one byte of the body in its columns.
                    guard total <= budget.items else { throw .tooLarge(what: "\(field.name) items", value: UInt64(total)) }
                    counts.append(items)
                    itemParents += repeatElement(row, count: items)
                }
                budget.items -= total
                let items = try readGroup(itemFields, count: total, parents: itemParents, context: Context(ints: [], texts: []),
                                          budget: &budget, from: &reader)
                var start = 0
                columns[index] = counts.map { size in
                    defer { start += size }
                    return .list(Array(items[start..<(start + size)]))
                }
                ints += sums(of: itemFields, items: items, parents: itemParents, rows: count)
            case .int:
                let values = try readInts(field.name, rows: Array(0..<count), parents: parents, ints: ints, texts: texts, from: &reader)
                columns[index] = values.map { .int($0) }
                ints.append(values)
            case .code(let cases):
                let values = try readInts(field.name, rows: Array(0..<count), parents: parents, ints: ints, texts: texts, from: &reader)
                try checkCodes(values, cases: cases, field.name)
                columns[index] = values.map { .int($0) }
                ints.append(values)
            case .text(let limit):
                let values = try readTexts(field.name, rows: Array(0..<count), limit: limit, texts: texts, from: &reader)
                columns[index] = values.map { .text($0) }
                texts.append(values)
            case .optional(let inner):
                var present: [Int] = []
                for row in 0..<count {
                    let flag = try reader.varint()
                    guard flag <= 1 else { throw .tooLarge(what: "\(field.name) presence", value: flag) }
                    if flag == 1 { present.append(row) }
                }
                var column = [DocumentCodec.Value](repeating: .absent, count: count)
                switch inner {
                case .text(let limit):
                    let values = try readTexts(field.name, rows: present, limit: limit, texts: texts, from: &reader)
                    for (row, value) in zip(present, values) { column[row] = .text(value) }
                case .int, .code:
                    let values = try readInts(field.name, rows: present, parents: parents, ints: ints, texts: texts, from: &reader)
                    if case .code(let cases) = inner { try checkCodes(values, cases: cases, field.name) }
                    for (row, value) in zip(present, values) { column[row] = .int(value) }
                default:
                    throw .tooLarge(what: "\(field.name) shape", value: 0)
                }
                columns[index] = column
            }
        }
        return (0..<count).map { row in columns.map { $0[row] } }
    }

    static func checkCodes(_ values: [Int64], cases: Int, _ name: String) throws(WireReader.Failure) {
        for value in values where value < 0 || value >= Int64(cases) { throw .tooLarge(what: "\(name) code", value: UInt64(bitPattern: value)) }
    }

    static func reference(_ raw: UInt64, in count: Int, _ name: String) throws(WireReader.Failure) -> Int {
        guard raw < UInt64(count) else { throw .tooLarge(what: "\(name) reference", value: raw) }
        return Int(raw)
    }

    static func readInts(_ name: String, rows: [Int], parents: [Int]?, ints: [[Int64]], texts: [[String]],
                         from reader: inout WireReader) throws(WireReader.Failure) -> [Int64] {
        let tag = try reader.varint()
        guard let coding = IntCoding(rawValue: tag), coding != .stepInParent || parents != nil else { throw .tooLarge(what: "\(name) coding", value: tag) }
        var arguments: [Int] = []
        switch coding {
        case .difference: arguments = [try reference(try reader.varint(), in: ints.count, name)]
        case .product: arguments = [try reference(try reader.varint(), in: ints.count, name), try reference(try reader.varint(), in: ints.count, name)]
        case .keyed: arguments = [try reference(try reader.varint(), in: texts.count, name)]
        default: break
        }
        var values: [Int64] = []
        values.reserveCapacity(rows.count)
        var previous: Int64 = 0, previousParent = -1
        var last: [ByteKey: Int64] = [:]
        for row in rows {
            let residual = try reader.int()
            let value: Int64
            switch coding {
            case .raw: value = residual
            case .step: value = previous &+ residual
            case .stepInParent:
                let parent = parents?[row] ?? -1
                value = (parent == previousParent ? previous : 0) &+ residual
                previousParent = parent
            case .difference: value = ints[arguments[0]][row] &+ residual
            case .product: value = ints[arguments[0]][row] &* ints[arguments[1]][row] &+ residual
            case .keyed:
                let key = ByteKey(texts[arguments[0]][row])
                value = (last[key] ?? 0) &+ residual
                last[key] = value
            }
            previous = value
            values.append(value)
        }
        return values
    }

    static func readTexts(_ name: String, rows: [Int], limit: Int, texts: [[String]],
                          from reader: inout WireReader) throws(WireReader.Failure) -> [String] {
        let tag = try reader.varint()
        guard let coding = TextCoding(rawValue: tag) else { throw .tooLarge(what: "\(name) coding", value: tag) }
        guard coding == .sameAs else { return try TextColumn.read(rows.count, maxBytes: limit, from: &reader) }
        let source = try reference(try reader.varint(), in: texts.count, name)
        let exceptions = try reader.count("\(name) exceptions", limit: rows.count)
        var differs = [Bool](repeating: false, count: rows.count)
        if exceptions > 0 {
            var flagged = 0
            for index in rows.indices {
                let flag = try reader.varint()
                guard flag <= 1 else { throw .tooLarge(what: "\(name) flag", value: flag) }
                differs[index] = flag == 1
                flagged += Int(flag)
            }
            guard flagged == exceptions else { throw .tooLarge(what: "\(name) exceptions", value: UInt64(flagged)) }
        }
        var own = try TextColumn.read(exceptions, maxBytes: limit, from: &reader).makeIterator()
        var values: [String] = []
        for (index, row) in rows.enumerated() {
            let value = differs[index] ? own.next() ?? "" : texts[source][row]
            guard value.utf8.count <= limit else { throw .tooLarge(what: "\(name) bytes", value: UInt64(value.utf8.count)) }
            values.append(value)
        }
        return values
    }
}
