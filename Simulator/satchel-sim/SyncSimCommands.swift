import ArgumentParser
import Field
import Foundation
import SimulatorKit

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
            print("\(result.inputs) decoder inputs: \(result.refused) refused, \(result.accepted) accepted, \(result.unexpectedErrors) unexpected errors; "
                  + "\(result.inflateInputs) inflater inputs: \(result.inflateRefused) refused, \(result.inflateUnexpectedErrors) unexpected errors, "
                  + "\(result.inflateOverLimit) over the limit; 64 MiB bomb refused by the limit: \(result.bombRefused) "
                  + "(\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
        }
        for example in result.unexpectedExamples { FileHandle.standardError.write(Data("sync-fuzz: UNEXPECTED: \(example)\n".utf8)) }
        if !result.passed { throw ExitCode(1) }
    }
}
