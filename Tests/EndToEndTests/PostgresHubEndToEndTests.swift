import Foundation
import Postgres
import SimulatorKit
import SatchelTesting
import Store
import Testing

/// Issue 15: a handheld initialises, captures and full-syncs against `satchel-hub serve
/// --postgres`, every step a real process; the office commands that set it up take --postgres too.
@Suite("satchel against satchel-hub serve --postgres", .serialized)
struct PostgresHubEndToEndTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")
    let sim = BuiltExecutable.path("satchel-sim")

    /// The server of the backend tests (Tests/HubTests/Backends.swift): SATCHEL_TEST_POSTGRES, else
    /// 127.0.0.1:5432 as role satchel (.ci/run starts it). None answering: the test fails saying so.
    static let adminURL = ProcessInfo.processInfo.environment["SATCHEL_TEST_POSTGRES"] ?? "postgresql://satchel:satchel@127.0.0.1:5432/postgres"

    /// A database of this test's own, dropped when it ends.
    final class Scratch {
        let name = "e2etest_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        let url: String
        init() throws {
            let admin = try PostgresConnection(url: PostgresHubEndToEndTests.adminURL, timeoutSeconds: 5)
            try admin.execute("CREATE DATABASE \(name) ENCODING 'UTF8' TEMPLATE template0")
            var components = try #require(URLComponents(string: PostgresHubEndToEndTests.adminURL))
            components.path = "/" + name
            url = try #require(components.string)
        }
        deinit {
            if let admin = try? PostgresConnection(url: PostgresHubEndToEndTests.adminURL) { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        }
    }

    func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
    }

    @Test("init loads the working set, an order captured goes up once with a full sync, the next downloads nothing, a changed price and the office's answer come down")
    func initCaptureFullSync() throws {
        let scratch = try Scratch()
        let pg = ["--postgres", scratch.url]
        let directory = TemporaryDirectory("pg-hub")
        let erp = directory.path + "/erp", home = directory.path + "/device", password = "hasło-sync"
        try #require(try ChildProcess.run(sim, ["seed", "--home", erp, "--customers", "20", "--products", "20", "--seed", "4"], timeoutSeconds: 60).succeeded)
        try #require(try hub(["rep", "add", "--rep", "R01", "--name", "Олег Смирнов"] + pg, stdin: password + "\n").succeeded)
        let imported = try hub(["master", "import", "--from", erp + "/satchel.db", "--assign-to", "R01"] + pg)
        try #require(imported.succeeded, "\(imported.stderr)")
        let environment = ["SATCHEL_HOME": home]
        try #require(try ChildProcess.run(satchel, ["init", "--device", "D7", "--rep", "R01"], environment: environment, timeoutSeconds: 30).succeeded)
        let keys = try ChildProcess.run(satchel, ["keys", "--json"], environment: environment, timeoutSeconds: 30)
        let key = try #require(try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])["public_key"] as? String ?? ""
        try #require(try hub(["device", "add", "--device", "D7", "--rep", "R01", "--key", key] + pg).succeeded)
        let hubKey = try hub(["key"] + pg).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let running = try SyncEndToEndTests.RunningHub(binary: hubBinary, database: "", backend: pg)
        defer { running.stop() }
        try #require(try ChildProcess.run(satchel, ["provision", "--hub", running.address, "--hub-key", hubKey], environment: environment, timeoutSeconds: 30).succeeded)

        let loaded = try ChildProcess.run(satchel, ["sync", "--mode", "init", "--json"], environment: environment, stdin: password + "\n", timeoutSeconds: 60)
        try #require(loaded.succeeded, "\(loaded.stderr)")
        let device = try PostgresConnection(url: scratch.url)
        let extract = try Store.Database(path: erp + "/satchel.db")
        let onDevice = try Store.Database(path: home + "/satchel.db")
        #expect(try onDevice.int64("SELECT count(*) FROM customers") == extract.int64("SELECT count(*) FROM customers"))
        #expect(try onDevice.int64("SELECT count(*) FROM products") == extract.int64("SELECT count(*) FROM products"))
        #expect(try onDevice.int64("SELECT count(*) FROM prices") == extract.int64("SELECT count(*) FROM prices"))

        let buyer = try onDevice.text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let part = try onDevice.text("SELECT part_number FROM products ORDER BY part_number LIMIT 1")
        let order = try ChildProcess.run(satchel, ["order", "new", "--customer", buyer, "--line", "\(part):3", "--note", "Zażółć — доставка", "--confirm"],
                                         environment: environment, timeoutSeconds: 30)
        try #require(order.succeeded, "\(order.stderr)")
        let full = try ChildProcess.run(satchel, ["sync", "--mode", "full", "--json"], environment: environment, stdin: password + "\n", timeoutSeconds: 60)
        try #require(full.succeeded, "\(full.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(full.stdout.utf8)) as? [String: Any])
        #expect(report["uploaded"] as? Int == 1, "\(full.stdout)")
        #expect(try device.int64("SELECT count(*) FROM device_changes WHERE device_id = 'D7' AND entity = 'order'") == 1)
        // The hub knows what the device holds: nothing changed at the office, nothing comes down.
        let again = try ChildProcess.run(satchel, ["sync", "--mode", "full", "--json"], environment: environment, stdin: password + "\n", timeoutSeconds: 60)
        try #require(again.succeeded, "\(again.stderr)")
        let second = try #require(try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any])
        #expect(second["uploaded"] as? Int == 0 && second["downloaded"] as? Int == 0, "\(again.stdout)")
        // A price the office changes comes down on the next full sync.
        try device.execute("UPDATE prices SET price_minor = price_minor + 5 WHERE part_number = $1 AND level = 'customer'", [.text(part)])
        let changed = try ChildProcess.run(satchel, ["sync", "--mode", "full", "--json"], environment: environment, stdin: password + "\n", timeoutSeconds: 60)
        try #require(changed.succeeded, "\(changed.stderr)")
        let third = try #require(try JSONSerialization.jsonObject(with: Data(changed.stdout.utf8)) as? [String: Any])
        #expect((third["downloaded"] as? Int ?? 0) >= 1, "\(changed.stdout)")
        // The office accepts the order (document set --postgres): the answer comes down and stands.
        let orderID = try onDevice.text("SELECT id FROM orders ORDER BY id LIMIT 1")
        let accepted = try hub(["document", "set", "--device", "D7", "--id", orderID, "--state", "accepted"] + pg)
        try #require(accepted.succeeded, "\(accepted.stderr)")
        let answered = try ChildProcess.run(satchel, ["sync", "--mode", "full"], environment: environment, stdin: password + "\n", timeoutSeconds: 60)
        try #require(answered.succeeded, "\(answered.stderr)")
        #expect(try Store.Database(path: home + "/satchel.db").text("SELECT state FROM orders WHERE id = ?", [.text(orderID)]) == "accepted")
        #expect(try hub(["sync-errors", "--device", "D7", "--json"] + pg).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
        let audit = try hub(["audit", "--limit", "10"] + pg)
        #expect(audit.succeeded && !audit.stdout.contains("failed"), "\(audit.stdout)")
    }

    @Test("the back office on --postgres: technicians, a lost device, devices and missed syncs, an office user's token and the admin API, each a real satchel-hub process")
    func backOfficeCommands() throws {
        let scratch = try Scratch()
        let pg = ["--postgres", scratch.url]
        try #require(try hub(["rep", "add", "--rep", "R02", "--name", "Zofia Łęcka"] + pg, stdin: "hasło-sync\n").succeeded)
        try #require(try hub(["device", "add", "--device", "D9", "--rep", "R02", "--key", String(repeating: "ab", count: 32)] + pg).succeeded)
        let technician = try hub(["technician", "add", "--id", "T7", "--name", "Пётр Иванов"] + pg)
        #expect(technician.succeeded && technician.stdout.contains("T7."), "\(technician.stderr)")
        let missed = try hub(["missed-syncs", "--json"] + pg)
        #expect(missed.succeeded && missed.stdout.contains("R02"), "\(missed.stderr)")
        try #require(try hub(["user", "add", "biuro", "--role", "office"] + pg).succeeded)
        let refused = try hub(["user", "add", "Anna", "--role", "supervisor", "--territory", "NOPE"] + pg)
        #expect(refused.status == 66 && refused.stderr.contains("territory NOPE"))
        let token = try hub(["user", "token", "biuro"] + pg).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.hasPrefix("sto_"))
        let admin = try OfficeWebTests.Listening(hubBinary, ["admin", "--listen", "127.0.0.1:0"] + pg, marker: "admin listening on")
        defer { admin.stop() }
        let web = OfficeWebTests()
        #expect(try web.http(admin.address, "GET", "/api/v1/devices").status == 401)
        let devices = try web.http(admin.address, "GET", "/api/v1/devices", token: token)
        #expect(devices.status == 200 && devices.body.contains("D9"), "\(devices.status) \(devices.body.prefix(300))")
        let lost = try hub(["device", "lost", "D9"] + pg)
        #expect(lost.succeeded, "\(lost.stderr)")
        let events = try hub(["device", "events", "--device", "D9", "--json"] + pg)
        #expect(events.succeeded && events.stdout.contains("reported lost"), "\(events.stderr)")
        let listed = try hub(["devices", "--json"] + pg)
        #expect(listed.succeeded && listed.stdout.contains("\"revoked\":true"), "\(listed.stdout.prefix(300))")
    }
}
