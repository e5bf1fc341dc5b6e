import SystemCalls

/// A point on the monotonic clock after which a wait gives up. Every blocking call in the
/// agent takes one, so no wait on a modem, a socket or a card can hang the handheld.
public struct Deadline: Sendable, Comparable {
    public let nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static var now: Deadline { Deadline(nanoseconds: monotonicNanoseconds()) }

    public static func after(seconds: Double) -> Deadline {
        Deadline(nanoseconds: monotonicNanoseconds() &+ UInt64(max(0, seconds) * 1_000_000_000))
    }

    public static func after(milliseconds: Int) -> Deadline { after(seconds: Double(milliseconds) / 1000) }

    /// Milliseconds left, for poll(2): 0 when past, capped so it fits an Int32.
    public var remainingMilliseconds: Int32 {
        let now = Self.monotonicNanoseconds()
        guard nanoseconds > now else { return 0 }
        return Int32(min(UInt64(Int32.max), (nanoseconds - now + 999_999) / 1_000_000))
    }

    public var hasPassed: Bool { Self.monotonicNanoseconds() >= nanoseconds }

    public static func < (lhs: Deadline, rhs: Deadline) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func monotonicNanoseconds() -> UInt64 { SystemCalls.monotonicNanoseconds() }
}
