import ArgumentParser
import Field
import Foundation
import SimulatorKit
import Modem

struct CaptureBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture throughput vs raw sqlite3 (with and without the card append), customer card vs its raw SQL, satchel's size and memory vs hello-worlds.",
        discussion: """
            Goals (--check): ratio >= 0.8, ratio_with_card >= 0.9, card_ratio <= 1.5, satchel_stripped_bytes <= 16000000,
            status_max_rss_mb <= 14, rss_ratio_vs_sqlite_hello <= 1.15. Size and memory goals are about the release image
            (hardware/build-release.sh); measure them with its satchel-sim.
            """)
    @Option(help: "Orders to capture on each side (default 300; 60 with --short).") var orders: Int?
    @Option(help: "Customer cards to read on each side (default 30; 5 with --short).") var cards: Int?
    @Option(help: "Runs of each program for the peak-RSS medians.") var memoryRuns: Int = 5
    @Option(help: "Path of the satchel executable to measure (default: next to satchel-sim).") var satchel: String?
    @Option(help: "Path of the hello-world baseline (default: bench-hello next to satchel-sim).") var hello: String?
    @Option(help: "Path of the SQLite hello-world baseline (default: bench-sqlite-hello next to satchel-sim).") var sqliteHello: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var checking: BenchCheckOptions

    func validate() throws {
        guard (orders ?? 1) >= 1, (cards ?? 1) >= 1, memoryRuns >= 1 else { throw ValidationError("--orders, --cards and --memory-runs must be at least 1") }
    }

    func run() throws {
        let plan = try checking.plan(for: CaptureBench.goals)
        let result = try CaptureBench.run(.init(
            orders: orders ?? (checking.short ? 60 : 300), cards: cards ?? (checking.short ? 5 : 30),
            satchelPath: ChildProcess.sibling("satchel", override: satchel),
            helloPath: ChildProcess.sibling("bench-hello", override: hello),
            sqliteHelloPath: ChildProcess.sibling("bench-sqlite-hello", override: sqliteHello), memoryRuns: memoryRuns))
        try checking.finish(result, goals: CaptureBench.goals, plan: plan, command: "bench capture", json: json)
    }
}

struct SyncBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync, side by side in one run: a realistic rep's day (init, fast, full; three seeds) against gzip -6 JSON lines; the evening full sync over GPRS and the init over EDGE by the real satchel, end to end, against the link's physical limit.",
        discussion: """
            The day is the plan `satchel-sim day` runs (RepDay), captured in-process; the baseline is gzip -6 of JSON lines of the rows
            that crossed, one stream per direction; ours counts every byte on the socket, handshake included. The short form runs one
            seed on a smaller working set. The GPRS and EDGE parts run the simulated SIMCom modem; the EDGE init runs the real satchel
            executable under /usr/bin/time.
            Goals (--check): day_ratio_up <= 0.4, day_ratio_down <= 0.4, init_ratio <= 0.4 (medians of the seeds), sync_errors <= 0,
            round_trips <= 3, init_resumed_frames_again <= 1, checksums_match, time_ratio <= 1.25, init_time_ratio <= 1.2,
            init_peak_rss_mb <= 32; apply_cpu_ratio <= 2 (the device's CPU to apply and verify a full sync of 100 changed rows on a
            47,000-row working set against a 5,000-row one; in-process, so it runs with --wire-only too), apply_checksums_match.
            With --wire-only, only the wire and device-CPU goals are checked.
            """)
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Only the wire part (bytes and round trips: no device CPU timing, no modem, no satchel process); only its goals are checked.") var wireOnly = false
    @Flag(help: "Only print which columns of the day's BATCH bodies cost the uplink's bytes (a debugging aid: no figures, no goals).") var columns = false
    @Flag(help: "Only print where the day's downlink bytes go: per session and message type, per table of the full sync, per part of a TABLE body (a debugging aid: no figures, no goals).") var downlink = false
    @Option(help: "Path of the satchel executable (default: next to satchel-sim, or $SATCHEL_BIN).") var satchel: String?
    @Option(help: "Hardware directory (default: the source tree's hardware/).") var hardware: String?
    @OptionGroup var checking: BenchCheckOptions

    struct Report: BenchReport {
        /// The figures issues 6 and 16 name, at the top.
        var dayRatioUp: Double
        var dayRatioDown: Double
        var initRatio: Double
        var timeRatio: Double?
        var initTimeRatio: Double?
        var roundTrips: Int
        var initPeakRssMb: Double?
        /// Issue 16: device CPU for a 100-row full sync, 47,000-row working set / 5,000-row one.
        var applyCpuRatio: Double?
        var wire: SyncBench.Result
        var fullOverGPRS: SyncGPRSBench.Result?
        var initOverEDGE: SyncInitBench.Result?
        /// The device's CPU to apply and verify a full sync of 100 changed rows, small and large working set.
        var deviceApply: SyncApplyBench.Result?
        var notes: [String] = []

        static let modemGoals: [BenchGoal] = [
            BenchGoal("time_ratio", .atMost(1.25), origin: "issue 16", shortMargin: 0.1),
            BenchGoal("init_time_ratio", .atMost(1.2), origin: "issue 16", shortMargin: 0.1),
            BenchGoal("init_peak_rss_mb", .atMost(32), origin: "issue 6"),
        ]
        static var goals: [BenchGoal] { SyncBench.Result.goals + SyncApplyBench.Result.goals + modemGoals }
        /// The wire part's figures are bytes and round trips, the same on any machine however busy;
        /// the device's apply CPU is a timing figure, so it runs (and gates) only in the whole bench.
        static var wireOnlyGoals: [BenchGoal] { SyncBench.Result.goals }

        var figures: [String: Double] {
            var figures = wire.figures
            figures["time_ratio"] = timeRatio
            figures["init_time_ratio"] = initTimeRatio
            figures["init_peak_rss_mb"] = initPeakRssMb
            for (name, value) in deviceApply?.figures ?? [:] { figures[name] = value }
            return figures
        }
    }

    func run() throws {
        if columns {
            print("column                                     raw B  deflated B (what it adds)")
            for row in try SyncBench.columnBreakdown(short: checking.short) {
                print(row.column.padding(toLength: 40, withPad: " ", startingAt: 0) + String(format: "%9d %11d", row.raw, row.deflated))
            }
            return
        }
        if downlink {
            printDownlinkBreakdown(try SyncBench.downlinkBreakdown(short: checking.short))
            return
        }
        let goals = wireOnly ? Report.wireOnlyGoals : Report.goals
        let plan = try checking.plan(for: goals)
        let wire = try SyncBench.run(short: checking.short)
        var report = Report(dayRatioUp: wire.dayRatioUp, dayRatioDown: wire.dayRatioDown, initRatio: wire.initRatio, roundTrips: wire.roundTrips, wire: wire)
        if wireOnly {
            report.notes.append("--wire-only: the device's apply CPU, the GPRS and the EDGE parts did not run; their goals are not checked")
        } else {
            report.deviceApply = try SyncApplyBench.run(short: checking.short)
            report.applyCpuRatio = report.deviceApply?.applyCPURatio
            let path = ChildProcess.sibling("satchel", override: satchel ?? ProcessInfo.processInfo.environment["SATCHEL_BIN"])
            let gprs = try SyncGPRSBench.measure(satchel: path, hardware: hardware, short: checking.short)
            report.fullOverGPRS = gprs
            report.timeRatio = gprs.timeRatio
            let initial = try SyncInitBench.run(satchel: path, hardware: hardwareDirectory(hardware).path, short: checking.short)
            report.initOverEDGE = initial
            report.initTimeRatio = initial.timeRatio
            report.initPeakRssMb = initial.peakRssMb
            report.notes += initial.notes
        }
        try checking.finish(report, goals: goals, plan: plan, command: "bench sync", json: json)
    }
}

extension SyncBenchCommand {
    func printDownlinkBreakdown(_ report: SyncBench.DownlinkReport) {
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        print("session       down B  handshake B  baseline B  by message type")
        for session in report.sessions {
            print(pad(session.mode, 10) + String(format: "%9d %12d %11d  ", session.down, session.handshake, session.baseline)
                  + session.byType.map { "\($0.type) \($0.bytes)" }.joined(separator: ", "))
        }
        print("\nfull sync, table            frames   rows   link B  baseline B")
        for table in report.tables {
            print(pad(table.table, 26) + String(format: "%7d %6d %8d %11d", table.frames, table.rows, table.wire, table.baseline))
        }
        print("\nfull sync, table / part of the body                raw B  deflated B (what it adds; frame deflated alone)")
        for part in report.parts {
            print(pad(part.table + " / " + part.part, 48) + String(format: "%8d %11d", part.raw, part.deflated))
        }
    }
}

struct BackupBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Reopen after a crash, restore from the card, card bytes per order, capture latency during a snapshot, plaintext on the card.",
        discussion: """
            Goals (--check): reopen_status_milliseconds <= 200, restore_seconds <= 5, card_bytes_ratio <= 2, latency_ratio <= 2,
            plaintext_hits <= 0, failures_side_by_side <= 0, card_files_rewritten <= 0, restore_after_side_by_side_complete >= 1.
            """)
    @Option(help: "Target size of the device database in MB (default 20; 2 with --short).") var databaseMB: Int?
    @Option(help: "Journal records on the card after the snapshot (restore) and captures measured for card wear (default 1000; 60 with --short).") var records: Int?
    @Option(help: "Captures timed on each side of the latency comparison (default 200; 40 with --short).") var captures: Int?
    @Option(help: "Path of the satchel executable to measure (default: next to satchel-sim).") var satchel: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var checking: BenchCheckOptions

    func validate() throws {
        guard (databaseMB ?? 1) >= 1, (records ?? 1) >= 1, (captures ?? 10) >= 10 else {
            throw ValidationError("--database-mb and --records must be at least 1, --captures at least 10")
        }
    }

    func run() throws {
        let plan = try checking.plan(for: BackupBench.goals)
        let short = checking.short
        let result = try BackupBench.run(.init(databaseMB: databaseMB ?? (short ? 2 : 20), records: records ?? (short ? 60 : 1_000),
                                               captures: captures ?? (short ? 40 : 200),
                                               satchelPath: ChildProcess.sibling("satchel", override: satchel ?? ProcessInfo.processInfo.environment["SATCHEL_BIN"])))
        try checking.finish(result, goals: BackupBench.goals, plan: plan, command: "bench backup", json: json)
    }
}
