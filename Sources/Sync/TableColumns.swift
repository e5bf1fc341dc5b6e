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
///   are what is scaled and stepped);
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

    static func encode(_ column: WorkingSetTables.Column, at index: Int, of rows: [WorkingSetRow], table: WorkingSetTables.Table,
                       catalogue: Catalogue?, into writer: inout WireWriter) throws {
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
            if case .share(let group, let by) = column.coding {
                numbers = shareResiduals(numbers, rows: present.map { rows[$0] }, group: group, by: by, encoding: true)
            }
            try writeIntegers(numbers, into: &writer)
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
    }

    /// Decodes one column and appends its value to each row. `rows` holds the columns before
    /// this one (a `.share` column reads its group from them).
    static func decode(_ column: WorkingSetTables.Column, count: Int, into rows: inout [WorkingSetRow], table: WorkingSetTables.Table,
                       catalogue: Catalogue?, from reader: inout WireReader) throws {
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
            var numbers = try readIntegers(present.count, what: "\(table.name).\(column.name)", from: &reader)
            if case .share(let group, let by) = column.coding {
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

    /// Divisor | 0 values or 1 steps | the zig-zag varints of value / divisor (or of the steps).
    static func writeIntegers(_ numbers: [Int64], into writer: inout WireWriter) throws {
        var divisor: UInt64 = 0
        for number in numbers { divisor = gcd(divisor, number.magnitude) }
        // All zero, or only Int64.min (whose magnitude has no positive Int64): no scaling.
        if divisor == 0 || divisor > UInt64(Int64.max) { divisor = 1 }
        let scaled = numbers.map { $0 / Int64(divisor) }
        let differences = steps(scaled)
        var plain = WireWriter(), stepped = WireWriter()
        for value in scaled { plain.int(value) }
        for value in differences { stepped.int(value) }
        // Deflate decides: a frame is at most a few thousand values, so trying both is cheap, and
        // it ranks the two the way the session's stream will (bit counts do not: a column of
        // repeated random figures is cheaper plain, though its steps look no larger).
        let useSteps = try numbers.count > 1 && deflatedSize(stepped.bytes) < deflatedSize(plain.bytes)
        writer.varint(divisor)
        writer.varint(useSteps ? 1 : 0)
        writer.raw(useSteps ? stepped.bytes : plain.bytes)
    }

    static func readIntegers(_ count: Int, what: String, from reader: inout WireReader) throws -> [Int64] {
        let divisor = try reader.varint()
        guard divisor >= 1, divisor <= UInt64(Int64.max) else { throw WireReader.Failure.tooLarge(what: "\(what) divisor", value: divisor) }
        let mode = try reader.varint()
        guard mode <= 1 else { throw WireReader.Failure.tooLarge(what: "\(what) integer layout", value: mode) }
        var numbers: [Int64] = []
        numbers.reserveCapacity(count)
        var previous: Int64 = 0
        for _ in 0..<count {
            let residual = try reader.int()
            let scaled = mode == 1 ? previous &+ residual : residual
            previous = scaled
            let (number, overflow) = scaled.multipliedReportingOverflow(by: Int64(divisor))
            guard !overflow else { throw WireReader.Failure.tooLarge(what: "\(what) value", value: scaled.magnitude) }
            numbers.append(number)
        }
        return numbers
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
