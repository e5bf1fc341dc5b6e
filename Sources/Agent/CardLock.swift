#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One writer to the card at a time. A capture command and the daemon may both want to append
/// to the card journal; two interleaved appends would each compute the same next sequence, and
/// replay stops at the first record that does not increase. The lock lives on internal storage
/// (flock on a vfat card is not to be trusted) and is waited for with a deadline.
struct CardLock {
    let path: String

    enum Failure: Error, CustomStringConvertible {
        case timedOut(path: String, seconds: Double)
        case cannotOpen(path: String, errno: Int32)
        var description: String {
            switch self {
            case .timedOut(let path, let seconds): return "another satchel process held \(path) for more than \(seconds) s"
            case .cannotOpen(let path, let code): return "cannot open the lock \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    func withLock<T>(timeoutSeconds: Double = 30, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure.cannotOpen(path: path, errno: errno) }
        defer { close(fd) }  // closing releases the lock, also when the process dies
        var waited = 0.0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw Failure.cannotOpen(path: path, errno: errno) }
            guard waited < timeoutSeconds else { throw Failure.timedOut(path: path, seconds: timeoutSeconds) }
            usleep(10_000)
            waited += 0.01
        }
        return try body()
    }
}
