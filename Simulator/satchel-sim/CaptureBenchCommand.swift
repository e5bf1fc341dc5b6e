import ArgumentParser
import Field
import Foundation
import SimulatorKit

struct CaptureBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture throughput vs raw sqlite3, customer card vs its raw SQL, satchel's size and memory vs a hello-world.")
    @Option(help: "Orders to capture on each side.") var orders: Int = 300
    @Option(help: "Customer cards to read on each side.") var cards: Int = 30
    @Option(help: "Path of the satchel executable to measure (default: next to satchel-sim).") var satchel: String?
    @Option(help: "Path of the hello-world baseline (default: bench-hello next to satchel-sim).") var hello: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let result = try CaptureBench.run(.init(
            orders: orders, cards: cards,
            satchelPath: ChildProcess.sibling("satchel", override: satchel),
            helloPath: ChildProcess.sibling("bench-hello", override: hello)))
        if json {
            print(try FieldJSON.encode(result))
        } else {
            print(try FieldJSON.encode(result, pretty: true))
        }
    }
}

struct SyncBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync, side by side in one run: a rep's day in full mode against gzip -6 JSON lines; the fast sync over GPRS and the init over EDGE against the link's physical limit.",
        discussion: "The GPRS and EDGE parts run the simulated SIMCom modem; the EDGE init runs the real satchel executable under /usr/bin/time.")
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Only the wire part (no modem, no satchel process).") var wireOnly = false
    @Option(help: "Path of the satchel executable (default: next to satchel-sim, or $SATCHEL_BIN).") var satchel: String?
    @Option(help: "Hardware directory (default: the source tree's hardware/).") var hardware: String?

    struct Report: Encodable {
        /// The figures issue 6 names, at the top.
        var wireRatio: Double
        var timeRatio: Double?
        var initTimeRatio: Double?
        var roundTrips: Int
        var initPeakRssMb: Double?
        var wire: SyncBench.Result
        var fastOverGPRS: SyncGPRSBench.Result?
        var initOverEDGE: SyncInitBench.Result?
    }

    func run() throws {
        let wire = try SyncBench.run()
        var report = Report(wireRatio: wire.wireRatio, roundTrips: wire.roundTrips, wire: wire)
        if !wireOnly {
            let gprs = try SyncGPRSBench.measure(hardware: hardware)
            report.fastOverGPRS = gprs
            report.timeRatio = gprs.timeRatio
            let path = ChildProcess.sibling("satchel", override: satchel ?? ProcessInfo.processInfo.environment["SATCHEL_BIN"])
            let initial = try SyncInitBench.run(satchel: path, hardware: hardwareDirectory(hardware).path)
            report.initOverEDGE = initial
            report.initTimeRatio = initial.timeRatio
            report.initPeakRssMb = initial.peakRssMb
        }
        print(try FieldJSON.encode(report, pretty: !json))
    }
}
