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

        init(_ backend: Backend, maxSessions: Int = 8, retryAfter: Int = 30, passwords: PasswordGate = PasswordGate(limit: 4),
             verifiedPasswords: VerifiedPasswords? = VerifiedPasswords(), cost: PasswordHash.Cost = FastSyncTests.cost,
             sessionTimeout: Double = 20) throws {
            store = try backend.makeHub()
            listener = try TCPListener("127.0.0.1:0")
            let box = LogBox()
            server = SyncServer(maxSessions: maxSessions, sessionTimeout: sessionTimeout, retryAfterSeconds: retryAfter, passwords: passwords,
                                verifiedPasswords: verifiedPasswords, log: { box.add($0) }, makeStorage: store.open)
            try store.storage.addRep(id: "R07", name: "Йордан Стоянов", passwordHash: PasswordHash.hash(password: "sync-hasło", cost: cost))
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
        // The gate and the memory: the first session and the wrong password ran Argon2id, the
        // second session was let in by the password verified before; none is running now.
        #expect(value("satchel_hub_password_checks_running") == 0)
        #expect(value("satchel_hub_password_checks_limit") == 4)
        #expect(value("satchel_hub_password_checks_total") == 2)
        #expect(value("satchel_hub_password_check_timeouts_total") == 0)
        #expect(value("satchel_hub_verified_password_hits_total") == 1)
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

    @Test("past the cap and the refusals a connection waits in the listen backlog, then hears 'hub busy' with its wait: never closed without a word",
          arguments: Backend.allCases)
    func pastTheRefusalsWaitsThenHearsBusy(backend: Backend) throws {
        let hub = try Hub(backend, maxSessions: 1, retryAfter: 7)
        #expect(hub.server.refusalCap == 4)
        // One connection holds the session, four more hold every refusal (none says anything).
        let holder = try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 10))
        let admitted = Deadline.after(seconds: 10)
        while hub.server.activeSessions < 1 && !admitted.hasPassed { usleep(10_000) }
        var silent: [FileDescriptorStream] = []
        for _ in 0..<4 { silent.append(try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 10))) }
        let full = Deadline.after(seconds: 10)
        while !hub.lines.contains(where: { $0.contains("new connections wait in the listen backlog") }) && !full.hasPassed { usleep(10_000) }
        #expect(hub.lines.contains { $0.contains("full (1 sessions open, 4 being told to retry): new connections wait in the listen backlog") }, "\(hub.lines)")

        // The device's connection waits (its handshake unanswered, within its deadline)...
        final class Outcome: @unchecked Sendable {
            let lock = NSLock()
            var error: (any Error)?
            var done = false
        }
        let outcome = Outcome()
        let device = Thread {
            do { _ = try hub.sync(batch: FastSyncTests.batch(1...3)) } catch { outcome.lock.lock(); outcome.error = error; outcome.lock.unlock() }
            outcome.lock.lock(); outcome.done = true; outcome.lock.unlock()
        }
        device.start()
        usleep(1_000_000)
        outcome.lock.lock(); let waitedWithoutAnswer = !outcome.done; outcome.lock.unlock()
        #expect(waitedWithoutAnswer, "the device was answered while every refusal was taken")
        // ...until a refusal ends: then it is told the hub is busy and when to come back.
        for stream in silent { stream.close() }
        let answered = Deadline.after(seconds: 20)
        while !answered.hasPassed {
            outcome.lock.lock(); let done = outcome.done; outcome.lock.unlock()
            if done { break }
            usleep(10_000)
        }
        outcome.lock.lock(); let error = outcome.error; let done = outcome.done; outcome.lock.unlock()
        #expect(done)
        guard case SyncFailure.hubError(_, let message)? = error else {
            Issue.record("expected hub busy, got \(String(describing: error))")
            return
        }
        #expect(DeviceSync.busyRetryAfter(message) == 7, "\(message)")
        #expect(!hub.lines.contains { $0.contains("closed without a word") }, "\(hub.lines)")
        #expect(try hub.store.storage.changeCount(device: "BG03") == 0)
        holder.close()
        let freed = Deadline.after(seconds: 10)
        while hub.server.activeSessions > 0 && !freed.hasPassed { usleep(10_000) }
        #expect(try hub.sync(batch: FastSyncTests.batch(1...3)).receipt?.stored == 3)
        _ = try hub.stop()
    }

    @Test("sessions authenticating at once never run more password checks than the gate allows, and all of them sync", arguments: Backend.allCases)
    func passwordChecksAreBounded(backend: Backend) throws {
        // A cost that takes real time (8 MiB, one pass), so twelve checks do overlap unless held back.
        let gate = PasswordGate(limit: 2)
        // Without the verified-password memory: every one of the twelve sessions runs Argon2id.
        let hub = try Hub(backend, maxSessions: 32, passwords: gate, verifiedPasswords: nil, cost: PasswordHash.Cost(opsLimit: 1, memLimit: 8 << 20))
        let devices = (1...12).map { ("BG\(100 + $0)", X25519.KeyPair.generate()) }
        for (id, key) in devices { try hub.store.storage.addDevice(id: id, rep: "R07", publicKey: key.publicKey, now: 0) }
        let hubKey = try hub.store.storage.hubKey().publicKey
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var stored: [String: Int] = [:]  // 0: synced, nothing to store
            var errors: [String] = []
        }
        let results = Results()
        let group = DispatchGroup()
        for (id, key) in devices {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let stream = try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 10))
                    defer { stream.close() }
                    let result = try SyncClient.run(stream, deviceKey: key, hubKey: hubKey, device: id, password: "sync-hasło", batch: nil,
                                                    deadline: .after(seconds: 20))
                    results.lock.lock(); results.stored[id] = result.receipt == nil ? 0 : -1; results.lock.unlock()
                } catch {
                    results.lock.lock(); results.errors.append("\(id): \(error)"); results.lock.unlock()
                }
            }
        }
        #expect(group.wait(timeout: .now() + 60) == .success)
        #expect(results.errors.isEmpty, "\(results.errors)")
        #expect(results.stored.count == 12 && results.stored.values.allSatisfy { $0 == 0 }, "\(results.stored)")
        let counts = gate.counts
        #expect(counts.verified == 12)
        #expect(counts.peak <= 2, "\(counts.peak) password checks ran at once")
        #expect(counts.timedOut == 0)
        _ = try hub.stop()
    }

    @Test("provisioning sessions at once check the technician credential through the same gate as the sync passwords; with the gate full the device hears 'hub busy' and nothing is registered",
          arguments: Backend.allCases)
    func provisioningChecksAreBounded(backend: Backend) throws {
        let gate = PasswordGate(limit: 2)
        // Session deadline 7 s: a check waits until 5 s before it, so 2 s for a free slot.
        let hub = try Hub(backend, maxSessions: 32, passwords: gate, sessionTimeout: 7)
        let lifecycle = try #require(hub.store.storage as? any DeviceLifecycleStore)
        // The credential is hashed at the interactive cost (64 MiB), as `technician add` does.
        let credential = try lifecycle.addTechnician(id: "T1", name: "Иван Петров", expiresAt: nil, now: 0)
        let hubKey = try hub.store.storage.hubKey().publicKey
        @Sendable func provision(_ id: String, _ key: X25519.KeyPair) throws {
            let stream = try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 10))
            defer { stream.close() }
            _ = try ProvisionClient.run(stream, deviceKey: key, hubKey: hubKey, device: id, register: Register(credential: credential, rep: "R07"),
                                        escrow: { _ in nil }, deadline: .after(seconds: 20))
        }
        let devices = (1...6).map { ("PV\(10 + $0)", X25519.KeyPair.generate()) }
        final class Errors: @unchecked Sendable { let lock = NSLock(); var all: [String] = [] }
        let errors = Errors()
        let group = DispatchGroup()
        for (id, key) in devices {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do { try provision(id, key) } catch { errors.lock.lock(); errors.all.append("\(id): \(error)"); errors.lock.unlock() }
            }
        }
        #expect(group.wait(timeout: .now() + 60) == .success)
        #expect(errors.all.isEmpty, "\(errors.all)")
        for (id, key) in devices { #expect(try hub.store.storage.device(publicKey: key.publicKey)?.id == id) }
        var counts = gate.counts
        #expect(counts.verified == 6, "the six credential checks ran through the gate")
        #expect(counts.peak <= 2, "\(counts.peak) credential checks ran at once")
        #expect(counts.timedOut == 0)

        // Both slots held past the session's wait: the device is told to come back, and nothing changes.
        let release = ConcurrentInitTests.Flag()
        let holders = DispatchGroup()
        for _ in 0..<2 {
            holders.enter()
            Thread.detachNewThread {
                defer { holders.leave() }
                _ = try? gate.run(until: .after(seconds: 30)) { while !release.isSet { usleep(5_000) } }
            }
        }
        let held = Deadline.after(seconds: 10)
        while gate.runningNow < 2, !held.hasPassed { usleep(5_000) }
        #expect(gate.runningNow == 2)
        let late = X25519.KeyPair.generate()
        #expect { try provision("PV99", late) } throws: {
            if case .hubError(.hubBusy, let message)? = $0 as? SyncFailure { return message.contains("password checks are in use") }
            return false
        }
        release.set()
        #expect(holders.wait(timeout: .now() + 30) == .success)
        #expect(try hub.store.storage.device(publicKey: late.publicKey) == nil)
        #expect(try !lifecycle.lifecycleEvents(device: nil, limit: 100).contains { $0.device == "PV99" || $0.detail.contains("PV99") })
        counts = gate.counts
        #expect(counts.timedOut == 1 && counts.verified == 8)
        _ = try hub.stop()
    }

    @Test("a rep's next session with the password Argon2id accepted skips Argon2id; a wrong or changed password still goes through it and the lockout", arguments: Backend.allCases)
    func verifiedPasswordsSkipArgon2id(backend: Backend) throws {
        let gate = PasswordGate(limit: 2)
        let verified = VerifiedPasswords()
        let hub = try Hub(backend, passwords: gate, verifiedPasswords: verified)
        _ = try hub.sync(batch: nil)
        #expect(gate.counts.verified == 1 && verified.hitCount == 0)
        // The same rep, the same password: no Argon2id.
        _ = try hub.sync(batch: FastSyncTests.batch(1...3))
        _ = try hub.sync(batch: nil)
        #expect(gate.counts.verified == 1 && verified.hitCount == 2)
        // A wrong password is never taken from memory: Argon2id runs and the attempt counts.
        let stream = try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 10))
        #expect {
            _ = try SyncClient.run(stream, deviceKey: hub.deviceKey, hubKey: try hub.store.storage.hubKey().publicKey, device: "BG03",
                                   password: "sync-hasła", batch: nil, deadline: .after(seconds: 20))
        } throws: { error in
            guard case SyncFailure.authentication(let result) = error else { return false }
            return result.status == .wrongPassword
        }
        stream.close()
        #expect(gate.counts.verified == 2 && verified.hitCount == 2)
        #expect(try hub.store.storage.rep(id: "R07")?.failedAttempts == 1)
        // The office sets a new password: the old one is refused by Argon2id, the new one verified once, then remembered.
        try hub.store.storage.setPassword(rep: "R07", passwordHash: PasswordHash.hash(password: "nowe-hasło-Ёж", cost: FastSyncTests.cost))
        #expect(throws: SyncFailure.self) { _ = try hub.sync(batch: nil) }
        #expect(gate.counts.verified == 3 && verified.hitCount == 2)
        let key = try hub.store.storage.hubKey().publicKey
        for expectedChecks in [4, 4] {
            let stream = try TCP.connect("127.0.0.1:\(hub.listener.port)", deadline: .after(seconds: 10))
            _ = try SyncClient.run(stream, deviceKey: hub.deviceKey, hubKey: key, device: "BG03", password: "nowe-hasło-Ёж", batch: nil,
                                   deadline: .after(seconds: 20))
            stream.close()
            #expect(gate.counts.verified == expectedChecks)
        }
        #expect(verified.hitCount == 3)
        #expect(try hub.store.storage.changeCount(device: "BG03") == 3)
        _ = try hub.stop()
    }

    @Test("the verified-password memory matches only the same rep, stored hash and password, and stays within its capacity")
    func verifiedPasswordsMatchExactly() {
        let memory = VerifiedPasswords(capacity: 4)
        memory.remember(rep: "R01", storedHash: "$argon2id$a", password: "hasło")
        #expect(memory.matches(rep: "R01", storedHash: "$argon2id$a", password: "hasło"))
        #expect(!memory.matches(rep: "R01", storedHash: "$argon2id$a", password: "hasło "))
        #expect(!memory.matches(rep: "R01", storedHash: "$argon2id$b", password: "hasło"))
        #expect(!memory.matches(rep: "R02", storedHash: "$argon2id$a", password: "hasło"))
        // No (rep, hash, password) split may collide with another: lengths are hashed too.
        memory.remember(rep: "R1", storedHash: "0$h", password: "x")
        #expect(!memory.matches(rep: "R1", storedHash: "0", password: "$hx"))
        for n in 3...10 { memory.remember(rep: "R\(n)0", storedHash: "h", password: "Пароль\(n)") }
        #expect(memory.matches(rep: "R100", storedHash: "h", password: "Пароль10"))
        #expect(!memory.matches(rep: "R01", storedHash: "$argon2id$a", password: "hasło"))  // the oldest were forgotten
    }

    @Test("a password check that cannot start before its deadline gives up with Busy; one that can, runs")
    func passwordGateDeadline() throws {
        let gate = PasswordGate(limit: 1)
        #expect(PasswordGate.limit(memoryBudget: 256 << 20) == 4)
        #expect(PasswordGate.limit(memoryBudget: 1 << 20) == 1)
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            _ = try? gate.run(until: .after(seconds: 10)) { started.signal(); release.wait() }
        }
        started.wait()
        let before = Deadline.monotonicNanoseconds()
        #expect(throws: PasswordGate.Busy.self) { try gate.run(until: .after(seconds: 0.3)) { Issue.record("ran past the limit") } }
        let waited = Double(Deadline.monotonicNanoseconds() - before) / 1e9
        #expect(waited >= 0.25 && waited < 5, "waited \(waited) s")
        // A waiter with time left gets the slot when it frees.
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { release.signal() }
        #expect(try gate.run(until: .after(seconds: 10)) { 42 } == 42)
        #expect(gate.counts == (peak: 1, verified: 2, timedOut: 1))
    }

    @Test("serve raises the open-files soft limit towards what its cap and backlog need, up to the hard limit and never down")
    func descriptorLimitFollowsTheCap() throws {
        // 2,048 sessions, their 512 busy answers, a 1,024 backlog and the reserve.
        #expect(DescriptorLimit.needed(sessions: 2048, backlog: 1024) == 2048 + 512 + 1024 + DescriptorLimit.reserve)
        #expect(DescriptorLimit.needed(sessions: 1, backlog: 1) == 1 + 4 + 1 + DescriptorLimit.reserve)
        #expect(DescriptorLimit.target(soft: 1024, hard: 20_000, needed: 3648) == 3648)
        #expect(DescriptorLimit.target(soft: 1024, hard: 2048, needed: 3648) == 2048)  // short: serve warns
        #expect(DescriptorLimit.target(soft: 8192, hard: 20_000, needed: 3648) == 8192)  // never lowered
        let outcome = try DescriptorLimit.raise(toServe: 2048, backlog: 1024)
        var limit = rlimit()
        #expect(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        let softNow = limit.rlim_cur == rlim_t.max ? Int.max : Int(clamping: limit.rlim_cur)
        #expect(softNow == outcome.after)
        #expect(outcome.after >= outcome.before)
        #expect(outcome.after == min(outcome.hard, max(outcome.before, outcome.needed)))
        #expect(outcome.short == (outcome.after < 3648))
    }
}
