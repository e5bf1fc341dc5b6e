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
