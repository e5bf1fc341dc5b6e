#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The time as the device sees it. Comes in through a protocol so tests can fix or move it.
public protocol WallClock: Sendable {
    /// Milliseconds since the Unix epoch.
    func nowMilliseconds() -> Int64
}

public struct SystemClock: WallClock {
    public init() {}
    public func nowMilliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

/// A clock that says what the test tells it.
public final class ManualClock: WallClock, @unchecked Sendable {
    private var now: Int64
    public init(_ milliseconds: Int64) { now = milliseconds }
    public func nowMilliseconds() -> Int64 { now }
    public func advance(milliseconds: Int64) { now += milliseconds }
    public func set(_ milliseconds: Int64) { now = milliseconds }
}

/// Calendar days and timestamps in the device's local time zone, via the C library (which
/// reads /etc/localtime) instead of ICU.
public enum CalendarDay {
    /// `YYYY-MM-DD` of the local day containing `milliseconds`.
    public static func string(fromMilliseconds milliseconds: Int64) -> String {
        let parts = local(milliseconds)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
    }

    /// `YYYY-MM-DD HH:MM` local time, for people.
    public static func minute(fromMilliseconds milliseconds: Int64) -> String {
        let parts = local(milliseconds)
        return string(fromMilliseconds: milliseconds) + " \(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2))"
    }

    /// `YYYY-MM-DD` of the day `days` after (or before, when negative) the day of `milliseconds`.
    public static func string(fromMilliseconds milliseconds: Int64, addingDays days: Int64) -> String {
        string(fromMilliseconds: milliseconds + days * 86_400_000)
    }

    /// The first millisecond of the local day containing `milliseconds`.
    public static func startOfDay(containing milliseconds: Int64) -> Int64 {
        var parts = local(milliseconds)
        parts.tm_hour = 0
        parts.tm_min = 0
        parts.tm_sec = 0
        parts.tm_isdst = -1
        return Int64(mktime(&parts)) * 1000
    }

    private static func local(_ milliseconds: Int64) -> tm {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        return parts
    }

    private static func pad(_ value: Int32, _ width: Int) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
