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
        /// The last text seen in this column with the same key (the text columns named), or,
        /// for a key not seen yet, the text before in the column.
        case keyed
        /// The column's distinct texts once, sorted by their bytes (so identifiers from one
        /// counter differ by small steps), then each row's position in that table: one byte
        /// each for up to 256 distinct texts. Parts drawn from a catalogue come back often.
        case dictionary
    }

    /// What `keyed` predicts for each of `rows`, given the column's actual values so far (the
    /// decoder calls it row by row with what it has rebuilt).
    struct TextPrediction {
        let columns: [[Int]]
        var last: [Key: String] = [:]
        var previous = ""
        init(_ columns: [[Int]]) { self.columns = columns }
        func predict(_ row: Int) -> String { last[Key(columns, row)] ?? previous }
        mutating func saw(_ value: String, at row: Int) {
            last[Key(columns, row)] = value
            previous = value
        }
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

    /// Payload forms: travels whole, a document of the kind its change's entity names (the
    /// usual case, so the column is all ones), or `kind code + 1`.
    static let whole: UInt64 = 0, namedByEntity: UInt64 = 1

    /// The top-level text columns a kind's documents may be predicted from beyond the envelope:
    /// for each text field of its layout, that field's value in the nearest earlier change of a
    /// kind decoded before it (a lower code) whose layout has a text field of that name, "" when
    /// none has. A visit's customer is the order's just before it at the same stop, a payment's
    /// the visit's.
    static func earlierFields(_ kind: DocumentKind, indexes: [Int], decoded: [(kind: DocumentKind, values: [DocumentCodec.Value])?]) -> [[String]] {
        DocumentCodec.layout(of: kind).filter { if case .text = $0.type { return true } else { return false } }.map { field in
            var latest = "", column: [String] = [], next = 0
            for (change, document) in decoded.enumerated() {
                if next < indexes.count, indexes[next] == change {
                    column.append(latest)
                    next += 1
                }
                guard let document, document.kind.rawValue < kind.rawValue,
                      let position = DocumentCodec.layout(of: document.kind).firstIndex(where: { $0.name == field.name && $0.type == field.type }),
                      case .text(let text) = document.values[position] else { continue }
                latest = text
            }
            return column
        }
    }

    static func write(_ payloads: [[UInt8]], entities: [String], context: Context, into out: inout Output) {
        var forms: [UInt64] = [], groups: [DocumentKind: [Int]] = [:]
        var decoded: [(kind: DocumentKind, values: [DocumentCodec.Value])?] = []
        for (index, payload) in payloads.enumerated() {
            if let (kind, values) = try? DocumentCodec.values(payload), columnable(DocumentCodec.layout(of: kind)),
               DocumentCodec.encode(kind, values: values) == payload {
                forms.append(DocumentKind(entity: entities[index]) == kind ? namedByEntity : UInt64(kind.rawValue) + 1)
                groups[kind, default: []].append(index)
                decoded.append((kind, values))
            } else {
                forms.append(whole)
                decoded.append(nil)
            }
        }
        out.column("payload form") { writer in for form in forms { writer.varint(form) } }
        out.column("whole payloads") { writer in
            for (index, form) in forms.enumerated() where form == whole { writer.data(payloads[index]) }
        }
        for kind in DocumentKind.allCases {
            guard let indexes = groups[kind] else { continue }
            let rows = indexes.map { decoded[$0]?.values ?? [] }
            let local = Context(ints: context.ints.map { column in indexes.map { column[$0] } },
                                texts: context.texts.map { column in indexes.map { column[$0] } }
                                    + earlierFields(kind, indexes: indexes, decoded: decoded))
            writeGroup(DocumentCodec.layout(of: kind), rows: rows, parents: nil, context: local, path: kind.entity, into: &out)
        }
    }

    /// Processing order: text fields, then list fields, then the rest, each in layout order:
    /// a list's items can be predicted from their document's text (a part's price from the
    /// order's currency and price level), the document's numbers from its items' sums.
    static func order(_ fields: [DocumentCodec.Field]) -> [Int] {
        func rank(_ type: DocumentCodec.FieldType) -> Int {
            switch type {
            case .text, .optional(.text): return 0
            case .list: return 1
            default: return 2
            }
        }
        return [0, 1, 2].flatMap { group in fields.indices.filter { rank(fields[$0].type) == group } }
    }

    /// Text columns as small integers (equal bytes, equal number), for keys.
    static func interned(_ column: [String]) -> [Int] {
        var ids: [ByteKey: Int] = [:]
        return column.map { text in
            let key = ByteKey(text)
            if let id = ids[key] { return id }
            ids[key] = ids.count
            return ids.count - 1
        }
    }

    /// A row's key over up to three text columns.
    struct Key: Hashable {
        var a: Int, b: Int, c: Int
        init(_ columns: [[Int]], _ row: Int) {
            a = columns[0][row]
            b = columns.count > 1 ? columns[1][row] : -1
            c = columns.count > 2 ? columns[2][row] : -1
        }
    }

    /// The text columns (interned) worth keying by: not constant (that key is the step
    /// prediction) and not splitting the rows as an earlier one does (the same prediction). The
    /// encoder tries only these, which keeps its search small; the decoder takes any.
    static func keyCandidates(_ ids: [[Int]]) -> [Int] {
        var kept: [Int] = []
        for (index, column) in ids.enumerated() where column.contains(where: { $0 != column.first }) {
            if !kept.contains(where: { ids[$0] == column }) { kept.append(index) }
        }
        return kept
    }

    /// The sets of one to three of `columns` a keyed prediction may use.
    static func keySets(_ columns: [Int]) -> [[Int]] {
        var sets: [[Int]] = []
        for (i, a) in columns.enumerated() {
            sets.append([a])
            for (j, b) in columns.enumerated() where j > i {
                sets.append([a, b])
                for (k, c) in columns.enumerated() where k > j { sets.append([a, b, c]) }
            }
        }
        return sets
    }

    static let maxKeyColumns = 3

    /// Per document, the sum of each number field of its list's items.
    static func sums(of fields: [DocumentCodec.Field], lists: [[[DocumentCodec.Value]]]) -> [[Int64]] {
        fields.indices.filter { fields[$0].type == .int }.map { field in
            lists.map { list in list.reduce(Int64(0)) { sum, item in if case .int(let value) = item[field] { return sum &+ value } else { return sum } } }
        }
    }

    /// For each row, the row before it with the same id (the layout's first field, when it is
    /// text): the document's earlier version in this batch (a draft, then its lines added, then
    /// confirmed), whose list items the later version copies instead of sending again.
    static func earlierVersions(_ fields: [DocumentCodec.Field], _ ids: [DocumentCodec.Value]) -> [Int?] {
        guard case .text = fields.first?.type else { return ids.map { _ in nil } }
        var last: [ByteKey: Int] = [:]
        return ids.enumerated().map { row, id in
            guard case .text(let text) = id else { return nil }
            defer { last[ByteKey(text)] = row }
            return last[ByteKey(text)]
        }
    }

    /// Equal to the byte (Swift's `==` holds canonically equivalent text equal).
    static func identical(_ a: [DocumentCodec.Value], _ b: [DocumentCodec.Value]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { pair in
            switch pair {
            case (.text(let x), .text(let y)): return ByteKey(x) == ByteKey(y)
            case (.list(let x), .list(let y)): return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
            case (.text, _), (_, .text), (.list, _), (_, .list): return false
            default: return pair.0 == pair.1
            }
        }
    }

    /// How `list` is made from `before`: for each item, how many items of `before` to skip before
    /// the one it copies (always forward, at most `maxSkip`), or nil for an item sent in the columns.
    static func edits(from before: [[DocumentCodec.Value]], to list: [[DocumentCodec.Value]]) -> [Int?] {
        var position = 0
        return list.map { item in
            for skip in 0...maxSkip where position + skip < before.count && identical(before[position + skip], item) {
                defer { position += skip + 1 }
                return skip
            }
            return nil
        }
    }

    static let maxSkip = 8

    static func writeGroup(_ fields: [DocumentCodec.Field], rows: [[DocumentCodec.Value]], parents: [Int]?, context: Context,
                           path: String, into out: inout Output) {
        var ints = context.ints, texts = context.texts
        for index in order(fields) {
            let field = fields[index], name = path + "." + field.name
            let column = rows.map { $0[index] }
            switch field.type {
            case .list(_, _, let itemFields):
                let lists = column.map { if case .list(let list) = $0 { return list } else { return [] } }
                let earlier = earlierVersions(fields, rows.map { $0.first ?? .absent })
                var fresh: [[DocumentCodec.Value]] = [], freshParents: [Int] = []
                out.column(name + " count") { writer in for list in lists { writer.varint(UInt64(list.count)) } }
                out.column(name + " from earlier version") { writer in
                    for (row, list) in lists.enumerated() {
                        guard let before = earlier[row] else {
                            fresh += list
                            freshParents += repeatElement(row, count: list.count)
                            continue
                        }
                        for (item, skip) in zip(list, edits(from: lists[before], to: list)) {
                            writer.varint(skip.map { UInt64($0) + 1 } ?? 0)
                            if skip == nil {
                                fresh.append(item)
                                freshParents.append(row)
                            }
                        }
                    }
                }
                let broadcast = Context(ints: [], texts: texts.map { column in freshParents.map { column[$0] } })
                writeGroup(itemFields, rows: fresh, parents: freshParents, context: broadcast, path: name, into: &out)
                ints += sums(of: itemFields, lists: lists)
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
        // Every prediction ranked by its estimate; the best few (and raw) by what they deflate to.
        var candidates: [(arguments: [UInt64], residuals: [Int64], bits: Int)] = []
        func consider(_ arguments: [UInt64], _ residuals: [Int64]) { candidates.append((arguments, residuals, estimatedBits(residuals))) }
        consider([IntCoding.raw.rawValue], values)
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
        let ids = texts.map(interned)
        for set in keySets(keyCandidates(ids)) {
            var last: [Key: Int64] = [:]
            let columns = set.map { ids[$0] }
            consider([IntCoding.keyed.rawValue, UInt64(set.count)] + set.map(UInt64.init), zip(values, rows).map { value, row in
                let key = Key(columns, row)
                defer { last[key] = value }
                return value &- (last[key] ?? 0)
            })
        }
        let shortlist = [candidates[0]] + candidates.dropFirst().sorted { $0.bits < $1.bits }.prefix(shortlisted)
        var best: (bytes: [UInt8], size: Int)? = nil
        for candidate in shortlist {
            var out = WireWriter()
            for argument in candidate.arguments { out.varint(argument) }
            for residual in candidate.residuals { out.int(residual) }
            let size = deflatedSize(out.bytes)
            if size < best?.size ?? Int.max { best = (out.bytes, size) }
        }
        writer.raw(best?.bytes ?? [])
    }

    /// How many codings of a column, besides raw, are tried by deflating them.
    static let shortlisted = 4

    static func writeTexts(_ values: [String], rows: [Int], texts: [[String]], into writer: inout WireWriter) {
        // Predictions that get more than half of the rows right, the best few by how many, then
        // those and plain by what they deflate to.
        var candidates: [(arguments: [UInt64], same: [Bool], matches: Int)] = []
        func consider(_ arguments: [UInt64], _ predicted: (Int, Int) -> String) {
            var same: [Bool] = []
            same.reserveCapacity(values.count)
            for (index, row) in rows.enumerated() { same.append(ByteKey(values[index]) == ByteKey(predicted(index, row))) }
            let matches = same.filter { $0 }.count
            if matches * 2 > values.count { candidates.append((arguments, same, matches)) }
        }
        for (j, reference) in texts.enumerated() {
            consider([TextCoding.sameAs.rawValue, UInt64(j)]) { reference[$1] }
        }
        let ids = texts.map(interned)
        for set in keySets(keyCandidates(ids)) where set.count < maxKeyColumns {
            var prediction = TextPrediction(set.map { ids[$0] })
            consider([TextCoding.keyed.rawValue, UInt64(set.count)] + set.map(UInt64.init)) { index, row in
                defer { prediction.saw(values[index], at: row) }
                return prediction.predict(row)
            }
        }
        var plain = WireWriter()
        plain.varint(TextCoding.plain.rawValue)
        TextColumn.write(values, into: &plain)
        var best = (bytes: plain.bytes, size: deflatedSize(plain.bytes))
        if !values.isEmpty {
            let table = Array(Set(values.map(ByteKey.init))).sorted { $0.bytes.lexicographicallyPrecedes($1.bytes) }
            var position: [ByteKey: Int] = [:]
            for (index, key) in table.enumerated() { position[key] = index }
            var out = WireWriter()
            out.varint(TextCoding.dictionary.rawValue)
            out.varint(UInt64(table.count))
            TextColumn.write(table.map { String(decoding: $0.bytes, as: UTF8.self) }, into: &out)
            for value in values {
                let index = position[ByteKey(value)] ?? 0
                if table.count <= 256 { out.byte(UInt8(index)) } else { out.varint(UInt64(index)) }
            }
            let size = deflatedSize(out.bytes)
            if size < best.size { best = (out.bytes, size) }
        }
        for candidate in candidates.sorted(by: { $0.matches > $1.matches }).prefix(shortlisted) {
            var out = WireWriter()
            for argument in candidate.arguments { out.varint(argument) }
            out.varint(UInt64(values.count - candidate.matches))
            if candidate.matches < values.count { for flag in candidate.same { out.varint(flag ? 0 : 1) } }
            TextColumn.write(zip(values, candidate.same).filter { !$1 }.map(\.0), into: &out)
            let size = deflatedSize(out.bytes)
            if size < best.size { best = (out.bytes, size) }
        }
        writer.raw(best.bytes)
    }

    // MARK: Reading

    /// What decoding has left to spend: list items (bounded by the body) and rebuilt bytes.
    struct Budget {
        var items: Int
        var rebuiltBytes = DocumentColumns.maxRebuiltBytes
    }

    static func read(_ count: Int, entities: [String], context: Context, from reader: inout WireReader) throws(WireReader.Failure) -> [[UInt8]] {
        // Per change: 0 whole, else the kind's code.
        var forms: [UInt8] = []
        for index in 0..<count {
            let form = try reader.varint()
            switch form {
            case whole: forms.append(0)
            case namedByEntity:
                guard let kind = DocumentKind(entity: entities[index]) else { throw .tooLarge(what: "payload form of a change of no document kind", value: form) }
                forms.append(kind.rawValue)
            default:
                guard form <= 256, DocumentKind(rawValue: UInt8(form - 1)) != nil else { throw .tooLarge(what: "payload form", value: form) }
                forms.append(UInt8(form - 1))
            }
        }
        var decoded = [(kind: DocumentKind, values: [DocumentCodec.Value])?](repeating: nil, count: count)
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
                                texts: context.texts.map { column in indexes.map { column[$0] } }
                                    + earlierFields(kind, indexes: indexes, decoded: decoded))
            budget.items = reader.bytes.count - reader.offset
            let rows = try readGroup(fields, count: indexes.count, parents: nil, context: local, budget: &budget, from: &reader)
            for (row, index) in zip(rows, indexes) {
                let payload = DocumentCodec.encode(kind, values: row)
                guard payload.count <= Batch.maxPayloadBytes else { throw .tooLarge(what: "document bytes", value: UInt64(payload.count)) }
                budget.rebuiltBytes -= payload.count
                guard budget.rebuiltBytes >= 0 else { throw .tooLarge(what: "rebuilt payload bytes", value: UInt64(maxRebuiltBytes - budget.rebuiltBytes)) }
                payloads[index] = payload
                decoded[index] = (kind, row)
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
                var counts: [Int] = [], total = 0
                for _ in 0..<count {
                    let items = try reader.count("\(field.name) count", limit: limit)
                    total += items
                    // Every item costs at least one byte of the body (an edit, or its columns).
                    guard total <= budget.items else { throw .tooLarge(what: "\(field.name) items", value: UInt64(total)) }
                    counts.append(items)
                }
                budget.items -= total
                let earlier = earlierVersions(fields, (0..<count).map { columns[0].isEmpty ? .absent : columns[0][$0] })
                var ops: [[Int?]] = [], freshParents: [Int] = []
                for row in 0..<count {
                    guard let before = earlier[row] else {
                        ops.append([Int?](repeating: nil, count: counts[row]))
                        freshParents += repeatElement(row, count: counts[row])
                        continue
                    }
                    var position = 0, rowOps: [Int?] = []
                    for _ in 0..<counts[row] {
                        let op = try reader.varint()
                        if op == 0 {
                            rowOps.append(nil)
                            freshParents.append(row)
                        } else {
                            // Skip `op - 1` items of the earlier version, copy the next one.
                            guard op - 1 < UInt64(max(0, counts[before] - position)) else { throw .tooLarge(what: "\(field.name) edit", value: op) }
                            position += Int(op - 1)
                            rowOps.append(position)
                            position += 1
                        }
                    }
                    ops.append(rowOps)
                }
                let broadcast = Context(ints: [], texts: texts.map { column in freshParents.map { column[$0] } })
                let fresh = try readGroup(itemFields, count: freshParents.count, parents: freshParents, context: broadcast, budget: &budget, from: &reader)
                var lists: [[[DocumentCodec.Value]]] = [], next = 0
                for row in 0..<count {
                    var list: [[DocumentCodec.Value]] = []
                    for op in ops[row] {
                        if let op, let before = earlier[row] {
                            list.append(lists[before][op])
                        } else {
                            list.append(fresh[next])
                            next += 1
                        }
                    }
                    lists.append(list)
                }
                columns[index] = lists.map { .list($0) }
                ints += sums(of: itemFields, lists: lists)
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
        case .keyed:
            let count = try reader.varint()
            guard count >= 1, count <= UInt64(maxKeyColumns) else { throw .tooLarge(what: "\(name) key columns", value: count) }
            for _ in 0..<count { arguments.append(try reference(try reader.varint(), in: texts.count, name)) }
        default: break
        }
        let keyColumns = coding == .keyed ? arguments.map { interned(texts[$0]) } : []
        var values: [Int64] = []
        values.reserveCapacity(rows.count)
        var previous: Int64 = 0, previousParent = -1
        var last: [Key: Int64] = [:]
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
                let key = Key(keyColumns, row)
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
        if coding == .plain { return try TextColumn.read(rows.count, maxBytes: limit, from: &reader) }
        if coding == .dictionary {
            let size = try reader.count("\(name) table size", limit: rows.count)
            guard size > 0 || rows.isEmpty else { throw .tooLarge(what: "\(name) table size", value: 0) }
            let table = try TextColumn.read(size, maxBytes: limit, from: &reader)
            var values: [String] = []
            values.reserveCapacity(rows.count)
            for _ in rows {
                let index = size <= 256 ? UInt64(try reader.byte()) : try reader.varint()
                guard index < UInt64(size) else { throw .tooLarge(what: "\(name) table index", value: index) }
                values.append(table[Int(index)])
            }
            return values
        }
        var source = 0
        var prediction = TextPrediction([])
        if coding == .sameAs {
            source = try reference(try reader.varint(), in: texts.count, name)
        } else {
            let count = try reader.varint()
            guard count >= 1, count < UInt64(maxKeyColumns) else { throw .tooLarge(what: "\(name) key columns", value: count) }
            var columns: [[Int]] = []
            for _ in 0..<count { columns.append(interned(texts[try reference(try reader.varint(), in: texts.count, name)])) }
            prediction = TextPrediction(columns)
        }
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
        values.reserveCapacity(rows.count)
        for (index, row) in rows.enumerated() {
            let value: String
            if differs[index] {
                value = own.next() ?? ""
            } else {
                value = coding == .sameAs ? texts[source][row] : prediction.predict(row)
            }
            guard value.utf8.count <= limit else { throw .tooLarge(what: "\(name) bytes", value: UInt64(value.utf8.count)) }
            if coding == .keyed { prediction.saw(value, at: row) }
            values.append(value)
        }
        return values
    }
}
