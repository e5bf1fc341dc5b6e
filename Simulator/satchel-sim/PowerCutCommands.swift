import ArgumentParser
import Field
import Foundation
import SimulatorKit

struct PowerCut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "powercut",
        abstract: "SIGKILL the real satchel at random instants while it captures and snapshots, optionally wipe internal storage and restore from the card, and check nothing acknowledged was lost.",
        discussion: """
            Prints {"cycles":N,"acknowledged":A,"lost":L,"duplicates":D,"integrity_failures":F,...} with --json and exits 1 if
            L, D or F (or an unexpected satchel failure) is non-zero. SIGKILL leaves the OS page cache intact: this tests the
            atomicity of every step against a dying process; lost unsynced writes are covered by the crash-state tests.
            """)
    @Option(help: "Kill cycles to run.") var cycles: Int = 300
    @Option(help: "Seed: the same seed replays the same commands and kill delays (kill timing still depends on the machine).") var seed: UInt64 = 1
    @Flag(help: "On one cycle in --wipe-every, delete the whole data directory and restore from the card.") var wipeInternal = false
    @Option(help: "With --wipe-internal: wipe on one cycle in this many.") var wipeEvery: Int = 3
    @Option(help: "Acknowledged changes between snapshots (SATCHEL_SNAPSHOT_EVERY for the children).") var snapshotEvery: Int = 5
    @Option(help: "Path of the satchel executable (default: next to satchel-sim, or $SATCHEL_BIN).") var satchel: String?
    @Option(help: "Keep the device's files (device/, card/) in this directory.") var keep: String?
    @Option(help: "Print progress to stderr every this many cycles (0: never).") var progressEvery: Int = 0
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        guard cycles >= 1, wipeEvery >= 1, snapshotEvery >= 1 else { throw ValidationError("--cycles, --wipe-every and --snapshot-every must be at least 1") }
    }

    func run() throws {
        var options = SimulatorKit.PowerCut.Options(
            cycles: cycles, seed: seed, wipeInternal: wipeInternal,
            satchelPath: ChildProcess.sibling("satchel", override: satchel ?? ProcessInfo.processInfo.environment["SATCHEL_BIN"]), keep: keep)
        options.wipeEvery = wipeEvery
        options.snapshotEvery = snapshotEvery
        options.progressEvery = progressEvery
        options.progress = { report in
            FileHandle.standardError.write(Data("powercut: \(report.cycles) cycles, \(report.acknowledged) acknowledged, \(report.lost) lost, \(report.duplicates) duplicates, \(report.integrityFailures) integrity failures, \(report.wipes) wipes, \(String(format: "%.0f", report.elapsedSeconds)) s\n".utf8))
        }
        let report: SimulatorKit.PowerCut.Report
        do {
            report = try SimulatorKit.PowerCut.run(options)
        } catch {
            FileHandle.standardError.write(Data("satchel-sim: error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if json {
            print(try FieldJSON.encode(report))
        } else {
            print("""
                Power cuts (seed \(report.seed)): \(report.cycles) cycles in \(String(format: "%.1f", report.elapsedSeconds)) s
                  kills:        \(report.kills) (\(report.killsMidSnapshot) mid-snapshot, \(report.killsAfterCommitBeforeAck) after commit before the acknowledgement, \(report.backupsKilled) backups)
                  wipes:        \(report.wipes), restores: \(report.restores) (\(report.restoresKilled) restores killed and rerun)
                  acknowledged: \(report.acknowledged), lost: \(report.lost), duplicates: \(report.duplicates), integrity failures: \(report.integrityFailures), unexpected exits: \(report.unexpectedExits)
                """)
            if let keep { print("  files kept in: \(keep)") }
        }
        for problem in report.problems { FileHandle.standardError.write(Data("powercut: PROBLEM: \(problem)\n".utf8)) }
        if !report.passed { throw ExitCode(1) }
    }
}

struct BackupBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Reopen after a crash, restore from the card, card bytes per order, capture latency during a snapshot, plaintext on the card.")
    @Option(help: "Target size of the device database in MB.") var databaseMB: Int = 20
    @Option(help: "Journal records on the card after the snapshot (restore) and captures measured for card wear.") var records: Int = 1_000
    @Option(help: "Captures timed on each side of the latency comparison.") var captures: Int = 200
    @Option(help: "Path of the satchel executable to measure (default: next to satchel-sim).") var satchel: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let result = try BackupBench.run(.init(databaseMB: databaseMB, records: records, captures: captures,
                                               satchelPath: ChildProcess.sibling("satchel", override: satchel ?? ProcessInfo.processInfo.environment["SATCHEL_BIN"])))
        print(try FieldJSON.encode(result, pretty: !json))
        if !result.passed { throw ExitCode(1) }
    }
}

struct DaysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "days",
        abstract: "Weeks of a rep's days on simulated clocks (in-process device and hub, real sync and housekeeping): does the device database stay bounded?")
    @Option(help: "Days to run.") var days: Int = 60
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Flag(help: "Print JSON (every day's figures).") var json = false

    func run() throws {
        let result = try LongRun.run(days: days, seed: seed)
        if json { return print(try FieldJSON.encode(result)) }
        print("\(days) days (seed \(seed)): \(result.captured) documents captured, \(result.hubChanges) changes on the hub, \(result.mismatches) checksum mismatches")
        for day in result.days where day.day == 1 || day.day % 10 == 0 {
            print(String(format: "  day %3d  %8d bytes  %4d customers  %4d orders  %4d visits  %5d changes  %2d retained", day.day,
                         Int(day.databaseBytes), Int(day.customers), Int(day.orders), Int(day.visits), Int(day.changes), Int(day.retained)))
        }
        print("  largest database in the last third / in the middle third: \(result.growthLastThird)")
    }
}

struct SyncFuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync-fuzz",
        abstract: "Hostile input for the sync message decoders and the inflater: refused or accepted, never a crash, a hang or output past the limits.")
    @Option(help: "Inputs for the decoders (a tenth as many go to the inflater).") var inputs: Int = 1_000_000
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let started = Date()
        let result = try SyncFuzz.run(inputs: inputs, seed: seed)
        if json { print(try FieldJSON.encode(result)) } else {
            print("\(result.inputs) decoder inputs: \(result.refused) refused, \(result.accepted) accepted; \(result.inflateInputs) inflater inputs: "
                  + "\(result.inflateRefused) refused, \(result.inflateOverLimit) over the limit; 64 MiB bomb refused: \(result.bombRefused) "
                  + "(\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
        }
        if result.inflateOverLimit > 0 || !result.bombRefused { throw ExitCode(1) }
    }
}
