import Field
@testable import Sync
import Testing

/// Random documents of every kind, with the values capture makes and the ones it never does
/// (64-bit extremes, empty and non-ASCII text, no lines, every optional both ways).
struct RandomDocuments {
    var random: SplitMix

    mutating func int() -> Int64 {
        switch random.next(0...5) {
        case 0: return [Int64.min, Int64.max, 0, -1, 1][random.next(0...4)]
        case 1: return Int64(random.next(-1_000...1_000))
        case 2: return 1_795_428_000_000 + Int64(random.next(0...50_000_000))
        default: return Int64(random.next(0...200_000))
        }
    }

    mutating func text(_ words: [String] = ["", "Zażółć gęślą jaźń", "Доставка утром", "Благодаря", "brama 2\n\"rano\"", "é", "e\u{301}", "PN-10042"]) -> String {
        (0..<random.next(0...3)).map { _ in random.next(0...9) == 0 ? String(random.next(0...99_999)) : words[random.next(0...(words.count - 1))] }
            .joined(separator: " ")
    }

    mutating func id(_ prefix: String) -> String { prefix + String(random.next(0...999_999)) }
    mutating func optional<T>(_ make: (inout Self) -> T) -> T? { random.next(0...1) == 0 ? nil : make(&self) }
    mutating func pick<T: CaseIterable>(_: T.Type) -> T { let all = Array(T.allCases); return all[random.next(0...(all.count - 1))] }
    mutating func part() -> String { "PN-" + String(10_000 + random.next(0...60)) }

    mutating func document(_ kind: DocumentKind) -> Document {
        switch kind {
        case .order:
            let lines = (0..<random.next(0...12)).map { index in
                OrderLine(lineNo: Int64(index + 1 + random.next(0...1)), partNumber: part(), unit: ["pcs", "box", "m2"][random.next(0...2)],
                          quantity: int(), baseQuantity: int(), unitPriceMinor: int(), amountMinor: int())
            }
            return .order(OrderDocument(id: id("WAW07-"), customerId: id("CPL"), state: pick(OrderState.self), approval: pick(Approval.self),
                                        holdReason: optional { $0.text() }, priceLevel: ["customer", "dealer", "promo"][random.next(0...2)],
                                        currency: ["PLN", "BGN", "RUB"][random.next(0...2)], totalMinor: int(), note: text(), createdAt: int(),
                                        confirmedAt: optional { $0.int() }, lines: lines))
        case .visit:
            return .visit(VisitDocument(id: id("WAW07-"), customerId: id("CBG"), at: int(), outcome: pick(VisitOutcome.self), note: text()))
        case .payment:
            return .payment(PaymentDocument(id: id("WAW07-"), customerId: id("CRU"), amountMinor: int(), currency: "RUB",
                                            method: pick(PaymentMethod.self), receipt: id("KP/"), collectedAt: int()))
        case .paymentVoid:
            return .paymentVoid(PaymentVoidDocument(id: id("WAW07-"), paymentId: id("WAW07-"), customerId: id("CPL"), amountMinor: int(),
                                                    currency: "PLN", receipt: id("КП/"), reason: text(), at: int()))
        case .displayRequest:
            let materials = (0..<random.next(0...4)).map { _ in
                MaterialReservation(partNumber: part(), location: ["warehouse", "van"][random.next(0...1)], quantity: int(), shortQuantity: int())
            }
            return .displayRequest(DisplayRequestDocument(id: id("WAW07-"), customerId: id("CPL"), typeCode: "SHELF-2", widthCm: int(),
                                                          heightCm: int(), depthCm: optional { $0.int() }, note: text(), state: "requested",
                                                          at: int(), materials: materials))
        case .complaint:
            return .complaint(ComplaintDocument(id: id("WAW07-"), customerId: id("CBG"), orderRef: optional { $0.id("WAW07-") },
                                                partNumber: optional { $0.part() }, category: pick(ComplaintCategory.self), description: text(),
                                                state: "open", at: int()))
        case .quote:
            let lines = (0..<random.next(0...6)).map { index in
                QuoteLine(lineNo: Int64(index + 1), partNumber: part(), quantity: int(), unitPriceMinor: int(), amountMinor: int())
            }
            return .quote(QuoteDocument(id: id("WAW07-"), customerId: id("CPL"), currency: "BGN", discountBasisPoints: int(), totalMinor: int(),
                                        approval: pick(Approval.self), holdReason: optional { $0.text() }, at: int(), lines: lines))
        case .maintenance:
            return .maintenance(MaintenanceDocument(id: id("WAW07-"), equipmentId: id("EQ-"), at: int(), kind: pick(MaintenanceKind.self), note: text()))
        }
    }

    /// A batch of `count` changes of random kinds; about one change in four sends an earlier
    /// change's document again (a draft edited, then confirmed), and the change's entity id is
    /// usually the document's id.
    mutating func batch(_ count: Int) -> Batch {
        var changes: [SyncChange] = [], at = int()
        for seq in 1...max(1, count) {
            let kind = DocumentKind.allCases[random.next(0...(DocumentKind.allCases.count - 1))]
            at &+= Int64(random.next(0...900_000))
            if !changes.isEmpty, random.next(0...3) == 0 {
                var again = changes[random.next(0...(changes.count - 1))]
                again.seq = Int64(seq); again.changeId = "WAW07-" + String(seq); again.at = at
                changes.append(again)
                continue
            }
            let made = document(kind)
            changes.append(SyncChange(seq: Int64(seq), changeId: "WAW07-" + String(seq), at: at, entity: kind.entity,
                                      entityId: random.next(0...5) == 0 ? id("X-") : made.id, action: kind.actions[0],
                                      payload: DocumentCodec.encode(made)))
        }
        return Batch(id: "WAW07-1-\(count)", changes: count == 0 ? [] : changes)
    }
}

@Suite("The codec's layout: the registry's one list of fields, and the typed codec follows it")
struct DocumentLayoutTests {
    @Test("random documents of every kind read through the layout to the last byte and are written back byte-identical")
    func layoutMatchesTheCodec() throws {
        var documents = RandomDocuments(random: SplitMix(seed: 41))
        for kind in DocumentKind.allCases {
            #expect(DocumentColumns.columnable(DocumentCodec.layout(of: kind)), "\(kind)")
            for _ in 0..<200 {
                let bytes = DocumentCodec.encode(documents.document(kind))
                let (read, values) = try DocumentCodec.values(bytes)
                #expect(read == kind)
                #expect(DocumentCodec.encode(kind, values: values) == bytes, "\(kind)")
            }
        }
    }

    @Test("what the layout refuses, the typed codec refuses too: truncations and bad codes")
    func refusalsAgree() {
        var documents = RandomDocuments(random: SplitMix(seed: 42))
        for kind in DocumentKind.allCases {
            let bytes = DocumentCodec.encode(documents.document(kind))
            for cut in 0..<bytes.count {
                let prefix = Array(bytes.prefix(cut))
                #expect(throws: DocumentCodec.Failure.self) { try DocumentCodec.values(prefix) }
                #expect(throws: DocumentCodec.Failure.self) { try DocumentCodec.decode(prefix) }
            }
        }
    }
}

@Suite("BATCH payloads as columns of the codec's fields (protocol 4)")
struct DocumentColumnsTests {
    @Test("random batches of documents of every kind come back byte-identical, every document in columns", arguments: [0, 1, 2, 7, 40, 300])
    func randomBatches(count: Int) throws {
        var documents = RandomDocuments(random: SplitMix(seed: UInt64(100 + count)))
        for _ in 0..<(count > 40 ? 3 : 20) {
            let batch = documents.batch(count)
            let decoded = try Batch.decode(batch.encode())
            #expect(decoded.changes.map(\.payload) == batch.changes.map(\.payload))
            #expect(decoded == batch)
            // Every payload was a canonical document: none travelled whole.
            #expect(batch.columnSpans().first { $0.name == "whole payloads" }?.range.isEmpty == true)
        }
    }

    @Test("a payload that is not what the codec writes (overlong varint, unknown kind, trailing byte) travels whole and comes back as it was")
    func nonCanonicalPayloads() throws {
        let visit = DocumentCodec.encode(.visit(VisitDocument(id: "WAW07-1", customerId: "CPL1", at: 5, outcome: .order, note: "ok")))
        var overlong = visit
        overlong.replaceSubrange(15..<16, with: [0x8A, 0x00])  // `at` 5 (zig-zag 10) in two bytes: the codec reads it, never writes it
        #expect((try? DocumentCodec.decode(overlong)) != nil)
        let payloads = [visit, overlong, visit + [0], [1, 99], [], [2, 1]]
        let batch = Batch(id: "B", changes: payloads.enumerated().map { index, payload in
            SyncChange(seq: Int64(index), changeId: "C-\(index)", at: 0, entity: "visit", entityId: "WAW07-1", action: "recorded", payload: payload)
        })
        let decoded = try Batch.decode(batch.encode())
        #expect(decoded.changes.map(\.payload) == payloads)
        #expect(batch.columnSpans().first { $0.name == "whole payloads" }?.range.count ?? 0 > overlong.count)
    }

    @Test("the content hash is the same for a retried batch and does not depend on the columns' coding")
    func contentHash() {
        var documents = RandomDocuments(random: SplitMix(seed: 7))
        let batch = documents.batch(30)
        let again = Batch(id: batch.id, changes: batch.changes)
        #expect(batch.contentHash == again.contentHash)
        // The canonical form: the envelope's columns, then every payload whole (version 3's body).
        var out = DocumentColumns.Output()
        batch.encode(into: &out, payloadsWhole: true)
        #expect(out.writer.bytes != batch.encode())
        var changed = batch.changes
        changed[3].payload = documents.batch(1).changes[0].payload
        #expect(Batch(id: batch.id, changes: changed).contentHash != batch.contentHash)
    }

    @Test("truncated at every byte or changed anywhere, a columnar body throws a wire failure or decodes, never traps")
    func hostileColumns() throws {
        var documents = RandomDocuments(random: SplitMix(seed: 9))
        let encoded = documents.batch(12).encode()
        for cut in 0..<encoded.count {
            #expect(throws: WireReader.Failure.self, "cut at \(cut)") { try Batch.decode(Array(encoded.prefix(cut))) }
        }
        var random = SplitMix(seed: 10)
        for offset in encoded.indices {
            for value in [0, 0xFF, 0x80, UInt8(random.next(0...255))] as [UInt8] where value != encoded[offset] {
                var bytes = encoded
                bytes[offset] = value
                do { _ = try Batch.decode(bytes) } catch { #expect(error is WireReader.Failure) }
            }
        }
    }

    /// One visit in columns after `BatchTests.body`'s envelope; `columns` writes the visit's fields.
    static func visitBody(_ columns: (inout WireWriter) -> Void) -> [UInt8] {
        var body = BatchTests.body(count: 1) { _ in }
        body.removeLast()  // the whole-payload form
        var writer = WireWriter()
        writer.varint(UInt64(DocumentKind.visit.rawValue) + 1)  // a visit, though the change names an order
        columns(&writer)
        return body + writer.bytes
    }

    /// A visit's columns in the order they travel (texts first: id, customer id, note; then at, outcome), each plain.
    static func visitColumns(outcomeCoding: [UInt64] = [0], outcome: Int64 = 0, idCoding: [UInt64] = [0]) -> (inout WireWriter) -> Void {
        { writer in
            for argument in idCoding { writer.varint(argument) }
            if idCoding == [0] { writer.varint(TextColumn.literal); writer.string("V-1") } else if idCoding.count == 2 { writer.varint(0) }
            writer.varint(0); writer.varint(TextColumn.literal); writer.string("CPL1")
            writer.varint(0); writer.varint(TextColumn.literal); writer.string("ok")
            writer.varint(0); writer.int(5)
            for argument in outcomeCoding { writer.varint(argument) }
            writer.int(outcome)
        }
    }

    static let hostile: [(String, [UInt8])] = [
        ("a visit in columns, well formed", visitBody(visitColumns())),
        ("a payload form that is no kind", { var body = BatchTests.body(count: 1) { _ in }; body[body.count - 1] = 200; return body }()),
        ("an outcome code outside its enumeration", visitBody(visitColumns(outcome: 9))),
        ("a negative outcome code", visitBody(visitColumns(outcome: -1))),
        ("an unknown number coding", visitBody(visitColumns(outcomeCoding: [9]))),
        ("a step within a list for a document's own field", visitBody(visitColumns(outcomeCoding: [2]))),
        ("a difference to a column that does not exist", visitBody(visitColumns(outcomeCoding: [3, 7]))),
        ("a product of columns that do not exist", visitBody(visitColumns(outcomeCoding: [4, 0, 9]))),
        ("keyed by a text column that does not exist", visitBody(visitColumns(outcomeCoding: [5, 1, 40]))),
        ("keyed by four text columns", visitBody(visitColumns(outcomeCoding: [5, 4, 0, 0, 0, 0]))),
        ("an unknown text coding", visitBody(visitColumns(idCoding: [7]))),
        ("the same as a text column that does not exist", visitBody(visitColumns(idCoding: [1, 40]))),
        ("an order claiming more lines than the body has bytes", visitBodyOrder { $0.varint(5_000) }),
        ("an order claiming 2^64 - 1 lines", visitBodyOrder { $0.varint(UInt64.max) }),
        ("an order's columns cut short", visitBodyOrder { $0.varint(1); $0.varint(0) }),
    ]

    /// One order in columns: `lines` writes its line count column (and whatever follows).
    static func visitBodyOrder(_ lines: (inout WireWriter) -> Void) -> [UInt8] {
        var body = BatchTests.body(count: 1) { _ in }
        body.removeLast()
        var writer = WireWriter()
        writer.varint(DocumentColumns.namedByEntity)
        lines(&writer)
        return body + writer.bytes
    }

    @Test("a hostile columnar body throws a wire failure naming what is wrong", arguments: hostile.indices)
    func hostileBodies(index: Int) throws {
        let (name, bytes) = Self.hostile[index]
        if index == 0 {
            let batch = try Batch.decode(bytes)
            #expect(try DocumentCodec.decode(batch.changes[0].payload) == .visit(VisitDocument(id: "V-1", customerId: "CPL1", at: 5, outcome: .order, note: "ok")), "\(name)")
        } else {
            #expect(throws: WireReader.Failure.self, "\(name)") { try Batch.decode(bytes) }
        }
    }
}
