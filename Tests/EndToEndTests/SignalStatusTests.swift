import Foundation
import ModemSimulator
import SatchelTesting
import SimulatorKit
import Testing

/// Issue 12's status item "signal": the agent keeps the modem's last reading when it talks to
/// the modem anyway, and `satchel status` and the console's status page show it without asking
/// the modem (status is a read-only open that must stay fast and change nothing).
@Suite("Signal on the status screens: recorded by modem commands, shown by status and the console", .serialized)
struct SignalStatusTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")
    let hardware = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("hardware").path

    func status(_ home: String) throws -> (plain: String, json: [String: Any]) {
        let environment = ["SATCHEL_HOME": home, "COLUMNS": "32"]
        let plain = try ChildProcess.run(satchel, ["status"], environment: environment, timeoutSeconds: 30)
        try #require(plain.succeeded, "\(plain.stderr)")
        let json = try ChildProcess.run(satchel, ["status", "--json"], environment: environment, timeoutSeconds: 30)
        try #require(json.succeeded, "\(json.stderr)")
        return (plain.stdout, try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any], "\(json.stdout)"))
    }

    func signalLine(_ plain: String) -> String? { plain.split(separator: "\n").first { $0.hasPrefix("Signal:") }.map(String.init) }

    @Test("no reading: status says 'not read yet' (JSON null); after `satchel modem probe` on the simulated modem it shows that dBm with its age in 32 columns, the console's status page too")
    func probeThenStatus() throws {
        let directory = TemporaryDirectory("signal-status")
        let home = directory.path + "/device", lock = directory.path + "/lock"
        try FileManager.default.createDirectory(atPath: lock, withIntermediateDirectories: true)
        try #require(try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "10", "--products", "10", "--seed", "3"], timeoutSeconds: 60).succeeded)

        let before = try status(home)
        #expect(signalLine(before.plain) == "Signal: not read yet", "\(before.plain)")
        #expect(before.json.keys.contains("signal") && before.json["signal"] is NSNull, "\(before.json["signal"] ?? "missing")")
        #expect(!FileManager.default.fileExists(atPath: home + "/signal"), "status wrote the signal file")

        var config = SimulatedModemConfig()
        config.dialect = .simcom
        config.pin = nil
        config.timeScale = 0.02
        config.guardSeconds = 0.04
        config.seed = 4 // +CSQ: 18 once registered: -77 dBm
        let modem = try SimulatedModem(config: config)
        modem.start()
        defer { modem.stop() }
        // The modem says 99 (not known) until it registers; a probe then records nothing.
        var probed: Int?
        let deadline = Date().addingTimeInterval(60)
        while probed == nil && Date() < deadline {
            let result = try ChildProcess.run(satchel, ["modem", "probe", "--port", modem.path, "--lock-dir", lock, "--hardware", hardware,
                                                        "--timeout", "2", "--timeout-scale", "0.05", "--guard-ms", "40", "--json"],
                                              environment: ["SATCHEL_HOME": home], timeoutSeconds: 60)
            try #require(result.succeeded, "\(result.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            probed = report["rssi_dbm"] as? Int
            if probed == nil {
                #expect(signalLine(try status(home).plain) == "Signal: not read yet", "an unknown signal was recorded")
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        let dBm = try #require(probed, "the simulated modem never reported a signal")
        #expect(dBm == -77)

        let commands = modem.stats.commands
        let after = try status(home)
        #expect(modem.stats.commands == commands, "status talked to the modem")
        let line = try #require(signalLine(after.plain), "\(after.plain)")
        #expect(line == "Signal: -77 dBm, 0 min ago", "\(after.plain)")
        for printed in after.plain.split(separator: "\n") { #expect(printed.count <= 32, "wider than 32 columns: \(printed)") }
        let signal = try #require(after.json["signal"] as? [String: Any], "\(after.json)")
        #expect(signal["dbm"] as? Int == -77)
        let at = try #require(signal["at"] as? Int64 ?? (signal["at"] as? Int).map(Int64.init))
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(at <= now && at > now - 120_000, "recorded at \(at), now \(now)")

        // The console's status page shows the same reading (from the route: 0 menu, 4 status).
        let console = try ConsoleSession(directory, command: "\(satchel) console --home \(home)")
        try console.waitFor("Route")
        try console.keys("0")
        try console.waitFor("9 Quit")
        try console.keys("4")
        let page = try console.waitFor("Signal:")
        #expect(page.contains("Signal: -77 dBm, 0 min ago"), "\(page)")
        #expect(modem.stats.commands == commands, "the console's status page talked to the modem")
    }

    @Test("a damaged signal file reads as no reading, never as a wrong one, and status still succeeds")
    func damagedFile() throws {
        let directory = TemporaryDirectory("signal-damaged")
        let home = directory.path + "/device"
        try #require(try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "5", "--products", "5", "--seed", "3"], timeoutSeconds: 60).succeeded)
        for damaged in ["-83 17", "-83 1700000000000", "-200 1700000000000\n", "\u{1B}[2J -83 1\n", String(repeating: "9", count: 5000)] {
            try Data(damaged.utf8).write(to: URL(fileURLWithPath: home + "/signal"))
            let shown = try status(home)
            #expect(signalLine(shown.plain) == "Signal: not read yet", "\(damaged.debugDescription): \(shown.plain)")
            #expect(shown.json["signal"] is NSNull)
            #expect(try Data(contentsOf: URL(fileURLWithPath: home + "/signal")) == Data(damaged.utf8), "status changed the file")
        }
    }
}
