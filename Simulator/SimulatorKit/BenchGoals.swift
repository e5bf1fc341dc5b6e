import Foundation

/// What a benchmark promises about one of its figures: declared once, beside the benchmark (the
/// figures the issues name), and checked by `satchel-sim bench <name> --check`.
public struct BenchGoal: Sendable, Equatable, CustomStringConvertible {
    public enum Bound: Sendable, Equatable {
        case atMost(Double)
        case atLeast(Double)
    }

    /// The figure's key in the benchmark's JSON.
    public var figure: String
    public var bound: Bound
    /// Where the goal comes from ("issue 10").
    public var origin: String
    /// How far the short form (CI: a few seconds of work, on a shared machine) may miss the bound,
    /// as a fraction of it: the noise of a small sample, never a default for a missing figure.
    public var shortMargin: Double
    /// The goal is about the release image (static stdlib, -Osize, stripped; hardware/build-release.sh):
    /// a debug build shows its own size and memory, which say nothing about it.
    public var releaseImageOnly: Bool

    public init(_ figure: String, _ bound: Bound, origin: String, shortMargin: Double = 0, releaseImageOnly: Bool = false) {
        self.figure = figure; self.bound = bound; self.origin = origin; self.shortMargin = shortMargin; self.releaseImageOnly = releaseImageOnly
    }

    /// The bound with the short form's margin, or as declared.
    public func effectiveBound(short: Bool) -> Bound {
        guard short, shortMargin > 0 else { return bound }
        switch bound {
        case .atMost(let limit): return .atMost(limit * (1 + shortMargin))
        case .atLeast(let limit): return .atLeast(limit * (1 - shortMargin))
        }
    }

    public func isMet(by value: Double, short: Bool) -> Bool {
        switch effectiveBound(short: short) {
        case .atMost(let limit): return value <= limit
        case .atLeast(let limit): return value >= limit
        }
    }

    public var description: String { Self.text(bound) }

    static func text(_ bound: Bound) -> String {
        switch bound {
        case .atMost(let limit): return "<= \(BenchCheck.number(limit))"
        case .atLeast(let limit): return ">= \(BenchCheck.number(limit))"
        }
    }

    /// Is `other` at least as strict as this goal? (A goal given on the command line may only tighten.)
    func isLoosened(by other: Bound) -> Bool {
        switch (bound, other) {
        case (.atMost(let declared), .atMost(let given)): return given > declared
        case (.atLeast(let declared), .atLeast(let given)): return given < declared
        default: return true
        }
    }

    /// `figure<=value` or `figure>=value`, as `--goal` takes it.
    public static func parse(_ text: String) -> (figure: String, bound: Bound)? {
        for (symbol, make) in [("<=", Bound.atMost), (">=", Bound.atLeast)] {
            let parts = text.components(separatedBy: symbol)
            if parts.count == 2, let value = Double(parts[1].trimmingCharacters(in: .whitespaces)), value.isFinite {
                let figure = parts[0].trimmingCharacters(in: .whitespaces)
                guard !figure.isEmpty else { return nil }
                return (figure, make(value))
            }
        }
        return nil
    }
}

/// One goal's outcome in a run: the value (null when it could not be measured), the bound applied.
public struct BenchVerdict: Codable, Sendable, Equatable {
    public enum Outcome: String, Codable, Sendable {
        case met
        case missed
        /// The figure is absent: the run could not measure it. A failure, always.
        case notMeasured = "not_measured"
        /// A release-image goal in the short form on a debug build: printed, not claimed.
        case notChecked = "not_checked"
        /// Missed, but named by `--open-goal`: a goal the product does not meet yet, tracked in an
        /// open issue. Reported on every run; not a failure. A figure that could not be measured
        /// still fails, open or not.
        case openMissed = "open_missed"
    }

    public var figure: String
    public var value: Double?
    public var goal: String
    public var origin: String
    public var outcome: Outcome
    public var reason: String?

    public var failed: Bool { outcome == .missed || outcome == .notMeasured }

    enum CodingKeys: String, CodingKey { case figure, value, goal, origin, outcome, reason }

    /// `value` is written as null when missing: a figure that is not there says so.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(figure, forKey: .figure)
        if let value { try container.encode(value, forKey: .value) } else { try container.encodeNil(forKey: .value) }
        try container.encode(goal, forKey: .goal)
        try container.encode(origin, forKey: .origin)
        try container.encode(outcome, forKey: .outcome)
        try container.encodeIfPresent(reason, forKey: .reason)
    }

    /// The line `--check` prints for a failure or a figure left unchecked.
    public var line: String {
        switch outcome {
        case .met: return "met: \(figure) = \(BenchCheck.number(value ?? .nan)), goal \(goal) (\(origin))"
        case .missed: return "GOAL MISSED: \(figure) = \(BenchCheck.number(value ?? .nan)), goal \(goal) (\(origin))"
        case .notMeasured: return "NOT MEASURED: \(figure), goal \(goal) (\(origin)): \(reason ?? "the run produced no value")"
        case .openMissed: return "OPEN GOAL MISSED (not met yet, tracked in an open issue; --open-goal): \(figure) = \(BenchCheck.number(value ?? .nan)), goal \(goal) (\(origin))"
        case .notChecked: return "not checked: \(figure) = \(value.map(BenchCheck.number) ?? "none"), goal \(goal) (\(origin)): \(reason ?? "")"
        }
    }
}

/// A benchmark's result as `--check` sees it: its declared goals and the figures it measured.
public protocol BenchReport: Encodable {
    /// The goals, declared once beside the benchmark.
    static var goals: [BenchGoal] { get }
    /// The measured value of every figure a goal names; a figure that could not be measured is
    /// absent, never 0 or a default.
    var figures: [String: Double] { get }
    /// Why a figure is missing, where the run knows.
    var notes: [String] { get }
}

public enum BenchCheck {
    /// How a run is checked.
    public struct Plan: Sendable {
        /// The short form (CI): small samples, the goals' noise margins applied.
        public var short = false
        /// Release-image goals are checked; off only for the short form on a debug build.
        public var releaseImage = BenchCheck.isReleaseBuild
        /// Goals from the command line (`--goal figure<=value`): each may only tighten a declared one.
        public var tightened: [String: BenchGoal.Bound] = [:]
        /// Figures removed before the check, to test that a missing figure fails (`--drop-figure`).
        public var dropped: Set<String> = []
        /// Goals known not to be met yet (`--open-goal`): their misses are reported, not failed.
        public var open: Set<String> = []
        public init() {}
    }

    /// Is this process a release build? `satchel-sim` and the binaries it measures by default
    /// (its siblings) come from one build.
    public static var isReleaseBuild: Bool {
        #if DEBUG
        return false
        #else
        return true
        #endif
    }

    public enum PlanError: Error, CustomStringConvertible, Equatable {
        case unknownFigure(String, known: [String])
        case loosened(String, declared: String, given: String)
        case malformed(String)
        public var description: String {
            switch self {
            case .unknownFigure(let figure, let known): return "--goal \(figure): no goal of this benchmark names it (goals: \(known.joined(separator: ", ")))"
            case .loosened(let figure, let declared, let given):
                return "--goal \(figure)\(given): looser than the declared goal \(declared); --goal may only tighten a goal"
            case .malformed(let text): return "--goal \(text): expected FIGURE<=VALUE or FIGURE>=VALUE, e.g. ratio_with_card>=0.95"
            }
        }
    }

    /// Turns `--goal` texts into bounds, refusing unknown figures and any loosening.
    public static func tightened(_ texts: [String], goals: [BenchGoal]) throws(PlanError) -> [String: BenchGoal.Bound] {
        var bounds: [String: BenchGoal.Bound] = [:]
        for text in texts {
            guard let (figure, bound) = BenchGoal.parse(text) else { throw .malformed(text) }
            guard let goal = goals.first(where: { $0.figure == figure }) else { throw .unknownFigure(figure, known: goals.map(\.figure)) }
            guard !goal.isLoosened(by: bound) else { throw .loosened(figure, declared: goal.description, given: BenchGoal.text(bound)) }
            bounds[figure] = bound
        }
        return bounds
    }

    /// Every goal against the figures: met, missed, not measured, or (short form, debug build,
    /// release-image goal) not checked.
    public static func evaluate(_ goals: [BenchGoal], figures: [String: Double], notes: [String], plan: Plan) -> [BenchVerdict] {
        goals.map { declared in
            var goal = declared
            if let bound = plan.tightened[goal.figure] { goal.bound = bound; goal.shortMargin = 0 }
            let bound = goal.effectiveBound(short: plan.short)
            let value = plan.dropped.contains(goal.figure) ? nil : figures[goal.figure].flatMap { $0.isFinite ? $0 : nil }
            var verdict = BenchVerdict(figure: goal.figure, value: value, goal: BenchGoal.text(bound), origin: goal.origin, outcome: .met, reason: nil)
            if plan.short && bound != goal.bound { verdict.reason = "short form: the declared goal is \(goal), loosened for the noise of a small sample" }
            guard let value else {
                verdict.outcome = .notMeasured
                let related = notes.filter { $0.contains(goal.figure) }
                verdict.reason = plan.dropped.contains(goal.figure) ? "dropped by --drop-figure"
                    : related.isEmpty ? (notes.isEmpty ? nil : notes.joined(separator: "; ")) : related.joined(separator: "; ")
                return verdict
            }
            if goal.releaseImageOnly && !plan.releaseImage && plan.short {
                verdict.outcome = .notChecked
                verdict.reason = "short form on a debug build: this goal is about the release image (hardware/build-release.sh); the value is the debug build's"
                return verdict
            }
            verdict.outcome = goal.isMet(by: value, short: plan.short) ? .met : plan.open.contains(goal.figure) ? .openMissed : .missed
            return verdict
        }
    }

    /// Plain decimal text for a figure: 3 decimals at most, no exponent.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "none" }
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.3f", value).replacingOccurrences(of: #"\.?0+$"#, with: "", options: .regularExpression)
    }
}
