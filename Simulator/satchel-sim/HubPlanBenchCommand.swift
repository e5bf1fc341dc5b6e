import ArgumentParser
import Foundation
import SimulatorKit

struct HubPlanBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hub-plan",
        abstract: "The hub's CPU for a full sync after 100 changed rows, scopes of ~5,000 and ~47,000 rows, and the storage one more device of each scope costs (SQLite backend, issue 15).")
    @Flag(help: "One line of JSON.") var json = false
    @OptionGroup var checking: BenchCheckOptions

    func run() throws {
        let plan = try checking.plan(for: HubPlanBench.goals)
        let result = try HubPlanBench.run(short: checking.short)
        try checking.finish(result, goals: HubPlanBench.goals, plan: plan, command: "bench hub-plan", json: json)
    }
}
