import Field
import Hub
import SatchelTesting
import Seal
import Sync
import Testing

/// Duplicate mode's hub side on both backends: the replaced handheld's documents as it uploaded
/// them, minus those the replacement has changed itself.
@Suite("Duplicate: the replaced device's documents, on both backends", .serialized)
struct DuplicateStorageTests {
    @Test("the copy holds the old device's documents, oldest first, byte for byte, without the ones the new device changed", arguments: Backend.allCases)
    func documentsForDuplicate(backend: Backend) throws {
        let store = try backend.makeHub()
        let storage = store.storage
        try storage.addRep(id: "R1", name: "Zofia Kołodziej", passwordHash: "x")
        try storage.addDevice(id: "OLD1", rep: "R1", publicKey: X25519.KeyPair.generate().publicKey, now: 0)
        let first = BatchContentTests.order("OLD1-000001", seq: 1, total: 1_200)
        let second = BatchContentTests.order("OLD1-000002", seq: 2, total: 3_400)
        _ = try storage.commit(Batch(id: "OLD1-1-2", changes: [first, second]), device: "OLD1", now: 1)
        try storage.addDevice(id: "NEW1", rep: "R1", publicKey: X25519.KeyPair.generate().publicKey, now: 2, replaces: "OLD1")

        let copy = try storage.documentsForDuplicate(of: "OLD1", to: "NEW1", now: 3)
        #expect(copy.map(\.changeId) == ["OLD1-000001", "OLD1-000002"])
        #expect(try copy.map { try DocumentCodec.decode($0.payload, entity: $0.entity) } == [first, second].map { try DocumentCodec.decode($0.payload, entity: $0.entity) })

        // The new handheld moves the first order on itself: from then on it is the new one's.
        var moved = BatchContentTests.order("OLD1-000001", seq: 1, total: 1_200)
        moved = SyncChange(seq: 1, changeId: "NEW1-000001", at: moved.at + 10, entity: "order", entityId: "OLD1-000001", action: "confirmed", payload: moved.payload)
        _ = try storage.commit(Batch(id: "NEW1-1-1", changes: [moved]), device: "NEW1", now: 4)
        #expect(try storage.documentsForDuplicate(of: "OLD1", to: "NEW1", now: 5).map(\.changeId) == ["OLD1-000002"])
    }
}
