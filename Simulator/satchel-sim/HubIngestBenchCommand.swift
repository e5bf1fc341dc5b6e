import ArgumentParser
import Foundation
import SimulatorKit

struct HubIngestBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub-ingest",
        abstract: "The PostgreSQL hub's commit of uploaded order lines against a plain batched INSERT of the same rows into the same server, in one run (issue 15).")
    @Option(help: ArgumentHelp("A PostgreSQL URL whose role may create databases (the benchmark makes its own and drops it).", valueName: "url"))
    var postgres = ProcessInfo.processInfo.environment["SATCHEL_TEST_POSTGRES"] ?? "postgresql://satchel:satchel@127.0.0.1:5432/postgres"
    @Option(help: "Order lines uploaded (200 to a batch).") var rows = 50_000
    @Flag(help: "One line of JSON.") var json = false
    @OptionGroup var checking: BenchCheckOptions

    func run() throws {
        let plan = try checking.plan(for: HubIngestBench.goals)
        let result = try HubIngestBench.run(adminURL: postgres, rows: checking.short ? 10_000 : rows)
        try checking.finish(result, goals: HubIngestBench.goals, plan: plan, command: "bench hub-ingest", json: json)
    }
}
