import Field
import Dispatch
import Hub
import SatchelTesting
import Seal
import Sync
import Testing
import Transport
import Foundation

@Suite("Fast sync against each of the hub's backends (SQLite, PostgreSQL)", .serialized)
struct FastSyncTests {
    static let cost = PasswordHash.Cost(opsLimit: 1, memLimit: 64 * 1024)  // tests only

    final class Hub: @unchecked Sendable {
        let store: TestStore
        let server: SyncServer
        var storage: any HubStorage { store.storage }
        let deviceKey = X25519.KeyPair.generate()

        init(_ backend: Backend) throws {
            store = try backend.makeHub()
            server = SyncServer(makeStorage: store.open)
            try storage.addRep(id: "R07", name: "Йордан Стоянов", passwordHash: PasswordHash.hash(password: "sync-hasło", cost: FastSyncTests.cost))
            try storage.addDevice(id: "BG03", rep: "R07", publicKey: deviceKey.publicKey, now: 0)
        }

        /// One session: the hub on a worker thread, the device here.
        func sync(device: String = "BG03", key: X25519.KeyPair? = nil, password: String = "sync-hasło", batch: Batch?) throws -> FastSyncResult {
            try server.inProcessSession { deviceEnd in
                try FastSyncClient.run(deviceEnd, deviceKey: key ?? deviceKey, hubKey: try storage.hubKey().publicKey, device: device,
                                       password: password, batch: batch, deadline: .after(seconds: 10))
            }
        }
    }

    final class Box: @unchecked Sendable {
        let end: FileDescriptorStream
        init(_ end: FileDescriptorStream) { self.end = end }
    }

    static func batch(_ range: ClosedRange<Int64>) -> Batch {
        Batch(id: "BG03-\(range.lowerBound)-\(range.upperBound)", changes: range.map {
            let id = "BG03-\(String(format: "%06d", $0 * 2 - 1))"
            let document: Document = $0 % 2 == 0 ? .order(SampleDocuments.order(id, customer: "CBG100001", note: "Доставка до 10:00 — dostawa rano"))
                                                 : .visit(SampleDocuments.visit(id, customer: "CBG100001", note: "Доставка до 10:00 — dostawa rano"))
            return SyncChange(seq: $0, changeId: "BG03-\(String(format: "%06d", $0 * 2))", at: 1_795_428_000_000 + $0 * 1000, entity: document.kind.entity,
                              entityId: id, action: $0 % 2 == 0 ? "confirmed" : "recorded", payload: SampleDocuments.payload(document))
        })
    }

    @Test("a week without sync (3,000 changes) goes up in frame-sized batches in one flight, each stored once", arguments: Backend.allCases)
    func manyChangesInSeveralBatches(backend: Backend) throws {
        let hub = try Hub(backend)
        let changes = Self.batch(1...3_000).changes
        let batches = Batch.chunks(changes, idPrefix: "BG03")
        #expect(batches.count > 1)
        #expect(batches.flatMap(\.changes) == changes)
        #expect(batches.allSatisfy { $0.encode().count <= 60 * 1024 })
        let result = try hub.server.inProcessSession { deviceEnd in
            try SyncClient.run(deviceEnd, deviceKey: hub.deviceKey, hubKey: try hub.storage.hubKey().publicKey, device: "BG03",
                               password: "sync-hasło", batches: batches, deadline: .after(seconds: 30))
        }
        #expect(result.receipt?.stored == 3_000)
        #expect(result.receipt?.throughSeq == 3_000)
        #expect(try hub.storage.changeCount(device: "BG03") == 3_000)
    }

    @Test("a batch is stored once with its receipt; the same batch again gets the same receipt and changes nothing", arguments: Backend.allCases)
    func exactlyOnce(backend: Backend) throws {
        let hub = try Hub(backend)
        let first = try hub.sync(batch: Self.batch(1...40))
        #expect(first.receipt == Receipt(batchId: "BG03-1-40", stored: 40, duplicates: 0, throughSeq: 40))
        #expect(first.roundTrips == 1)
        let replay = try hub.sync(batch: Self.batch(1...40))
        #expect(replay.receipt == first.receipt)
        #expect(try hub.storage.changeCount(device: "BG03") == 40)
        // A new batch overlapping the old one (the device lost the receipt, then captured more).
        let overlap = try hub.sync(batch: Self.batch(30...50))
        #expect(overlap.receipt == Receipt(batchId: "BG03-30-50", stored: 10, duplicates: 11, throughSeq: 50))
        #expect(try hub.storage.changeCount(device: "BG03") == 50)
        let audit = try hub.storage.auditLog(limit: 10)
        #expect(audit.count == 3 && audit.allSatisfy { $0.result == "ok" && $0.device == "BG03" && $0.mode == "fast" })
        #expect(audit[2].recordsUp == 40 && audit[2].bytesUp > 0 && audit[2].bytesDown > 0)
    }

    @Test("a wrong sync password is refused and counted; the fifth locks; nothing is stored", arguments: Backend.allCases)
    func passwordLockout(backend: Backend) throws {
        let hub = try Hub(backend)
        for attempt in 1...4 {
            #expect(throws: SyncFailure.authentication(AuthResult(status: .wrongPassword, attemptsLeft: 5 - attempt))) {
                try hub.sync(password: "zgadnij", batch: Self.batch(1...3))
            }
        }
        #expect(throws: SyncFailure.authentication(AuthResult(status: .locked, attemptsLeft: 0))) { try hub.sync(password: "zgadnij", batch: nil) }
        #expect(throws: SyncFailure.authentication(AuthResult(status: .locked, attemptsLeft: 0))) { try hub.sync(batch: nil) }  // even the right one, now
        #expect(try hub.storage.changeCount(device: nil) == 0)
        #expect(try hub.storage.auditLog(limit: 10).allSatisfy { $0.result == "refused" && $0.error?.contains("password") == true })
    }

    @Test("an unknown or revoked device is refused with a reason and an audit entry", arguments: Backend.allCases)
    func unknownAndRevoked(backend: Backend) throws {
        let hub = try Hub(backend)
        #expect(throws: SyncFailure.refused(.unknownDevice)) { try hub.sync(key: .generate(), batch: Self.batch(1...2)) }
        #expect(throws: SyncFailure.refused(.unknownDevice)) { try hub.sync(device: "PL99", batch: nil) }  // a known key claiming another id
        try hub.storage.revokeDevice(id: "BG03")
        #expect(throws: SyncFailure.refused(.revoked)) { try hub.sync(batch: Self.batch(1...2)) }
        #expect(try hub.storage.changeCount(device: nil) == 0)
        let audit = try hub.storage.auditLog(limit: 10)
        #expect(audit.map(\.result) == ["refused", "refused", "refused"])
        #expect(audit[0].error == "revoked" && audit[2].error == "unknownDevice")
    }

    @Test("after the handshake: a corrupt frame, a bomb, messages out of order, an impossible count: the hub ends each session itself, audited, nothing stored",
          arguments: Backend.allCases, ["corrupt", "bomb", "out of order", "oversized body"])
    func hostileSession(backend: Backend, kind: String) throws {
        let hub = try Hub(backend)
        let (deviceEnd, hubEnd) = try StreamPair.make()
        let box = Box(hubEnd)
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { [server = hub.server] in server.handle(box.end) }
        let deadline = Deadline.after(seconds: 10)
        let (channel, _) = try SyncChannel.connect(deviceEnd, deviceKey: hub.deviceKey, hubKey: try hub.storage.hubKey().publicKey,
                                                   hello: Hello(device: "BG03", mode: .fast).encode(), dictionary: SyncDictionary.v3, deadline: deadline)
        try channel.send(.init(type: MessageType.auth.rawValue, body: Array("sync-hasło".utf8)), deadline: deadline)
        switch kind {
        case "corrupt":
            // A frame of the right length whose ciphertext is noise.
            try deviceEnd.write([0x00, 0x40] + [UInt8](repeating: 0xA5, count: 64), deadline: deadline)
        case "bomb":
            // A valid frame whose body inflates past the 4 MiB limit: 5 MiB of one byte.
            try channel.send(.init(type: MessageType.batch.rawValue, body: [UInt8](repeating: 0x41, count: 5 << 20)), deadline: deadline)
        case "out of order":
            try channel.send(.init(type: MessageType.ack.rawValue, body: DownloadAck(pull: "BG03-nothing", applied: 5).encode()), deadline: deadline)
            try channel.send(.init(type: MessageType.done.rawValue, body: []), deadline: deadline)
        default:
            try channel.send(.init(type: MessageType.batch.rawValue, body: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F] + [UInt8](repeating: 1, count: 32)), deadline: deadline)
        }
        group.wait()  // the hub ends the session on its own, before the device lets go
        deviceEnd.close()
        #expect(try hub.storage.changeCount(device: nil) == 0)
        let audit = try #require(try hub.storage.auditLog(limit: 1).first)
        #expect(audit.result != "ok")
        #expect(audit.error?.isEmpty == false, "audit: \(audit)")
    }

    @Test("a batch claiming another device's changes is refused whole", arguments: Backend.allCases)
    func foreignChanges(backend: Backend) throws {
        let hub = try Hub(backend)
        var batch = Self.batch(1...3)
        batch.changes[2].changeId = "PL99-000001"
        do {
            _ = try hub.sync(batch: batch)
            Issue.record("the batch was taken")
        } catch SyncFailure.hubError(let code, let message) {
            // The device hears why, not just a closed link.
            #expect(code == .batchRefused)
            #expect(message.contains("PL99-000001") && message.contains("nothing of it stored"))
        }
        #expect(try hub.storage.changeCount(device: nil) == 0)
        #expect(try hub.storage.auditLog(limit: 1).first?.result == "refused")
    }

    @Test("body decoding refuses truncated and oversized inputs", arguments: [0, 1, 5, 17])
    func truncatedBatch(cut: Int) throws {
        let encoded = Self.batch(1...5).encode()
        #expect(throws: WireReader.Failure.self) { try Batch.decode(Array(encoded.prefix(cut))) }
        #expect(try Batch.decode(encoded) == Self.batch(1...5))
    }
}
