#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The service manager's notification protocol (`sd_notify(3)`), without libsystemd: one
/// datagram of `KEY=value` lines to the AF_UNIX socket named by `$NOTIFY_SOCKET` (a path, or
/// `@name` for the abstract namespace). The daemon says `READY=1` once its first check has run
/// and `WATCHDOG=1` after every check, so systemd restarts a daemon whose loop stopped turning
/// (`WatchdogSec=` in hardware/systemd/satchel-daemon.service).
public struct SystemdNotifier: Sendable {
    public let socketPath: String
    /// How often systemd expects `WATCHDOG=1`, when it watches this process (`$WATCHDOG_USEC`).
    public let watchdogMicroseconds: UInt64?

    public init(socketPath: String, watchdogMicroseconds: UInt64? = nil) {
        self.socketPath = socketPath
        self.watchdogMicroseconds = watchdogMicroseconds
    }

    /// The notifier systemd set up for this process, or nil when it runs outside a `Type=notify`
    /// service. `$WATCHDOG_USEC` counts only when `$WATCHDOG_PID` is unset or names this process.
    public static func fromEnvironment() -> SystemdNotifier? {
        guard let socket = getenv("NOTIFY_SOCKET").map({ String(cString: $0) }), !socket.isEmpty else { return nil }
        var watchdog: UInt64?
        if let text = getenv("WATCHDOG_USEC").map({ String(cString: $0) }), let usec = UInt64(text), usec > 0 {
            let pid = getenv("WATCHDOG_PID").map { String(cString: $0) }
            if pid == nil || pid == String(getpid()) { watchdog = usec }
        }
        return SystemdNotifier(socketPath: socket, watchdogMicroseconds: watchdog)
    }

    /// Seconds between checks that keep the watchdog fed: half its interval (the margin
    /// systemd's documentation recommends), never more than `requested`, at least 1.
    public func checkInterval(requested seconds: Int) -> Int {
        guard let usec = watchdogMicroseconds else { return seconds }
        return max(1, min(seconds, Int(usec / 2_000_000)))
    }

    /// Sends one notification (`READY=1`, `WATCHDOG=1`, `STATUS=...`, `STOPPING=1`). Returns
    /// false when it could not be delivered: the daemon goes on working, systemd's timeouts are
    /// the judge of a daemon that cannot report.
    @discardableResult
    public func send(_ state: String) -> Bool {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        let abstract = path.first == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !path.isEmpty, path.count < capacity, abstract || path.first == UInt8(ascii: "/") else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (abstract ? 0 : 1))
        #if canImport(Glibc)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
            }
        }
        return sent == message.count
    }
}
