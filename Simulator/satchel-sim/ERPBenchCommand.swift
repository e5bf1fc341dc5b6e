import ArgumentParser
import Foundation
import SimulatorKit

struct ERPBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erp",
        abstract: "The ERP import of products with prices and stock against a prepared batched INSERT of the same rows on SQLite and against COPY into PostgreSQL, in one run; peak RSS of satchel-hub erp import on a large file and of satchel-hub erp export of a hub holding many documents (GNU time).")
    @Option(help: ArgumentHelp("A PostgreSQL URL whose role may create databases, for the import against COPY (the benchmark makes its own databases and drops them).", valueName: "url"))
    var postgres = ProcessInfo.processInfo.environment["SATCHEL_TEST_POSTGRES"] ?? "postgresql://satchel:satchel@127.0.0.1:5432/postgres"
    @Option(help: "Products (each with one price and one stock line) for the ratio.") var products = 100_000
    @Option(help: "Products in the large file for the peak RSS (0: skip).") var largeProducts = 0
    @Option(help: "Documents on a hub for the peak RSS of satchel-hub erp export (0: skip).") var exportDocuments = 0
    @Option(help: "Path of the satchel-hub executable (default: next to satchel-sim).") var hub: String?
    @Flag(help: "One line of JSON.") var json = false
    @OptionGroup var checking: BenchCheckOptions

    func run() throws {
        let plan = try checking.plan(for: ERPBench.goals)
        let executable = ChildProcess.sibling("satchel-hub", override: hub)
        let result = try ERPBench.run(products: checking.short ? 10_000 : products, hubExecutable: executable, largeProducts: largeProducts > 0 ? largeProducts : nil,
                                      exportDocuments: exportDocuments > 0 ? exportDocuments : nil, postgres: postgres)
        try checking.finish(result, goals: ERPBench.goals, plan: plan, command: "bench erp", json: json)
    }
}
