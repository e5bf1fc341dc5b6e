import Field
import Hub
import SatchelTesting
import Store
import Sync
import Testing

/// Issue 13: the hub reads each payload with the device's document codec at ingest.
@Suite("Hub ingest: documents in the codec, bad payloads refused whole", .serialized)
struct DocumentIngestTests {
    static func storage(_ directory: TemporaryDirectory) throws -> SQLiteHubStorage {
        let storage = try SQLiteHubStorage(path: directory.file("hub.db"))
        try storage.addRep(id: "rep-ivanova", name: "Анна Иванова", passwordHash: "")
        try storage.addDevice(id: "RU05", rep: "rep-ivanova", publicKey: Array(repeating: 5, count: 32), now: 1, replaces: nil)
        return storage
    }

    static func change(_ seq: Int64, _ action: String, _ document: Document, payload: [UInt8]? = nil, entityId: String? = nil) -> SyncChange {
        SyncChange(seq: seq, changeId: "RU05-\(seq)", at: 1_796_000_000_000 + seq, entity: document.kind.entity, entityId: entityId ?? document.id,
                   action: action, payload: payload ?? DocumentCodec.encode(document))
    }

    @Test("a payload that does not decode, or carries another document than its record names, refuses the batch: nothing stored, the change named",
          arguments: ["garbage", "truncated", "other id", "other kind"])
    func badPayloadRefused(kind: String) throws {
        let directory = TemporaryDirectory("hub-ingest")
        let storage = try Self.storage(directory)
        let visit = Document.visit(SampleDocuments.visit("RU05-v1", customer: "CRU3001", note: "Магазин закрыт"))
        let good = Self.change(1, "recorded", visit)
        let bad: SyncChange
        switch kind {
        case "garbage": bad = Self.change(2, "recorded", visit, payload: Array("не документ — nie dokument".utf8), entityId: "RU05-v2")
        case "truncated": bad = Self.change(2, "recorded", visit, payload: Array(DocumentCodec.encode(visit).dropLast(3)), entityId: "RU05-v2")
        case "other id": bad = Self.change(2, "recorded", visit, entityId: "RU05-v2")
        default:
            var other = Self.change(2, "recorded", visit, entityId: "RU05-v2")
            other.entity = "payment"
            bad = other
        }
        do {
            _ = try storage.commit(Batch(id: "RU05-1-2", changes: [good, bad]), device: "RU05", now: 1_796_000_100_000)
            Issue.record("a batch with a bad payload (\(kind)) was stored")
        } catch HubError.invalid(let why) {
            #expect(why.contains("RU05-2"), "\(why)")
        }
        #expect(try Database(path: directory.file("hub.db")).int64("SELECT count(*) FROM device_changes") == 0)
    }

    @Test("a cancelled draft, a removed line and a payment void are stored and read back as the device sent them, and a repeated batch gets its receipt")
    func cancelLineRemovedAndVoidApplied() throws {
        let directory = TemporaryDirectory("hub-ingest")
        let storage = try Self.storage(directory)
        var draft = SampleDocuments.order("RU05-o1", customer: "CRU3001", state: .draft, lines: 2, note: "Доставка в пятницу")
        let created = Self.change(1, "created", .order(draft))
        draft.lines.removeFirst()
        draft.lines[0].lineNo = 1
        draft.totalMinor = 3_750
        let removed = Self.change(2, "line_removed", .order(draft))
        draft.state = .cancelled
        let cancelled = Self.change(3, "cancelled", .order(draft))
        let payment = SampleDocuments.payment("RU05-p1", customer: "CRU3001")
        let void = SampleDocuments.paymentVoid("RU05-p2", payment: payment.id, customer: "CRU3001")
        let changes = [created, removed, cancelled, Self.change(4, "collected", .payment(payment)), Self.change(5, "voided", .paymentVoid(void))]
        let receipt = try storage.commit(Batch(id: "RU05-1-5", changes: changes), device: "RU05", now: 1_796_000_100_000)
        #expect(receipt.stored == 5 && receipt.throughSeq == 5)
        let database = try Database(path: directory.file("hub.db"))
        #expect(try database.text("SELECT json_extract(payload, '$.state') FROM device_changes WHERE change_id = 'RU05-3'") == "cancelled")
        #expect(try database.int64("SELECT json_array_length(payload, '$.lines') FROM device_changes WHERE change_id = 'RU05-2'") == 1)
        #expect(try database.text("SELECT json_extract(payload, '$.reason') FROM device_changes WHERE change_id = 'RU05-5'") == void.reason)
        // The same batch again is the stored receipt, not a conflict: the stored form is stable.
        #expect(try storage.commit(Batch(id: "RU05-1-5", changes: changes), device: "RU05", now: 1_796_000_200_000) == receipt)
    }
}
