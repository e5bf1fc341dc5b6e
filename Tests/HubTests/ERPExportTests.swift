import Foundation
import Field
import Hub
import SatchelTesting
import Store
import Sync
import Testing

/// Issue 17: what the handhelds sent, exported for the ERP exactly once, from a cursor only the
/// ERP's acknowledgement moves.
@Suite("ERP export: incremental, exactly once, whole or not at all", .serialized)
struct ERPExportTests {
    final class Hub {
        let directory = TemporaryDirectory("erp-export")
        let storage: SQLiteHubStorage
        var seq: Int64 = 0
        init() throws {
            storage = try SQLiteHubStorage(path: directory.file("hub.db"))
            try storage.addRep(id: "rep_kowalska", name: "Zofia Kowalska", passwordHash: "")
            try storage.addDevice(id: "H01", rep: "rep_kowalska", publicKey: Array(repeating: 7, count: 32), now: 1, replaces: nil)
        }

        func send(_ documents: [(action: String, document: Document)]) throws {
            let changes = documents.map { sent -> SyncChange in
                seq += 1
                return SyncChange(seq: seq, changeId: "H01-\(seq)", at: 1_796_000_000_000 + seq, entity: sent.document.kind.entity, entityId: sent.document.id,
                                  action: sent.action, payload: DocumentCodec.encode(sent.document))
            }
            _ = try storage.commit(Batch(id: "B\(seq)", changes: changes), device: "H01", now: 1_796_000_100_000)
        }

        func export(_ name: String = "out.xml", since: Int64? = nil) throws -> (ERPExportResult, String) {
            let path = directory.file(name)
            let result = try storage.exportERP(to: path, since: since, now: 1_796_000_200_000)
            return (result, String(decoding: fileBytes(path), as: UTF8.self))
        }
    }

    static let order = Document.order(OrderDocument(
        id: "H01-1", customerId: "CPL000001", state: .confirmed, approval: .none, holdReason: nil, priceLevel: "customer", currency: "PLN",
        totalMinor: 11_998, note: "Dostawa <rano> & \"szybko\"\u{7}", createdAt: 1_796_000_000_000, confirmedAt: 1_796_000_000_000,
        lines: [OrderLine(lineNo: 1, partNumber: "PN-PL-0001", unit: "szt", quantity: 2, baseQuantity: 2, unitPriceMinor: 5_999, amountMinor: 11_998)]))

    static func visit(_ id: String, note: String = "Магазин затворен") -> Document {
        .visit(VisitDocument(id: id, customerId: "CBG000001", at: 1_796_000_000_000, outcome: .closed, note: note))
    }

    @Test("an order with lines, a payment and a visit are exported with their fields; text is escaped (a control character becomes U+FFFD); re-run before the ack, the same documents again; after the ack, none; new ones only once")
    func exactlyOnceFromTheAcknowledgedCursor() throws {
        let hub = try Hub()
        try hub.send([("confirmed", Self.order),
                      ("collected", .payment(PaymentDocument(id: "H01-2", customerId: "CPL000001", amountMinor: 5_000, currency: "PLN", method: .cash,
                                                             receipt: "KP/12", collectedAt: 1_796_000_000_000))),
                      ("recorded", Self.visit("H01-3"))])
        let (first, text) = try hub.export()
        #expect(first.after == 0 && first.documents == 3)
        #expect(text.contains(#"<document position="1" change-id="H01-1" device="H01" rep="rep_kowalska" seq="1""#))
        #expect(text.contains(#"entity="order" id="H01-1" action="confirmed">"#))
        #expect(text.contains(#"<fields approval="none" confirmed-at="1796000000000" created-at="1796000000000" currency="PLN" customer-id="CPL000001" id="H01-1" note="Dostawa &lt;rano&gt; &amp; &quot;szybko&quot;\#u{FFFD}" price-level="customer" state="confirmed" total-minor="11998"/>"#))
        #expect(text.contains(#"<item name="line" amount-minor="11998" base-quantity="2" line-no="1" part-number="PN-PL-0001" quantity="2" unit="szt" unit-price-minor="5999"/>"#))
        #expect(text.contains(#"note="Магазин затворен""#))
        #expect(!text.contains("<payload>"))

        // The ERP did not acknowledge: the same three again, nothing skipped.
        let (again, textAgain) = try hub.export("again.xml")
        #expect(again.cursor == first.cursor && again.documents == 3)
        #expect(textAgain.components(separatedBy: "<document ").count == 4)

        try hub.storage.acknowledgeERPExport(cursor: first.cursor)
        let (empty, _) = try hub.export("empty.xml")
        #expect(empty.documents == 0 && empty.after == first.cursor)

        try hub.send([("created", .quote(QuoteDocument(id: "H01-4", customerId: "CPL000001", currency: "PLN", discountBasisPoints: 1_500, totalMinor: 10_198,
                                                       approval: .pending, holdReason: "rabat 15,00% — над лимита", at: 1_796_000_000_000, lines: [])))])
        let (next, nextText) = try hub.export("next.xml", since: first.cursor)
        #expect(next.documents == 1)
        #expect(nextText.contains(#"change-id="H01-4""#) && !nextText.contains(#"change-id="H01-1""#))
    }

    @Test("acknowledging a cursor no export wrote is refused (not found), an older one than acknowledged is refused; nothing moves")
    func badAcknowledgements() throws {
        let hub = try Hub()
        try hub.send([("recorded", Self.visit("H01-1")), ("recorded", Self.visit("H01-2"))])
        let (first, _) = try hub.export()
        #expect(throws: HubError.self) { try hub.storage.acknowledgeERPExport(cursor: 999) }
        try hub.send([("recorded", Self.visit("H01-3"))])
        let (second, _) = try hub.export("2.xml")
        try hub.storage.acknowledgeERPExport(cursor: second.cursor)
        do {
            try hub.storage.acknowledgeERPExport(cursor: first.cursor)
            Issue.record("an older cursor was acknowledged")
        } catch HubError.invalid(let why) {
            #expect(why.contains("older than the acknowledged \(second.cursor)"))
        }
        #expect(try hub.storage.acknowledgedERPCursor() == second.cursor)
    }

    @Test("a stored payload (from a hub before the document codec) that is not a JSON object, or has a field no XML name carries, goes whole into <payload>: nothing the device sent is lost")
    func oddPayloadsKeptWhole() throws {
        let hub = try Hub()
        let database = try Database(path: hub.directory.file("hub.db"))
        for (seq, entity, payload) in [(1, "complaint", #"{"id":"H01-1","dziwne pole":"tak"}"#), (2, "maintenance", "nie JSON")] {
            try database.execute("""
                INSERT INTO device_changes(change_id, device_id, seq, at, entity, entity_id, action, payload, received_at, epoch)
                VALUES (?, 'H01', ?, 1, ?, ?, 'filed', ?, 1, 1)
                """, [.text("H01-\(seq)"), .integer(Int64(seq)), .text(entity), .text("H01-\(seq)"), .text(payload)])
        }
        let (_, text) = try hub.export()
        #expect(text.contains(#"<payload>{&quot;id&quot;:&quot;H01-1&quot;,&quot;dziwne pole&quot;:&quot;tak&quot;}</payload>"#))
        #expect(text.contains("<payload>nie JSON</payload>"))
    }

    @Test("an export that cannot write its file fails with the cursor unchanged; a leftover partial file from a killed export is replaced by the re-run")
    func wholeOrNotAtAll() throws {
        let hub = try Hub()
        try hub.send([("recorded", Self.visit("H01-1"))])
        let (first, text) = try hub.export()
        #expect(throws: HubError.self) { _ = try hub.storage.exportERP(to: hub.directory.file("brak/out.xml"), now: 2) }
        // A kill between writing and renaming leaves the partial file and the previous export.
        writeFile(hub.directory.file("out.xml.partial"), Array("<erp-export version=\"1\"><document".utf8))
        let (rerun, rerunText) = try hub.export()
        #expect(rerun.cursor == first.cursor && rerunText == text)
        #expect(!FileManager.default.fileExists(atPath: hub.directory.file("out.xml.partial")))
        #expect(try hub.storage.acknowledgedERPCursor() == 0)
    }

    @Test("a symbolic link planted at out.xml.partial is not followed: its target stays byte for byte, the export fails naming the partial file, the cursor is unchanged")
    func plantedLinkRefused() throws {
        let hub = try Hub()
        try hub.send([("recorded", Self.visit("H01-1"))])
        let victim = hub.directory.file("victim")
        writeFile(victim, Array("the victim's own bytes\n".utf8))
        try FileManager.default.createSymbolicLink(atPath: hub.directory.file("out.xml.partial"), withDestinationPath: victim)
        let error = #expect(throws: HubError.self) { _ = try hub.export() }
        #expect(fileBytes(victim) == Array("the victim's own bytes\n".utf8))
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(hub.directory.file("out.xml.partial")) && text.contains("symbolic link"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: hub.directory.file("out.xml")))
        #expect(try hub.storage.acknowledgedERPCursor() == 0)
    }

    @Test("the export's timestamps are the digits ISO8601DateFormatter wrote, byte for byte: the epoch, before it, leap days, century years, the last millisecond of a day and of 9999, either side of 1583 (before it the formatter is Julian and still writes them), and 20,000 instants spread over 0001-9999")
    func instantsAsTheFormatterWroteThem() {
        var instants: [Int64] = [0, 1, -1, 999, -999, 1_000, 86_399_999, 86_400_000, -86_400_000, 1_796_000_000_123,
                                 951_782_400_000, 951_868_799_999, 4_107_542_400_000, 4_107_542_399_999, 68_169_600_000,
                                 -62_135_596_800_000, 253_402_300_799_999, 1_582_934_400_001, 1_709_164_800_999,
                                 -12_212_553_600_000, -12_212_553_600_001, -12_219_292_800_000, 253_402_300_800_000]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 { instants.append(Int64.random(in: -62_135_596_800_000..<253_402_300_800_000, using: &generator)) }
        // Today's decades, where every real document lies, millisecond digits at random.
        for _ in 0..<20_000 { instants.append(Int64.random(in: 946_684_800_000..<4_102_444_800_000, using: &generator)) }
        var differing: [String] = [], count = 0
        for instant in instants where ERPInstant.text(instant) != ERPInstant.byFormatter(instant) {
            count += 1
            if differing.count < 5 { differing.append("\(instant): \(ERPInstant.text(instant)) vs \(ERPInstant.byFormatter(instant))") }
        }
        #expect(count == 0, "\(count) differ, first: \(differing)")
        #expect(ERPInstant.text(1_796_000_000_123) == "2026-11-30T00:53:20.123Z")
    }
}
