import ArgumentParser
import Field
import Foundation
import SimulatorKit

struct PowerCut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "powercut",
        abstract: "SIGKILL the real satchel at random instants while it captures and snapshots, optionally wipe internal storage and restore from the card, and check nothing acknowledged was lost.",
        discussion: """
            Prints {"cycles":N,"acknowledged":A,"lost":L,"duplicates":D,"ids_reused":R,"integrity_failures":F,...} with --json and
            exits 1 if L, D, R or F (or an unexpected satchel failure) is non-zero. With --behind-card the device also syncs with a
            hub run in this process, the card's mount point goes empty for stretches (captures go to internal storage and the
            hub only), some stretches end in a wipe and a restore from the card that is behind, then a sync; at the end every
            acknowledged document must be on the hub as acknowledged. SIGKILL leaves the OS page cache intact: this tests the
            atomicity of every step against a dying process; lost unsynced writes are covered by the crash-state tests.
            """)
    @Option(help: "Kill cycles to run.") var cycles: Int = 300
    @Option(help: "Seed: the same seed replays the same commands and kill delays (kill timing still depends on the machine).") var seed: UInt64 = 1
    @Flag(help: "On one cycle in --wipe-every, delete the whole data directory and restore from the card.") var wipeInternal = false
    @Option(help: "With --wipe-internal: wipe on one cycle in this many.") var wipeEvery: Int = 3
    @Option(help: "Acknowledged changes between snapshots (SATCHEL_SNAPSHOT_EVERY for the children).") var snapshotEvery: Int = 5
    @Flag(help: "Sync with an in-process hub and let the card fall behind (empty mount point), wipe, restore from it, sync; check the hub at the end.") var behindCard = false
    @Option(help: "With --behind-card: sync on one cycle in this many.") var syncEvery: Int = 6
    @Option(help: "With --behind-card: the card goes away on one cycle in this many.") var cardAwayEvery: Int = 12
    @Option(help: "Set this app password after init: the kills land on the encrypted database (SATCHEL_RUNTIME_DIR on /dev/shm).") var appPassword: String?
    @Option(help: "Path of the satchel executable (default: next to satchel-sim, or $SATCHEL_BIN).") var satchel: String?
    @Option(help: "Keep the device's files (device/, card/) in this directory.") var keep: String?
    @Option(help: "Print progress to stderr every this many cycles (0: never).") var progressEvery: Int = 0
    @Flag(help: "Print the report as JSON.") var json = false

    func validate() throws {
        guard cycles >= 1, wipeEvery >= 1, snapshotEvery >= 1, syncEvery >= 1, cardAwayEvery >= 1 else {
            throw ValidationError("--cycles, --wipe-every, --snapshot-every, --sync-every and --card-away-every must be at least 1")
        }
    }

    func run() throws {
        var options = SimulatorKit.PowerCut.Options(
            cycles: cycles, seed: seed, wipeInternal: wipeInternal,
            satchelPath: ChildProcess.sibling("satchel", override: satchel ?? ProcessInfo.processInfo.environment["SATCHEL_BIN"]), keep: keep)
        options.wipeEvery = wipeEvery
        options.snapshotEvery = snapshotEvery
        options.progressEvery = progressEvery
        options.behindCard = behindCard
        options.appPassword = appPassword
        options.syncEvery = syncEvery
        options.cardAwayEvery = cardAwayEvery
        options.progress = { report in
            FileHandle.standardError.write(Data("powercut: \(report.cycles) cycles, \(report.acknowledged) acknowledged, \(report.lost) lost, \(report.duplicates) duplicates, \(report.idsReused) ids reused, \(report.integrityFailures) integrity failures, \(report.wipes) wipes, \(report.restoresFromBehindCard) restores from a card behind, \(report.syncs) syncs, \(String(format: "%.0f", report.elapsedSeconds)) s\n".utf8))
            // A long run's problems as they happen, not only at its end.
            if let latest = report.problems.last { FileHandle.standardError.write(Data("powercut: latest problem: \(latest)\n".utf8)) }
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
                  acknowledged: \(report.acknowledged), lost: \(report.lost), duplicates: \(report.duplicates), ids reused: \(report.idsReused), integrity failures: \(report.integrityFailures), unexpected exits: \(report.unexpectedExits)
                """)
            if behindCard {
                print("  hub:          \(report.syncs) syncs (\(report.syncsKilled) killed), \(report.restoresFromBehindCard) restores from a card that was behind, \(report.documentsCapturedWithoutCard) documents captured without the card; \(report.hubChecked) checked on the hub: \(report.hubLost) missing, \(report.hubDuplicates) held otherwise")
            }
            if let keep { print("  files kept in: \(keep)") }
        }
        for problem in report.problems { FileHandle.standardError.write(Data("powercut: PROBLEM: \(problem)\n".utf8)) }
        if !report.passed { throw ExitCode(1) }
    }
}
