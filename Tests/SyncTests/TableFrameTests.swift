import Store
import Sync
import Testing

/// TABLE frames in protocol 4's column layouts (docs/protocol.md §8): every table of the working
/// set round-trips random rows (Polish, Bulgarian and Russian text, NULLs, the integer extremes,
/// part numbers in and out of the catalogue), and a cut or damaged frame is refused, never trapped on.
@Suite("TABLE frame column layouts")
struct TableFrameTests {
    /// SplitMix64: deterministic, so a failing seed can be replayed.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }
    }

    static let catalogue = Catalogue(parts: (0..<200).map { "PN-\(10_000 + $0 * 3)" })
    static let words = ["Hurtownia", "Żółw", "Łoś", "Sp. z o.o.", "ul. Piłsudskiego", "Łódź", "Шипка", "София", "Лепило за плочки",
                        "Затирка цементная", "Санкт-Петербург", "д. 12", "60×120", "", " ", "\n", "№", "#", "KP/448", "CPL100241",
                        "ERP-CPL100241-0", "000123", "0", "x\u{301}", "é", "e\u{301}", "😀"]

    static func text(_ random: inout Random) -> String {
        switch random.below(6) {
        case 0: return "CPL\(100_000 + random.below(3_000))"
        case 1: return "ERP-CPL\(100_000 + random.below(50))-\(random.below(3))"
        case 2: return String(repeating: "9", count: 1 + random.below(25))
        default: return (0..<random.below(5)).map { _ in random.pick(words) }.joined(separator: random.pick([" ", "\n", ", ", ""]))
        }
    }

    static func integer(_ random: inout Random) -> Int64 {
        switch random.below(8) {
        case 0: return random.pick([Int64.min, Int64.max, Int64.min + 1, Int64.max - 1, 0, -1, 1])
        case 1: return Int64(bitPattern: random.next())
        case 2: return Int64(random.below(100)) * 100
        case 3: return -Int64(random.below(1_000_000))
        default: return Int64(random.below(6_000))
        }
    }

    static func row(_ table: WorkingSetTables.Table, _ random: inout Random) -> WorkingSetRow {
        table.columns.map { column -> DatabaseValue in
            let optional = column.kind == .optionalInteger || column.kind == .optionalText
            if optional, random.below(3) == 0 { return .null }
            switch column.kind {
            case .integer, .optionalInteger: return .integer(integer(&random))
            case .text, .optionalText:
                if column.coding == .part {
                    return .text(random.below(5) == 0 ? "PN-\(random.below(100_000))" : random.pick(catalogue.parts))
                }
                return .text(text(&random))
            }
        }
    }

    @Test("every working-set table: random rows come back exactly, upserts and purges", arguments: WorkingSetTables.all.map(\.name))
    func roundTrip(table name: String) throws {
        let table = WorkingSetTables.named(name)!
        var random = Random(state: UInt64(table.id) &* 7919)
        for round in 0..<40 {
            let count = [0, 1, 2, 17, 300][round % 5]
            var rows = (0..<count).map { _ in Self.row(table, &random) }
            // Sorted by key some of the time, as the hub sends them; a price table's groups repeat.
            if round % 2 == 0 { rows.sort { table.key(of: $0).lexicographicallyPrecedes(table.key(of: $1)) } }
            for phase in [TableFrame.Phase.upsert, .purge] {
                let sent = phase == .upsert ? rows : rows.map { Array($0[..<table.keyCount]) }
                let frame = TableFrame(table: table, phase: phase, firstPosition: round, rows: sent)
                let body = try frame.encode(catalogue: Self.catalogue)
                #expect(try TableFrame.decode(body, catalogue: Self.catalogue) == frame, "\(name) round \(round) \(phase)")
            }
        }
    }

    @Test("the device's catalogue read in order keeps no index, yet finds every part where the hub's does; a list out of order or with a part twice is sorted as before")
    func orderedCatalogue() throws {
        let parts = Self.catalogue.parts + ["Łódź-1", "Шипка-2", "😀"]
        let hub = Catalogue(parts: parts.reversed())
        let device = Catalogue(ordered: hub.parts)
        #expect(device == hub && device.parts == hub.parts)
        for (position, part) in hub.parts.enumerated() {
            #expect(device.position(of: part) == position && hub.position(of: part) == position, "\(part)")
        }
        for missing in ["", "PN-10001", "PN-99999", "ZZZ", "Łódź"] { #expect(device.position(of: missing) == nil) }
        #expect(Catalogue(ordered: []).position(of: "PN-10000") == nil)
        #expect(Catalogue(ordered: ["PN-2", "PN-1"]) == Catalogue(parts: ["PN-1", "PN-2"]))
        #expect(Catalogue(ordered: ["PN-1", "PN-1", "PN-2"]).position(of: "PN-1") == 0)
        // Frames of every table encoded against the hub's catalogue decode against the device's.
        var random = Random(state: 16)
        for table in WorkingSetTables.all {
            let frame = TableFrame(table: table, phase: .upsert, firstPosition: 0, rows: (0..<17).map { _ in Self.row(table, &random) })
            #expect(try TableFrame.decode(frame.encode(catalogue: hub), catalogue: device) == frame, "\(table.name)")
        }
    }

    @Test("prices as shares of the list price: level prices of a list cost about nothing, and odd ones still come back")
    func priceShares() throws {
        let prices = WorkingSetTables.named("prices")!
        var random = Random(state: 5)
        var rows: [WorkingSetRow] = []
        for part in Self.catalogue.parts {
            for currency in ["BGN", "PLN", "RUB"] {
                let base = Int64(150 + random.below(6_000))
                rows.append([.text(part), .text("customer"), .text(currency), .integer(base), .null])
                rows.append([.text(part), .text("dealer"), .text(currency), .integer(base * 85 / 100), .null])
                rows.append([.text(part), .text("promo"), .text(currency), .integer(base * 75 / 100), .text("2099-12-31")])
            }
        }
        let frame = TableFrame(table: prices, phase: .upsert, firstPosition: 0, rows: rows)
        let body = try frame.encode(catalogue: Self.catalogue)
        #expect(try TableFrame.decode(body, catalogue: Self.catalogue) == frame)
        // The same rows with level prices that are no share of the list price: each of the 1,200
        // predicted prices costs at least a byte more there (a 0 residual is one byte).
        var random2 = Random(state: 6)
        let unrelated = rows.map { row -> WorkingSetRow in
            guard row[1] != .text("customer") else { return row }
            var copy = row
            copy[3] = .integer(Int64(150 + random2.below(6_000)))
            return copy
        }
        let unrelatedBody = try TableFrame(table: prices, phase: .upsert, firstPosition: 0, rows: unrelated).encode(catalogue: Self.catalogue)
        #expect(body.count + 1_200 <= unrelatedBody.count, "\(body.count) B as shares, \(unrelatedBody.count) B without")
        // A price that is no share of anything (0 list price, negative, huge) still round-trips.
        let odd: [WorkingSetRow] = [
            [.text("PN-10000"), .text("customer"), .text("PLN"), .integer(0), .null],
            [.text("PN-10000"), .text("dealer"), .text("PLN"), .integer(Int64.max), .null],
            [.text("PN-10003"), .text("customer"), .text("PLN"), .integer(-5), .null],
            [.text("PN-10003"), .text("dealer"), .text("PLN"), .integer(Int64.min), .null],
            [.text("PN-10006"), .text("customer"), .text("PLN"), .integer(Int64.max), .null],
            [.text("PN-10006"), .text("dealer"), .text("PLN"), .integer(7), .null],
        ]
        let oddFrame = TableFrame(table: prices, phase: .upsert, firstPosition: 0, rows: odd)
        #expect(try TableFrame.decode(oddFrame.encode(catalogue: Self.catalogue), catalogue: Self.catalogue) == oddFrame)
    }

    /// The device's rows as a `TableFrame.HeldRows` answer: by key, from `rows`, keys compared
    /// by their bytes as SQLite compares them (Swift's `==` holds "é" and "e\u{301}" equal).
    static func holding(_ rows: [WorkingSetRow]) -> TableFrame.HeldRows {
        { table, keys in
            keys.map { key in rows.first { table.key(of: $0) == table.key(of: key) } }
        }
    }

    @Test("evening counts travel as differences to what the device holds (protocol 5): fewer bytes, the same rows, and the docs' example bytes")
    func heldDifferences() throws {
        let stock = WorkingSetTables.named("stock")!
        let differences: [Int64] = [-6, 3, -1, 12, -4, 2, -30, 5, -2, 1, -9, 7]
        let device: [WorkingSetRow] = differences.indices.map {
            [.text("warehouse"), .text(Self.catalogue.parts[$0 * 5]), .integer(37 + Int64($0 * 7_919 % 4_000))]
        }
        let evening = zip(device, differences).map { row, difference -> WorkingSetRow in
            guard case .integer(let count) = row[2] else { return row }
            return [row[0], row[1], .integer(count + difference)]
        }
        let frame = TableFrame(table: stock, phase: .upsert, firstPosition: 9, rows: evening, held: device.map { Optional($0) })
        let body = try frame.encode(catalogue: Self.catalogue)
        #expect(try TableFrame.decode(body, catalogue: Self.catalogue, heldRows: Self.holding(device)) == frame)
        // The counts cost a byte each instead of two (the flags, all 1, deflate to almost nothing).
        let quantities = try #require(try frame.columnSpans(catalogue: Self.catalogue).first { $0.name == "quantity" })
        let unheld = TableFrame(table: stock, phase: .upsert, firstPosition: 9, rows: evening)
        let plainQuantities = try #require(try unheld.columnSpans(catalogue: Self.catalogue).first { $0.name == "quantity" })
        #expect(quantities.range.count + 8 <= plainQuantities.range.count, "\(quantities.range.count) B with held differences, \(plainQuantities.range.count) B without")
        // docs/protocol.md §6: held flags 01 and a 1 per row; the quantity column: divisor 1, layout 2, 31 − 37 → zig-zag 11.
        #expect(Array(body[13...25]) == [0x01] + [UInt8](repeating: 0x01, count: 12))
        #expect(Array(body[quantities.range].prefix(3)) == [0x01, 0x02, 0x0B])
        // A device that does not hold a flagged row, or holds another count, refuses the frame.
        #expect(throws: TableFrame.Failure.notHeld(table: "stock", position: 9 + 4)) {
            try TableFrame.decode(body, catalogue: Self.catalogue, heldRows: Self.holding(device.enumerated().filter { $0.offset != 4 }.map(\.element)))
        }
        #expect(throws: TableFrame.Failure.notHeld(table: "stock", position: 9)) { try TableFrame.decode(body, catalogue: Self.catalogue) }
        var moved = device
        moved[3][2] = .integer(1)
        #expect(throws: TableFrame.Failure.checksum(table: "stock", firstPosition: 9)) {
            try TableFrame.decode(body, catalogue: Self.catalogue, heldRows: Self.holding(moved))
        }
        // A frame where only some rows are held still comes back exactly, and one whose held
        // rows would not help sends no flags (protocol 4's bytes after the flag 0).
        var some = device.map { Optional($0) }
        some[0] = nil; some[7] = nil
        let mixed = TableFrame(table: stock, phase: .upsert, firstPosition: 9, rows: evening, held: some)
        #expect(try TableFrame.decode(mixed.encode(catalogue: Self.catalogue), catalogue: Self.catalogue, heldRows: Self.holding(device)).rows == evening)
        let products = WorkingSetTables.products
        let names: [WorkingSetRow] = [[.text("PN-10000"), .text("Klej do płytek 25 kg"), .text("szt"), .text("trade")]]
        let noIntegers = try TableFrame(table: products, phase: .upsert, firstPosition: 0, rows: names, held: names.map { Optional($0) }).encode(catalogue: Self.catalogue)
        #expect(noIntegers == (try TableFrame(table: products, phase: .upsert, firstPosition: 0, rows: names).encode(catalogue: Self.catalogue)))
        #expect(noIntegers[13] == 0x00)
    }

    @Test("prices revised a few percent go as differences to the device's price, with held and unheld rows of all tables round-tripping")
    func heldRoundTrip() throws {
        var random = Random(state: 77)
        for table in WorkingSetTables.all where !table.heldColumns.isEmpty {
            for round in 0..<20 {
                var keys = Set<[UInt8]>()
                let device = (0..<[1, 2, 17, 60][round % 4]).map { _ in Self.row(table, &random) }.filter { keys.insert(table.key(of: $0)).inserted }
                let sent = device.map { row -> WorkingSetRow in
                    var copy = row
                    for index in table.heldColumns where random.below(2) == 0 {
                        if case .integer(let value) = row[index] { copy[index] = .integer(value &+ (Int64(random.below(41)) - 20)) }
                    }
                    return copy
                }
                let held = device.map { random.below(4) == 0 ? nil : Optional($0) }
                let frame = TableFrame(table: table, phase: .upsert, firstPosition: round, rows: sent, held: held)
                let body = try frame.encode(catalogue: Self.catalogue)
                let decoded = try TableFrame.decode(body, catalogue: Self.catalogue, heldRows: Self.holding(device))
                #expect(decoded.rows == sent, "\(table.name) round \(round)")
            }
        }
    }

    @Test("a cut, extended or bit-flipped frame is refused with a typed error, never a trap")
    func hostileFrames() throws {
        var random = Random(state: 99)
        for table in WorkingSetTables.all {
            let frame = TableFrame(table: table, phase: .upsert, firstPosition: 0, rows: (0..<12).map { _ in Self.row(table, &random) })
            let body = try frame.encode(catalogue: Self.catalogue)
            for length in 0..<body.count {
                #expect(throws: (any Error).self) { try TableFrame.decode(Array(body.prefix(length)), catalogue: Self.catalogue) }
            }
            #expect(throws: (any Error).self) { try TableFrame.decode(body + [0], catalogue: Self.catalogue) }
            for _ in 0..<200 {
                var damaged = body
                let index = random.below(damaged.count)
                damaged[index] ^= UInt8(1 << random.below(8))
                do {
                    let decoded = try TableFrame.decode(damaged, catalogue: Self.catalogue)
                    // Only a flip outside what the checksum covers (the plan position) may decode,
                    // and then the rows are the ones sent.
                    #expect(decoded.rows == frame.rows && decoded.table == frame.table)
                } catch {
                    #expect(error is WireReader.Failure || error is TableFrame.Failure, "\(table.name): \(error)")
                }
            }
        }
    }
}
