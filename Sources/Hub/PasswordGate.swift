import Foundation
public import Seal
public import Transport

/// Bounds how many Argon2id verifications of sync passwords run at once. Each one holds the
/// hash's whole memory cost (64 MiB at the interactive preset) while it runs, so a hub that let
/// every session verify at once grew by 64 MiB a session: 2-3 GB at 100 devices. A session past
/// the bound waits its turn, never past the deadline it is given.
public final class PasswordGate: @unchecked Sendable {
    /// Verifications allowed at once.
    public let limit: Int
    private let condition = NSCondition()
    private var running = 0
    private var peakRunning = 0
    private var finished = 0
    private var timedOut = 0

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// As many as fit in `memoryBudget` bytes at `cost` (at least one: a hub must let someone in).
    public convenience init(memoryBudget: Int, cost: PasswordHash.Cost = .interactive) {
        self.init(limit: Self.limit(memoryBudget: memoryBudget, cost: cost))
    }

    public static func limit(memoryBudget: Int, cost: PasswordHash.Cost = .interactive) -> Int {
        max(1, memoryBudget / max(1, cost.memLimit))
    }

    /// The hub's default budget: 256 MiB, four verifications at the interactive cost, half the
    /// 512 MB a hub for the national fleet is allowed in all.
    public static let defaultMemoryBudget = 256 << 20

    /// No verification slot came free before the deadline.
    public struct Busy: Error, CustomStringConvertible {
        public let limit: Int
        public var description: String { "all \(limit) password checks stayed in use until the session's deadline" }
    }

    /// Runs `body` (one verification) when fewer than `limit` run, waiting until `deadline` at most.
    public func run<T>(until deadline: Deadline, _ body: () throws -> T) throws -> T {
        condition.lock()
        while running >= limit {
            let seconds = Double(Int64(deadline.nanoseconds) - Int64(Deadline.monotonicNanoseconds())) / 1e9
            if seconds <= 0 {
                timedOut += 1
                condition.unlock()
                throw Busy(limit: limit)
            }
            // Woken by a verification that ended, or at the deadline: the loop looks again.
            _ = condition.wait(until: Date(timeIntervalSinceNow: seconds))
        }
        running += 1
        peakRunning = max(peakRunning, running)
        condition.unlock()
        defer {
            condition.lock()
            running -= 1
            finished += 1
            condition.signal()
            condition.unlock()
        }
        return try body()
    }

    /// One Argon2id verification of `password` against `storedHash`, when a slot is free before
    /// `deadline`: the sync passwords and the technicians' provisioning credentials both.
    public func verify(_ storedHash: String, password: String, until deadline: Deadline) throws -> Bool {
        try run(until: deadline) { PasswordHash.verify(storedHash, password: password) }
    }

    /// Verifications running now (the metrics' gauge).
    public var runningNow: Int {
        condition.lock()
        defer { condition.unlock() }
        return running
    }

    /// What the gate saw so far: the most verifications running at once, how many ran, how many
    /// gave up waiting. For the metrics and for tests.
    public var counts: (peak: Int, verified: Int, timedOut: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (peakRunning, finished, timedOut)
    }
}
