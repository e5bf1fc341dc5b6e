import Field
import Foundation
import Hub
import ModemSimulator
import SatchelTesting
import SimulatorKit
import Store
import Testing
import Transport

/// A real hub process and the real satchel, over loopback TCP.
@Suite("satchel sync against a running satchel-hub", .serialized)
struct SyncEndToEndTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")
    let sim = BuiltExecutable.path("satchel-sim")

    final class RunningHub {
        let process = Process()
        let address: String
        /// `backend`: the storage options (`--db FILE` when nil, `--postgres URL` say).
        init(binary: String, database: String, backend: [String]? = nil) throws {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve"] + (backend ?? ["--db", database]) + ["--listen", "127.0.0.1:0"]
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            var line = Data()
            let handle = output.fileHandleForReading
            while !line.contains(UInt8(ascii: "\n")) {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            let text = String(decoding: line, as: UTF8.self)
            guard let found = text.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines), found.contains(":") else {
                throw CocoaError(.fileReadCorruptFile)
            }
            address = found
        }
        func stop() {
            // SIGKILL: a test runner's threads may block SIGTERM, and a spawned child inherits that mask.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    }

    func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
    }

    @Test("captures go up exactly once; a dead hub changes nothing on the device; a wrong password is refused and audited")
    func fastSync() throws {
        let directory = TemporaryDirectory("sync")
        let home = directory.path + "/device", database = directory.path + "/hub.db"
        try #require(try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "20", "--products", "30", "--seed", "8"], timeoutSeconds: 60).succeeded)
        let environment = ["SATCHEL_HOME": home]
        let keys = try ChildProcess.run(satchel, ["keys", "--json"], environment: environment, timeoutSeconds: 30)
        let deviceKey = try #require(try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])["public_key"] as? String
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Paweł Wróblewski"], stdin: "hasło-sync\n").succeeded)
        try #require(try hub(["device", "add", "--db", database, "--device", "SIM1", "--rep", "R01", "--key", deviceKey ?? ""]).succeeded)
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let running = try RunningHub(binary: hubBinary, database: database)
        try #require(try ChildProcess.run(satchel, ["provision", "--hub", running.address, "--hub-key", hubKey], environment: environment, timeoutSeconds: 30).succeeded)
        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers ORDER BY id LIMIT 1")
        for index in 0..<5 {
            let visit = try ChildProcess.run(satchel, ["visit", "--customer", customer, "--outcome", "no_order", "--note", "Wizyta \(index) — посещение"],
                                             environment: environment, timeoutSeconds: 30)
            try #require(visit.succeeded, "\(visit.stderr)")
        }
        let buyer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let order = try ChildProcess.run(satchel, ["order", "new", "--customer", buyer, "--line", "PN-10000:3", "--line", "PN-10001:12",
                                                   "--line", "PN-10002:1", "--note", "Zażółć gęślą jaźń — \"доставка\" утром\nбраво", "--confirm"],
                                         environment: environment, timeoutSeconds: 30)
        try #require(order.succeeded, "\(order.stderr)")
        let wrong = try ChildProcess.run(satchel, ["sync", "--mode", "fast"], environment: environment, stdin: "zgaduję\n", timeoutSeconds: 30)
        #expect(wrong.status == 77 && wrong.stderr.contains("wrong sync password"))
        let synced = try ChildProcess.run(satchel, ["sync", "--mode", "fast", "--json"], environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 30)
        try #require(synced.succeeded, "\(synced.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(synced.stdout.utf8)) as? [String: Any])
        #expect(report["uploaded"] as? Int == 6 && report["through_seq"] as? Int == 6)
        let again = try ChildProcess.run(satchel, ["sync", "--json"], environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 30)
        #expect((try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])?["uploaded"] as? Int == 0)
        // The hub writes a session's audit entry after the device has hung up, so the device can
        // exit first: wait (with a deadline) for the three sessions' entries before the SIGKILL,
        // which would otherwise race the last one (seen once on a loaded machine).
        let auditWait = Deadline.after(seconds: 20)
        while try SQLiteHubStorage(path: database).auditLog(limit: 10).count < 3, !auditWait.hasPassed { usleep(20_000) }
        running.stop()

        // The hub is gone: the sync fails within its deadline and the device still owes the new visit.
        try #require(try ChildProcess.run(satchel, ["visit", "--customer", customer, "--outcome", "order"], environment: environment, timeoutSeconds: 30).succeeded)
        let offline = try ChildProcess.run(satchel, ["sync"], environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        #expect(offline.status == 69 && offline.stderr.contains("no connection to the hub"))
        #expect(offline.stderr.contains("Connection refused (errno 111)"), "\(offline.stderr)")
        // A hub that accepts and then resets the connection (a dying process, a NAT dropping the
        // flow): the rep's message names the reset and its errno, not just "stream closed".
        let resetting = try TCPListener("127.0.0.1:0")
        let resetter = Thread {
            guard let client = try? resetting.accept(deadline: .after(seconds: 30)) else { return }
            _ = try? client.read(maxCount: 4096, deadline: .after(seconds: 10))  // the device's first handshake frame
            var abort = linger(l_onoff: 1, l_linger: 0)  // close with RST instead of FIN
            setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &abort, socklen_t(MemoryLayout<linger>.size))
            client.close()
        }
        resetter.start()
        let reset = try ChildProcess.run(satchel, ["sync", "--hub", "127.0.0.1:\(resetting.port)"], environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        #expect(reset.status == 69 && reset.stderr.contains("Connection reset by peer (errno 104)"), "\(reset.stderr)")
        let status = try ChildProcess.run(satchel, ["status", "--json"], environment: environment, timeoutSeconds: 30)
        #expect((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["unsynced_changes"] as? Int == 1)

        let storage = try SQLiteHubStorage(path: database)
        #expect(try storage.changeCount(device: "SIM1") == 6)
        // The hub stores what the device journaled, byte for byte: the BATCH body carries the
        // records as columns and the payloads without their keys, and the hub rebuilds them.
        // The device journals the codec's bytes, the hub keeps each document as its JSON: the
        // device's side is compared through the document it decodes to.
        func rows(_ path: String, _ sql: String, devicePayload: Bool = false) throws -> [[[UInt8]]] {
            try Database(path: path).query(sql) { row in
                let payload = devicePayload ? try DocumentCodec.decode(row.blob(6), entity: row.text(3)).json() : row.text(6)
                return [String(row.int64(0)), row.text(1), String(row.int64(2)), row.text(3), row.text(4), row.text(5), payload].map { Array($0.utf8) }
            }
        }
        let journaled = try rows(home + "/satchel.db", "SELECT seq, change_id, at, entity, entity_id, action, payload FROM changes WHERE seq <= 6 ORDER BY seq", devicePayload: true)
        #expect(journaled.count == 6)
        #expect(try rows(database, "SELECT seq, change_id, at, entity, entity_id, action, payload FROM device_changes WHERE device_id = 'SIM1' ORDER BY seq") == journaled)
        let audit = try storage.auditLog(limit: 10)
        #expect(audit.map(\.result) == ["ok", "ok", "refused"])
        let listed = try hub(["audit", "--db", database, "--json"])
        #expect(listed.succeeded && listed.stdout.contains("\"records_up\":6"))
    }

    @Test("a fast sync through the simulated SIMCom modem's transparent session over a GPRS-shaped link")
    func overTheModem() throws {
        let directory = TemporaryDirectory("sync-modem")
        let home = directory.path + "/device", database = directory.path + "/hub.db"
        let lock = directory.path + "/lock"
        try FileManager.default.createDirectory(atPath: lock, withIntermediateDirectories: true)
        try #require(try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "10", "--products", "10", "--seed", "9"], timeoutSeconds: 60).succeeded)
        let environment = ["SATCHEL_HOME": home]
        let keys = try ChildProcess.run(satchel, ["keys", "--json"], environment: environment, timeoutSeconds: 30)
        let deviceKey = try #require(try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])["public_key"] as? String
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Светлана Кузнецова"], stdin: "парола-sync\n").succeeded)
        try #require(try hub(["device", "add", "--db", database, "--device", "SIM1", "--rep", "R01", "--key", deviceKey ?? ""]).succeeded)
        let running = try RunningHub(binary: hubBinary, database: database)
        defer { running.stop() }
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(try ChildProcess.run(satchel, ["provision", "--hub", running.address, "--hub-key", hubKey], environment: environment, timeoutSeconds: 30).succeeded)
        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers ORDER BY id LIMIT 1")
        for _ in 0..<3 {
            try #require(try ChildProcess.run(satchel, ["visit", "--customer", customer, "--outcome", "order"], environment: environment, timeoutSeconds: 30).succeeded)
        }

        var config = SimulatedModemConfig()
        config.dialect = .simcom
        config.pin = nil
        config.link = .gprs
        config.timeScale = 0.02
        config.guardSeconds = 0.04
        let modem = try SimulatedModem(config: config)
        modem.start()
        defer { modem.stop() }
        let hardware = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("hardware").path
        let synced = try ChildProcess.run(satchel, ["sync", "--over-modem", "--apn", "internet.private", "--port", modem.path, "--lock-dir", lock,
                                                    "--hardware", hardware, "--timeout", "2", "--timeout-scale", "0.05", "--guard-ms", "40", "--json"],
                                          environment: environment, stdin: "парола-sync\n", timeoutSeconds: 120)
        try #require(synced.succeeded, "\(synced.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(synced.stdout.utf8)) as? [String: Any])
        #expect(report["uploaded"] as? Int == 3)
        #expect(try SQLiteHubStorage(path: database).changeCount(device: "SIM1") == 3)
        // The phases of a fast sync over the modem (no card here), in the order reached.
        let phases = try #require(report["phases"] as? [[String: Any]], "\(synced.stdout)")
        #expect(phases.map { $0["phase"] as? String ?? "?" } == ["start", "unlocked", "modem_registered", "context_up", "tcp_connected", "handshake_done",
                                                               "upload_sent", "recorded", "hung_up", "exit"])
        let times = phases.map { ($0["at"] as? NSNumber)?.doubleValue ?? -1 }
        #expect(times == times.sorted() && (times.first ?? -1) > 0, "\(times)")
        // The sync read the signal while the modem was in command mode (+CSQ: 15: -83 dBm);
        // status shows that reading without asking the modem.
        let status = try ChildProcess.run(satchel, ["status", "--json"], environment: environment, timeoutSeconds: 30)
        let shown = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any], "\(status.stderr)")
        #expect((shown["signal"] as? [String: Any])?["dbm"] as? Int == -83, "\(shown["signal"] ?? "missing")")
    }
}
