import Field
import Foundation
import ModemSimulator
import SimulatorKit

/// The init of a working set (2,000 customers, 3,000 products, 3 price levels, stock, history) by
/// the real `satchel` process through the simulated SIMCom modem on EDGE, timed end to end
/// (process start to exit), against the physical limit (the link's floor plus the modem's: `modemFloorSeconds`), with the process's peak RSS from
/// GNU time.
struct SyncInitBench {
    /// A figure satchel's report or GNU time did not give is nil (and said in `notes`), never 0.
    struct Result: Codable {
        var rows: Int?
        var bytesUp: Int
        var bytesDown: Int
        var wallSeconds: Double?
        /// The link's part of the limit: bytes at the link's rates plus the round trips needed.
        var linkFloorS: Double
        /// The modem session's unavoidable network steps at the simulator's configured delays
        /// (`modemFloorSeconds`).
        var modemFloorS: Double
        /// link_floor_s + modem_floor_s: the physical limit `time_ratio` is measured against.
        var physicalLimitSeconds: Double
        /// wall / physical limit; goal <= 1.2 (`init_time_ratio`).
        var timeRatio: Double?
        /// wall / link_floor_s alone: the figure's definition before 2026-12-03, reported, not gated.
        var timeRatioLinkOnly: Double?
        var peakRssMb: Double?
        /// `satchel sync --json`'s phases, as seconds since the bench started the process.
        var phases: [PhaseTime]?
        var notes: [String]
    }

    /// One phase of `satchel sync --json`'s `phases`: when it was reached, in seconds since the
    /// bench started the process (both on CLOCK_MONOTONIC), and the seconds since the phase before.
    struct PhaseTime: Codable {
        var phase: String
        var at: Double
        var step: Double
    }

    /// The report's phases against the bench's own start of the process; nil (and a note) when
    /// the report has none. The first step is the process's own start (exec, runtime, arguments).
    static func phases(_ report: [String: Any], processStarted: Double, notes: inout [String]) -> [PhaseTime]? {
        guard let marks = report["phases"] as? [[String: Any]], !marks.isEmpty else {
            notes.append("satchel sync --json printed no \"phases\"")
            return nil
        }
        var previous = processStarted
        return marks.compactMap { mark in
            guard let phase = mark["phase"] as? String, let at = (mark["at"] as? NSNumber)?.doubleValue else { return nil }
            defer { previous = at }
            return PhaseTime(phase: phase, at: rounded(at - processStarted), step: rounded(at - previous))
        }
    }

    /// The simulated SIMCom as a handheld's modem is when the rep syncs: registered on the
    /// network since it was switched on (no registration delay), everything else as simulated:
    /// the data context's activation and the TCP connect keep their delays, so they are in the
    /// time measured end to end.
    static func registeredModem(link: LinkProfile) -> SimulatedModemConfig {
        var config = SimulatedModemConfig.simcomWithoutPIN(link: link, guardSeconds: 0.2)
        config.delays.registration = 0
        return config
    }

    /// Round trips a sync needs at the least whatever its encoding: the TCP connect, the Noise
    /// handshake, and the one flight of the session (AUTH + BATCH + PULL answered by RECEIPT and
    /// the download; the closing ACK needs no answer).
    static let roundTripsNeeded = 3

    /// The link's floor: what crossed (as the simulated modem counted it) at the link's rates,
    /// plus `roundTripsNeeded` round trips at its delay.
    static func linkFloorSeconds(_ stats: SimulatedModemStats, _ link: LinkProfile) -> Double {
        Double(stats.bytesUp) / link.upBytesPerSecond + Double(stats.bytesDown) / link.bytesPerSecond + Double(roundTripsNeeded) * link.roundTripSeconds
    }

    /// The modem session's unavoidable network steps, at what the simulated SIMCom is configured
    /// to take for them (`SimDelays`, never the measurement; docs/benchmarks.md): one context
    /// activation (`AT+CIICR` answered), one TCP connect (`AT+CIPSTART` to `CONNECT`, less the
    /// round trip `linkFloorSeconds` already counts for it) and one close (the lesser of a guard
    /// time, the silence after which the modem honours `+++`, and a round trip, the soonest the
    /// far end's close of the connection can arrive after the last flight; then one close
    /// command answered): a lower bound of either way the session can end. Each answer also takes the simulator's per-command delay. The queries the
    /// agent chooses to send (SIM state, registration, signal, identification) are not in it:
    /// they are ours to make cheaper.
    static func modemFloorSeconds(_ config: SimulatedModemConfig) -> Double {
        let delays = config.delays
        let activation = delays.command + delays.ciicr
        let connect = max(0, delays.command + delays.cipstart - config.link.roundTripSeconds)
        let close = delays.command + min(config.guardSeconds / config.timeScale, config.link.roundTripSeconds)
        return (activation + connect + close) * config.timeScale
    }

    static func rounded(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    /// A handheld home for the benchmark's device, set up the way a technician does it (init,
    /// keys registered on the hub, provisioned with the hub's address and key).
    static func provisionedDevice(satchel executable: String, home: String, hub: DayHub) throws {
        let environment = ["SATCHEL_HOME": home]
        func satchel(_ arguments: [String]) throws -> ChildProcess.Result {
            let result = try ChildProcess.run(executable, arguments, environment: environment, timeoutSeconds: 60)
            guard result.succeeded else { throw DayRunner.Failure.command("satchel \(arguments.joined(separator: " "))", result) }
            return result
        }
        _ = try satchel(["init", "--device", SyncBench.device, "--rep", SyncBench.rep])
        let keys = try JSONSerialization.jsonObject(with: Data(try satchel(["keys", "--json"]).stdout.utf8)) as? [String: Any]
        guard let publicKey = keys?["public_key"] as? String else { throw DayRunner.Failure.setup("satchel keys --json printed no public_key") }
        try hub.register(device: SyncBench.device, rep: SyncBench.rep, publicKey: publicKey)
        _ = try satchel(["provision", "--hub", hub.address, "--hub-key", hub.publicKey])
    }

    /// `short`: the short form's smaller working set (SyncBench.shortWorkingSet).
    static func run(satchel executable: String, hardware: String, short: Bool = false) throws -> Result {
        let root = NSTemporaryDirectory() + "satchel-init-\(getpid())"
        try FileManager.default.createDirectory(atPath: root + "/lock", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hub = try DayHub(directory: root + "/hub", password: SyncBench.password)
        defer { hub.stop() }
        try SyncBench.loadMasterData(into: hub.storage, root: root, plan: short ? SyncBench.shortWorkingSet : SyncBench.workingSet)
        let home = root + "/device"
        let environment = ["SATCHEL_HOME": home]
        try provisionedDevice(satchel: executable, home: home, hub: hub)
        let modemConfig = SyncInitBench.registeredModem(link: .edge)
        let modem = try SimulatedModem(config: modemConfig)
        modem.start()
        defer { modem.stop() }
        let rss = root + "/rss"
        let processStarted = ChildProcess.monotonicSeconds()
        let synced = try ChildProcess.run("/usr/bin/time", ["-f", "%M", "-o", rss, executable, "sync", "--mode", "init", "--over-modem", "--apn", "internet",
                                                            "--port", modem.path, "--lock-dir", root + "/lock", "--hardware", hardware,
                                                            "--guard-ms", "200", "--json"],
                                          environment: environment, stdin: SyncBench.password + "\n", timeoutSeconds: 300)
        // End to end: process start to exit (modem set-up, handshake, download, verification).
        let processSeconds = ChildProcess.monotonicSeconds() - processStarted
        guard synced.succeeded else { throw DayRunner.Failure.command("satchel sync --mode init over the simulated modem", synced) }
        let report = try JSONSerialization.jsonObject(with: Data(synced.stdout.utf8)) as? [String: Any] ?? [:]
        var notes: [String] = []
        let peakKiB = (try? String(contentsOfFile: rss, encoding: .utf8)).flatMap { Int($0.split(separator: "\n").last ?? "") }
        if peakKiB == nil { notes.append("init_peak_rss_mb: GNU time wrote no peak RSS to \(rss)") }
        let wall: Double? = (processSeconds * 1000).rounded() / 1000
        if let session = report["seconds"] as? Double { notes.append("init over EDGE: \((session * 1000).rounded() / 1000) s of the \((processSeconds * 1000).rounded() / 1000) s end to end on the open link") }
        let rows = report["downloaded"] as? Int
        if rows == nil { notes.append("satchel sync --json printed no \"downloaded\"") }
        let phaseTimes = phases(report, processStarted: processStarted, notes: &notes)
        let linkFloor = linkFloorSeconds(modem.stats, .edge)
        let modemFloor = modemFloorSeconds(modemConfig)
        let limit = linkFloor + modemFloor
        return Result(rows: rows, bytesUp: modem.stats.bytesUp, bytesDown: modem.stats.bytesDown,
                      wallSeconds: wall, linkFloorS: rounded(linkFloor), modemFloorS: rounded(modemFloor), physicalLimitSeconds: rounded(limit),
                      timeRatio: wall.map { rounded($0 / limit) }, timeRatioLinkOnly: wall.map { rounded($0 / linkFloor) },
                      peakRssMb: peakKiB.map { (Double($0) / 1024 * 10).rounded() / 10 },
                      phases: phaseTimes, notes: notes)
    }
}
