import Agent
import Field
import Foundation
import Hub
import SatchelTesting
import Seal
import Sync
import Testing
import Transport

/// The sync server as `satchel-hub serve` runs it, over real loopback TCP: the session cap's
/// refusal, the metrics a Prometheus server scrapes, and the drain's report; on each backend.
@Suite("The hub's sync server: session cap, metrics, drain", .serialized)
struct ServeLimitsTests {
    final class Hub: @unchecked Sendable {
        let store: TestStore
        let server: SyncServer
        let listener: TCPListener
        let deviceKey = X25519.KeyPair.generate()
        private let lock = NSLock()
        private var stopReason: String?
        private var report: DrainReport?
        var lines: [String] { lock.lock(); defer { lock.unlock() }; return logged }
        private var logged: [String] = []

        init(_ backend: Backend, maxSessions: Int = 8, retryAfter: Int = 30) throws {
            store = try backend.makeHub()
            listener = try TCPListener("127.0.0.1:0")
            let box = LogBox()
            server = SyncServer(maxSessions: maxSessions, sessionTimeout: 20, retryAfterSeconds: retryAfter, log: { box.add($0) }, makeStorage: store.open)
            try store.storage.addRep(id: "R07", name: "Йордан Стоянов", passwordHash: PasswordHash.hash(password: "sync-hasło", cost: FastSyncTests.cost))
            try store.storage.addDevice(id: "BG03", rep: "R07", publicKey: deviceKey.publicKey, now: 0)
            box.hub = self
            Thread.detachNewThread { [self] in
                let report = server.run(listener, drainSeconds: 5) { [self] in lock.lock(); defer { lock.unlock() }; return stopReason }
                lock.lock(); self.report = report; lock.unlock()
            }
        }

        final class LogBox: @unchecked Sendable {
            weak var hub: Hub?
            func add(_ line: String) { hub?.append(line) }
        }
        func append(_ line: String) { lock.lock(); logged.append(line); lock.unlock() }

        func sync(batch: Batch?) throws -> SyncResult {
            let stream = try TCP.connect("127.0.0.1:\(listener.port)", deadline: .after(seconds: 10))
            defer { stream.close() }
            return try SyncClient.run(stream, deviceKey: deviceKey, hubKey: try store.storage.hubKey().publicKey, device: "BG03",
                                      password: "sync-hasło", batch: batch, deadline: .after(seconds: 20))
        }

        /// Stops the server and waits (30 s at most) for its drain report.
        func stop() throws -> DrainReport {
            lock.lock(); stopReason = "test stop"; lock.unlock()
            let deadline = Deadline.after(seconds: 30)
            while !deadline.hasPassed {
                lock.lock(); let done = report; lock.unlock()
                if let done { return done }
                usleep(10_000)
            }
            throw StreamError.timedOut(what: "the server's drain report (30 s)")
        }
    }

    @Test("at the session cap a device hears 'hub busy' with the wait it then honours, and nothing of its batch is stored", arguments: Backend.allCases)
    func busyAtTheCap(backend: Backend) throws {
        let hub = try Hub(backend, maxSessions: 1, retryAfter: 7)
        // A connection that never says HELLO holds the one session (a device on a stalled link).
        let holder = try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 10))
        let admitted = Deadline.after(seconds: 60)  // a wait, not a time limit: generous for a loaded CI machine
        while hub.server.activeSessions < 1 && !admitted.hasPassed { usleep(10_000) }
        #expect(hub.server.activeSessions == 1)
        #expect {
            _ = try hub.sync(batch: FastSyncTests.batch(1...4))
        } throws: { error in
            guard case SyncFailure.hubError(_, let message) = error else { return false }
            // The device reads the wait from the message (its Sync module may not know code 13).
            return DeviceSync.busyRetryAfter(message) == 7 && message.contains("all 1 sync sessions are in use")
        }
        #expect(try hub.store.storage.changeCount(device: "BG03") == 0)
        // Again: every refusal is in the audit log.
        #expect(throws: SyncFailure.self) { _ = try hub.sync(batch: FastSyncTests.batch(1...4)) }
        let audited = Deadline.after(seconds: 60)  // a wait, not a time limit: generous for a loaded CI machine
        while try hub.store.storage.auditLog(limit: 10).filter({ $0.result == "refused" }).count < 2 && !audited.hasPassed { usleep(10_000) }
        #expect(try hub.store.storage.auditLog(limit: 10).filter { $0.result == "refused" && $0.device == "BG03" && $0.error?.hasPrefix("hub busy:") == true }.count == 2,
                "\((try? hub.store.storage.auditLog(limit: 10)) ?? []) \(hub.lines)")
        #expect(hub.lines.contains { $0.hasPrefix("session refused: device BG03, mode fast: the hub is full (1 sessions open), told to retry after 7 s") },
                "\(hub.lines)")
        #expect(hub.server.metrics.prometheusText().contains("satchel_hub_refusals_total 2\n"))
        // The slot frees, the same device gets in.
        holder.close()
        let freed = Deadline.after(seconds: 60)  // a wait, not a time limit: generous for a loaded CI machine
        while hub.server.activeSessions > 0 && !freed.hasPassed { usleep(10_000) }
        let result = try hub.sync(batch: FastSyncTests.batch(1...4))
        #expect(result.receipt?.stored == 4)
        #expect(try hub.store.storage.changeCount(device: "BG03") == 4)
        #expect(try hub.stop().openAtStop == 0)
    }

    @Test("the busy wait is read only from a hub-busy message with a sane figure")
    func busyMessageParsing() {
        #expect(DeviceSync.busyRetryAfter(HubBusy.message(open: 64, retryAfter: 30)) == 30)
        #expect(DeviceSync.busyRetryAfter(HubBusy.message(open: 64, retryAfter: 3600)) == 3600)
        #expect(DeviceSync.busyRetryAfter("hub busy: all 64 sync sessions are in use; retry after 0 s") == nil)
        #expect(DeviceSync.busyRetryAfter("hub busy: all 64 sync sessions are in use; retry after 99999 s") == nil)
        #expect(DeviceSync.busyRetryAfter("hub busy: retry after -5 s") == nil)
        #expect(DeviceSync.busyRetryAfter("batch BG03-1 refused: retry after 30 s") == nil)
        #expect(DeviceSync.busyRetryAfter("hub busy: retry after ٣٠ s") == nil)  // Arabic-Indic digits are not a wait
    }

    @Test("the metrics endpoint answers GET /metrics in Prometheus text with what the sessions did, and 404 elsewhere", arguments: Backend.allCases)
    func metricsScrape(backend: Backend) throws {
        let hub = try Hub(backend)
        let first = try hub.sync(batch: FastSyncTests.batch(1...6))
        #expect(first.receipt?.stored == 6)
        _ = try hub.sync(batch: nil)
        // A session that fails: a wrong password.
        #expect(throws: SyncFailure.self) {
            let stream = try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 10))
            defer { stream.close() }
            _ = try SyncClient.run(stream, deviceKey: hub.deviceKey, hubKey: try hub.store.storage.hubKey().publicKey, device: "BG03",
                                   password: "zły-hasło", batch: nil, deadline: .after(seconds: 20))
        }
        let ended = Deadline.after(seconds: 60)  // a wait, not a time limit: generous for a loaded CI machine
        while hub.server.activeSessions > 0 && !ended.hasPassed { usleep(10_000) }

        let metricsListener = try TCPListener("127.0.0.1:0")
        let metrics = hub.server.metrics
        let stop = ConcurrentInitTests.Flag()
        let serving = Thread { MetricsEndpoint.serve(metricsListener, metrics: metrics, shouldStop: { stop.isSet }) }
        serving.start()
        defer { stop.set() }
        func get(_ path: String) throws -> String {
            let stream = try TCP.connect("127.0.0.1:\(metricsListener.port)", deadline: .after(seconds: 10))
            defer { stream.close() }
            try stream.write(Array("GET \(path) HTTP/1.1\r\nHost: hub\r\nAccept: text/plain\r\n\r\n".utf8), deadline: .after(seconds: 10))
            var answer: [UInt8] = []
            while true {
                let chunk = try stream.read(maxCount: 65_536, deadline: .after(seconds: 10))
                if chunk.isEmpty { break }
                answer += chunk
            }
            return String(decoding: answer, as: UTF8.self)
        }
        let scraped = try get("/metrics")
        #expect(scraped.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(scraped.contains("Content-Type: text/plain; version=0.0.4"))
        let body = String(scraped[try #require(scraped.range(of: "\r\n\r\n")).upperBound...])
        func value(_ sample: String) -> Double? {
            body.split(separator: "\n").first { $0.hasPrefix(sample + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect(value("satchel_hub_sessions_open") == 0)
        #expect(value("satchel_hub_connections_total") == 3)
        #expect(value("satchel_hub_sessions_total{result=\"ok\"}") == 2)
        #expect(value("satchel_hub_sessions_total{result=\"refused\"}") == 1)
        #expect(value("satchel_hub_batches_total") == 1)
        #expect(value("satchel_hub_records_up_total") == 6)
        #expect(value("satchel_hub_refusals_total") == 0)
        #expect((value("satchel_hub_bytes_up_total") ?? 0) > 6 * 20)
        #expect((value("satchel_hub_bytes_down_total") ?? 0) > 0)
        #expect(value("satchel_hub_session_duration_seconds_count") == 3)
        #expect(value("satchel_hub_session_duration_seconds_bucket{le=\"+Inf\"}") == 3)
        // Every sample line belongs to a metric declared with HELP and TYPE before it.
        var declared: Set<String> = []
        for line in body.split(separator: "\n") {
            if line.hasPrefix("# TYPE ") { declared.insert(String(line.split(separator: " ")[2])) }
            if line.hasPrefix("#") { continue }
            let name = String(line.prefix { $0 != "{" && $0 != " " })
            #expect(declared.contains(name) || declared.contains { name.hasPrefix($0 + "_") }, "\(line)")
        }
        #expect(try get("/").hasPrefix("HTTP/1.1 404 Not Found\r\n"))

        // The technician's line per session end.
        #expect(hub.lines.contains { $0.hasPrefix("session end: device BG03 (rep R07), mode fast, up ") && $0.hasSuffix(", ok") && $0.contains("(6 records)") },
                "\(hub.lines)")
        #expect(hub.lines.contains { $0.contains(", refused: wrong sync password") }, "\(hub.lines)")
        let report = try hub.stop()
        #expect(report.openAtStop == 0 && report.finished == 0 && report.cut == 0)
    }

    @Test("from a stop the port refuses connections at once; a session that outlasts the drain is cut, and its audit entry says so", arguments: Backend.allCases)
    func drainInProcess(backend: Backend) throws {
        let hub = try Hub(backend)
        // One session that finishes during the drain: a device that connects, then takes its time.
        let slow = try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 10))
        let started = Deadline.after(seconds: 60)  // a wait, not a time limit: generous for a loaded CI machine
        while hub.server.activeSessions < 1 && !started.hasPassed { usleep(10_000) }
        let stopping = Thread { _ = try? hub.stop() }
        let stoppedAt = Deadline.monotonicNanoseconds()
        stopping.start()
        // From the stop on the port refuses: wait until the server says it stopped accepting.
        let refused = Deadline.after(seconds: 60)  // a wait, not a time limit: generous for a loaded CI machine
        while !hub.lines.contains(where: { $0.contains("no new sessions") }) && !refused.hasPassed { usleep(10_000) }
        #expect(throws: StreamError.self) { _ = try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 5)) }
        // The stalled connection never completes its handshake: cut at the 5 s deadline.
        let report = try hub.stop()
        let seconds = Double(Deadline.monotonicNanoseconds() - stoppedAt) / 1e9
        #expect(report.openAtStop == 1 && report.cut == 1 && report.finished == 0 && report.stillRunning == 0, "\(report)")
        #expect(seconds >= 4.5 && seconds < 15, "drain took \(seconds) s")
        #expect(hub.lines.contains { $0.contains("cut: the hub was stopping and the drain deadline passed") }, "\(hub.lines)")
        #expect(try hub.store.storage.auditLog(limit: 5).first?.error?.hasPrefix("cut:") == true)
        slow.close()
    }
}
