import Field
import Seal
import Sync
import Testing

/// HELLO's epoch and AUTH_RESULT's high-water mark are trailing fields (issue 10): a peer from
/// before them still reads and is read.
@Suite("HELLO's epoch and AUTH_RESULT's high-water mark")
struct EpochMessageTests {
    @Test("round trip, and the older forms without the trailing fields")
    func trailingFields() throws {
        let hello = Hello(device: "WAW07", mode: .fast, epoch: 3)
        #expect(try Hello.decode(hello.encode()) == hello)
        var old = WireWriter()
        old.varint(Hello.version)
        old.string("WAW07")
        old.varint(UInt64(SyncMode.full.rawValue))
        let decoded = try Hello.decode(old.bytes)
        #expect(decoded.epoch == 1 && decoded.mode == .full && decoded.device == "WAW07")
        var zero = old
        zero.varint(0)
        #expect(throws: WireReader.Failure.self) { try Hello.decode(zero.bytes) }

        let result = AuthResult(status: .ok, attemptsLeft: 5, held: HubHolding(highestEpoch: 2, sequenceInEpoch: 41))
        #expect(try AuthResult.decode(result.encode()) == result)
        #expect(try AuthResult.decode(AuthResult(status: .ok, attemptsLeft: 5).encode()).held == nil)
    }

    @Test("the content hash follows the content, not only the id")
    func contentHash() {
        let change = SyncChange(seq: 1, changeId: "X~2-000001", at: 1, entity: "order", entityId: "X~2-000001", action: "confirmed",
                                payload: Array(#"{"customer_id":"CRU000007","note":"Магазин „Берёзка”","total_minor":254850}"#.utf8))
        var other = change
        other.payload = Array(#"{"customer_id":"CRU000007","note":"Магазин „Берёзка”","total_minor":2770}"#.utf8)
        #expect(Batch(id: "X~2-1-1", changes: [change]).contentHash == Batch(id: "X~2-1-1", changes: [change]).contentHash)
        #expect(Batch(id: "X~2-1-1", changes: [change]).contentHash != Batch(id: "X~2-1-1", changes: [other]).contentHash)
        #expect(Batch(id: "X~2-1-1", changes: [change]).contentHash.count == 32)
    }
}
