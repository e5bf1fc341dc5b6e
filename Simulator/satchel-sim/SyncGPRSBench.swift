import ArgumentParser
import Field
import Foundation
import Hub
import Modem
import ModemSimulator
import SimulatorKit

/// `satchel-sim bench sync-gprs`: the evening full sync of a realistic rep's day (RepDay, the
/// plan `satchel-sim day` runs) by the real `satchel` process through the Modem module and the
/// simulated SIMCom modem on a GPRS link (53.6 kbit/s down, 26.8 up, 600 ms round trip), timed end
/// to end (process start to exit: modem set-up, handshake, upload, the hub's planning, download,
/// verification), against the physical limit: the link's floor (bytes up / uplink + bytes down /
/// downlink + the round trips the protocol needs: TCP connect, handshake, the one flight of a
/// full sync, x RTT) plus the modem's (one context activation, one TCP connect, one close at the
/// simulator's configured delays: `SyncInitBench.modemFloorSeconds`).
/// The modem is registered already (it has been on all day); the data context's activation and
/// the TCP connect keep the simulator's delays.
/// The working set arrives first by an init over loopback, not timed.
struct SyncGPRSBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync-gprs", abstract: "Evening full sync of a realistic rep's day by the real satchel over the simulated modem and GPRS link, end to end, against the link's physical limit.")
    @Option(help: "Hardware directory (default: the source tree's hardware/).") var hardware: String?
    @Option(help: "Path of the satchel executable (default: next to satchel-sim, or $SATCHEL_BIN).") var satchel: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var checking: BenchCheckOptions

    struct Result: BenchReport {
        var seed: UInt64
        var changesUp: Int?
        var rowsDown: Int?
        var bytesUp: Int
        var bytesDown: Int
        var roundTrips: Int
        /// Process start to exit.
        var wallSeconds: Double
        /// The session on the open link, as `satchel sync --json` reports it.
        var sessionSeconds: Double?
        /// wall - session: process start, the modem's set-up and hang-up, the device's own work after the session.
        var outsideSessionSeconds: Double?
        /// The link's part of the limit: bytes at the link's rates plus the round trips needed.
        var linkFloorS: Double
        /// The modem session's unavoidable network steps at the simulator's configured delays
        /// (`SyncInitBench.modemFloorSeconds`).
        var modemFloorS: Double
        /// link_floor_s + modem_floor_s.
        var physicalLimitSeconds: Double
        /// wall / physical limit; goal <= 1.25.
        var timeRatio: Double
        /// wall / link_floor_s alone: the figure's definition before 2026-12-03, reported, not gated.
        var timeRatioLinkOnly: Double
        /// `satchel sync --json`'s phases, as seconds since the bench started the process.
        var phases: [SyncInitBench.PhaseTime]?
        var notes: [String] = []

        static var goals: [BenchGoal] { SyncBenchCommand.Report.modemGoals.filter { $0.figure == "time_ratio" } }
        var figures: [String: Double] { ["time_ratio": timeRatio] }
    }

    func run() throws {
        let plan = try checking.plan(for: Result.goals)
        let path = ChildProcess.sibling("satchel", override: satchel ?? ProcessInfo.processInfo.environment["SATCHEL_BIN"])
        try checking.finish(try Self.measure(satchel: path, hardware: hardware, short: checking.short), goals: Result.goals, plan: plan,
                            command: "bench sync-gprs", json: json)
    }

    static func measure(satchel executable: String, hardware: String?, short: Bool) throws -> Result {
        let root = NSTemporaryDirectory() + "satchel-gprs-\(getpid())"
        try FileManager.default.createDirectory(atPath: root + "/lock", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hardware = try hardwareDirectory(hardware)
        let hub = try DayHub(directory: root + "/hub", password: SyncBench.password)
        defer { hub.stop() }
        let workingSet = short ? SyncBench.shortWorkingSet : SyncBench.workingSet
        let (seeded, overdue) = try SyncBench.loadMasterData(into: hub.storage, root: root, plan: workingSet)
        let home = root + "/device"
        let environment = ["SATCHEL_HOME": home]
        try SyncInitBench.provisionedDevice(satchel: executable, home: home, hub: hub)
        let initial = try ChildProcess.run(executable, ["sync", "--mode", "init", "--json"], environment: environment, stdin: SyncBench.password + "\n", timeoutSeconds: 300)
        guard initial.succeeded else { throw DayRunner.Failure.command("satchel sync --mode init", initial) }

        // The day, captured on the handheld's database minutes apart; the office's answers and the ERP's evening change.
        let day = RepDay.plan(route: seeded.todaysRoute, overdue: overdue, catalogue: (0..<workingSet.products).map { "PN-\(10_000 + $0)" },
                              displayTypes: seeded.displayTypes, seed: workingSet.seed)
        // The handheld's database is closed (released) before satchel runs again.
        let (orders, changes) = try { () throws -> ([(id: String, held: Bool)], Int) in
            let clock = ManualClock(SystemClock().nowMilliseconds() - 10 * 3_600_000)
            let handheld = try DeviceDatabase.open(home: home, clock: clock)
            return (try SyncBench.capture(day, on: handheld, clock: clock), try handheld.changes(after: 0).count)
        }()
        _ = try OfficeDay.answer(hub.storage, device: SyncBench.device, orders: orders, seed: workingSet.seed, now: SystemClock().nowMilliseconds())
        _ = try OfficeDay.eveningChange(hubPath: hub.storage.path, prices: 300, stockRows: 1_000, seed: workingSet.seed)

        let modemConfig = SyncInitBench.registeredModem(link: .gprs)
        let modem = try SimulatedModem(config: modemConfig)
        modem.start()
        defer { modem.stop() }
        let started = ChildProcess.monotonicSeconds()
        let synced = try ChildProcess.run(executable, ["sync", "--mode", "full", "--over-modem", "--apn", "internet", "--port", modem.path,
                                                       "--lock-dir", root + "/lock", "--hardware", hardware.path, "--guard-ms", "200", "--json"],
                                          environment: environment, stdin: SyncBench.password + "\n", timeoutSeconds: 300)
        let wall = ChildProcess.monotonicSeconds() - started
        guard synced.succeeded else { throw DayRunner.Failure.command("satchel sync --mode full over the simulated modem", synced) }
        let report = try JSONSerialization.jsonObject(with: Data(synced.stdout.utf8)) as? [String: Any] ?? [:]
        var notes: [String] = []
        if let mismatched = report["mismatched"] as? [String], !mismatched.isEmpty { notes.append("tables \(mismatched) do not match the hub after the sync") }
        if report["uploaded"] as? Int != changes { notes.append("satchel uploaded \(report["uploaded"] ?? "nothing") of the day's \(changes) changes") }
        // What crossed the link, as the simulated modem counted it (handshake included).
        let phaseTimes = SyncInitBench.phases(report, processStarted: started, notes: &notes)
        let stats = modem.stats
        let linkFloor = SyncInitBench.linkFloorSeconds(stats, .gprs)
        let modemFloor = SyncInitBench.modemFloorSeconds(modemConfig)
        let limit = linkFloor + modemFloor
        let rounded = SyncInitBench.rounded
        return Result(seed: workingSet.seed, changesUp: report["uploaded"] as? Int, rowsDown: report["downloaded"] as? Int,
                      bytesUp: stats.bytesUp, bytesDown: stats.bytesDown, roundTrips: SyncInitBench.roundTripsNeeded, wallSeconds: rounded(wall),
                      sessionSeconds: report["seconds"] as? Double, outsideSessionSeconds: (report["seconds"] as? Double).map { rounded(wall - $0) },
                      linkFloorS: rounded(linkFloor), modemFloorS: rounded(modemFloor), physicalLimitSeconds: rounded(limit),
                      timeRatio: rounded(wall / limit), timeRatioLinkOnly: rounded(wall / linkFloor),
                      phases: phaseTimes, notes: notes)
    }
}
