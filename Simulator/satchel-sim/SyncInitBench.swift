import Field
import Foundation
import ModemSimulator
import SimulatorKit

/// The init of a working set (2,000 customers, 3,000 products, 3 price levels, stock) by the
/// real `satchel` process through the simulated SIMCom modem on EDGE, against the link's
/// physical limit, with the process's peak RSS from GNU time.
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
        var notes: [String]
    }

    static func run(satchel executable: String, hardware: String) throws -> Result {
        let root = NSTemporaryDirectory() + "satchel-init-\(getpid())"
        try FileManager.default.createDirectory(atPath: root + "/lock", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hub = try DayHub(directory: root + "/hub", password: SyncBench.password)
        defer { hub.stop() }
        try SyncBench.loadMasterData(into: hub.storage, root: root)
        let home = root + "/device"
        let environment = ["SATCHEL_HOME": home]
        func satchel(_ arguments: [String], stdin: String? = nil, timeout: Double = 60) throws -> ChildProcess.Result {
            let result = try ChildProcess.run(executable, arguments, environment: environment, stdin: stdin, timeoutSeconds: timeout)
            guard result.succeeded else { throw DayRunner.Failure.command("satchel \(arguments.joined(separator: " "))", result) }
            return result
        }
        _ = try satchel(["init", "--device", SyncBench.device, "--rep", SyncBench.rep])
        let keys = try JSONSerialization.jsonObject(with: Data(try satchel(["keys", "--json"]).stdout.utf8)) as? [String: Any]
        guard let publicKey = keys?["public_key"] as? String else { throw DayRunner.Failure.setup("satchel keys --json printed no public_key") }
        try hub.register(device: SyncBench.device, rep: SyncBench.rep, publicKey: publicKey)
        _ = try satchel(["provision", "--hub", hub.address, "--hub-key", hub.publicKey])

        let modem = try SimulatedModem(config: .simcomWithoutPIN(link: .edge, guardSeconds: 0.2))
        modem.start()
        defer { modem.stop() }
        let rss = root + "/rss"
        let synced = try ChildProcess.run("/usr/bin/time", ["-f", "%M", "-o", rss, executable, "sync", "--mode", "init", "--over-modem", "--apn", "internet",
                                                            "--port", modem.path, "--lock-dir", root + "/lock", "--hardware", hardware,
                                                            "--guard-ms", "200", "--json"],
                                          environment: environment, stdin: SyncBench.password + "\n", timeoutSeconds: 300)
        guard synced.succeeded else { throw DayRunner.Failure.command("satchel sync --mode init over the simulated modem", synced) }
        let report = try JSONSerialization.jsonObject(with: Data(synced.stdout.utf8)) as? [String: Any] ?? [:]
        var notes: [String] = []
        let peakKiB = (try? String(contentsOfFile: rss, encoding: .utf8)).flatMap { Int($0.split(separator: "\n").last ?? "") }
        if peakKiB == nil { notes.append("init_peak_rss_mb: GNU time wrote no peak RSS to \(rss)") }
        let wall = report["seconds"] as? Double
        if wall == nil { notes.append("init_time_ratio: satchel sync --json printed no \"seconds\"") }
        let rows = report["downloaded"] as? Int
        if rows == nil { notes.append("satchel sync --json printed no \"downloaded\"") }
        let stats = modem.stats
        let link = LinkProfile.edge
        // Handshake + the one flight of the download; the closing ACK/BYE needs no answer.
        let limit = Double(stats.bytesUp) / link.upBytesPerSecond + Double(stats.bytesDown) / link.bytesPerSecond + 2 * link.roundTripSeconds
        return Result(rows: rows, bytesUp: stats.bytesUp, bytesDown: stats.bytesDown,
                      wallSeconds: wall, physicalLimitSeconds: (limit * 1000).rounded() / 1000, timeRatio: wall.map { ($0 / limit * 1000).rounded() / 1000 },
                      peakRssMb: peakKiB.map { (Double($0) / 1024 * 10).rounded() / 10 }, notes: notes)
    }
}
