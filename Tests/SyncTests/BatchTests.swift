@testable import Sync
import Testing

@Suite("Batch bodies: change records and document payloads as columns")
struct BatchTests {
    static let payloads = [
        #"{"currency":"PLN","customer_id":"CPL100001","lines":[{"amount_minor":3000,"line_no":1,"part_number":"PN-10001"},{"amount_minor":-5,"line_no":2,"part_number":"PN-1"}],"note":"Dostawa \"rano\" — доставка утром\nbrama 2","state":"confirmed","confirmed_at":null,"held":true}"#,
        #"{"id":"WAW07-000002","empty":{},"list":[],"flag":false}"#,
        #"{"b":1,"a":[[1,[2,[]]],{"z":null}],"":"empty key","a":2}"#,  // keys as written, repeated keys too
        #"{"price":12.5}"#,                        // a fraction: not ours to rewrite, goes as JSON
        #"{"name":"\u0141\u00f3d\u017a"}"#,        // \u escapes: goes as JSON
        #"{"a": 1}"#,                              // spaces: would not come back byte for byte
        "not json at all",
        "",
    ]

    func batch(_ payloads: [String]) -> Batch {
        Batch(id: "WAW07-1-\(payloads.count)", changes: payloads.enumerated().map { index, payload in
            SyncChange(seq: Int64(index + 1), changeId: "WAW07-\(index + 1)", at: 1_795_428_000_000 + Int64(index), entity: "order",
                       entityId: "WAW07-o\(index)", action: "confirmed", payload: payload)
        })
    }

    /// Every field byte for byte: `==` on Swift strings would accept canonically equivalent text.
    func expectIdentical(_ decoded: Batch, _ original: Batch, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(Array(decoded.id.utf8) == Array(original.id.utf8), sourceLocation: sourceLocation)
        #expect(decoded.changes.count == original.changes.count, sourceLocation: sourceLocation)
        for (got, sent) in zip(decoded.changes, original.changes) {
            #expect(got.seq == sent.seq && got.at == sent.at, sourceLocation: sourceLocation)
            for (a, b) in [(got.changeId, sent.changeId), (got.entity, sent.entity), (got.entityId, sent.entityId),
                           (got.action, sent.action), (got.payload, sent.payload)] {
                #expect(Array(a.utf8) == Array(b.utf8), sourceLocation: sourceLocation)
            }
        }
    }

    // MARK: A realistic day, in the languages the reps write in

    /// Orders of 10 lines (amount = base quantity × unit price), a held order, visits, payments
    /// and a complaint, written as the device writes them (sorted keys, compact, UTF-8 as is).
    static func realisticDay(orders: Int = 12) -> Batch {
        var random = SplitMix(seed: 6)
        var changes: [SyncChange] = []
        var counter: Int64 = 0, seq: Int64 = 0, at: Int64 = 1_795_428_000_000
        func nextID() -> String { counter += 1; return "WAW07-" + padded(counter, 6) }
        func add(_ entity: String, _ action: String, _ id: String, _ payload: String) {
            seq += 1
            changes.append(SyncChange(seq: seq, changeId: nextID(), at: at, entity: entity, entityId: id, action: action, payload: payload))
        }
        let notes = ["", "Zażółć gęślą jaźń", "Доставка утром", "Благодаря", #"Dostawa \"rano\" — brama 2\nдо 10:00"#, "Заплатено в брой"]
        let customers = ["CPL100012", "CBG100007", "CRU100233", "CPL100245"]
        let currencies = ["PLN", "BGN", "RUB", "PLN"]
        for index in 0..<orders {
            at += Int64(random.next(60_000...900_000))
            let id = nextID(), who = random.next(0...3)
            var lines: [String] = [], total: Int64 = 0
            for lineNo in 1...10 {
                let quantity = Int64(random.next(1...24)), boxes = random.next(0...4) == 0
                let base = boxes ? quantity * 12 : quantity, price = Int64(random.next(200...119_080))
                total += base * price
                lines.append(#"{"amount_minor":\#(base * price),"base_quantity":\#(base),"line_no":\#(lineNo),"part_number":"PN-\#(10_000 + random.next(0...399))","quantity":\#(quantity),"unit":"\#(boxes ? "box" : "pcs")","unit_price_minor":\#(price)}"#)
            }
            let held = index % 5 == 4
            let hold = held ? #""hold_reason":"заказ превышает кредитный лимит на 7373.61 RUB","# : ""
            add("order", "confirmed", id, #"{"approval":"\#(held ? "pending" : "none")","confirmed_at":\#(at),"created_at":\#(at),"currency":"\#(currencies[who])","customer_id":"\#(customers[who])",\#(hold)"id":"\#(id)","lines":[\#(lines.joined(separator: ","))],"note":"\#(notes[index % notes.count])","price_level":"customer","state":"confirmed","total_minor":\#(total)}"#)
        }
        for index in 0..<6 {
            at += 600_000
            let id = nextID()
            add("visit", "recorded", id, #"{"at":\#(at),"customer_id":"\#(customers[index % 4])","id":"\#(id)","note":"\#(notes[(index + 1) % notes.count])","outcome":"\#(index % 3 == 0 ? "no_order" : "order")"}"#)
        }
        for index in 0..<4 {
            let id = nextID()
            add("payment", "collected", id, #"{"amount_minor":\#(random.next(5_000...150_000)),"collected_at":\#(at),"currency":"\#(currencies[index])","customer_id":"\#(customers[index])","id":"\#(id)","method":"cash","receipt":"KP/\#(random.next(1...999))"}"#)
        }
        let complaint = nextID()
        add("complaint", "filed", complaint, #"{"at":\#(at),"category":"damaged","customer_id":"CBG100007","description":"Счупена кутия. Благодаря!","id":"\#(complaint)","part_number":"PN-10042","state":"open"}"#)
        return Batch(id: "WAW07-1-\(changes.count)", changes: changes)
    }

    static func padded(_ number: Int64, _ width: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    @Test("a realistic day in Polish, Bulgarian and Russian comes back byte for byte, every payload compacted")
    func realisticRoundTrip() throws {
        let day = Self.realisticDay()
        for change in day.changes { #expect(CompactJSON.compactable(change.payload) != nil, "\(change.payload.prefix(60))") }
        let encoded = day.encode()
        expectIdentical(try Batch.decode(encoded), day)
        #expect(try Batch.decode(encoded) == day)
        // The JSON lines of the same records are ~7 times bigger before any compression.
        let jsonBytes = day.changes.reduce(0) { $0 + $1.payload.utf8.count + 120 }
        #expect(encoded.count * 3 < jsonBytes)
    }

    @Test("every payload comes back byte for byte, compacted or not")
    func roundTrip() throws {
        let original = batch(Self.payloads)
        let decoded = try Batch.decode(original.encode())
        expectIdentical(decoded, original)
        #expect(decoded == original)
    }

    @Test("payloads that would not come back identical go as JSON text, unchanged, among compacted ones", arguments: [
        #"{"price":12.5}"#, #"{"n":1e5}"#, #"{"n":007}"#, #"{"n":-0}"#, #"{"n":99999999999999999999}"#,
        #"{"a": 1}"#, #" {"a":1}"#, #"{"a":1} "#, #"{"a":1}{"#, #"{"a":"\b"}"#, #"{"a":"\/"}"#, #"{"a":"\u00e9"}"#,
        #"{"a":"\u0001"}"#, #"{"a":tru}"#, #"[1,2,]"#, "not json", "", "\u{0}",
        String(repeating: "[", count: 17) + String(repeating: "]", count: 17),  // deeper than the hub takes in compact form
        "[" + Array(repeating: "0", count: 10_001).joined(separator: ",") + "]",  // longer array than the compact form takes
        #"{"a":""# + String(repeating: "ż", count: 40_000) + #""}"#,  // 80,000-byte string
    ])
    func fallsBack(payload: String) throws {
        #expect(CompactJSON.compactable(payload) == nil)
        let mixed = batch([Self.payloads[0], payload, Self.payloads[1]])
        expectIdentical(try Batch.decode(mixed.encode()), mixed)
    }

    @Test("what the compact form does take: the short escapes, deep but allowed nesting, extreme integers, empty things")
    func compactEdges() throws {
        let payloads = [
            #"{"a":"\t\n\r\"\\/ ż"}"#,
            String(repeating: "[", count: 16) + String(repeating: "]", count: 16),
            "[" + Array(repeating: "-9223372036854775808", count: 3).joined(separator: ",") + ",9223372036854775807]",
            "[]", "{}", "\"\"", "0", "null", "true", "[null,false,true,0,\"\",[],{}]",
        ]
        for payload in payloads { #expect(CompactJSON.compactable(payload) != nil, "\(payload)") }
        let original = batch(payloads)
        expectIdentical(try Batch.decode(original.encode()), original)
    }

    @Test("ids come back exactly: zero padding, long digit runs, no digits, non-ASCII prefixes")
    func identifiers() throws {
        let ids = ["WAW07-000123", "WAW07-000124", "WAW07-000126", "WAW07-1", "WAW07-0", "WAW07-00", "WAW07-000000", "007", "0", "",
                   "WAW07", "-5", "X-9223372036854775807", "A-1234567890123456789012345", "Łódź-01", "Łódź-01", "Łódź-1",
                   "PN-10268", "KP/448", "WAW07-000123", "abc", "abc", "Ünïcödé", "X-999999999999999999", "X-000000000000000001"]
        let original = Batch(id: "WAW07-ids", changes: ids.enumerated().map { index, id in
            SyncChange(seq: Int64(index), changeId: id, at: 0, entity: "order", entityId: ids[ids.count - 1 - index], action: "x", payload: "{}")
        })
        expectIdentical(try Batch.decode(original.encode()), original)
    }

    @Test("canonically equivalent but different bytes stay different: names, keys, values, prefixes")
    func canonicalEquivalence() throws {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)  // what a String-keyed table would merge
        let original = Batch(id: "B", changes: [
            SyncChange(seq: 1, changeId: composed + "-1", at: 0, entity: composed, entityId: composed, action: decomposed,
                       payload: #"{"\#(composed)":"\#(composed)","k":"\#(decomposed)-7"}"#),
            SyncChange(seq: 2, changeId: decomposed + "-2", at: 0, entity: decomposed, entityId: decomposed, action: composed,
                       payload: #"{"\#(decomposed)":"\#(decomposed)","k":"\#(composed)-8"}"#),
        ])
        expectIdentical(try Batch.decode(original.encode()), original)
    }

    @Test("keys are sent once per shape, so many similar documents shrink")
    func keysOnce() throws {
        let document = Self.payloads[0]
        let many = batch(Array(repeating: document, count: 50))
        let encoded = many.encode()
        #expect(encoded.count < 50 * document.utf8.count * 6 / 10)  // the keys are about half of this document
        #expect(try Batch.decode(encoded) == many)
    }

    @Test("ids from one counter cost the same four bytes each, which deflate reduces to almost nothing")
    func countedIDs() throws {
        let original = Batch(id: "WAW07-1-1000", changes: (1...1000).map { (seq: Int64) in
            SyncChange(seq: seq, changeId: "WAW07-" + Self.padded(seq * 2, 6), at: 1_795_428_000_000 + seq * 600_000, entity: "visit",
                       entityId: "WAW07-" + Self.padded(seq * 2 - 1, 6), action: "recorded", payload: "{}")
        })
        var writer = WireWriter()
        TextColumn.write(original.changes.map(\.changeId), into: &writer)
        // Kind, prefix index, digit count, step of 2: the same 4 bytes (as text: 13), plus the prefix once.
        #expect(writer.bytes.count == 1000 * 4 + 1 + 6 + 1)
        #expect(try Batch.decode(original.encode()) == original)
    }

    @Test("a line's amount is coded against quantity × price, base quantity against quantity, line numbers as steps")
    func predictors() throws {
        let day = Self.realisticDay()
        var shapes = ShapeTable()
        var documents = ValueColumn()
        for change in day.changes {
            let value = try #require(CompactJSON.compactable(change.payload))
            let admitted = shapes.admit(value)
            #expect(admitted)
            documents.append(value, shapes: shapes)
        }
        let lineKeys = ["amount_minor", "base_quantity", "line_no", "part_number", "quantity", "unit", "unit_price_minor"]
        guard case .object(let orderKeys, _) = try #require(CompactJSON.compactable(day.changes[0].payload)) else {
            Issue.record("the first change is no order")
            return
        }
        let orders = try #require(documents.fields[shapes.index(orderKeys)])
        let lines = try #require(orders[orderKeys.firstIndex(of: "lines")!].elements.first?.fields[shapes.index(lineKeys)])
        let codings = IntegerPredictor.choose(for: lines)
        #expect(codings[0]?.0 == .product(first: 1, second: 6))
        #expect(codings[0]?.1.allSatisfy { $0 == 0 } == true)
        #expect(codings[2]?.0 == .delta)
        // base_quantity is quantity × 12 for boxes: the difference is small, but one of the pair
        // must stay on its own (quantity is referenced by nothing else, so either may be derived).
        let pair: [IntegerPredictor?] = [codings[1]?.0, codings[4]?.0]
        #expect(pair.contains(.difference(key: 1)) || pair.contains(.difference(key: 4)))
        #expect(!(codings[1]?.0.references.isEmpty == false && codings[4]?.0.references.isEmpty == false))
    }

    @Test("predictions across fields where the referenced fields are sometimes not integers, or missing")
    func predictionsWithGaps() throws {
        var random = SplitMix(seed: 3)
        let payloads = (0..<60).map { index -> String in
            let a = random.next(1...5_000), b = random.next(1...24)
            switch index % 10 {
            case 3: return #"{"a":null,"b":\#(b),"c":\#(a * b),"d":[\#(a),\#(b)]}"#
            case 5: return #"{"a":"\#(a)","b":\#(b),"c":null,"d":[]}"#
            case 7: return #"{"a":\#(a),"b":true,"c":\#(a * b + 1),"d":[{"e":\#(a)}]}"#
            case 9: return #"{"b":\#(b),"c":\#(a * b)}"#  // another shape
            default: return #"{"a":\#(a),"b":\#(b),"c":\#(a * b),"d":[\#(-a)]}"#
            }
        }
        var shapes = ShapeTable()
        var documents = ValueColumn()
        for payload in payloads {
            let value = try #require(CompactJSON.compactable(payload))
            _ = shapes.admit(value)
            documents.append(value, shapes: shapes)
        }
        let fields = try #require(documents.fields[shapes.index(["a", "b", "c", "d"])])
        #expect(IntegerPredictor.choose(for: fields)[2]?.0 == .product(first: 0, second: 1))
        let original = batch(payloads)
        expectIdentical(try Batch.decode(original.encode()), original)
    }

    // MARK: Hostile bodies

    @Test("truncated at every byte offset, a body throws a wire failure and never crashes")
    func truncatedEverywhere() throws {
        let encoded = Self.realisticDay(orders: 3).encode()
        for cut in 0..<encoded.count {
            #expect(throws: WireReader.Failure.self, "cut at \(cut)") { try Batch.decode(Array(encoded.prefix(cut))) }
        }
        #expect(try Batch.decode(encoded) == Self.realisticDay(orders: 3))
    }

    @Test("a body with bytes changed anywhere decodes to something or throws a wire failure, never crashes")
    func mutated() throws {
        let encoded = Self.realisticDay(orders: 2).encode()
        var random = SplitMix(seed: 11)
        for offset in encoded.indices {
            for value in [0, 0xFF, 0x80, UInt8(random.next(0...255))] as [UInt8] where value != encoded[offset] {
                var bytes = encoded
                bytes[offset] = value
                do { _ = try Batch.decode(bytes) } catch { #expect(error is WireReader.Failure) }
            }
        }
    }

    /// The start of a valid body with one change, a compact payload, and `shapes`; the value
    /// columns are the test's.
    static func body(count: Int = 1, form: UInt8 = 1, shapes: [[String]] = [], values: (inout WireWriter) -> Void) -> [UInt8] {
        var writer = WireWriter()
        writer.string("B-1")
        writer.varint(UInt64(count))
        writer.varint(2)
        writer.string("order")
        writer.string("confirmed")
        for _ in 0..<count { writer.int(1) }           // seqs
        for _ in 0..<count { writer.int(1_000) }       // instants
        for _ in 0..<count { writer.varint(0) }        // entity
        for _ in 0..<count { writer.varint(1) }        // action
        for _ in 0..<2 {                               // change ids, entity ids: "I-1", "I-2", ...
            for _ in 0..<count { writer.varint(TextColumn.numbered) }
            writer.varint(0)
            writer.string("I-")
            for _ in 1..<count { writer.varint(1) }
            for _ in 0..<count { writer.varint(5) }
            writer.varint(1)
            for _ in 0..<count { writer.int(1) }
        }
        for _ in 0..<count { writer.byte(form) }       // forms: compact unless a test says otherwise
        writer.varint(UInt64(shapes.count))
        for keys in shapes {
            writer.varint(UInt64(keys.count))
            for key in keys { writer.string(key) }
        }
        values(&writer)
        return writer.bytes
    }

    static func rootInteger(_ writer: inout WireWriter) {
        writer.byte(3)
        writer.varint(0)
        writer.int(42)
    }

    /// Two fields a, b of one object, integers, with the predictors given.
    static func twoFields(_ a: [UInt64], _ b: [UInt64]) -> [UInt8] {
        body(shapes: [["a", "b"]]) { writer in
            writer.byte(6); writer.varint(0)   // root: an object of shape 0
            writer.byte(3); for code in a { writer.varint(code) }; writer.int(5)
            writer.byte(3); for code in b { writer.varint(code) }; writer.int(7)
        }
    }

    static let hostileBodies: [(String, [UInt8])] = [
        ("well formed, to show the rest fail for their own reason", body(values: rootInteger)),
        ("more changes than a batch may hold", body(count: Batch.maxChanges + 1, values: rootInteger)),
        ("trailing bytes", body { rootInteger(&$0); $0.byte(0) }),
        ("payload form 2", body(form: 2, values: rootInteger)),
        ("value tag 7", body { $0.byte(7) }),
        ("shape index outside the table", body(shapes: [["a"]]) { $0.byte(6); $0.varint(1); $0.byte(0) }),
        ("array longer than 10,000", body { $0.byte(5); $0.varint(10_001) }),
        ("array claiming elements that are not there", body { $0.byte(5); $0.varint(10_000) }),
        ("10,000 arrays of 10,000 claimed: over the value budget", body { writer in
            writer.byte(5); writer.varint(10_000)
            for _ in 0..<10_000 { writer.byte(5) }
            for _ in 0..<10_000 { writer.varint(10_000) }
        }),
        ("nested 17 deep", body { writer in
            for _ in 0..<17 { writer.byte(5); writer.varint(1) }
            writer.byte(0)
        }),
        ("integer predictor 4", body { $0.byte(3); $0.varint(4); $0.int(1) }),
        ("a sibling predictor outside an object", body { $0.byte(3); $0.varint(2); $0.varint(0); $0.int(1) }),
        ("a field predicted from itself", twoFields([2, 0], [0])),
        ("a field predicted from a key the shape does not have", twoFields([2, 2], [0])),
        ("a product with a key out of range", twoFields([3, 1, 9], [0])),
        ("a field predicted from a predicted field", twoFields([2, 1], [2, 0])),
        ("a string repeat before any literal", body { $0.byte(4); $0.varint(TextColumn.firstRepeat) }),
        ("a string repeat past the literals", body { writer in
            writer.byte(5); writer.varint(2); writer.byte(4); writer.byte(4)
            writer.varint(TextColumn.literal); writer.varint(TextColumn.firstRepeat + 1); writer.string("x")
        }),
        ("a prefix index outside the table", body { $0.byte(4); $0.varint(TextColumn.numbered); $0.varint(1); $0.varint(1); $0.varint(0); $0.int(1) }),
        ("zero digits", body { $0.byte(4); $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(0); $0.varint(0); $0.int(1) }),
        ("19 digits", body { $0.byte(4); $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(19); $0.varint(0); $0.int(1) }),
        ("a number wider than its digits", body { $0.byte(4); $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(2); $0.varint(0); $0.int(100) }),
        ("a negative number", body { $0.byte(4); $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(2); $0.varint(0); $0.int(-1) }),
        ("numbering 2", body { $0.byte(4); $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(2); $0.varint(2); $0.int(1) }),
        ("a string that is not UTF-8", body { $0.byte(4); $0.varint(TextColumn.literal); $0.data([0xC3, 0x28]) }),
        ("a string over 64 KiB", body { $0.byte(4); $0.varint(TextColumn.literal); $0.string(String(repeating: "x", count: 65_537)) }),
        ("a change id over 64 bytes", {
            var bytes = body(values: rootInteger)
            let prefix = Array("I-".utf8), long = Array(String(repeating: "I", count: 63).utf8) + [UInt8(ascii: "-")]
            let at = bytes.firstRange(of: [2] + prefix)!.lowerBound
            bytes.replaceSubrange(at..<(at + 3), with: [UInt8(long.count)] + long)
            return bytes
        }()),
        ("varint longer than 10 bytes", [1, 0x30] + [UInt8](repeating: 0xFF, count: 12)),
        ("all 0xFF", [UInt8](repeating: 0xFF, count: 40)),
        ("short and wrong", [1, 0x30, 1, 0, 1, 0]),
    ]

    @Test("a hostile body throws a wire failure: counts too large, indexes out of range, bad predictors, bad ids",
          arguments: hostileBodies.indices)
    func hostile(index: Int) {
        let (name, bytes) = Self.hostileBodies[index]
        if index == 0 {
            #expect(throws: Never.self, "\(name)") { try Batch.decode(bytes) }
        } else {
            #expect(throws: WireReader.Failure.self, "\(name)") { try Batch.decode(bytes) }
        }
    }

    @Test("a few bytes naming one long string many times cannot make the hub build more than the limits")
    func amplification() throws {
        let long = String(repeating: "ż", count: 32_000)  // 64,000 bytes
        func payloads(count: Int, references: Int) -> [UInt8] {
            Self.body(count: count) { writer in
                for _ in 0..<count { writer.byte(5) }
                for _ in 0..<count { writer.varint(UInt64(references)) }
                for _ in 0..<(count * references) { writer.byte(4) }
                writer.varint(TextColumn.literal)
                for _ in 1..<(count * references) { writer.varint(TextColumn.firstRepeat) }
                writer.string(long)
            }
        }
        // One payload of 17 × 64,000 bytes: over the 1 MiB a payload may have.
        let one = payloads(count: 1, references: 17)
        #expect(one.count < 70_000)
        #expect(throws: WireReader.Failure.self) { try Batch.decode(one) }
        // 16 references fit in a payload; five such payloads pass a batch limit of 4 MiB (the
        // real one, 64 MiB, works the same way and would take the test long to reach).
        #expect(try Batch.decode(payloads(count: 1, references: 16)).changes[0].payload.utf8.count == 16 * 64_002 + 17)
        #expect(try Batch.decode(payloads(count: 4, references: 16), rebuiltLimit: 4 << 20).changes.count == 4)
        #expect(throws: WireReader.Failure.self) { try Batch.decode(payloads(count: 5, references: 16), rebuiltLimit: 4 << 20) }
    }
}

/// A small seeded generator, so the tests see the same data every run.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next(_ range: ClosedRange<Int>) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return range.lowerBound + Int(z % UInt64(range.count))
    }
}
