import Field
import Foundation
import ModemSimulator
import SimulatorKit

/// The init of a working set (2,000 customers, 3,000 products, 3 price levels, stock, history) by
/// the real `satchel` process through the simulated SIMCom modem on EDGE, timed end to end
/// (process start to exit), against the link's physical limit, with the process's peak RSS from
/// GNU time.
struct SyncInitBench {
    /// A figure satchel's report or GNU time did not give is nil (and said in `notes`), never 0.
    struct Result: Codable {
        var rows: Int?
        var bytesUp: Int
        var bytesDown: Int
        var wallSeconds: Double?
        var physicalLimitSeconds: Double
        var timeRatio: Double?
        var peakRssMb: Double?
        /// The simulated modem's context activation and TCP connect beyond one round trip (not in the limit).
        var modemSetUpSeconds: Double
        /// The limit plus that set-up, and wall / it: reported, not gated (docs/benchmarks.md).
        var physicalLimitWithSetUpSeconds: Double
        var timeRatioWithSetUp: Double?
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

    /// The simulated modem's data-session set-up beyond what the limit counts already: the data
    /// context's activation (`AT+CIICR`) and the TCP connect (`AT+CIPSTART`) less the one round
    /// trip of the connect that `roundTripsNeeded` holds. A real network's cost, kept in the
    /// measured time and in the gated limit's numerator; reported beside the limit (never gated)
    /// so the time the session set-up takes is visible apart from the rest.
    static func dataSessionSetUpSeconds(_ config: SimulatedModemConfig) -> Double {
        (config.delays.ciicr + max(0, config.delays.cipstart - config.link.roundTripSeconds)) * config.timeScale
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
        let stats = modem.stats
        let link = LinkProfile.edge
        let limit = Double(stats.bytesUp) / link.upBytesPerSecond + Double(stats.bytesDown) / link.bytesPerSecond + Double(roundTripsNeeded) * link.roundTripSeconds
        let setUp = dataSessionSetUpSeconds(modemConfig)
        return Result(rows: rows, bytesUp: stats.bytesUp, bytesDown: stats.bytesDown,
                      wallSeconds: wall, physicalLimitSeconds: (limit * 1000).rounded() / 1000, timeRatio: wall.map { ($0 / limit * 1000).rounded() / 1000 },
                      peakRssMb: peakKiB.map { (Double($0) / 1024 * 10).rounded() / 10 },
                      modemSetUpSeconds: rounded(setUp), physicalLimitWithSetUpSeconds: rounded(limit + setUp),
                      timeRatioWithSetUp: wall.map { rounded($0 / (limit + setUp)) },
                      phases: phaseTimes, notes: notes)
    }
}
