import Foundation
import Store

/// SQLite has one writer at a time per file. Left to its busy handler, 200 sessions that all want
/// to write at once poll for the lock, the unlucky ones past their busy timeout ("database is
/// locked ... BEGIN IMMEDIATE"), and the session fails though nothing is wrong. So within one hub
/// process every write transaction on a file queues here first, first come first served, and
/// waits up to its own deadline (a session's: its timeout); BEGIN IMMEDIATE then contends only
/// with other processes on the file (an office command, a second hub process), which the
/// connection's busy timeout covers.
final class SQLiteWriterQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var waiting: [UInt64] = []
    private var nextTicket: UInt64 = 0
    private var held = false

    private static let registry = NSLock()
    nonisolated(unsafe) private static var queues: [String: SQLiteWriterQueue] = [:]

    /// The queue of the file at `path` in this process (one per file, however it is opened).
    static func forFile(_ path: String) -> SQLiteWriterQueue {
        let key = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        registry.lock(); defer { registry.unlock() }
        if let queue = queues[key] { return queue }
        let queue = SQLiteWriterQueue()
        queues[key] = queue
        return queue
    }

    struct Timeout: Error, CustomStringConvertible {
        let path: String
        let seconds: Double
        let ahead: Int
        var description: String {
            "hub storage: waited \(Int(seconds)) s for the write lock of \(path) (\(ahead) writers ahead); nothing was written. "
                + "The hub is overloaded: sync again later, or move the hub to PostgreSQL (satchel-hub serve --postgres URL)"
        }
    }

    /// Runs `body` as the only writer of this process on the file, once every writer that
    /// queued before it has finished; throws `Timeout` (having run nothing) at `deadline`.
    func exclusive<T>(path: String, deadline: Date, _ body: () throws -> T) throws -> T {
        let started = Date()
        condition.lock()
        let ticket = nextTicket
        nextTicket += 1
        waiting.append(ticket)
        while held || waiting.first != ticket {
            if !condition.wait(until: deadline), held || waiting.first != ticket {
                let ahead = waiting.firstIndex(of: ticket) ?? 0
                waiting.removeAll { $0 == ticket }
                condition.broadcast()
                condition.unlock()
                throw Timeout(path: path, seconds: Date().timeIntervalSince(started), ahead: ahead)
            }
        }
        waiting.removeFirst()
        held = true
        condition.unlock()
        defer {
            condition.lock()
            held = false
            condition.broadcast()
            condition.unlock()
        }
        return try body()
    }
}
