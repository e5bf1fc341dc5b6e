#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemCalls

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
            case .cannotOpen(let path, let code): return "cannot take the lock \(path): \(Errno(code))"
            }
        }
    }

    func withLock<T>(timeoutSeconds: Double = 30, _ body: () throws -> T) throws -> T {
        let fd: Int32
        do { fd = try SystemCalls.open(path, O_RDWR | O_CREAT, 0o600) } catch { throw Failure.cannotOpen(path: path, errno: error.rawValue) }
        // Closing releases the lock, also when the process dies. The file holds nothing, so a
        // failed close loses nothing: the descriptor is gone either way.
        defer { try? SystemCalls.close(fd) }
        let deadline = SystemCalls.monotonicNanoseconds() + UInt64(timeoutSeconds * 1e9)
        while true {
            do {
                try SystemCalls.flock(fd, LOCK_EX | LOCK_NB)  // EINTR is retried in the shim
                break
            } catch where error == .wouldBlock {
                guard SystemCalls.monotonicNanoseconds() < deadline else { throw Failure.timedOut(path: path, seconds: timeoutSeconds) }
                SystemCalls.sleep(nanoseconds: 10_000_000)
            } catch {
                throw Failure.cannotOpen(path: path, errno: error.rawValue)
            }
        }
        return try body()
    }
}
