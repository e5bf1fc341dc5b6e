import Foundation
import SatchelTesting
import SimulatorKit
import Testing

/// Benchmarks fail closed: a missed goal or a figure that could not be measured is a failure,
/// never a pass, a 0 or a default.
@Suite("satchel-sim bench --check fails closed")
struct BenchCheckTests {
    static let goals = [
        BenchGoal("ratio_with_card", .atLeast(0.9), origin: "issue 10", shortMargin: 0.1),
        BenchGoal("satchel_stripped_bytes", .atMost(16_000_000), origin: "issue 3", releaseImageOnly: true),
    ]

    func verdicts(_ figures: [String: Double], short: Bool = false, releaseImage: Bool = true, dropped: Set<String> = [], open: Set<String> = []) -> [String: BenchVerdict] {
        var plan = BenchCheck.Plan()
        plan.open = open
        plan.short = short
        plan.releaseImage = releaseImage
        plan.dropped = dropped
        let list = BenchCheck.evaluate(Self.goals, figures: figures, notes: ["ratio_with_card: the card append failed"], plan: plan)
        return Dictionary(uniqueKeysWithValues: list.map { ($0.figure, $0) })
    }

    @Test("a figure at its bound is met, past it missed; a missing or non-finite figure is not measured, which fails")
    func outcomes() {
        #expect(verdicts(["ratio_with_card": 0.9, "satchel_stripped_bytes": 16_000_000]).values.allSatisfy { $0.outcome == .met })
        let missed = verdicts(["ratio_with_card": 0.899, "satchel_stripped_bytes": 16_000_001])
        #expect(missed["ratio_with_card"]?.outcome == .missed && missed["ratio_with_card"]?.failed == true)
        #expect(missed["satchel_stripped_bytes"]?.outcome == .missed)
        let absent = verdicts(["ratio_with_card": .nan])
        #expect(absent["ratio_with_card"]?.outcome == .notMeasured && absent["ratio_with_card"]?.value == nil)
        #expect(absent["ratio_with_card"]?.reason == "ratio_with_card: the card append failed")
        #expect(absent["satchel_stripped_bytes"]?.outcome == .notMeasured)
        #expect(absent.values.allSatisfy { $0.failed })
        #expect(absent["ratio_with_card"]?.line == "NOT MEASURED: ratio_with_card, goal >= 0.9 (issue 10): ratio_with_card: the card append failed")
        #expect(missed["ratio_with_card"]?.line == "GOAL MISSED: ratio_with_card = 0.899, goal >= 0.9 (issue 10)")
    }

    @Test("the short form loosens only by the declared margin and says so; a release-image goal on a debug build is not checked, but a missing one still fails")
    func shortForm() {
        let short = verdicts(["ratio_with_card": 0.85, "satchel_stripped_bytes": 30_000_000], short: true, releaseImage: false)
        #expect(short["ratio_with_card"]?.outcome == .met)
        #expect(short["ratio_with_card"]?.goal == ">= 0.81")
        #expect(short["ratio_with_card"]?.reason?.contains("declared goal is >= 0.9") == true)
        #expect(verdicts(["ratio_with_card": 0.80], short: true)["ratio_with_card"]?.outcome == .missed)
        #expect(short["satchel_stripped_bytes"]?.outcome == .notChecked && short["satchel_stripped_bytes"]?.failed == false)
        #expect(verdicts(["ratio_with_card": 0.95], short: true, releaseImage: false)["satchel_stripped_bytes"]?.outcome == .notMeasured)
        // The full form checks every goal whatever the build.
        #expect(verdicts(["ratio_with_card": 0.95, "satchel_stripped_bytes": 30_000_000], releaseImage: false)["satchel_stripped_bytes"]?.outcome == .missed)
        #expect(verdicts(["ratio_with_card": 0.95, "satchel_stripped_bytes": 1], dropped: ["ratio_with_card"])["ratio_with_card"]?.outcome == .notMeasured)
    }

    @Test("an open goal's miss is reported and does not fail; met it says met; not measured it still fails")
    func openGoals() {
        let open = verdicts(["ratio_with_card": 0.7, "satchel_stripped_bytes": 16_000_001], open: ["ratio_with_card"])
        #expect(open["ratio_with_card"]?.outcome == .openMissed && open["ratio_with_card"]?.failed == false)
        #expect(open["ratio_with_card"]?.line.hasPrefix("OPEN GOAL MISSED") == true)
        #expect(open["satchel_stripped_bytes"]?.outcome == .missed)  // only the goals named are open
        #expect(verdicts(["ratio_with_card": 0.95, "satchel_stripped_bytes": 1], open: ["ratio_with_card"])["ratio_with_card"]?.outcome == .met)
        let absent = verdicts(["satchel_stripped_bytes": 1], open: ["ratio_with_card"])
        #expect(absent["ratio_with_card"]?.outcome == .notMeasured && absent["ratio_with_card"]?.failed == true)
    }

    @Test("--goal may tighten a goal, never loosen it, and must name one")
    func tightening() throws {
        let tightened = try BenchCheck.tightened(["ratio_with_card>=0.95", "satchel_stripped_bytes <= 15000000"], goals: Self.goals)
        #expect(tightened["ratio_with_card"] == .atLeast(0.95))
        #expect(tightened["satchel_stripped_bytes"] == .atMost(15_000_000))
        #expect(throws: BenchCheck.PlanError.loosened("ratio_with_card", declared: ">= 0.9", given: ">= 0.5")) {
            try BenchCheck.tightened(["ratio_with_card>=0.5"], goals: Self.goals)
        }
        #expect(throws: BenchCheck.PlanError.loosened("ratio_with_card", declared: ">= 0.9", given: "<= 2")) {
            try BenchCheck.tightened(["ratio_with_card<=2"], goals: Self.goals)
        }
        #expect(throws: BenchCheck.PlanError.unknownFigure("ratio", known: ["ratio_with_card", "satchel_stripped_bytes"])) {
            try BenchCheck.tightened(["ratio>=0.95"], goals: Self.goals)
        }
        #expect(throws: BenchCheck.PlanError.malformed("ratio_with_card=1")) { try BenchCheck.tightened(["ratio_with_card=1"], goals: Self.goals) }
    }

    // Through the real satchel-sim: the wire part of `bench sync`, whose figures are bytes and
    // round trips (no timing noise), so its goals are met on any machine.

    let sim = BuiltExecutable.path("satchel-sim")

    @Test("bench sync --wire-only --check exits 0 when its goals are met (the open ones named), and 1 naming the figure, value and goal when one is missed or not measured")
    func exitStatus() throws {
        // Issue 16's ratio goals are met in the short form since protocol 5, and gate. A goal
        // named open (here one tightened past its value) is reported missed without failing.
        let open = ["--goal", "day_ratio_down<=0.01", "--open-goal", "day_ratio_down"]
        let met = try ChildProcess.run(sim, ["bench", "sync", "--wire-only", "--short", "--json", "--check"] + open, timeoutSeconds: 300)
        #expect(met.status == 0, "\(met.stderr)")
        #expect(met.stderr.contains("OPEN GOAL MISSED") && met.stderr.contains("day_ratio_down = 0."), "\(met.stderr)")
        #expect(met.stdout.contains(#""figure":"init_ratio","goal":"<= 0.4","origin":"issue 16","outcome":"met""#), "\(met.stdout)")
        #expect(met.stdout.contains(#""figure":"day_ratio_up","goal":"<= 0.4","origin":"issue 16","outcome":"met""#), "\(met.stdout)")
        #expect(met.stdout.contains(#""figure":"sync_errors","goal":"<= 0","origin":"issue 16","outcome":"met""#), "\(met.stdout)")

        let failed = try ChildProcess.run(sim, ["bench", "sync", "--wire-only", "--short", "--json", "--check", "--goal", "day_ratio_up<=0.01", "--drop-figure", "round_trips"],
                                          timeoutSeconds: 300)
        #expect(failed.status == 1, "\(failed.stderr)")
        #expect(failed.stderr.contains("GOAL MISSED: day_ratio_up = 0."), "\(failed.stderr)")
        #expect(failed.stderr.contains("goal <= 0.01 (issue 16)"), "\(failed.stderr)")
        #expect(failed.stderr.contains("NOT MEASURED: round_trips, goal <= 3 (issue 6): dropped by --drop-figure"), "\(failed.stderr)")
        #expect(failed.stdout.contains(#""figure":"round_trips","goal":"<= 3","origin":"issue 6","outcome":"not_measured","reason":"dropped by --drop-figure","value":null"#),
                "\(failed.stdout)")
    }

    @Test("bench ... --goal that would loosen a goal is refused before any work, with the declared goal")
    func looseningRefused() throws {
        let refused = try ChildProcess.run(sim, ["bench", "sync", "--wire-only", "--check", "--goal", "day_ratio_up<=0.9"], timeoutSeconds: 60)
        #expect(refused.status == 64, "\(refused.stderr)")
        #expect(refused.stderr.contains("looser than the declared goal <= 0.4"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty)
    }
}
