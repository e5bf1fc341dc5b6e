import Foundation
import Sync
import SystemCalls
import Transport

/// An admitted session's socket as its session sees it: closing it first takes the session out
/// of the server's open sessions (under the server's lock), so the drain deadline's cut never
/// reaches a descriptor number the system has since given to another connection.
final class SessionStream: ByteStream {
    let inner: FileDescriptorStream
    let number: Int
    unowned let server: SyncServer
    private var forgotten = false
    private var cut = false

    init(_ inner: FileDescriptorStream, number: Int, server: SyncServer) {
        self.inner = inner
        self.number = number
        self.server = server
    }

    func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) { try inner.write(bytes, deadline: deadline) }
    func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] { try inner.read(maxCount: maxCount, deadline: deadline) }
    var endCause: Errno? { inner.endCause }

    func close() {
        if !forgotten {
            forgotten = true
            cut = server.forget(number)
        }
        inner.close()
    }

    /// Whether the drain deadline cut this session (its link ended because the hub was stopping).
    var wasCut: Bool { forgotten ? cut : server.wasCut(number) }
}

/// What `SyncServer.run` did once it was told to stop.
public struct DrainReport: Sendable, Equatable, CustomStringConvertible {
    /// What stopped it ("SIGTERM", "SIGINT", or the caller's words).
    public var reason: String
    /// Sessions under way when it stopped accepting.
    public var openAtStop: Int
    /// Of those, ended on their own within the drain deadline.
    public var finished: Int
    /// Of those, cut when the deadline passed.
    public var cut: Int
    /// Of the cut ones, still not ended after the grace that follows the cut (a storage call that
    /// does not return): the process exits without them.
    public var stillRunning: Int
    public var drainSeconds: Double
    /// From the stop to the end of the drain.
    public var seconds: Double

    public var description: String {
        var line = "satchel-hub: stopped (\(reason)): \(finished) session\(finished == 1 ? "" : "s") finished, \(cut) cut"
        line += cut > 0 ? " at the \(SyncServer.seconds(drainSeconds)) s drain deadline" : ""
        line += stillRunning > 0 ? ", \(stillRunning) still inside a storage call, left to the exit" : ""
        return line + String(format: " (%.1f s)", seconds)
    }
}

/// ERROR 13, hub busy (docs/protocol.md §9): the hub is at its session cap. Its message ends with
/// `retry after N s`, the seconds the device waits before it tries again (`DeviceSync.busyRetryAfter`).
/// A device whose Sync module predates code 13 reads it as code 8 with the same message.
public enum HubBusy {

    public static func message(open: Int, retryAfter: Int) -> String {
        "hub busy: all \(open) sync sessions are in use; retry after \(retryAfter) s"
    }

    /// The ERROR body: code, message (the layout of `ErrorMessage`).
    public static func errorBody(open: Int, retryAfter: Int) -> [UInt8] {
        ErrorMessage(code: .hubBusy, message: message(open: open, retryAfter: retryAfter)).encode()
    }
}
