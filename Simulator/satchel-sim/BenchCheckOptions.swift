import ArgumentParser
import Field
import Foundation
import SimulatorKit

/// `--check`, `--short` and `--goal`, shared by every `satchel-sim bench` command: the figures
/// are checked against the goals declared beside each benchmark, and a missed goal or a figure
/// that could not be measured makes `--check` exit 1, naming the figure, its value and its goal.
struct BenchCheckOptions: ParsableArguments {
    @Flag(help: "Exit 1 if a goal is missed or a figure could not be measured (each named on stderr with its value and goal).")
    var check = false
    @Flag(help: "The short form (CI): seconds each (smaller samples where the benchmark has them); the goals' declared noise margins apply, and the output says so.")
    var short = false
    @Option(name: .customLong("goal"), help: "Tighten a goal for this run: FIGURE<=VALUE or FIGURE>=VALUE (never looser than the declared one).")
    var goals: [String] = []
    @Option(name: .customLong("open-goal"), help: "A goal not met yet and tracked in an open issue: its miss is reported as OPEN GOAL MISSED, not failed (a figure that could not be measured still fails).")
    var openGoals: [String] = []
    /// Removes a figure before the check, so tests can see that a missing figure fails.
    @Option(name: .customLong("drop-figure"), help: .hidden)
    var dropped: [String] = []

    /// The plan for `goals`, refusing a malformed, unknown or loosening `--goal` before any work.
    func plan(for goals: [BenchGoal]) throws -> BenchCheck.Plan {
        var plan = BenchCheck.Plan()
        plan.short = short
        do {
            plan.tightened = try BenchCheck.tightened(self.goals, goals: goals)
        } catch {
            throw ValidationError(error.description)
        }
        plan.dropped = Set(dropped)
        if let unknown = openGoals.first(where: { name in !goals.contains { $0.figure == name } }) {
            throw ValidationError("--open-goal \(unknown): no goal of this benchmark names it (goals: \(goals.map(\.figure).joined(separator: ", ")))")
        }
        plan.open = Set(openGoals)
        return plan
    }

    /// Prints the result with its verdicts (JSON on stdout, one line per goal not met on stderr)
    /// and, with `--check`, exits 1 when any goal failed.
    func finish(_ result: some BenchReport, goals: [BenchGoal], plan: BenchCheck.Plan, command: String, json: Bool) throws {
        let verdicts = BenchCheck.evaluate(goals, figures: result.figures, notes: result.notes, plan: plan)
        print(try FieldJSON.encode(Checked(result: result, goals: verdicts, shortForm: plan.short), pretty: !json))
        var lines = verdicts.filter { $0.outcome != .met }.map { "satchel-sim \(command): \($0.line)" }
        let failed = verdicts.filter(\.failed).count
        let unchecked = verdicts.filter { $0.outcome == .notChecked }.count
        var summary = "satchel-sim \(command): \(verdicts.filter { $0.outcome == .met }.count) of \(verdicts.count) goals met"
        if failed > 0 { summary += ", \(failed) FAILED" }
        let open = verdicts.filter { $0.outcome == .openMissed }.count
        if open > 0 { summary += ", \(open) open (missed, tracked in an open issue)" }
        if unchecked > 0 { summary += ", \(unchecked) not checked (release-image goals on a debug build)" }
        if plan.short { summary += "; short form (CI): noise margins applied (docs/benchmarks.md), not the figures of record" }
        lines.append(summary)
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        if check && failed > 0 { throw ExitCode(1) }
    }
}

/// A benchmark's result with the verdicts of its goals, in one JSON object.
struct Checked<Result: Encodable>: Encodable {
    var result: Result
    var goals: [BenchVerdict]
    var shortForm: Bool

    func encode(to encoder: any Encoder) throws {
        try result.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(goals, forKey: .goals)
        try container.encode(shortForm, forKey: .shortForm)
    }

    enum Key: String, CodingKey { case goals, shortForm }
}
