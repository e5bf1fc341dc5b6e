import ArgumentParser
import Foundation
import SimulatorKit

struct ERPBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erp",
        abstract: "The ERP import of products with prices and stock against a prepared batched INSERT of the same rows on SQLite, in one run; peak RSS of satchel-hub erp import on a large file (GNU time).")
    @Option(help: "Products (each with one price and one stock line) for the ratio.") var products = 100_000
    @Option(help: "Products in the large file for the peak RSS (0: skip).") var largeProducts = 0
    @Option(help: "Path of the satchel-hub executable (default: next to satchel-sim).") var hub: String?
    @Flag(help: "One line of JSON.") var json = false
    @OptionGroup var checking: BenchCheckOptions

    func run() throws {
        let plan = try checking.plan(for: ERPBench.goals)
        let executable = ChildProcess.sibling("satchel-hub", override: hub)
        let result = try ERPBench.run(products: checking.short ? 10_000 : products, hubExecutable: executable, largeProducts: largeProducts > 0 ? largeProducts : nil)
        try checking.finish(result, goals: ERPBench.goals, plan: plan, command: "bench erp", json: json)
    }
}
