import ArgumentParser
import Foundation
import Modem
import SimulatorKit

struct EncryptionBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encryption",
        abstract: "The app password and the sealed database: capture sealed vs plain, unlock time and memory, and a plaintext scan of a locked device after a simulated day.",
        discussion: """
            Goals (--check): capture_ratio_sealed_vs_plain >= 0.7, unlock_seconds <= 1, unlock_extra_rss_mb <= 16,
            plaintext_found_locked <= 0, and the control plaintext_found_without_password >= 1 (the same day without an
            app password, where the scan must find the plaintext).
            """)
    @Option(help: "Orders to capture on each side (default 300; 60 with --short).") var orders: Int?
    @Option(help: "satchel unlock runs for the medians (default 5; 3 with --short).") var unlocks: Int?
    @Flag(inversion: .prefixedNo, help: "Run the two simulated days and the plaintext scan.") var day = true
    @Option(help: "Path of the satchel executable (default: next to satchel-sim).") var satchel: String?
    @Option(help: "Hardware directory (default: the source tree's hardware/).") var hardware: String?
    @Flag(help: "Print JSON.") var json = false
    @OptionGroup var checking: BenchCheckOptions

    func run() throws {
        let plan = try checking.plan(for: EncryptionBench.goals)
        let result = try EncryptionBench.run(.init(
            orders: orders ?? (checking.short ? 60 : 300), unlocks: unlocks ?? (checking.short ? 3 : 5),
            satchelPath: ChildProcess.sibling("satchel", override: satchel), hardware: hardwareDirectory(hardware).path, day: day))
        try checking.finish(result, goals: EncryptionBench.goals, plan: plan, command: "bench encryption", json: json)
    }
}
