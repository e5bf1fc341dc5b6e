import Foundation
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
            try storage.addRep(id: "rep-kowalska", name: "Zofia Kowalska", passwordHash: "")
            try storage.addDevice(id: "H01", rep: "rep-kowalska", publicKey: Array(repeating: 7, count: 32), now: 1, replaces: nil)
        }

        func send(_ documents: [(entity: String, id: String, action: String, payload: String)]) throws {
            let changes = documents.map { document -> SyncChange in
                seq += 1
                return SyncChange(seq: seq, changeId: "H01-\(seq)", at: 1_796_000_000_000 + seq, entity: document.entity, entityId: document.id,
                                  action: document.action, payload: document.payload)
            }
            _ = try storage.commit(Batch(id: "B\(seq)", changes: changes), device: "H01", now: 1_796_000_100_000)
        }

        func export(_ name: String = "out.xml", since: Int64? = nil) throws -> (ERPExportResult, String) {
            let path = directory.file(name)
            let result = try storage.exportERP(to: path, since: since, now: 1_796_000_200_000)
            return (result, String(decoding: fileBytes(path), as: UTF8.self))
        }
    }

    static let order = #"{"customer_id":"CPL000001","id":"H01-1","lines":[{"line_no":1,"part_number":"PN-PL-0001","quantity":2,"unit_price_minor":5999}],"note":"Dostawa <rano> & \"szybko\"\u0007","state":"confirmed","total_minor":11998}"#

    @Test("an order with lines, a payment and a visit are exported with their fields; text is escaped (a control character becomes U+FFFD); re-run before the ack, the same documents again; after the ack, none; new ones only once")
    func exactlyOnceFromTheAcknowledgedCursor() throws {
        let hub = try Hub()
        try hub.send([("order", "H01-1", "confirmed", Self.order),
                      ("payment", "H01-2", "collected", #"{"amount_minor":5000,"currency":"PLN","customer_id":"CPL000001","id":"H01-2","method":"cash"}"#),
                      ("visit", "H01-3", "recorded", #"{"customer_id":"CBG000001","id":"H01-3","note":"Магазин затворен","outcome":"closed"}"#)])
        let (first, text) = try hub.export()
        #expect(first.after == 0 && first.documents == 3)
        #expect(text.contains(#"<document position="1" change-id="H01-1" device="H01" rep="rep-kowalska" seq="1""#))
        #expect(text.contains(#"entity="order" id="H01-1" action="confirmed">"#))
        #expect(text.contains(#"<fields customer-id="CPL000001" id="H01-1" note="Dostawa &lt;rano&gt; &amp; &quot;szybko&quot;\#u{FFFD}" state="confirmed" total-minor="11998"/>"#))
        #expect(text.contains(#"<item name="line" line-no="1" part-number="PN-PL-0001" quantity="2" unit-price-minor="5999"/>"#))
        #expect(text.contains(#"note="Магазин затворен""#))
        #expect(!text.contains("<payload>"))

        // The ERP did not acknowledge: the same three again, nothing skipped.
        let (again, textAgain) = try hub.export("again.xml")
        #expect(again.cursor == first.cursor && again.documents == 3)
        #expect(textAgain.components(separatedBy: "<document ").count == 4)

        try hub.storage.acknowledgeERPExport(cursor: first.cursor)
        let (empty, _) = try hub.export("empty.xml")
        #expect(empty.documents == 0 && empty.after == first.cursor)

        try hub.send([("quote", "H01-4", "created", #"{"customer_id":"CPL000001","discount_basis_points":1500,"id":"H01-4"}"#)])
        let (next, nextText) = try hub.export("next.xml", since: first.cursor)
        #expect(next.documents == 1)
        #expect(nextText.contains(#"change-id="H01-4""#) && !nextText.contains(#"change-id="H01-1""#))
    }

    @Test("acknowledging a cursor no export wrote is refused (not found), an older one than acknowledged is refused; nothing moves")
    func badAcknowledgements() throws {
        let hub = try Hub()
        try hub.send([("visit", "H01-1", "recorded", #"{"id":"H01-1","outcome":"closed"}"#), ("visit", "H01-2", "recorded", #"{"id":"H01-2","outcome":"closed"}"#)])
        let (first, _) = try hub.export()
        #expect(throws: HubError.self) { try hub.storage.acknowledgeERPExport(cursor: 999) }
        try hub.send([("visit", "H01-3", "recorded", #"{"id":"H01-3","outcome":"closed"}"#)])
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

    @Test("a payload that is not a JSON object, or has a field no XML name carries, goes whole into <payload>: nothing the device sent is lost")
    func oddPayloadsKeptWhole() throws {
        let hub = try Hub()
        try hub.send([("complaint", "H01-1", "filed", #"{"id":"H01-1","dziwne pole":"tak"}"#), ("maintenance", "H01-2", "recorded", "nie JSON")])
        let (_, text) = try hub.export()
        #expect(text.contains(#"<payload>{&quot;id&quot;:&quot;H01-1&quot;,&quot;dziwne pole&quot;:&quot;tak&quot;}</payload>"#))
        #expect(text.contains("<payload>nie JSON</payload>"))
    }

    @Test("an export that cannot write its file fails with the cursor unchanged; a leftover partial file from a killed export is replaced by the re-run")
    func wholeOrNotAtAll() throws {
        let hub = try Hub()
        try hub.send([("visit", "H01-1", "recorded", #"{"id":"H01-1","outcome":"closed"}"#)])
        let (first, text) = try hub.export()
        #expect(throws: HubError.self) { _ = try hub.storage.exportERP(to: hub.directory.file("brak/out.xml"), now: 2) }
        // A kill between writing and renaming leaves the partial file and the previous export.
        writeFile(hub.directory.file("out.xml.partial"), Array("<erp-export version=\"1\"><document".utf8))
        let (rerun, rerunText) = try hub.export()
        #expect(rerun.cursor == first.cursor && rerunText == text)
        #expect(!FileManager.default.fileExists(atPath: hub.directory.file("out.xml.partial")))
        #expect(try hub.storage.acknowledgedERPCursor() == 0)
    }
}
