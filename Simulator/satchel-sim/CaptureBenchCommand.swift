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
        abstract: "Fast-sync upload of a standard rep day: our bytes on the wire against gzip -6 of the same records as JSON lines.")
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let result = try SyncBench.run()
        print(try FieldJSON.encode(result, pretty: !json))
    }
}
