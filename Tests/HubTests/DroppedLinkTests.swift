import Field
import Dispatch
import Hub
import SatchelTesting
import Seal
import Sync
import Testing
import Transport

/// The link drops at a random byte, in either direction, many times over; the device retries
/// until a receipt arrives. Whatever the drop point, the hub ends with every change exactly once.
@Suite("Fast sync over a link that drops")
struct DroppedLinkTests {
    /// A device-side stream that dies after `budget` bytes have crossed it, either way: the GPRS
    /// link going away mid-frame.
    final class DroppingStream: ByteStream {
        let inner: FileDescriptorStream
        var budget: Int
        init(_ inner: FileDescriptorStream, budget: Int) {
            self.inner = inner
            self.budget = budget
        }

        func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) {
            guard budget > 0 else { inner.close(); throw .closed(what: "link dropped") }
            let allowed = min(bytes.count, budget)
            budget -= allowed
            try inner.write(Array(bytes.prefix(allowed)), deadline: deadline)
            if allowed < bytes.count { inner.close(); throw .closed(what: "link dropped mid-write") }
        }

        func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
            guard budget > 0 else { inner.close(); throw .closed(what: "link dropped") }
            let chunk = try inner.read(maxCount: min(maxCount, budget), deadline: deadline)
            budget -= chunk.count
            return chunk
        }

        func close() { inner.close() }
    }

    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        init(seed: UInt64) { state = seed }
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    final class Box: @unchecked Sendable {
        let end: FileDescriptorStream
        init(_ end: FileDescriptorStream) { self.end = end }
    }

    @Test("1,000 syncs with a drop at a random byte: 0 lost, 0 duplicates, receipts consistent")
    func randomDrops() throws {
        let directory = TemporaryDirectory("drops")
        let path = directory.path + "/hub.db"
        let storage = try SQLiteHubStorage(path: path)
        let deviceKey = X25519.KeyPair.generate()
        try storage.addRep(id: "R1", name: "Małgorzata Żak", passwordHash: PasswordHash.hash(password: "hasło", cost: .init(opsLimit: 1, memLimit: 64 * 1024)))
        try storage.addDevice(id: "PL07", rep: "R1", publicKey: deviceKey.publicKey, now: 0)
        let server = SyncServer(sessionTimeout: 5) { try SQLiteHubStorage(path: path) }
        let hubKey = try storage.hubKey().publicKey

        var generator = SplitMix(seed: 2026)  // the same drops every run, so a failure can be replayed
        var changes: [SyncChange] = []
        var uploadedThrough: Int64 = 0
        var drops = 0, completed = 0
        for round in 0..<1_000 {
            if round % 3 == 0 {  // the rep captures something between attempts
                let seq = Int64(changes.count + 1)
                changes.append(SyncChange(seq: seq, changeId: "PL07-\(seq)", at: seq, entity: "visit", entityId: "PL07-v\(seq)", action: "recorded",
                                          payload: SampleDocuments.payload(.visit(SampleDocuments.visit("PL07-v\(seq)", note: "Wizyta — посещение \(seq)")))))
            }
            let pending = changes.filter { $0.seq > uploadedThrough }
            let batch = pending.isEmpty ? nil : Batch(id: "PL07-\(pending[0].seq)-\(pending.last!.seq)", changes: pending)
            let (deviceEnd, hubEnd) = try StreamPair.make()
            let box = Box(hubEnd)
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) { server.handle(box.end) }
            let link = DroppingStream(deviceEnd, budget: Int.random(in: 1...700, using: &generator))
            do {
                let result = try FastSyncClient.run(link, deviceKey: deviceKey, hubKey: hubKey, device: "PL07", password: "hasło", batch: batch, deadline: .after(seconds: 5))
                if let receipt = result.receipt { uploadedThrough = max(uploadedThrough, receipt.throughSeq) }
                completed += 1
            } catch SyncChannel.Failure.stream(.closed) {
                drops += 1  // the link went away: retry; any other error is a failure of the test
            }
            link.close()
            group.wait()
        }
        // One last sync on a good link sends whatever is still owed.
        let pending = changes.filter { $0.seq > uploadedThrough }
        let (deviceEnd, hubEnd) = try StreamPair.make()
        let box = Box(hubEnd)
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { server.handle(box.end) }
        let final = try FastSyncClient.run(deviceEnd, deviceKey: deviceKey, hubKey: hubKey, device: "PL07", password: "hasło",
                                           batch: pending.isEmpty ? nil : Batch(id: "PL07-final", changes: pending), deadline: .after(seconds: 5))
        group.wait()
        if let receipt = final.receipt { uploadedThrough = receipt.throughSeq }

        #expect(drops > 200 && completed > 100, "drops \(drops), completed \(completed): the budgets should give both")
        #expect(uploadedThrough == Int64(changes.count))
        #expect(try storage.changeCount(device: "PL07") == Int64(changes.count))  // each exactly once (change_id is the key)
    }
}
