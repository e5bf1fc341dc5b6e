import Field
import Foundation
import ModemSimulator
import SimulatorKit

/// The init of a working set (2,000 customers, 3,000 products, 3 price levels, stock) by the
/// real `satchel` process through the simulated SIMCom modem on EDGE, against the link's
/// physical limit, with the process's peak RSS from GNU time.
struct SyncInitBench {
    struct Result: Codable {
        var rows: Int
        var bytesUp: Int
        var bytesDown: Int
        var wallSeconds: Double
        var physicalLimitSeconds: Double
        var timeRatio: Double
        var peakRssMb: Double
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
        try hub.register(device: SyncBench.device, rep: SyncBench.rep, publicKey: keys?["public_key"] as? String ?? "")
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
        let peakKiB = Int(try String(contentsOfFile: rss, encoding: .utf8).split(separator: "\n").last ?? "") ?? 0
        let stats = modem.stats
        let link = LinkProfile.edge
        let wall = report["seconds"] as? Double ?? 0
        // Handshake + the one flight of the download; the closing ACK/BYE needs no answer.
        let limit = Double(stats.bytesUp) / link.upBytesPerSecond + Double(stats.bytesDown) / link.bytesPerSecond + 2 * link.roundTripSeconds
        return Result(rows: report["downloaded"] as? Int ?? 0, bytesUp: stats.bytesUp, bytesDown: stats.bytesDown,
                      wallSeconds: wall, physicalLimitSeconds: (limit * 1000).rounded() / 1000, timeRatio: (wall / limit * 1000).rounded() / 1000,
                      peakRssMb: (Double(peakKiB) / 1024 * 10).rounded() / 10)
    }
}
