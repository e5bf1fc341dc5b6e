import ArgumentParser
import Field
import Foundation
import Modem
import ModemSimulator
import Seal
import SimulatorKit
import Sync
import Transport

/// `satchel-sim bench sync-gprs`: the standard day's fast sync through the real Modem module and
/// the simulated SIMCom modem on a GPRS link (53.6 kbit/s down, 26.8 up, 600 ms round trip), against
/// the link's physical limit: bytes up / uplink + bytes down / downlink + round trips x RTT.
struct SyncGPRSBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync-gprs", abstract: "Fast sync of a rep's day over the simulated modem and GPRS link, against the link's physical limit.")
    @Option(help: "Hardware directory (default: the source tree's hardware/).") var hardware: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var checking: BenchCheckOptions

    struct Result: BenchReport {
        var changes: Int
        var bytesUp: Int
        var bytesDown: Int
        var roundTrips: Int
        var wallSeconds: Double
        var physicalLimitSeconds: Double
        /// wall / physical limit; goal <= 1.25.
        var timeRatio: Double
        var notes: [String] = []

        static var goals: [BenchGoal] { SyncBenchCommand.Report.modemGoals.filter { $0.figure == "time_ratio" } }
        var figures: [String: Double] { ["time_ratio": timeRatio] }
    }

    func run() throws {
        let plan = try checking.plan(for: Result.goals)
        try checking.finish(try Self.measure(hardware: hardware), goals: Result.goals, plan: plan, command: "bench sync-gprs", json: json)
    }

    static func measure(hardware: String?) throws -> Result {
        let root = NSTemporaryDirectory() + "satchel-gprs-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (changes, _) = try SyncBench.standardDay(in: root)
        let hub = try DayHub(directory: root + "/hub", password: "hasło")
        defer { hub.stop() }
        let deviceKey = X25519.KeyPair.generate()
        try hub.register(device: "WAW07", rep: "R01", publicKey: Hex.encode(deviceKey.publicKey))

        let modem = try SimulatedModem(config: .simcomWithoutPIN(link: .gprs, guardSeconds: 0.2))
        modem.start()
        defer { modem.stop() }
        var agentConfig = ModemConfig()
        agentConfig.guardSeconds = 0.2
        let device = try Modem.open(port: modem.path, profile: try hardwareDirectory(hardware).modem("simcom-sim800"), config: agentConfig,
                                    lockDirectory: root)
        defer { device.close() }
        try device.start()
        _ = try device.waitForRegistration()
        let (host, port) = try SessionRequest.address(hub.address)
        let session = try device.openSession(SessionRequest(apn: "internet", host: host, port: port))
        let started = Date()
        let result = try FastSyncClient.run(session, deviceKey: deviceKey, hubKey: try Hex.decode(hub.publicKey), device: "WAW07",
                                            password: "hasło", batch: Batch(id: "WAW07-gprs", changes: changes), deadline: .after(seconds: 120))
        let wall = Date().timeIntervalSince(started)
        _ = session.hangUp()
        // What crossed the link: the session's own counters (handshake included).
        let up = session.bytesOut, down = session.bytesIn
        let link = LinkProfile.gprs
        let roundTrips = result.roundTrips + 1  // + the handshake
        let limit = Double(up) / link.upBytesPerSecond + Double(down) / link.bytesPerSecond + Double(roundTrips) * link.roundTripSeconds
        let report = Result(changes: changes.count, bytesUp: up, bytesDown: down, roundTrips: roundTrips, wallSeconds: (wall * 1000).rounded() / 1000,
                            physicalLimitSeconds: (limit * 1000).rounded() / 1000, timeRatio: (wall / limit * 1000).rounded() / 1000)
        return report
    }
}
