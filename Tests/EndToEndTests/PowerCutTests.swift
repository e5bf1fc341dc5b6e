import Foundation
import SatchelTesting
@testable import SimulatorKit
import Store
import Testing

/// Power-loss safety through the real executables: SIGKILLs at random instants with wiped
/// internal storage, a battery the simulator drains, a card pulled out mid-day.
@Suite("power cuts, battery and card through the real satchel", .serialized)
struct PowerCutTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")
    static let passphrase = "tests passphrase 42"

    /// A seeded device with a card, and a customer without arrears.
    struct Device {
        var home: String
        var card: FakeCard
        var customer: String
        var environment: [String: String] { ["SATCHEL_HOME": home, "SATCHEL_CARD": card.path] }
    }

    func device(_ directory: TemporaryDirectory) throws -> Device {
        let home = directory.path + "/device"
        let seeded = try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "30", "--products", "40", "--history", "1", "--seed", "4"])
        try #require(seeded.succeeded, "satchel-sim seed failed: \(seeded.stderr)")
        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let device = Device(home: home, card: try FakeCard(path: directory.path + "/card"), customer: customer)
        let initialised = try satchel(["card", "init"], device, stdin: Self.passphrase + "\n")
        try #require(initialised.succeeded, "satchel card init failed: \(initialised.stderr)")
        return device
    }

    func satchel(_ arguments: [String], _ device: Device, stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(satchel, arguments, environment: device.environment, stdin: stdin, timeoutSeconds: 60)
    }

    func cardState(_ device: Device) throws -> [String: Any] {
        let status = try satchel(["status", "--json"], device)
        try #require(status.succeeded, "\(status.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        return try #require(object["card"] as? [String: Any])
    }

    @Test("a child killed mid-run still hands over what it printed before the kill")
    func killedChildKeepsItsOutput() throws {
        // The kill is timed from the spawn, and the shell must have echoed by then: 0.3 s was
        // shorter than a spawn plus echo can take on a loaded 2-core CI machine (the output came
        // back empty). 3 s, with a sleep and a timeout far beyond it, so `seconds` still tells
        // the kill apart from the sleep ending or the run timing out.
        let killed = try ChildProcess.run("/bin/sh", ["-c", "echo '{\"acknowledged\":true}'; exec sleep 300"], killAfterSeconds: 3, timeoutSeconds: 120)
        #expect(killed.killed && killed.result.status == 137)
        #expect(killed.result.stdout == "{\"acknowledged\":true}\n")
        #expect(killed.seconds < 60, "the kill landed at \(killed.seconds) s, not 3 s")
        let finished = try ChildProcess.run("/bin/sh", ["-c", "echo done"], killAfterSeconds: 60, timeoutSeconds: 120)
        #expect(!finished.killed && finished.result.status == 0 && finished.result.stdout == "done\n")
    }

    @Test("powercut: SIGKILLs, wiped internal storage and restores lose nothing acknowledged")
    func powerCutsLoseNothing() throws {
        let result = try ChildProcess.run(sim, ["powercut", "--cycles", "45", "--seed", "9", "--wipe-internal", "--json"], timeoutSeconds: 240)
        #expect(result.succeeded, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["cycles"] as? Int == 45)
        #expect(report["lost"] as? Int == 0 && report["duplicates"] as? Int == 0 && report["integrity_failures"] as? Int == 0)
        #expect(report["unexpected_exits"] as? Int == 0)
        #expect((report["acknowledged"] as? Int ?? 0) > 0 && (report["kills"] as? Int ?? 0) > 0)
        let wipes = try #require(report["wipes"] as? Int)
        #expect(wipes > 1 && report["restores"] as? Int == wipes)
    }

    @Test("the powercut check counts a missing acknowledged document as lost and a reused id as a duplicate")
    func checkCatchesLossAndReuse() throws {
        let directory = TemporaryDirectory("powercut")
        let device = try device(directory)
        let visit = try satchel(["visit", "--customer", device.customer, "--outcome", "no_order", "--json"], device)
        let id = try #require(PowerCut.acknowledgement(in: visit.stdout)?.id)
        let acknowledged = [
            id: PowerCut.Acknowledged(kind: "visit", customer: device.customer, state: nil),
            "NOPE-000099": PowerCut.Acknowledged(kind: "order", customer: device.customer, state: "confirmed"),
        ]
        mkdir(directory.file("check-1"), 0o700)
        var clean = PowerCut.Report(), lost = Set<String>()
        _ = PowerCut.verify(home: device.home, copy: directory.file("check-1"), acknowledged: [id: acknowledged[id]!],
                            alreadyLost: &lost, report: &clean, cycle: 0)
        #expect(clean.lost == 0 && clean.duplicates == 0 && clean.integrityFailures == 0)
        mkdir(directory.file("check-2"), 0o700)
        var broken = PowerCut.Report()
        var reused = acknowledged
        reused[id] = PowerCut.Acknowledged(kind: "visit", customer: "SOMEONE-ELSE", state: nil)
        _ = PowerCut.verify(home: device.home, copy: directory.file("check-2"), acknowledged: reused, alreadyLost: &lost, report: &broken, cycle: 1)
        #expect(broken.lost == 1 && broken.duplicates == 1)
        #expect(broken.problems.count == 2)  // and the checker says what it found
    }

    @Test("critical battery: the card is brought up to date and writes stop; on the charger they resume")
    func criticalBatteryStopsWrites() throws {
        let directory = TemporaryDirectory("battery")
        let device = try device(directory)
        let battery = try FakeBattery(directory: directory.file("battery"), percent: 40, status: .discharging)
        let daemon = ["daemon", "--battery", battery.directory, "--ticks", "1", "--interval", "1"]
        #expect(try satchel(["visit", "--customer", device.customer, "--outcome", "not_met"], device).succeeded)

        try battery.set(percent: 3, status: .discharging)
        let critical = try satchel(daemon, device)
        #expect(critical.succeeded && critical.stdout.contains("battery critical"), "\(critical.stdout)\(critical.stderr)")
        let refused = try satchel(["visit", "--customer", device.customer, "--outcome", "no_order"], device)
        #expect(refused.status == 75)
        #expect(refused.stderr.contains("writing is stopped") && refused.stderr.contains("battery critical"), "\(refused.stderr)")
        let card = try cardState(device)
        #expect(card["behind"] as? Int == 0 && card["snapshot_covers_seq"] as? Int == card["journal_through_seq"] as? Int)

        try battery.set(percent: 4, status: .charging)
        let resumed = try satchel(daemon, device)
        #expect(resumed.succeeded && resumed.stdout.contains("writes resumed"), "\(resumed.stdout)\(resumed.stderr)")
        #expect(try satchel(["visit", "--customer", device.customer, "--outcome", "no_order"], device).succeeded)
    }

    @Test("card pulled out mid-day: capture goes on with a warning, status says absent and behind, the card catches up when back")
    func cardPulledOut() throws {
        let directory = TemporaryDirectory("card")
        let device = try device(directory)
        #expect(try satchel(["payment", "--customer", device.customer, "--amount", "12.50"], device).succeeded)

        try device.card.remove()
        for outcome in ["no_order", "merchandising"] {
            let saved = try satchel(["visit", "--customer", device.customer, "--outcome", outcome, "--json"], device)
            #expect(saved.succeeded && PowerCut.acknowledgement(in: saved.stdout) != nil, "\(saved.stderr)")
            #expect(saved.stderr.contains("WARNING") && saved.stderr.contains("absent"), "\(saved.stderr)")
        }
        let absent = try cardState(device)
        #expect(absent["state"] as? String == "absent")
        #expect((absent["behind"] as? Int ?? 0) > 0)

        try device.card.insert()
        let daemon = try satchel(["daemon", "--ticks", "1", "--interval", "1"], device)
        #expect(daemon.succeeded, "\(daemon.stderr)")
        let back = try cardState(device)
        #expect(back["state"] as? String == "ok" && back["behind"] as? Int == 0)
        #expect(back["journal_through_seq"] as? Int == 3)

        // Nothing on the card is readable without the key: no names, amounts, JSON or SQLite pages.
        let database = try Database(path: device.home + "/satchel.db")
        let names = try database.query("SELECT name FROM customers") { $0.text(0) } + (try database.query("SELECT name FROM products") { $0.text(0) })
        let hits = device.card.plaintextHits(names + [Self.passphrase, "12.50", "\"customer_id\"", "SQLite format 3", device.customer])
        #expect(hits.isEmpty, "\(hits)")
    }
}
