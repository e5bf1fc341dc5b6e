#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What lets a read-only connection to a WAL database leave no trace on disk and still read a
/// consistent file: SQLite's SHARED lock on the database file, taken by hand, held while the
/// connection is open `immutable` (which takes no locks of its own).
///
/// A WAL connection that closes last checkpoints the WAL into the main file and deletes it, but
/// only if it gets an EXCLUSIVE lock on the database file (sqlite.org/wal.html, "the last
/// connection"); a SHARED lock held here makes it leave the WAL alone, so the main file does not
/// change under the reader. The lock is the unix VFS's: a read lock on the 510 bytes after
/// PENDING_BYTE + 1 (sqlite.org/lockingv3.html, os_unix.c). An explicit `wal_checkpoint` or an
/// automatic one after 1,000 WAL pages by a concurrent writer is not held off; the readers this
/// is for (`status`, `doctor`) read for well under that.
final class QuietReader {
    private let fd: Int32

    static let sharedFirst: off_t = 0x4000_0000 + 2
    static let sharedSize: off_t = 510

    /// Takes the SHARED lock on `path`, waiting at most `timeoutMilliseconds` for a writer
    /// holding it EXCLUSIVE; nil when the file cannot be opened or the lock is not granted.
    init?(path: String, timeoutMilliseconds: Int32) {
        var opened: Int32
        repeat { opened = open(path, O_RDONLY | O_CLOEXEC) } while opened < 0 && errno == EINTR
        guard opened >= 0 else { return nil }
        var lock = flock()
        lock.l_type = Int16(F_RDLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = Self.sharedFirst
        lock.l_len = Self.sharedSize
        var waited: Int32 = 0
        while fcntl(opened, F_SETLK, &lock) != 0 {
            guard errno == EAGAIN || errno == EACCES || errno == EINTR, waited < timeoutMilliseconds else {
                close(opened)
                return nil
            }
            usleep(5_000)
            waited += 5
        }
        fd = opened
    }

    /// Closing the descriptor releases the lock (and, POSIX being POSIX, every fcntl lock this
    /// process holds on the file: only ever done after the immutable connection is closed).
    deinit { close(fd) }
}
