import Deflate
import Store

/// The column codings of a TABLE frame since protocol 4 (docs/protocol.md §8, which is the spec).
/// A frame sends one column after another; each column is laid out for what deflate does well:
///
/// - an optional column first sends one presence flag per row (0 NULL, 1 a value), then only
///   the values that are there;
/// - integers: the divisor every value shares (money in whole units, quantities in boxes), then
///   whether the values or their steps from the row before follow (the encoder deflates both and
///   keeps the smaller: sorted keys and instants go as steps, random figures as they are), then
///   the zig-zag varints; a `.share` column is predicted from another row first (the residuals
///   are what is scaled and stepped). Since protocol 5 a third layout, held differences: each
///   value of a row the device already holds (the frame's held flags) as its difference to the
///   value the device holds, the others as they are, scaled; the evening's stock counts and
///   price revisions are small changes to what the device has;
/// - part numbers of an upsert: the catalogue position as a step from the previous row's
///   (0 escapes a literal part number the catalogue lacks), as in protocol 3;
/// - all other text: a `TextColumn` (literals once, repeats by index, identifiers ending in
///   digits as prefix, digit count and number, so `CPL100241`, `ERP-CPL100241-0` and a
///   product's `№17` cost about nothing in key order).
///
/// Decoding is bounded by the frame: every count is the frame's row count (at most
/// `TableFrame.maxRows`), every value costs at least one byte of the body, and arithmetic on
/// hostile numbers wraps or is refused, never traps.
enum TableColumns {
    static let textLimit = 16 * 1024

    /// `held`: per row, the row the device holds (as the hub's shadow knows it), or nil; empty
    /// when the frame has no held flags. Returns whether the column chose held differences.
    @discardableResult
    static func encode(_ column: WorkingSetTables.Column, at index: Int, of rows: [WorkingSetRow], table: WorkingSetTables.Table,
                       catalogue: Catalogue?, held: [WorkingSetRow?] = [], into writer: inout WireWriter) throws -> Bool {
        let optional = column.kind == .optionalInteger || column.kind == .optionalText
        var present: [Int] = []
        present.reserveCapacity(rows.count)
        for (row, values) in rows.enumerated() {
            let value = values[index]
            if case .null = value {
                guard optional else { throw TableFrame.Failure.wrongType(table: table.name, column: column.name) }
                writer.varint(0)
            } else {
                if optional { writer.varint(1) }
                present.append(row)
            }
        }
        switch column.kind {
        case .integer, .optionalInteger:
            var numbers: [Int64] = []
            numbers.reserveCapacity(present.count)
            for row in present {
                guard case .integer(let number) = rows[row][index] else { throw TableFrame.Failure.wrongType(table: table.name, column: column.name) }
                numbers.append(number)
            }
            let references = held.isEmpty ? [] : present.map { reference(held[$0], index) }
            var predicted = numbers
            if case .share(let group, let by) = column.coding {
                predicted = shareResiduals(numbers, rows: present.map { rows[$0] }, group: group, by: by, encoding: true)
            }
            return try writeIntegers(predicted, held: numbers, references: references, into: &writer)
        case .text, .optionalText:
            var texts: [String] = []
            texts.reserveCapacity(present.count)
            for row in present {
                guard case .text(let text) = rows[row][index] else { throw TableFrame.Failure.wrongType(table: table.name, column: column.name) }
                texts.append(text)
            }
            if column.coding == .part, let catalogue {
                var previousPosition = -1
                for text in texts {
                    if let position = catalogue.position(of: text) {
                        let delta = Int64(position - previousPosition)
                        previousPosition = position
                        writer.varint(UInt64(bitPattern: (delta << 1) ^ (delta >> 63)) + 1)
                    } else {
                        writer.varint(0)
                        writer.string(text)
                    }
                }
            } else {
                TextColumn.write(texts, into: &writer)
            }
        }
        return false
    }

    /// The value a held difference is taken against: the held row's integer in this column
    /// (none when the row is not held, or holds NULL there).
    static func reference(_ row: WorkingSetRow?, _ index: Int) -> Int64? {
        guard let row, index < row.count, case .integer(let value) = row[index] else { return nil }
        return value
    }

    /// Decodes one column and appends its value to each row. `rows` holds the columns before
    /// this one (a `.share` column reads its group from them).
    /// `held` as in `encode`: the device's own rows for the rows the frame flags as held.
    static func decode(_ column: WorkingSetTables.Column, at index: Int, count: Int, into rows: inout [WorkingSetRow], table: WorkingSetTables.Table,
                       catalogue: Catalogue?, held: [WorkingSetRow?] = [], from reader: inout WireReader) throws {
        var present: [Int] = []
        present.reserveCapacity(count)
        if column.kind == .optionalInteger || column.kind == .optionalText {
            for row in 0..<count {
                let flag = try reader.varint()
                guard flag <= 1 else { throw WireReader.Failure.tooLarge(what: "\(table.name).\(column.name) presence flag", value: flag) }
                if flag == 1 { present.append(row) }
            }
        } else {
            present = Array(0..<count)
        }
        var values = [DatabaseValue](repeating: .null, count: count)
        switch column.kind {
        case .integer, .optionalInteger:
            let references = held.isEmpty ? [] : present.map { reference(held[$0], index) }
            var (numbers, layout) = try readIntegers(present.count, what: "\(table.name).\(column.name)", references: references, from: &reader)
            if case .share(let group, let by) = column.coding, layout != heldDifferences {
                numbers = shareResiduals(numbers, rows: present.map { rows[$0] }, group: group, by: by, encoding: false)
            }
            for (row, number) in zip(present, numbers) { values[row] = .integer(number) }
        case .text, .optionalText:
            if column.coding == .part, let catalogue {
                var previousPosition = -1
                for row in present {
                    let raw = try reader.varint()
                    if raw == 0 {
                        values[row] = .text(try reader.string(limit: 4096))
                        continue
                    }
                    let zigzag = raw - 1
                    let delta = Int64(bitPattern: (zigzag >> 1) ^ (0 &- (zigzag & 1)))
                    let position = Int64(previousPosition) &+ delta
                    guard position >= 0, position < Int64(catalogue.parts.count) else {
                        throw TableFrame.Failure.positionOutOfCatalogue(table: table.name, position: Int(truncatingIfNeeded: position))
                    }
                    previousPosition = Int(position)
                    values[row] = .text(catalogue.parts[previousPosition])
                }
            } else {
                let texts = try TextColumn.read(present.count, maxBytes: textLimit, from: &reader)
                for (row, text) in zip(present, texts) { values[row] = .text(text) }
            }
        }
        for row in 0..<count { rows[row].append(values[row]) }
    }

    // MARK: Integers

    /// The integer layouts: 0 values, 1 steps, 2 held differences (protocol 5).
    static let values: UInt64 = 0, stepsLayout: UInt64 = 1, heldDifferences: UInt64 = 2

    /// Divisor | layout | the zig-zag varints of value / divisor (or of the steps, or of the held
    /// differences). `predicted` is what layouts 0 and 1 carry (a `.share` column's residuals,
    /// else the values); `held` the values themselves and `references` per value what the
    /// device holds (empty: no held rows in the frame, layout 2 is not tried).
    @discardableResult
    static func writeIntegers(_ predicted: [Int64], held: [Int64] = [], references: [Int64?] = [], into writer: inout WireWriter) throws -> Bool {
        func scaled(_ numbers: [Int64]) -> (divisor: UInt64, scaled: [Int64]) {
            var divisor: UInt64 = 0
            for number in numbers { divisor = gcd(divisor, number.magnitude) }
            // All zero, or only Int64.min (whose magnitude has no positive Int64): no scaling.
            if divisor == 0 || divisor > UInt64(Int64.max) { divisor = 1 }
            return (divisor, numbers.map { $0 / Int64(divisor) })
        }
        let (divisor, values) = scaled(predicted)
        var plain = WireWriter(), stepped = WireWriter()
        for value in values { plain.int(value) }
        for value in steps(values) { stepped.int(value) }
        // Deflate decides: a frame is at most a few thousand values, so trying each is cheap, and
        // it ranks them the way the session's stream will (bit counts do not: a column of
        // repeated random figures is cheaper plain, though its steps look no larger).
        var choice = (layout: Self.values, divisor: divisor, bytes: plain.bytes, size: try deflatedSize(plain.bytes))
        if predicted.count > 1 {
            let size = try deflatedSize(stepped.bytes)
            if size < choice.size { choice = (stepsLayout, divisor, stepped.bytes, size) }
        }
        if references.count == held.count, references.contains(where: { $0 != nil }) {
            let differences = zip(held, references).map { value, reference in reference.map { value &- $0 } ?? value }
            let (heldDivisor, scaledDifferences) = scaled(differences)
            var writer = WireWriter()
            for value in scaledDifferences { writer.int(value) }
            let size = try deflatedSize(writer.bytes)
            if size < choice.size { choice = (heldDifferences, heldDivisor, writer.bytes, size) }
        }
        writer.varint(choice.divisor)
        writer.varint(choice.layout)
        writer.raw(choice.bytes)
        return choice.layout == heldDifferences
    }

    /// The values and the layout they came in. Held differences add each value's reference
    /// (wrapping: a hostile difference cannot trap; the frame's checksum refuses a wrong value).
    static func readIntegers(_ count: Int, what: String, references: [Int64?] = [], from reader: inout WireReader) throws -> (numbers: [Int64], layout: UInt64) {
        let divisor = try reader.varint()
        guard divisor >= 1, divisor <= UInt64(Int64.max) else { throw WireReader.Failure.tooLarge(what: "\(what) divisor", value: divisor) }
        let mode = try reader.varint()
        guard mode <= heldDifferences else { throw WireReader.Failure.tooLarge(what: "\(what) integer layout", value: mode) }
        var numbers: [Int64] = []
        numbers.reserveCapacity(count)
        var previous: Int64 = 0
        for position in 0..<count {
            let residual = try reader.int()
            let scaled = mode == stepsLayout ? previous &+ residual : residual
            previous = scaled
            let (number, overflow) = scaled.multipliedReportingOverflow(by: Int64(divisor))
            guard !overflow else { throw WireReader.Failure.tooLarge(what: "\(what) value", value: scaled.magnitude) }
            if mode == heldDifferences, position < references.count, let reference = references[position] {
                numbers.append(number &+ reference)
            } else {
                numbers.append(number)
            }
        }
        return (numbers, mode)
    }

    static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    static func deflatedSize(_ bytes: [UInt8]) throws -> Int {
        try Deflater(level: 6, format: .raw).compress(bytes, flush: .sync).count
    }

    // MARK: Shares

    /// Values to residuals (`encoding`) or residuals back to values: each value against the
    /// share of its group's reference that its `by` value had last. Both directions run the same
    /// steps on the actual values, with wrapping arithmetic, so they agree on any input and a
    /// hostile residual cannot trap.
    static func shareResiduals(_ input: [Int64], rows: [WorkingSetRow], group: [Int], by: Int, encoding: Bool) -> [Int64] {
        var references: [[DatabaseValue]: Int64] = [:]
        var percents: [DatabaseValue: Int64] = [:]
        var output: [Int64] = []
        output.reserveCapacity(input.count)
        for (row, given) in zip(rows, input) {
            let key = group.map { row[$0] }
            guard let reference = references[key] else {
                references[key] = given
                output.append(given)
                continue
            }
            let percent = percents[row[by]] ?? 100
            let predicted = (reference &* percent) / 100
            let value = encoding ? given : predicted &+ given
            output.append(encoding ? given &- predicted : value)
            // The percentage this row had, rounded, for the next group's row at the same level.
            if reference > 0, value >= 0, value <= Int64.max / 100 - reference {
                percents[row[by]] = (value * 100 + reference / 2) / reference
            } else {
                percents[row[by]] = 100
            }
        }
        return output
    }
}
