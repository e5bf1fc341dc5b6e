import Field
import Foundation
import Hub
import SatchelTesting
import SimulatorKit
import Store
import Testing
import Transport

/// `satchel-hub serve` as a real process told to stop (SIGTERM) while the real `satchel` is
/// halfway through an upload over a slowed link, and at its session cap.
@Suite("satchel-hub serve stops gracefully and refuses clearly when full", .serialized)
struct GracefulStopTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")
    let sim = BuiltExecutable.path("satchel-sim")

    @Test("serve with a bad --listen, --metrics, --sessions or --drain-seconds is refused by name before any hub file is made", arguments: [
        ["--listen", "nowhere"], ["--listen", "127.0.0.1:0", "--metrics", "bez-portu"], ["--listen", "127.0.0.1:0", "--sessions", "0"],
        ["--listen", "127.0.0.1:0", "--drain-seconds=-1"],
    ])
    func badOptionsChangeNothing(arguments: [String]) throws {
        let directory = TemporaryDirectory("serve-bad")
        let database = directory.path + "/hub.db"
        let refused = try ChildProcess.run(hubBinary, ["serve", "--db", database] + arguments, timeoutSeconds: 30)
        #expect(refused.status == 64, "\(refused.stderr)")
        let named = arguments.first { $0.hasPrefix("--") && $0 != "--listen" } ?? "--listen"
        #expect(refused.stderr.contains(String(named.prefix { $0 != "=" })), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: database))
    }

    /// The hub process, its standard error read line by line as it comes.
    final class HubProcess: @unchecked Sendable {
        let process = Process()
        let address: String
        let port: UInt16
        /// `http://127.0.0.1:PORT/metrics` when started with --metrics.
        let metricsURL: String?
        private let errorReader: Thread

        init(binary: String, arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve"] + arguments + ["--listen", "127.0.0.1:0"]
            let output = Pipe(), errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            let handle = errors.fileHandleForReading
            let box = TextBox()
            errorReader = Thread {
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { box.finish(); return }
                    box.append(String(decoding: chunk, as: UTF8.self))
                }
            }
            var line = Data()
            let reading = output.fileHandleForReading
            // With --metrics, a second line says where the metrics are.
            let lines = arguments.contains("--metrics") ? 2 : 1
            while line.filter({ $0 == UInt8(ascii: "\n") }).count < lines {
                let chunk = reading.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            let printed = String(decoding: line, as: UTF8.self).split(separator: "\n")
            let text = printed.first.map(String.init) ?? ""
            metricsURL = printed.first { $0.contains("metrics on http://") }?.split(separator: " ").last.map(String.init)
            guard let found = text.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines), let colon = found.lastIndex(of: ":"),
                  let port = UInt16(found[found.index(after: colon)...]) else {
                kill(process.processIdentifier, SIGKILL)
                throw StreamError.closed(what: "satchel-hub serve printed no address: \(text)")
            }
            address = found
            self.port = port
            self.box = box
            errorReader.start()
        }
        private let box: TextBox

        final class TextBox: @unchecked Sendable {
            private let lock = NSLock()
            private var text = ""
            private var ended = false
            func append(_ more: String) { lock.lock(); text += more; lock.unlock() }
            /// The reader saw the end of the pipe: everything the process wrote is in `value`.
            func finish() { lock.lock(); ended = true; lock.unlock() }
            var finished: Bool { lock.lock(); defer { lock.unlock() }; return ended }
            var value: String { lock.lock(); defer { lock.unlock() }; return text }
        }

        var stderr: String { box.value }

        /// Waits (at most `seconds`) until standard error holds `text`.
        func waitFor(_ text: String, seconds: Double = 30) -> Bool {
            let deadline = Deadline.after(seconds: seconds)
            while !deadline.hasPassed {
                if stderr.contains(text) { return true }
                usleep(20_000)
            }
            return false
        }

        /// Waits (at most `seconds`) for the process to exit; its status, nil when it did not.
        func waitForExit(seconds: Double) -> Int32? {
            let deadline = Deadline.after(seconds: seconds)
            while process.isRunning && !deadline.hasPassed { usleep(20_000) }
            if process.isRunning { return nil }
            // The reader sees the end of the pipe once the process is gone, but on a loaded
            // machine not within a fixed 0.1 s: wait for it, so the last lines (the stop
            // summary) are in `stderr` when the caller checks them.
            let drained = Deadline.after(seconds: 30)
            while !box.finished && !drained.hasPassed { usleep(10_000) }
            return process.terminationStatus
        }

        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    }

    /// A TCP relay between the device and the hub that slows the device's direction to
    /// `bytesPerSecond`, and holds it (forwards nothing more) once `holdAfter` bytes went up,
    /// until `release()`: the device is then mid-upload, its batch partly on the hub's side.
    final class SlowLink: @unchecked Sendable {
        let listener: TCPListener
        let hub: String
        let bytesPerSecond: Int
        let holdAfter: Int
        private let lock = NSLock()
        private var up = 0
        private var released = false
        private var ended = false

        init(to hub: String, bytesPerSecond: Int, holdAfter: Int) throws {
            listener = try TCPListener("127.0.0.1:0")
            self.hub = hub
            self.bytesPerSecond = bytesPerSecond
            self.holdAfter = holdAfter
            Thread.detachNewThread { [self] in relayOne() }
        }

        var address: String { "127.0.0.1:\(listener.port)" }
        var forwardedUp: Int { lock.lock(); defer { lock.unlock() }; return up }
        func release() { lock.lock(); released = true; lock.unlock() }
        private var isReleased: Bool { lock.lock(); defer { lock.unlock() }; return released }
        private var hasEnded: Bool { lock.lock(); defer { lock.unlock() }; return ended }

        private func relayOne() {
            guard let accepted = try? listener.accept(deadline: .after(seconds: 60)) else { return }
            guard let connected = try? TCP.connect(self.hub, deadline: .after(seconds: 10)) else { accepted.close(); return }
            // Each direction on a thread of its own, both on the same two sockets.
            let ends = Ends(device: accepted, hub: connected)
            let device = ends.device, hub = ends.hub
            let done = DispatchGroup()
            done.enter()
            Thread.detachNewThread { [self] in
                let device = ends.device, hub = ends.hub
                // Device → hub, slowed and held.
                let chunk = max(1, bytesPerSecond / 20)
                while true {
                    while !isReleased && !hasEnded && forwardedUp >= holdAfter { usleep(10_000) }
                    guard let bytes = try? device.read(maxCount: chunk, deadline: .after(seconds: 60)), !bytes.isEmpty,
                          (try? hub.write(bytes, deadline: .after(seconds: 60))) != nil else { break }
                    lock.lock(); up += bytes.count; lock.unlock()
                    if !isReleased { usleep(UInt32(1_000_000 * bytes.count / bytesPerSecond)) }
                }
                shutdown(hub.fd, Int32(SHUT_WR))
                shutdown(device.fd, Int32(SHUT_RD))
                done.leave()
            }
            // Hub → device, at full speed. The hub ending its side ends the device's link too.
            while let bytes = try? hub.read(maxCount: 16_384, deadline: .after(seconds: 120)), !bytes.isEmpty,
                  (try? device.write(bytes, deadline: .after(seconds: 60))) != nil {}
            lock.lock(); ended = true; lock.unlock()
            shutdown(device.fd, Int32(SHUT_RDWR))
            shutdown(hub.fd, Int32(SHUT_RDWR))
            _ = done.wait(timeout: .now() + 120)
            device.close()
            hub.close()
        }
    }

    final class Ends: @unchecked Sendable {
        let device: FileDescriptorStream
        let hub: FileDescriptorStream
        init(device: FileDescriptorStream, hub: FileDescriptorStream) { self.device = device; self.hub = hub }
    }

    /// A provisioned device with changes to send (visits with Polish and Russian notes and an
    /// order), and a hub that knows it.
    struct Setup {
        let directory: TemporaryDirectory
        let home: String
        let database: String
        /// The hub's storage as every satchel-hub command names it: `--db FILE` or `--postgres URL`.
        let store: [String]
        /// The PostgreSQL database of this test, dropped when the setup goes.
        let scratch: PostgresHubEndToEndTests.Scratch?
        var environment: [String: String] { ["SATCHEL_HOME": home] }
        /// The hub's storage opened past the hub process, as another process would.
        func storage() throws -> any HubStorage {
            if let scratch { return try PostgresHubStorage(url: scratch.url) }
            return try SQLiteHubStorage(path: database)
        }
    }

    /// The hub's two storage backends: draining and refusal are the same on each.
    enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
        case sqlite, postgres
        var description: String { rawValue }
    }

    func setUp(_ label: String, backend: Backend = .sqlite, provisionedTo address: String? = nil) throws -> Setup {
        let directory = TemporaryDirectory(label)
        let home = directory.path + "/device", database = directory.path + "/hub.db"
        let scratch = backend == .postgres ? try PostgresHubEndToEndTests.Scratch() : nil
        let store = scratch.map { ["--postgres", $0.url] } ?? ["--db", database]
        try #require(try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "20", "--products", "30", "--seed", "15"], timeoutSeconds: 60).succeeded)
        let environment = ["SATCHEL_HOME": home]
        let keys = try ChildProcess.run(satchel, ["keys", "--json"], environment: environment, timeoutSeconds: 30)
        let deviceKey = try #require(try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])["public_key"] as? String
        try #require(try hub(["rep", "add"] + store + ["--rep", "R01", "--name", "Grażyna Żółkiewska"], stdin: "hasło-sync\n").succeeded)
        try #require(try hub(["device", "add"] + store + ["--device", "SIM1", "--rep", "R01", "--key", deviceKey ?? ""]).succeeded)
        let hubKey = try hub(["key"] + store).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        // Pinned to a port nothing listens on: every sync below names its hub.
        try #require(try ChildProcess.run(satchel, ["provision", "--hub", address ?? "127.0.0.1:9", "--hub-key", hubKey], environment: environment, timeoutSeconds: 30).succeeded)
        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers ORDER BY id LIMIT 1")
        for index in 0..<5 {
            let visit = try ChildProcess.run(satchel, ["visit", "--customer", customer, "--outcome", "no_order",
                                                       "--note", "Wizyta \(index): półka z kawą przestawiona, klient prosi o telefon — посещение №\(index), витрина пуста"],
                                             environment: environment, timeoutSeconds: 30)
            try #require(visit.succeeded, "\(visit.stderr)")
        }
        let buyer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let order = try ChildProcess.run(satchel, ["order", "new", "--customer", buyer, "--line", "PN-10000:3", "--line", "PN-10001:12",
                                                   "--note", "Dostawa rano — доставка утром", "--confirm"], environment: environment, timeoutSeconds: 30)
        try #require(order.succeeded, "\(order.stderr)")
        return Setup(directory: directory, home: home, database: database, store: store, scratch: scratch)
    }

    func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
    }

    /// `satchel sync` on a thread of its own; `result` waits for it.
    final class Sync: @unchecked Sendable {
        private let lock = NSLock()
        private var outcome: Result<ChildProcess.Result, any Error>?
        init(_ satchel: String, _ arguments: [String], environment: [String: String]) {
            Thread.detachNewThread { [self] in
                let result = Result { try ChildProcess.run(satchel, ["sync"] + arguments, environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 150) }
                lock.lock(); outcome = result; lock.unlock()
            }
        }
        func result(seconds: Double = 160) throws -> ChildProcess.Result {
            let deadline = Deadline.after(seconds: seconds)
            while !deadline.hasPassed {
                lock.lock(); let done = outcome; lock.unlock()
                if let done { return try done.get() }
                usleep(20_000)
            }
            throw StreamError.timedOut(what: "satchel sync did not end within \(seconds) s")
        }
    }

    func json(_ text: String) -> [String: Any]? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] }

    @Test("SIGTERM mid-upload over a slow link: the session finishes, its batch is committed and acknowledged, the port refuses new connections, exit 0 within the drain", arguments: Backend.allCases)
    func sigtermDrainsASessionUnderWay(backend: Backend) throws {
        let setup = try setUp("drain-finish", backend: backend)
        let running = try HubProcess(binary: hubBinary, arguments: setup.store + ["--drain-seconds", "30"])
        // 2 KB/s, held after 300 bytes: the handshake and AUTH are through, the batch is not.
        let link = try SlowLink(to: running.address, bytesPerSecond: 2_000, holdAfter: 300)
        let sync = Sync(satchel, ["--hub", link.address, "--json"], environment: setup.environment)
        let held = Deadline.after(seconds: 60)
        while link.forwardedUp < 300 && !held.hasPassed { usleep(20_000) }
        try #require(link.forwardedUp >= 300, "the device never got its upload under way")
        #expect(running.waitFor("session end:", seconds: 0.1) == false, "no session may have ended yet: \(running.stderr)")

        kill(running.process.processIdentifier, SIGTERM)
        let signalled = Deadline.monotonicNanoseconds()
        #expect(running.waitFor("SIGTERM: no new sessions; 1 open"), "\(running.stderr)")
        // No new connection from the stop on.
        #expect(throws: StreamError.self) { _ = try TCP.connect(running.address, deadline: .after(seconds: 5)) }
        #expect(running.process.isRunning, "the hub must wait for the open session")

        link.release()
        let synced = try sync.result()
        #expect(synced.succeeded, "\(synced.stderr)")
        let report = json(synced.stdout)
        #expect(report?["uploaded"] as? Int == 6 && report?["through_seq"] as? Int == 6, "\(synced.stdout)")
        // The upload really was halfway when the signal came.
        #expect((report?["bytes_up"] as? Int ?? 0) > 300, "\(synced.stdout)")

        let status = running.waitForExit(seconds: 30)
        let seconds = Double(Deadline.monotonicNanoseconds() - signalled) / 1e9
        #expect(status == 0, "exit \(String(describing: status)): \(running.stderr)")
        #expect(seconds < 30, "took \(seconds) s to stop")
        #expect(running.stderr.contains("satchel-hub: stopped (SIGTERM): 1 session finished, 0 cut"), "\(running.stderr)")
        #expect(running.stderr.contains("session end: device SIM1 (rep R01), mode fast, up "), "\(running.stderr)")
        #expect(running.stderr.contains("(6 records)") && running.stderr.contains(" s, ok"), "\(running.stderr)")

        let storage = try setup.storage()
        #expect(try storage.changeCount(device: "SIM1") == 6)
        #expect(try storage.auditLog(limit: 5).map(\.result) == ["ok"])
        let device = try ChildProcess.run(satchel, ["status", "--json"], environment: setup.environment, timeoutSeconds: 30)
        #expect(json(device.stdout)?["unsynced_changes"] as? Int == 0, "\(device.stdout)")
    }

    @Test("a session that outlasts the drain deadline is cut with nothing half-committed; the device sends again and the batch lands exactly once", arguments: Backend.allCases)
    func sessionOutlastingTheDrainIsCut(backend: Backend) throws {
        let setup = try setUp("drain-cut", backend: backend)
        let running = try HubProcess(binary: hubBinary, arguments: setup.store + ["--drain-seconds", "2"])
        let link = try SlowLink(to: running.address, bytesPerSecond: 2_000, holdAfter: 300)
        let sync = Sync(satchel, ["--hub", link.address, "--json"], environment: setup.environment)
        let held = Deadline.after(seconds: 60)
        while link.forwardedUp < 300 && !held.hasPassed { usleep(20_000) }
        try #require(link.forwardedUp >= 300, "the device never got its upload under way")

        kill(running.process.processIdentifier, SIGTERM)
        let signalled = Deadline.monotonicNanoseconds()
        // The link stays held: the session cannot finish within 2 s.
        let status = running.waitForExit(seconds: 30)
        let seconds = Double(Deadline.monotonicNanoseconds() - signalled) / 1e9
        #expect(status == 0, "exit \(String(describing: status)): \(running.stderr)")
        #expect(seconds >= 1.8 && seconds < 15, "took \(seconds) s to stop")
        #expect(running.stderr.contains("satchel-hub: stopped (SIGTERM): 0 sessions finished, 1 cut at the 2 s drain deadline"), "\(running.stderr)")
        #expect(running.stderr.contains("cut: the hub was stopping"), "\(running.stderr)")

        let cut = try sync.result()
        #expect(cut.status == 69, "\(cut.status): \(cut.stderr)")
        #expect(cut.stderr.contains("no connection to the hub") && cut.stderr.contains("try again"), "\(cut.stderr)")
        // Nothing of the batch stored, nothing marked sent.
        #expect(try setup.storage().changeCount(device: "SIM1") == 0)
        let owed = try ChildProcess.run(satchel, ["status", "--json"], environment: setup.environment, timeoutSeconds: 30)
        #expect(json(owed.stdout)?["unsynced_changes"] as? Int == 6, "\(owed.stdout)")
        #expect(try setup.storage().auditLog(limit: 5).first?.error?.hasPrefix("cut:") == true)

        // The hub back: the device sends the same batch, it lands once; again, nothing more.
        let again = try HubProcess(binary: hubBinary, arguments: setup.store)
        let retried = try ChildProcess.run(satchel, ["sync", "--hub", again.address, "--json"], environment: setup.environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        #expect(retried.succeeded, "\(retried.stderr)")
        #expect(json(retried.stdout)?["uploaded"] as? Int == 6, "\(retried.stdout)")
        let twice = try ChildProcess.run(satchel, ["sync", "--hub", again.address, "--json"], environment: setup.environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        #expect(json(twice.stdout)?["uploaded"] as? Int == 0, "\(twice.stdout)")
        #expect(try setup.storage().changeCount(device: "SIM1") == 6)
        kill(again.process.processIdentifier, SIGTERM)
        #expect(again.waitForExit(seconds: 30) == 0, "\(again.stderr)")
        #expect(again.stderr.contains("satchel-hub: stopped (SIGTERM): 0 sessions finished, 0 cut"), "\(again.stderr)")
    }

    @Test("at its session cap the hub says it is busy and when to come back; the device waits that long, tries again and gets in", arguments: Backend.allCases)
    func fullHubRefusesWithRetryAfter(backend: Backend) throws {
        let setup = try setUp("busy", backend: backend)
        let running = try HubProcess(binary: hubBinary, arguments: setup.store + ["--sessions", "1", "--retry-after", "1", "--metrics", "127.0.0.1:0"])
        // A connection that never says HELLO holds the one session.
        let holder = try TCP.connect(running.address, deadline: .after(seconds: 10))

        // Held throughout: the device tries 1 + 3 times, a second apart, then reports the refusal.
        let refused = try ChildProcess.run(satchel, ["sync", "--hub", running.address], environment: setup.environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        #expect(refused.status == 75, "\(refused.status): \(refused.stderr)")
        #expect(refused.stderr.contains("the hub is busy"), "\(refused.stderr)")
        #expect(refused.stderr.components(separatedBy: "trying again in 1 s").count - 1 == 3, "\(refused.stderr)")
        #expect(running.stderr.components(separatedBy: "session refused: device SIM1, mode fast: the hub is full (1 sessions open), told to retry after 1 s").count - 1 == 4,
                "\(running.stderr)")
        // Read by another process while the hub serves: the hub's rows must survive it (the audit
        // count below, after the hub stopped; SQLiteHubStorage.ownerOnly says why they did not).
        #expect(try setup.storage().changeCount(device: "SIM1") == 0)

        // The slot frees while the device waits: its next try gets in.
        let sync = Sync(satchel, ["--hub", running.address, "--json"], environment: setup.environment)
        #expect(running.waitForCount("session refused: device SIM1", 5), "\(running.stderr)")
        holder.close()
        let synced = try sync.result()
        #expect(synced.succeeded, "\(synced.stderr)")
        #expect(json(synced.stdout)?["uploaded"] as? Int == 6, "\(synced.stdout)")
        #expect(synced.stderr.contains("the hub is busy"), "\(synced.stderr)")
        #expect(try setup.storage().changeCount(device: "SIM1") == 6)
        // The metrics a Prometheus server scrapes from the process agree with its log.
        let url = try #require(running.metricsURL)
        let hostPort = String(url.dropFirst("http://".count).prefix { $0 != "/" })
        let scrape = try TCP.connect(hostPort, deadline: .after(seconds: 10))
        try scrape.write(Array("GET /metrics HTTP/1.1\r\nHost: \(hostPort)\r\n\r\n".utf8), deadline: .after(seconds: 10))
        var answer: [UInt8] = []
        while let chunk = try? scrape.read(maxCount: 65_536, deadline: .after(seconds: 10)), !chunk.isEmpty { answer += chunk }
        scrape.close()
        let scraped = String(decoding: answer, as: UTF8.self)
        func value(_ sample: String) -> Int? {
            scraped.split(separator: "\n").first { $0.hasPrefix(sample + " ") }.flatMap { Int($0.split(separator: " ").last ?? "") }
        }
        #expect(scraped.hasPrefix("HTTP/1.1 200 OK"), "\(scraped)")
        #expect(value("satchel_hub_refusals_total") == running.stderr.components(separatedBy: "session refused: device SIM1").count - 1, "\(scraped)")
        #expect(value("satchel_hub_sessions_total{result=\"ok\"}") == 1, "\(scraped)")
        #expect(value("satchel_hub_sessions_total{result=\"failed\"}") == 1, "\(scraped)")  // the holder, which never said HELLO
        #expect(value("satchel_hub_batches_total") == 1 && value("satchel_hub_records_up_total") == 6, "\(scraped)")
        #expect(value("satchel_hub_sessions_open") == 0, "\(scraped)")
        kill(running.process.processIdentifier, SIGINT)
        #expect(running.waitForExit(seconds: 30) == 0, "\(running.stderr)")
        #expect(running.stderr.contains("satchel-hub: stopped (SIGINT)"), "\(running.stderr)")
        let audit = try setup.storage().auditLog(limit: 50)
        #expect(audit.filter { $0.result == "refused" && $0.error?.hasPrefix("hub busy: all 1 sync sessions are in use; retry after 1 s") == true }.count
                == running.stderr.components(separatedBy: "session refused: device SIM1").count - 1, "\(audit)\n\(running.stderr)")

    }
}

extension GracefulStopTests.HubProcess {
    /// Waits (at most `seconds`) until standard error holds `text` at least `count` times.
    func waitForCount(_ text: String, _ count: Int, seconds: Double = 30) -> Bool {
        let deadline = Deadline.after(seconds: seconds)
        while !deadline.hasPassed {
            if stderr.components(separatedBy: text).count - 1 >= count { return true }
            usleep(20_000)
        }
        return false
    }
}
