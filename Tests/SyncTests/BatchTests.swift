import Field
@testable import Sync
import Testing

@Suite("Batch bodies: change records as columns, document payloads in the document codec")
struct BatchTests {
    /// Sync carries payloads without reading them: any bytes come back as they were sent.
    static let payloads: [[UInt8]] = [
        DocumentCodec.encode(.visit(VisitDocument(id: "WAW07-000002", customerId: "CPL100001", at: 1_795_428_000_000, outcome: .order,
                                                  note: "Dostawa \"rano\" — доставка утром\nbrama 2"))),
        Array("Łódź — Пловдив — Москва".utf8),
        [0xFF, 0x00, 0x80, 0xC3, 0x28],
        [],
    ]

    func batch(_ payloads: [[UInt8]]) -> Batch {
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
            for (a, b) in [(got.changeId, sent.changeId), (got.entity, sent.entity), (got.entityId, sent.entityId), (got.action, sent.action)] {
                #expect(Array(a.utf8) == Array(b.utf8), sourceLocation: sourceLocation)
            }
            #expect(got.payload == sent.payload, sourceLocation: sourceLocation)
        }
    }

    // MARK: A realistic day, in the languages the reps write in

    /// Orders of 10 lines (amount = base quantity × unit price), a held order, visits, payments
    /// and a complaint, described as the JSON devices wrote before the codec and sent as the
    /// codec's bytes (`LegacyJournalPayload` reads the descriptions).
    static func realisticDay(orders: Int = 12) -> Batch {
        var random = SplitMix(seed: 6)
        var changes: [SyncChange] = []
        var counter: Int64 = 0, seq: Int64 = 0, at: Int64 = 1_795_428_000_000
        func nextID() -> String { counter += 1; return "WAW07-" + padded(counter, 6) }
        func add(_ entity: String, _ action: String, _ id: String, _ payload: String) {
            seq += 1
            let document = try! LegacyJournalPayload.document(entity: entity, json: payload)
            changes.append(SyncChange(seq: seq, changeId: nextID(), at: at, entity: entity, entityId: id, action: action, payload: DocumentCodec.encode(document)))
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

    @Test("a realistic day in Polish, Bulgarian and Russian comes back byte for byte, at under a third of its JSON")
    func realisticRoundTrip() throws {
        let day = Self.realisticDay()
        let encoded = day.encode()
        expectIdentical(try Batch.decode(encoded), day)
        #expect(try Batch.decode(encoded) == day)
        // The JSON lines of the same records (what version 2 rebuilt) are over 3 times bigger.
        let jsonBytes = try day.changes.reduce(0) { $0 + (try DocumentCodec.decode($1.payload).json().utf8.count) + 120 }
        #expect(encoded.count * 3 < jsonBytes)
    }

    @Test("every payload comes back byte for byte, whatever its bytes")
    func roundTrip() throws {
        let original = batch(Self.payloads)
        let decoded = try Batch.decode(original.encode())
        expectIdentical(decoded, original)
        #expect(decoded == original)
    }

    @Test("ids come back exactly: zero padding, long digit runs, no digits, non-ASCII prefixes")
    func identifiers() throws {
        let ids = ["WAW07-000123", "WAW07-000124", "WAW07-000126", "WAW07-1", "WAW07-0", "WAW07-00", "WAW07-000000", "007", "0", "",
                   "WAW07", "-5", "X-9223372036854775807", "A-1234567890123456789012345", "Łódź-01", "Łódź-01", "Łódź-1",
                   "PN-10268", "KP/448", "WAW07-000123", "abc", "abc", "Ünïcödé", "X-999999999999999999", "X-000000000000000001"]
        let original = Batch(id: "WAW07-ids", changes: ids.enumerated().map { index, id in
            SyncChange(seq: Int64(index), changeId: id, at: 0, entity: "order", entityId: ids[ids.count - 1 - index], action: "x", payload: [])
        })
        expectIdentical(try Batch.decode(original.encode()), original)
    }

    @Test("canonically equivalent but different bytes stay different: names, keys, values, prefixes")
    func canonicalEquivalence() throws {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        #expect(composed == decomposed)  // what a String-keyed table would merge
        let original = Batch(id: "B", changes: [
            SyncChange(seq: 1, changeId: composed + "-1", at: 0, entity: composed, entityId: composed, action: decomposed,
                       payload: Array(composed.utf8)),
            SyncChange(seq: 2, changeId: decomposed + "-2", at: 0, entity: decomposed, entityId: decomposed, action: composed,
                       payload: Array(decomposed.utf8)),
        ])
        expectIdentical(try Batch.decode(original.encode()), original)
    }

    @Test("ids from one counter cost the same four bytes each, which deflate reduces to almost nothing")
    func countedIDs() throws {
        let original = Batch(id: "WAW07-1-1000", changes: (1...1000).map { (seq: Int64) in
            SyncChange(seq: seq, changeId: "WAW07-" + Self.padded(seq * 2, 6), at: 1_795_428_000_000 + seq * 600_000, entity: "visit",
                       entityId: "WAW07-" + Self.padded(seq * 2 - 1, 6), action: "recorded", payload: [])
        })
        var writer = WireWriter()
        TextColumn.write(original.changes.map(\.changeId), into: &writer)
        // Kind, prefix index, digit count, step of 2: the same 4 bytes (as text: 13), plus the prefix once.
        #expect(writer.bytes.count == 1000 * 4 + 1 + 6 + 1)
        #expect(try Batch.decode(original.encode()) == original)
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

    /// A valid body with `count` changes, each payload whole; `payloads` writes what follows the payload forms.
    static func body(count: Int = 1, payloads: (inout WireWriter) -> Void = { $0.data([1, 2, 3]) }) -> [UInt8] {
        var writer = WireWriter()
        writer.string("B-1")
        writer.varint(UInt64(count))
        writer.varint(2)
        writer.varint(0); writer.string("order")       // names: in full (the registry's could be by index)
        writer.varint(0); writer.string("confirmed")
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
        for _ in 0..<count { writer.varint(0) }        // payload forms: whole
        payloads(&writer)
        return writer.bytes
    }

    /// The id columns of `body` with a string column of one entry `column` in place of change ids.
    static func bodyWithChangeIDs(_ column: (inout WireWriter) -> Void) -> [UInt8] {
        var writer = WireWriter()
        writer.string("B-1"); writer.varint(1); writer.varint(2); writer.varint(0); writer.string("order"); writer.varint(0); writer.string("confirmed")
        writer.int(1); writer.int(1_000); writer.varint(0); writer.varint(1)
        column(&writer)
        writer.varint(TextColumn.literal); writer.string("I-1")
        writer.varint(0); writer.data([1, 2, 3])
        return writer.bytes
    }

    static let hostileBodies: [(String, [UInt8])] = [
        ("well formed, to show the rest fail for their own reason", body()),
        ("more changes than a batch may hold", body(count: Batch.maxChanges + 1)),
        ("trailing bytes", body { $0.data([1]); $0.byte(0) }),
        ("a payload over 1 MiB", body { $0.data([UInt8](repeating: 0x41, count: Batch.maxPayloadBytes + 1)) }),
        ("a payload claiming more bytes than the body has", body { $0.varint(1_000); $0.raw([1, 2, 3]) }),
        ("a payload length of 0x7FFFFFFF", body { $0.varint(0x7FFF_FFFF); $0.raw([1]) }),
        ("a payload length of 0xFFFFFFFF", body { $0.varint(0xFFFF_FFFF); $0.raw([1]) }),
        ("a payload length of 2^64 - 1", body { $0.varint(UInt64.max) }),
        ("a payload length of 2^63 - 1", body { $0.varint(UInt64(Int64.max)); $0.raw([1]) }),
        ("a payload length one past the bytes left", body { $0.varint(4); $0.raw([1, 2, 3]) }),
        ("a payload missing", body { _ in }),
        ("a string repeat before any literal", bodyWithChangeIDs { $0.varint(TextColumn.firstRepeat) }),
        ("a prefix index outside the table", bodyWithChangeIDs { $0.varint(TextColumn.numbered); $0.varint(1); $0.varint(1); $0.varint(0); $0.int(1) }),
        ("zero digits", bodyWithChangeIDs { $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(0); $0.varint(0); $0.int(1) }),
        ("19 digits", bodyWithChangeIDs { $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(19); $0.varint(0); $0.int(1) }),
        ("a number wider than its digits", bodyWithChangeIDs { $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(2); $0.varint(0); $0.int(100) }),
        ("a negative number", bodyWithChangeIDs { $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(2); $0.varint(0); $0.int(-1) }),
        ("numbering 2", bodyWithChangeIDs { $0.varint(TextColumn.numbered); $0.varint(0); $0.string("P"); $0.varint(2); $0.varint(2); $0.int(1) }),
        ("a string that is not UTF-8", bodyWithChangeIDs { $0.varint(TextColumn.literal); $0.data([0xC3, 0x28]) }),
        ("a change id over 64 bytes", bodyWithChangeIDs { $0.varint(TextColumn.literal); $0.string(String(repeating: "I", count: 65)) }),
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

@Suite("The document registry and the sync dictionary agree")
struct DocumentRegistryTests {
    @Test("every entity and action of every document kind (payment_void, cancelled and line_removed too) is in the version 3 dictionary's names")
    func dictionaryNamesCoverTheRegistry() {
        let names = Set(SyncDictionary.documentNames)
        for kind in DocumentKind.allCases {
            #expect(names.contains(kind.entity), "\(kind.entity)")
            for action in kind.actions { #expect(names.contains(action), "\(kind.entity) \(action)") }
        }
        // Versions 4 and 5 still preset the version 3 dictionary, and the name table names these by index.
        #expect(Hello.version == 5)
    }
}
