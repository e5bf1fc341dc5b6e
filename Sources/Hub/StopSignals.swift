import Foundation
public import Transport

/// The write end of the self-pipe SIGTERM and SIGINT land in (−1 until `StopSignals.install`).
/// Global because a signal handler is a C function and captures nothing.
nonisolated(unsafe) private var stopSignalPipe: Int32 = -1

/// SIGTERM and SIGINT for `satchel-hub serve`, caught wherever they land.
///
/// Why a handler and a pipe, not a blocked mask and `sigwait`: a blocked mask is per thread, and
/// the serve command runs under an async entry point whose runtime threads (and the main thread)
/// exist before any of our code runs, with the signals unblocked: one of them took the signal and
/// the default action killed the process mid-session. A handler is process-wide, so whichever
/// thread the kernel picks runs it; it only writes the signal number to a pipe (write(2) is
/// async-signal-safe), and the server reads the pipe in the same poll as its listener. SA_RESTART
/// (glibc's `signal`) keeps other threads' system calls going; the few that still see EINTR retry
/// it (`SystemCalls`).
public final class StopSignals: @unchecked Sendable {
    /// Readable once a signal was caught: a server polls it with its listener.
    public let readEnd: Int32
    private let lock = NSLock()
    private var caught: Int32?

    /// Installs the handlers (once per process: later calls share the first pipe) and unblocks the
    /// signals on this thread, whatever mask the parent left us (a test runner, a shell script), so
    /// at least this thread and the threads it starts can take them.
    public static func install() throws -> StopSignals {
        shared.lock.lock()
        defer { shared.lock.unlock() }
        if let installed = shared.value { return installed }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else {
            throw HubError.storage("cannot make the stop-signal pipe: \(String(cString: strerror(errno))) (errno \(errno)); the hub did not start")
        }
        for end in ends {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)  // the handler never blocks, nor does `received`
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        }
        stopSignalPipe = ends[1]
        for number in [SIGTERM, SIGINT] {
            signal(number) { caught in
                var byte = UInt8(truncatingIfNeeded: caught)
                _ = write(stopSignalPipe, &byte, 1)
            }
        }
        var stop = sigset_t()
        sigemptyset(&stop)
        for number in [SIGTERM, SIGINT] { sigaddset(&stop, number) }
        pthread_sigmask(SIG_UNBLOCK, &stop, nil)
        let installed = StopSignals(readEnd: ends[0])
        shared.value = installed
        return installed
    }

    private static let shared = Shared()
    private final class Shared: @unchecked Sendable {
        let lock = NSLock()
        var value: StopSignals?
    }

    private init(readEnd: Int32) { self.readEnd = readEnd }

    /// The first signal caught so far (SIGTERM or SIGINT), nil when none: reads what the handler wrote.
    public var received: Int32? {
        lock.lock()
        defer { lock.unlock() }
        var byte: UInt8 = 0
        while read(readEnd, &byte, 1) == 1 {
            if caught == nil { caught = Int32(byte) }
        }
        return caught
    }

    /// "SIGTERM" or "SIGINT", for the log.
    public static func name(_ number: Int32) -> String {
        switch number {
        case SIGTERM: return "SIGTERM"
        case SIGINT: return "SIGINT"
        default: return "signal \(number)"
        }
    }
}

extension SyncServer {
    /// `satchel-hub serve`: sessions until SIGTERM or SIGINT, then the drain (`run`); the
    /// metrics endpoint, when given, answers on its own thread until the process exits.
    @discardableResult
    public func serveUntilSignalled(_ listener: TCPListener, signals: StopSignals, drainSeconds: Double,
                                    metricsListener: TCPListener? = nil) -> DrainReport {
        if let metricsListener {
            let metrics = self.metrics
            Thread.detachNewThread { MetricsEndpoint.serve(metricsListener, metrics: metrics, shouldStop: { false }) }
        }
        return run(listener, drainSeconds: drainSeconds, wake: signals.readEnd) { signals.received.map(StopSignals.name) }
    }
}
