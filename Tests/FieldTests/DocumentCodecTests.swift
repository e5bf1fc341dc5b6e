import Field
import SatchelTesting
import Store
import Testing

@Suite("Document codec: every kind round-trips; hostile or erased bytes are refused, never trapped on")
struct DocumentCodecTests {
    static let documents: [Document] = [
        .order(SampleDocuments.order("PL07-000001", approval: .pending, holdReason: "заказ превышает кредитный лимит", lines: 10)),
        .order(SampleDocuments.order("PL07-000002", state: .draft, lines: 0, note: "")),
        .visit(SampleDocuments.visit("PL07-000003")),
        .payment(SampleDocuments.payment("PL07-000004")),
        .paymentVoid(SampleDocuments.paymentVoid("PL07-000005", payment: "PL07-000004")),
        .displayRequest(DisplayRequestDocument(id: "PL07-000006", customerId: "CPL1", typeCode: "WALL", widthCm: 240, heightCm: 180, depthCm: nil,
                                               note: "Ściana przy kasie — стена у кассы", state: "requested", at: SampleDocuments.at,
                                               materials: [MaterialReservation(partNumber: "BOARD", location: "warehouse", quantity: 7, shortQuantity: 4)])),
        .complaint(SampleDocuments.complaint("PL07-000007")),
        .quote(QuoteDocument(id: "PL07-000008", customerId: "CBG1", currency: "BGN", discountBasisPoints: 1_500, totalMinor: -1, approval: .pending,
                             holdReason: "отстъпка 15,00%", at: SampleDocuments.at,
                             lines: [QuoteLine(lineNo: 1, partNumber: "P2", quantity: Int64.max, unitPriceMinor: Int64.min, amountMinor: 0)])),
        .maintenance(MaintenanceDocument(id: "PL07-000009", equipmentId: "EQ1", at: SampleDocuments.at, kind: .repair, note: "Wymiana uszczelki")),
    ]

    @Test("each kind comes back equal, and names its entity as the registry declares it")
    func roundTrip() throws {
        #expect(Set(Self.documents.map(\.kind)) == Set(DocumentKind.allCases))
        for document in Self.documents {
            let bytes = DocumentCodec.encode(document)
            #expect(try DocumentCodec.decode(bytes, entity: document.kind.entity) == document)
            #expect(DocumentKind(entity: document.kind.entity) == document.kind)
        }
    }

    @Test("a 10-line order is far smaller than its JSON")
    func smallerThanJSON() throws {
        let order = Self.documents[0]
        #expect(DocumentCodec.encode(order).count * 2 < (try order.json()).utf8.count)
    }

    static func refused(_ bytes: [UInt8], entity: String? = nil) -> DocumentCodec.Failure? {
        do { _ = try DocumentCodec.decode(bytes, entity: entity); return nil } catch { return error }
    }

    @Test("truncated at every byte, each kind is refused with where it ended")
    func truncated() {
        for document in Self.documents {
            let bytes = DocumentCodec.encode(document)
            for cut in 0..<bytes.count { #expect(Self.refused(Array(bytes.prefix(cut))) != nil, "\(document.kind) cut at \(cut)") }
        }
    }

    @Test("0xFF-filled (erased flash) and lengths from 0x7FFFFFFF to 0xFFFFFFFF and 2^64-1 are refused before anything is allocated")
    func erasedAndHugeLengths() {
        #expect(Self.refused([UInt8](repeating: 0xFF, count: 64)) == .unsupportedVersion(0xFF))
        #expect(Self.refused([1, 1] + [UInt8](repeating: 0xFF, count: 64)) != nil)
        func varint(_ value: UInt64) -> [UInt8] {
            var bytes: [UInt8] = [], rest = value
            while rest >= 0x80 { bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80); rest >>= 7 }
            return bytes + [UInt8(rest)]
        }
        for length: UInt64 in [0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF, UInt64.max] {
            // The order id's length, then a line count, each claiming that much.
            #expect(Self.refused([1, 1] + varint(length) + Array("x".utf8)) == .tooLarge(field: "order id", value: length, limit: DocumentCodec.Limits.identifierBytes))
            let headOfOrder = Array(DocumentCodec.encode(.order(SampleDocuments.order("PL07-1", lines: 0))).dropLast())
            #expect(Self.refused(headOfOrder + varint(length)) == .tooLarge(field: "order lines", value: length, limit: DocumentCodec.Limits.lines))
        }
        // A count within the bound but beyond what the bytes could hold.
        let headOfOrder = Array(DocumentCodec.encode(.order(SampleDocuments.order("PL07-1", lines: 0))).dropLast())
        #expect(Self.refused(headOfOrder + varint(9_999) + [0, 0]) == .truncated(field: "order lines", offset: headOfOrder.count))
        // Eleven varint bytes, and a tenth byte above 1: no silent wrap.
        #expect(Self.refused([1, 3, 1, 0x41, 1, 0x42] + [UInt8](repeating: 0xFF, count: 9) + [0x02]) == .tooLarge(field: "amount", value: UInt64.max, limit: Int.max))
    }

    @Test("wrong version, unknown kind, another entity's document, bad UTF-8, unknown codes and trailing bytes are refused by name")
    func refusedByName() {
        var visit = DocumentCodec.encode(Self.documents[2])
        #expect(Self.refused([2] + visit.dropFirst()) == .unsupportedVersion(2))
        #expect(Self.refused([1, 99] + visit.dropFirst(2)) == .unknownKind(99))
        #expect(Self.refused(visit, entity: "order") == .kindMismatch(entity: "order", found: "visit"))
        #expect(Self.refused(visit + [0]) == .trailingBytes(1))
        #expect(Self.refused([1, 2, 2, 0xC3, 0x28]) == .invalidText(field: "visit id", offset: 3))
        visit[visit.count - 1 - Array("Rozmowa z właścicielem — разговор с владельцем".utf8).count - 1] = 77  // the outcome's code
        #expect(Self.refused(visit) == .unknownCode(field: "visit outcome", value: 77))
    }

    @Test("a device database from before the codec: its JSON journal rows are read as documents, the new ones as bytes")
    func legacyJournalRows() throws {
        let fixture = try Fixture()
        let order = SampleDocuments.order("PL07-000901", customer: "CPL1")
        try fixture.device.database.execute(
            "INSERT INTO changes(seq, change_id, at, entity, entity_id, action, payload) VALUES (NULL, 'PL07-000902', 1, 'order', ?, 'confirmed', ?)",
            [.text(order.id), .text(try FieldJSON.payload(order))])
        let visit = try fixture.capture.recordVisit(customerID: "CPL1", outcome: .order, note: "Zamówienie na piątek").document
        let entries = try fixture.device.changes(after: 0)
        #expect(try entries.map { try $0.document() } == [.order(order), .visit(visit)])
    }
}
