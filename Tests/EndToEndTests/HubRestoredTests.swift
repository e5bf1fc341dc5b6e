import Foundation
import SatchelTesting
import SimulatorKit
import Testing

/// The office restores the hub from last night's copy (a disk died): the hub no longer holds an
/// order it had acknowledged. Tried by hand as a technician would, the first `satchel sync` after
/// the restore said "1 change sent" and exited 0 while the office still lacked the earlier order
/// until the rep's next sync (the hub's mark arrives after the session's one flight has gone up).
/// Now the same `satchel sync` sends what the hub lost in a second session and says so.
@Suite("a hub restored from an older backup gets the orders it lost in the same sync", .serialized)
struct HubRestoredTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")

    @Test("orders up, the hub rolled back to a copy from before them, one fast sync: the hub holds every order again, each once")
    func hubRestoredFromBackup() throws {
        let directory = TemporaryDirectory("hub-restored")
        let home = directory.path + "/device", database = directory.path + "/hub.db", backup = directory.path + "/hub-last-night.db"
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs").path
        func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            let run = try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
            try #require(run.succeeded, "satchel-hub \(arguments): \(run.stderr)")
            return run
        }
        let environment = ["SATCHEL_HOME": home]
        func device(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            let run = try ChildProcess.run(satchel, arguments, environment: environment, stdin: stdin, timeoutSeconds: 60)
            try #require(run.succeeded, "satchel \(arguments): \(run.stderr)")
            return run
        }
        func serve() throws -> OfficeWebTests.Listening {
            try OfficeWebTests.Listening(hubBinary, ["serve", "--db", database, "--listen", "127.0.0.1:0"], marker: "satchel-hub listening on")
        }
        func ordersOnHub() throws -> [String] {
            try hub(["documents", "--db", database]).stdout.split(separator: "\n").compactMap { line in
                line.split(separator: " ").first { $0.hasPrefix("PL01-") }.map(String.init)
            }.sorted()
        }

        _ = try hub(["erp", "import", "--db", database, docs + "/erp-sample.xml"])
        _ = try hub(["rep", "password", "--db", database, "--rep", "rep_kowalska"], stdin: "hasło-sync\n")
        _ = try device(["init", "--device", "PL01", "--rep", "rep_kowalska"])
        let keys = try device(["keys", "--json"])
        let deviceKey = try #require((try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])?["public_key"] as? String)
        _ = try hub(["device", "add", "--db", database, "--device", "PL01", "--rep", "rep_kowalska", "--key", deviceKey])
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var server = try serve()
        _ = try device(["provision", "--hub", server.address, "--hub-key", hubKey])
        _ = try device(["sync", "--mode", "full"], stdin: "hasło-sync\n")

        // Last night's copy of the hub, taken with the server stopped (a clean file copy).
        server.stop()
        try FileManager.default.copyItem(atPath: database, toPath: backup)
        server = try serve()
        let first = try device(["order", "new", "--customer", "CPL000001", "--line", "PN-PL-0001:2", "--confirm", "--json"]).stdout
        #expect(first.contains("PL01-"), "\(first)")
        let sent = try device(["sync", "--mode", "fast", "--hub", server.address], stdin: "hasło-sync\n").stdout
        #expect(sent.contains("1 change sent"), "\(sent)")
        let acknowledged = try ordersOnHub()
        #expect(acknowledged.count == 1, "\(acknowledged)")

        // The hub's disk dies; the office restores last night's copy: the acknowledged order is gone.
        server.stop()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
        try FileManager.default.copyItem(atPath: backup, toPath: database)
        #expect(try ordersOnHub().isEmpty)
        server = try serve()
        defer { server.stop() }

        _ = try device(["order", "new", "--customer", "CPL000001", "--line", "PN-PL-0001:3", "--confirm"])
        let run = try ChildProcess.run(satchel, ["sync", "--mode", "fast", "--hub", server.address, "--json"], environment: environment,
                                       stdin: "hasło-sync\n", timeoutSeconds: 60)
        try #require(run.succeeded, "\(run.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], "\(run.stdout)")
        #expect(report["hub_lacked"] as? Int == 1, "\(run.stdout)")
        #expect(report["resent_to_hub"] as? Int == 1, "\(run.stdout)")
        let notice = run.stderr.split(whereSeparator: { (character: Character) in character.isWhitespace }).joined(separator: " ")
        #expect(notice.contains("fewer than it had acknowledged"), "\(run.stderr)")
        // Both orders on the hub, each once, after this one sync.
        let orders = try ordersOnHub()
        #expect(orders.count == 2 && Set(orders).count == 2 && orders.contains(acknowledged[0]), "\(orders)")
        let status = try device(["status", "--json"]).stdout
        let unsynced = (try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])?["unsynced_changes"] as? Int
        #expect(unsynced == 0, "\(status)")
    }
}
