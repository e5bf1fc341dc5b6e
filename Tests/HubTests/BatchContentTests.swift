import Field
import Hub
import SatchelTesting
import Seal
import Store
import Sync
import Testing

/// The hub keeps a BLAKE2b content hash with each receipt: a replay (same id, same content) gets
/// its stored receipt; the same batch id, or a held change id, with other content is refused on
/// both ends and audited with the cause, never answered with the stored receipt (issue 10, repro 1).
@Suite("A known batch id with other content is refused, never replayed", .serialized)
struct BatchContentTests {
    static func order(_ id: String, seq: Int64, total: Int64, customer: String = "CPL000042") -> SyncChange {
        SyncChange(seq: seq, changeId: id, at: 1_795_428_000_000 + seq, entity: "order", entityId: id, action: "confirmed",
                   payload: SampleDocuments.payload(.order({ var order = SampleDocuments.order(id, customer: customer, note: "Hurtownia „Żółw” — доставка"); order.totalMinor = total; return order }())))
    }

    @Test("same id and content: the stored receipt; same id, other content: BatchConflict, nothing stored", arguments: Backend.allCases)
    func storageRefusesOtherContent(backend: Backend) throws {
        let store = try backend.makeHub()
        let storage = store.storage
        let first = Batch(id: "X-1-1", changes: [Self.order("X-000001", seq: 1, total: 2770)])
        let receipt = try storage.commit(first, device: "X", now: 1)
        #expect(receipt == Receipt(batchId: "X-1-1", stored: 1, duplicates: 0, throughSeq: 1))
        #expect(try storage.commit(first, device: "X", now: 2) == receipt)

        let reissued = Batch(id: "X-1-1", changes: [Self.order("X-000001", seq: 1, total: 254850)])
        #expect(reissued.contentHash != first.contentHash)
        #expect(throws: BatchConflict.self) { try storage.commit(reissued, device: "X", now: 3) }
        // The same change id under a new batch id is no duplicate either.
        let renamed = Batch(id: "X-1-1b", changes: [Self.order("X-000001", seq: 1, total: 254850)])
        #expect(throws: BatchConflict.self) { try storage.commit(renamed, device: "X", now: 4) }
        #expect(try storage.changeCount(device: "X") == 1)
        let payload = try store.text("SELECT payload FROM device_changes WHERE change_id = 'X-000001'")
        #expect(payload.contains("2770"))
        // A restored device's ids of a later epoch are its own, and stored beside the old ones.
        let restored = Batch(id: "X~2-1-1", changes: [Self.order("X~2-000001", seq: 1, total: 254850)])
        #expect(try storage.commit(restored, device: "X", now: 5).stored == 1)
        #expect(try storage.holding(device: "X", epoch: 2) == HubHolding(highestEpoch: 2, sequenceInEpoch: 1))
        #expect(try storage.holding(device: "X", epoch: 3) == HubHolding(highestEpoch: 2, sequenceInEpoch: 0))
        // Another device's epoch-marked id is not X's.
        #expect(throws: HubError.self) { try storage.commit(Batch(id: "X-9-9", changes: [Self.order("Y~2-000009", seq: 9, total: 1)]), device: "X", now: 6) }
    }

    /// The receipt keeps the hash of the batch's canonical form, not of the bytes that arrived: the
    /// same batch as other bytes (here its name table in another order, as another wire layout
    /// might send it after a device update) is still a replay of the stored receipt, and other
    /// content still conflicts.
    @Test("the content hash: the same content as other bytes is a replay, other content a conflict", arguments: Backend.allCases)
    func receivedBytesHash(backend: Backend) throws {
        let store = try backend.makeHub()
        let storage = store.storage
        let change = Self.order("X-000001", seq: 1, total: 2770)
        let batch = Batch(id: "X-1-1", changes: [change])
        let body = batch.encode()
        let receipt = try storage.commit(try Batch.decode(body), device: "X", now: 1)
        #expect(receipt.stored == 1)

        // Version 4's name table names the registry's names by index (one byte each here), and
        // the entity and action columns point into it: the table's two names swapped, and both
        // columns with them, is the same batch as other bytes.
        var head = WireWriter()
        head.string(batch.id); head.varint(1)
        let table = head.bytes.count
        var times = WireWriter()
        times.int(change.seq); times.int(change.at)
        let columns = table + 3 + times.bytes.count
        #expect(body[table] == 2 && body[table + 1] < 0x80 && body[table + 2] < 0x80)
        #expect(Array(body[columns..<columns + 2]) == [0, 1])
        var other = body
        other.swapAt(table + 1, table + 2)
        other[columns] = 1; other[columns + 1] = 0
        #expect(other != body)
        #expect(try Batch.decode(other) == batch)
        #expect(try storage.commit(try Batch.decode(other), device: "X", now: 2) == receipt)
        #expect(try storage.changeCount(device: "X") == 1)

        // Text with the characters an array literal escapes arrives as it was sent.
        var quoted = SampleDocuments.order("X-000002", customer: "CPL000042", note: #"cudzysłów " i \ ukośnik — "кавычки""#)
        quoted.totalMinor = 5
        let withQuotes = Batch(id: "X-2-2", changes: [SyncChange(seq: 2, changeId: "X-000002", at: 2, entity: "order", entityId: "X-000002",
                                                                 action: "confirmed", payload: SampleDocuments.payload(.order(quoted)))])
        #expect(try storage.commit(withQuotes, device: "X", now: 2).stored == 1)
        #expect(try store.text("SELECT payload FROM device_changes WHERE change_id = 'X-000002'") == (try Document.order(quoted).json()))

        let reissued = Batch(id: "X-1-1", changes: [Self.order("X-000001", seq: 1, total: 254850)]).encode()
        #expect(throws: BatchConflict.self) {
            try storage.commit(try Batch.decode(reissued), device: "X", now: 3)
        }
    }

    @Test("over a session: the device hears batchConflict, the audit records the cause, and a faithful replay still gets its receipt", arguments: Backend.allCases)
    func sessionRefusesAndAudits(backend: Backend) throws {
        let hub = try FastSyncTests.Hub(backend)
        let first = Batch(id: "BG03-1-1", changes: [Self.order("BG03-000001", seq: 1, total: 2770, customer: "CBG100001")])
        let stored = try hub.sync(batch: first)
        #expect(stored.receipt?.stored == 1)
        let other = Batch(id: "BG03-1-1", changes: [Self.order("BG03-000001", seq: 1, total: 254850, customer: "CBG100001")])
        do {
            _ = try hub.sync(batch: other)
            Issue.record("the hub answered a batch it holds with other content")
        } catch let failure as SyncFailure {
            guard case .hubError(let code, let message) = failure else { Issue.record("\(failure)"); return }
            #expect(code == .batchConflict)
            #expect(message.contains("BG03-1-1") && message.contains("other content"))
        }
        let audit = try hub.storage.auditLog(limit: 1)
        #expect(audit.first?.result == "refused")
        #expect(audit.first?.error?.contains("content hash") == true)
        #expect(try hub.sync(batch: first).receipt == stored.receipt)
        #expect(try hub.storage.changeCount(device: "BG03") == 1)
    }

    @Test("a hub from before content hashes: its receipts are checked change by change")
    func receiptsWithoutHash() throws {
        let directory = TemporaryDirectory("batch-content-old")
        let path = directory.path + "/hub.db"
        let storage = try SQLiteHubStorage(path: path)
        let first = Batch(id: "X-1-1", changes: [Self.order("X-000001", seq: 1, total: 2770)])
        _ = try storage.commit(first, device: "X", now: 1)
        try Database(path: path).execute(script: dropHubHistoryTriggers + " UPDATE receipts SET content_hash = NULL;")  // a receipt from before hashes
        #expect(try storage.commit(first, device: "X", now: 2).stored == 1)
        #expect(throws: BatchConflict.self) {
            try storage.commit(Batch(id: "X-1-1", changes: [Self.order("X-000001", seq: 1, total: 9)]), device: "X", now: 3)
        }
    }
}
