import Agent
import Dispatch
import Field
import Foundation
import Hub
import SatchelTesting
import Seal
import Sync
import Testing
import Transport

/// Many handhelds initialising at the same moment against the embedded SQLite hub (the morning
/// after a roll-out): every session waits its turn for the writer, none fails on a busy lock.
@Suite("Concurrent initialisation on the SQLite hub", .serialized)
struct ConcurrentInitTests {
    @Test("200 handhelds initialising at once against one SQLite hub over TCP: every sync succeeds, each gets its whole scope", arguments: [200])
    func everyInitialisationSucceeds(devices: Int) throws {
        let setup = try DownloadTests.Setup(customers: 60, products: 60)
        let keys = (0..<devices).map { _ in X25519.KeyPair.generate() }
        let ids = (0..<devices).map { "PL\(String(1000 + $0))" }
        for (id, key) in zip(ids, keys) { try setup.storage.addDevice(id: id, rep: "R07", publicKey: key.publicKey, now: 0) }
        let databases = try ids.map { id in
            try DeviceDatabase.create(home: setup.directory.path + "/" + id, deviceID: id, repID: "R07", clock: ManualClock(DownloadTests.now))
        }
        let hubKey = try setup.storage.hubKey().publicKey
        let hubPath = setup.hubPath
        let server = SyncServer(maxSessions: devices + 16, clock: { DownloadTests.now }) { try SQLiteHubStorage(path: hubPath) }
        let listener = try TCPListener("127.0.0.1:0")
        let stop = Flag()
        let serving = Thread { server.serve(listener, shouldStop: { stop.isSet }) }
        serving.start()
        defer { stop.set() }

        let results = Results(count: devices)
        let group = DispatchGroup()
        for index in 0..<devices {
            group.enter()
            let box = Unchecked((databases[index], keys[index], ids[index]))
            Thread.detachNewThread {
                defer { group.leave() }
                let (database, key, id) = box.value
                do {
                    let stream = try TCP.connect("127.0.0.1:\(listener.port)", deadline: .after(seconds: 60))
                    defer { stream.close() }
                    let download = DeviceDownload(database)
                    let result = try SyncClient.run(stream, deviceKey: key, hubKey: hubKey, device: id, password: "sync-hasło", mode: .initialise,
                                                    batches: [], pull: try download.pullRequest(reset: true), sink: download,
                                                    deadline: .after(seconds: 110))
                    results.set(index, result.mismatched.isEmpty ? .success(result.downloaded) : .failure("mismatched \(result.mismatched)"))
                } catch {
                    results.set(index, .failure("\(error)"))
                }
            }
        }
        #expect(group.wait(timeout: .now() + 150) == .success, "the syncs did not finish within 150 s")
        let failures = results.all.enumerated().compactMap { index, outcome -> String? in
            if case .failure(let why) = outcome { return "\(ids[index]): \(why)" }
            return nil
        }
        #expect(failures.count == 0, "\(failures.count) of \(devices) syncs failed, e.g. \(failures.prefix(3))")
        let rows = Set(results.all.compactMap { if case .success(let rows) = $0 { return rows } else { return nil } })
        #expect(rows.count == 1 && rows.first! > 0, "every device gets the same scope: \(rows)")
        let audit = try setup.storage.auditLog(limit: devices * 2)
        let failed = audit.filter { $0.result != "ok" }
        #expect(failed.count == 0, "\(failed.count) sessions failed in the audit log, e.g. \(failed.prefix(2).map { $0.error ?? "?" })")
    }

    enum Outcome: Sendable { case pending, success(Int), failure(String) }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var outcomes: [Outcome]
        init(count: Int) { outcomes = Array(repeating: .pending, count: count) }
        func set(_ index: Int, _ outcome: Outcome) { lock.lock(); outcomes[index] = outcome; lock.unlock() }
        var all: [Outcome] { lock.lock(); defer { lock.unlock() }; return outcomes }
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set() { lock.lock(); value = true; lock.unlock() }
        var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    }

    final class Unchecked<T>: @unchecked Sendable {
        let value: T
        init(_ value: T) { self.value = value }
    }
}
