import Dispatch
import Field
import Foundation
import Hub
import SatchelTesting
import Seal
import Sync
import Testing
import Transport

/// Two real `satchel-hub serve --postgres` processes on one PostgreSQL database: whichever
/// process a batch reaches, and however often, it is committed once; a process killed with
/// SIGKILL mid-session costs the device a retry against the other, never a loss or a duplicate.
@Suite("Scale out: two hub processes on one PostgreSQL", .serialized)
struct ScaleOutTests {
    static let cost = PasswordHash.Cost(opsLimit: 1, memLimit: 64 * 1024)  // tests only

    final class HubProcess {
        let process = Process()
        let address: String
        init(url: String) throws {
            process.executableURL = URL(fileURLWithPath: BuiltExecutable.path("satchel-hub"))
            process.arguments = ["serve", "--postgres", url, "--listen", "127.0.0.1:0"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            // The first line says where it listens; a hub that dies first ends the pipe.
            var line = Data()
            let handle = output.fileHandleForReading
            let deadline = Date(timeIntervalSinceNow: 30)
            while !line.contains(UInt8(ascii: "\n")) && Date() < deadline {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            let text = String(decoding: line, as: UTF8.self)
            guard let found = text.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines), found.contains(":") else {
                throw HubError.storage("satchel-hub serve --postgres did not start: \(text)")
            }
            address = found
        }
        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        deinit { if process.isRunning { kill9() } }
    }

    static func batch(_ number: Int, size: Int = 200) -> Batch {
        let first = Int64(number * size + 1)
        return Batch(id: "BG03-\(first)-\(first + Int64(size) - 1)", changes: (first..<(first + Int64(size))).map {
            SyncChange(seq: $0, changeId: "BG03-\(String(format: "%06d", $0))", at: 1_795_428_000_000 + $0 * 1000, entity: "visit",
                       entityId: "BG03-\(String(format: "%06d", $0))", action: "recorded",
                       payload: DocumentCodec.encode(.visit(VisitDocument(id: "BG03-\(String(format: "%06d", $0))", customerId: "CBG100001",
                                                                          at: 1_795_428_000_000 + $0 * 1000, outcome: .noOrder,
                                                                          note: "Посещение \($0) — wizyta, Łódź"))))
        })
    }

    struct Device {
        let key = X25519.KeyPair.generate()
        let hubKey: [UInt8]
        func send(_ batch: Batch, to address: String) throws -> Receipt? {
            let stream = try TCP.connect(address, deadline: .after(seconds: 10))
            defer { stream.close() }
            return try FastSyncClient.run(stream, deviceKey: key, hubKey: hubKey, device: "BG03", password: "sync-hasło", batch: batch,
                                          deadline: .after(seconds: 30)).receipt
        }
    }

    func setUp() throws -> (TestStore, Device) {
        let store = try Backend.postgres.makeHub()
        try store.storage.addRep(id: "R07", name: "Йордан Стоянов", passwordHash: PasswordHash.hash(password: "sync-hasło", cost: Self.cost))
        let device = Device(hubKey: try store.storage.hubKey().publicKey)
        try store.storage.addDevice(id: "BG03", rep: "R07", publicKey: device.key.publicKey, now: 0)
        return (store, device)
    }

    @Test("the same batches sent to both processes at once: each committed once, both answer with the same receipt")
    func sameBatchToBothProcesses() throws {
        let (store, device) = try setUp()
        let hubs = try [HubProcess(url: store.url), HubProcess(url: store.url)]
        let batches = (0..<12).map { Self.batch($0) }
        final class Answers: @unchecked Sendable {
            let lock = NSLock()
            var receipts: [String: [Receipt]] = [:]
            var errors: [String] = []
        }
        let answers = Answers()
        let group = DispatchGroup()
        for batch in batches {
            for hub in hubs {
                let address = hub.address
                DispatchQueue.global().async(group: group) {
                    do {
                        let receipt = try device.send(batch, to: address)
                        answers.lock.lock(); answers.receipts[batch.id, default: []].append(receipt ?? Receipt(batchId: "none", stored: -1, duplicates: -1, throughSeq: -1)); answers.lock.unlock()
                    } catch {
                        answers.lock.lock(); answers.errors.append("\(batch.id) via \(address): \(error)"); answers.lock.unlock()
                    }
                }
            }
        }
        #expect(group.wait(timeout: .now() + 120) == .success)
        #expect(answers.errors.isEmpty, "\(answers.errors.prefix(3))")
        for batch in batches {
            let receipts = answers.receipts[batch.id] ?? []
            #expect(receipts.count == 2 && Set(receipts.map(\.stored)).count == 1 && receipts[0].stored == batch.changes.count,
                    "batch \(batch.id): \(receipts)")
        }
        #expect(try store.storage.changeCount(device: "BG03") == Int64(batches.count * 200))
        #expect(try store.text("SELECT count(*) FROM receipts") == String(batches.count))
        // The hub writes a session's audit entry as the session ends, after its last answer went
        // out (protocol 5 sends a fast sync's answers when the device's BYE is read): wait for it, 10 s at most.
        let auditDeadline = Date().addingTimeInterval(10)
        while try store.text("SELECT count(*) FROM audit WHERE result = 'ok'") != String(batches.count * 2), Date() < auditDeadline { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try store.text("SELECT count(*) FROM audit WHERE result = 'ok'") == String(batches.count * 2))
    }

    @Test("a hub process SIGKILLed mid-session: the device gets no receipt, retries against the other process, and every change is held exactly once",
          arguments: [0, 2, 10, 40])
    func processKilledMidSession(killAfterMilliseconds: Int) throws {
        let (store, device) = try setUp()
        let doomed = try HubProcess(url: store.url)
        let survivor = try HubProcess(url: store.url)
        let batch = Self.batch(0, size: 300)  // one frame
        // The device's side by hand: handshake, AUTH, the batch, then the process dies before
        // (or after) it commits, but before the device reads a receipt.
        let stream = try TCP.connect(doomed.address, deadline: .after(seconds: 10))
        let deadline = Deadline.after(seconds: 30)
        let (channel, _) = try SyncChannel.connect(stream, deviceKey: device.key, hubKey: device.hubKey,
                                                   hello: Hello(device: "BG03", mode: .fast).encode(), dictionary: SyncDictionary.v2, deadline: deadline)
        try channel.send(.init(type: MessageType.auth.rawValue, body: Array("sync-hasło".utf8)), deadline: deadline)
        let auth = try AuthResult.decode(try channel.receive(deadline: deadline).body)
        #expect(auth.status == .ok)
        try channel.send(.init(type: MessageType.batch.rawValue, body: batch.encode()), deadline: deadline)
        usleep(useconds_t(killAfterMilliseconds * 1000))
        doomed.kill9()
        let after = try? channel.receive(deadline: .after(seconds: 5))
        stream.close()
        // The device marks nothing as sent without a receipt; whatever it read, it retries.
        #expect(after == nil || after?.type == MessageType.receipt.rawValue)
        let held = try store.storage.changeCount(device: "BG03")
        #expect(held == 0 || held == 300, "a batch is committed whole or not at all; held \(held)")
        // Committed before the kill: the stored receipt; not: stored now. The same receipt either way.
        let retried = try device.send(batch, to: survivor.address)
        #expect(retried == Receipt(batchId: batch.id, stored: 300, duplicates: 0, throughSeq: 300))
        #expect(try store.storage.changeCount(device: "BG03") == 300)
        #expect(try store.text("SELECT count(*) FROM receipts") == "1")
        // And again (the device lost that receipt too): the same receipt, nothing new.
        #expect(try device.send(batch, to: survivor.address) == retried)
        #expect(try store.storage.changeCount(device: "BG03") == 300)
    }
}
