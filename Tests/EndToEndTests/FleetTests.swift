import Foundation
import Postgres
import SimulatorKit
import SatchelTesting
import Store
import Testing

/// Issue 15: `satchel-sim fleet` against real `satchel-hub serve` processes. The run's own
/// lost/duplicates come from the hub's storage; these tests check again from outside, reading
/// the hub's database themselves against the ids the devices were acknowledged for.
@Suite("satchel-sim fleet", .serialized)
struct FleetTests {
    let sim = BuiltExecutable.path("satchel-sim")
    static let adminURL = ProcessInfo.processInfo.environment["SATCHEL_TEST_POSTGRES"] ?? "postgresql://satchel:satchel@127.0.0.1:5432/postgres"

    func json(_ text: String) throws -> [String: Any] {
        let line = try #require(text.split(separator: "\n").last.map(String.init))
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    /// device<TAB>document lines of the acknowledged file.
    func acknowledged(_ path: String) throws -> [(device: String, document: String)] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let fields = line.split(separator: "\t").map(String.init)
            try #require(fields.count == 2, "line \(line)")
            return (fields[0], fields[1])
        }
    }

    /// Every acknowledged document is held once, under its device; nothing else of the fleet is held.
    func check(acknowledged: [(device: String, document: String)], held: [(document: String, device: String, count: Int)], documentsAcknowledged: Int) {
        #expect(acknowledged.count == documentsAcknowledged)
        #expect(acknowledged.count >= 20 * 7, "every device sends 3 orders at init and at least 4 in the day")
        let byDocument = Dictionary(held.map { ($0.document, $0) }, uniquingKeysWith: { first, _ in first })
        for entry in acknowledged {
            #expect(byDocument[entry.document]?.device == entry.device, "acknowledged \(entry.document) of \(entry.device) is not on the hub")
        }
        #expect(held.filter { $0.count != 1 }.isEmpty, "held more than once: \(held.filter { $0.count != 1 }.prefix(5))")
        #expect(held.count == Set(acknowledged.map(\.document)).count)
    }

    static let heldSQL = "SELECT entity_id, device_id, count(*) FROM device_changes WHERE device_id LIKE 'FL%' GROUP BY entity_id, device_id ORDER BY entity_id"

    @Test("20 devices against one SQLite hub: every sync done, every acknowledged order on the hub once")
    func sqliteFleet() throws {
        let directory = TemporaryDirectory("fleet")
        let acknowledgedPath = directory.file("acknowledged.tsv")
        let run = try ChildProcess.run(sim, ["fleet", "--devices", "20", "--window-s", "3", "--password-cost", "handheld", "--customers", "100",
                                             "--products", "60", "--customers-per-device", "10", "--checked-devices", "2",
                                             "--acknowledged-out", acknowledgedPath, "--work-directory", directory.file("work"), "--json"], timeoutSeconds: 600)
        try #require(run.succeeded, "\(run.stdout)\n\(run.stderr)")
        let report = try json(run.stdout)
        #expect(report["devices"] as? Int == 20)
        #expect(report["syncs_ok"] as? Int == 20)
        #expect(report["checked_devices"] as? Int == 2, "two devices' downloads also went through the agent's DeviceDownload and matched")
        #expect(report["lost"] as? Int == 0)
        #expect(report["duplicates"] as? Int == 0)
        #expect((report["rows_down_per_sync"] as? Double ?? 0) > 0, "the day's prices, stock and office answers came down")
        #expect((report["held_rows_down_per_sync"] as? Double ?? 0) > 0, "changed rows came as differences to the rows held (protocol 5), checked on 2 devices")
        #expect(report["checked_devices"] as? Int == 2)
        let database = try Database(path: directory.file("work/hub.db"))
        let held = try database.query(Self.heldSQL) { ($0.text(0), $0.text(1), Int($0.int64(2))) }
        check(acknowledged: try acknowledged(acknowledgedPath), held: held, documentsAcknowledged: try #require(report["documents_acknowledged"] as? Int))
    }

    @Test("20 devices on EDGE against two hubs on one PostgreSQL, one killed mid-run: the cut devices retry on the other, nothing lost, nothing twice")
    func twoHubsOneKilled() throws {
        let directory = TemporaryDirectory("fleet-pg")
        let acknowledgedPath = directory.file("acknowledged.tsv")
        let run = try ChildProcess.run(sim, ["fleet", "--devices", "20", "--hub", "127.0.0.1:0,127.0.0.1:0", "--postgres", Self.adminURL,
                                             "--link", "edge", "--window-s", "4", "--kill-hub-after", "2.5", "--password-cost", "handheld",
                                             "--customers", "100", "--products", "60", "--customers-per-device", "10", "--checked-devices", "2",
                                             "--acknowledged-out", acknowledgedPath, "--work-directory", directory.file("work"), "--json"],
                                       timeoutSeconds: 600)
        let report = try json(run.stdout)
        let name = try #require(report["database"] as? String)
        var components = try #require(URLComponents(string: Self.adminURL))
        components.path = "/" + name
        defer { if let admin = try? PostgresConnection(url: Self.adminURL) { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") } }
        try #require(run.succeeded, "\(run.stdout)\n\(run.stderr)")
        #expect(report["hub_killed"] as? Bool == true)
        #expect((report["retries"] as? Int ?? 0) >= 1, "the kill cut at least one session under way")
        #expect(report["syncs_ok"] as? Int == 20)
        #expect(report["checked_devices"] as? Int == 2, "two devices' downloads also went through the agent's DeviceDownload and matched")
        #expect(report["lost"] as? Int == 0)
        #expect(report["duplicates"] as? Int == 0)
        let connection = try PostgresConnection(url: try #require(components.string))
        let held = try connection.query(Self.heldSQL) { ($0.text(0), $0.text(1), $0.int(2)) }
        check(acknowledged: try acknowledged(acknowledgedPath), held: held, documentsAcknowledged: try #require(report["documents_acknowledged"] as? Int))
    }
}
