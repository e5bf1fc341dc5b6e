import Foundation

/// The open-files limit a hub needs for its session cap. Every open session, every busy answer
/// being written and every connection waiting in the listen backlog holds a descriptor; a shell's
/// usual soft limit (1,024) would make a hub started with the default cap fail accepts at about a
/// thousand GPRS sessions, long before its memory does. The soft limit may be raised up to the
/// hard one without privileges, so `serve` does that at start and says so when even the hard
/// limit is short.
public enum DescriptorLimit {
    /// Descriptors the hub holds besides its connections: storage, logs, the listeners, the
    /// metrics endpoint's client, libraries' own.
    public static let reserve = 64

    /// Descriptors `serve` needs with this cap and backlog: the sessions, the busy answers
    /// (`SyncServer.refusalCap`), the backlog, the reserve.
    public static func needed(sessions: Int, backlog: Int) -> Int {
        sessions + max(4, sessions / 4) + backlog + reserve
    }

    /// The soft limit to ask for: enough for `needed` if the hard limit allows, never lower than
    /// the current one.
    public static func target(soft: Int, hard: Int, needed: Int) -> Int {
        max(soft, min(hard, needed))
    }

    public struct Outcome: Sendable, Equatable {
        public let before: Int
        public let after: Int
        public let hard: Int
        public let needed: Int
        public var short: Bool { after < needed }
    }

    /// Raises this process's soft RLIMIT_NOFILE towards `needed`; the error says which call failed.
    public static func raise(toServe sessions: Int, backlog: Int) throws(HubError) -> Outcome {
        let needed = needed(sessions: sessions, backlog: backlog)
        var limit = rlimit()
        guard getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else {
            throw HubError.invalid("open-files limit: getrlimit failed, errno \(errno)")
        }
        let hard = limit.rlim_max == rlim_t.max ? Int.max : Int(clamping: limit.rlim_max)
        let soft = limit.rlim_cur == rlim_t.max ? Int.max : Int(clamping: limit.rlim_cur)
        let wanted = target(soft: soft, hard: hard, needed: needed)
        if wanted > soft {
            limit.rlim_cur = rlim_t(wanted)
            guard setrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 else {
                throw HubError.invalid("open-files limit: setrlimit to \(wanted) (hard \(hard)) failed, errno \(errno)")
            }
        }
        return Outcome(before: soft, after: wanted, hard: hard, needed: needed)
    }

    // Glibc imports RLIMIT_NOFILE as an enum case; getrlimit wants the raw resource number.
    // RLIM_INFINITY is rlim_t's all-ones value (a macro Swift cannot import as written).
    private static let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
}
