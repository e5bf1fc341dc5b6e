#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import SystemCalls

/// A bidirectional byte pipe with deadlines: a modem's data session, a TCP socket or an
/// in-memory pair. Sync speaks only to this, so it runs the same over GPRS, loopback and tests.
public protocol ByteStream: AnyObject {
    /// Writes every byte, or throws (`.timedOut` when the deadline passes first).
    func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError)
    /// Reads between 1 and `maxCount` bytes; an empty result means the peer closed the stream.
    func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8]
    func close()
    /// Why the stream ended, when the system said (a reset socket, a pty whose modem went away):
    /// reads report the end as an empty read, and this keeps the errno behind it for the error
    /// a caller then raises. nil: ended cleanly (or not ended).
    var endCause: Errno? { get }
}

extension ByteStream {
    public var endCause: Errno? { nil }

    /// Reads exactly `count` bytes, or throws `.closed` if the stream ends first.
    public func read(exactly count: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            let chunk = try read(maxCount: count - bytes.count, deadline: deadline)
            guard !chunk.isEmpty else {
                let cause = endCause.map { " (\($0))" } ?? ""
                throw StreamError.closed(what: "peer closed after \(bytes.count) of \(count) bytes\(cause)")
            }
            bytes += chunk
        }
        return bytes
    }
}

public enum StreamError: Error, Equatable, CustomStringConvertible {
    case timedOut(what: String)
    case closed(what: String)
    case system(what: String, errno: Int32)

    public var description: String {
        switch self {
        case .timedOut(let what): return "timed out: \(what)"
        case .closed(let what): return "stream closed: \(what)"
        case .system(let what, let code): return "\(what): \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}

/// A file descriptor (socket, pty, serial port) in non-blocking mode, driven with poll(2).
public final class FileDescriptorStream: ByteStream {
    public private(set) var fd: Int32
    public let name: String
    /// Sockets are written with send(MSG_NOSIGNAL): a peer that vanished must be an error to
    /// handle, not a SIGPIPE that kills the hub or the agent.
    private let isSocket: Bool
    public private(set) var endCause: Errno?

    /// Takes ownership of `fd` and makes it non-blocking.
    public init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
        if let flags = try? SystemCalls.fcntl(fd, F_GETFL, 0) { _ = try? SystemCalls.fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
        isSocket = ((try? SystemCalls.status(of: fd)).map { ($0.st_mode & S_IFMT) == S_IFSOCK }) ?? false
    }

    deinit { close() }

    /// Closes the descriptor. A stream is closed when it is done with or has failed, and nothing
    /// it wrote is acknowledged by close (the peer's reply is the acknowledgement), so close's
    /// own result is kept for the caller that asks (`closeReportingError`), not thrown here.
    public func close() { _ = closeReportingError() }

    /// Closes the descriptor and says what close(2) reported, nil when it succeeded or was closed already.
    @discardableResult
    public func closeReportingError() -> Errno? {
        guard fd >= 0 else { return nil }
        let closing = fd
        fd = -1
        do { try SystemCalls.close(closing) } catch { return error }
        return nil
    }

    /// Waits until `fd` is ready for `events`; false when the deadline passed. A signal (EINTR)
    /// only recomputes the time left.
    public func wait(for events: Int16, deadline: Deadline) throws(StreamError) -> Bool {
        while true {
            do {
                return try SystemCalls.poll(fd, events: events, milliseconds: deadline.remainingMilliseconds) != 0
            } catch where error == .interrupted {
                if deadline.hasPassed { return false }
            } catch {
                throw StreamError.system(what: "poll \(name)", errno: error.rawValue)
            }
        }
    }

    public func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) {
        guard fd >= 0 else { throw StreamError.closed(what: name) }
        var offset = 0
        while offset < bytes.count {
            do {
                // EINTR is retried in the shim; EAGAIN waits for room below.
                offset += try bytes.withUnsafeBytes { buffer in
                    Result { () throws(Errno) in
                        let rest = UnsafeRawBufferPointer(rebasing: buffer[offset...])
                        return isSocket ? try SystemCalls.send(fd, rest) : try SystemCalls.write(fd, rest)
                    }
                }.get()
                continue
            } catch where error == .wouldBlock || error.rawValue == EWOULDBLOCK {
            } catch where error == .brokenPipe || error == .connectionReset || error == .ioError {
                throw StreamError.closed(what: "\(name): \(error)")
            } catch {
                throw StreamError.system(what: "write \(name)", errno: error.rawValue)
            }
            guard try wait(for: Int16(POLLOUT), deadline: deadline) else {
                throw StreamError.timedOut(what: "writing \(bytes.count - offset) bytes to \(name)")
            }
        }
    }

    public func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        guard fd >= 0 else { throw StreamError.closed(what: name) }
        var buffer = [UInt8](repeating: 0, count: max(1, maxCount))
        while true {
            do {
                let count = try buffer.withUnsafeMutableBytes { raw in Result { () throws(Errno) in try SystemCalls.read(fd, into: raw) } }.get()
                return count == buffer.count ? buffer : Array(buffer[0..<count])  // 0: the peer closed
            } catch where error == .wouldBlock || error.rawValue == EWOULDBLOCK {
            } catch where error == .ioError || error == .connectionReset {
                // A pty whose other side closed reads EIO: for us that is the end of the stream.
                endCause = error
                return []
            } catch {
                throw StreamError.system(what: "read \(name)", errno: error.rawValue)
            }
            guard try wait(for: Int16(POLLIN), deadline: deadline) else { throw StreamError.timedOut(what: "reading from \(name)") }
        }
    }
}
