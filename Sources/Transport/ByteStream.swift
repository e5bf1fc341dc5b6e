#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A bidirectional byte pipe with deadlines: a modem's data session, a TCP socket or an
/// in-memory pair. Sync speaks only to this, so it runs the same over GPRS, loopback and tests.
public protocol ByteStream: AnyObject {
    /// Writes every byte, or throws (`.timedOut` when the deadline passes first).
    func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError)
    /// Reads between 1 and `maxCount` bytes; an empty result means the peer closed the stream.
    func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8]
    func close()
}

extension ByteStream {
    /// Reads exactly `count` bytes, or throws `.closed` if the stream ends first.
    public func read(exactly count: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        while bytes.count < count {
            let chunk = try read(maxCount: count - bytes.count, deadline: deadline)
            guard !chunk.isEmpty else { throw StreamError.closed(what: "peer closed after \(bytes.count) of \(count) bytes") }
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

    /// Takes ownership of `fd` and makes it non-blocking.
    public init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        var info = stat()
        isSocket = fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    deinit { close() }

    public func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    /// Waits until `fd` is ready for `events`; false when the deadline passed.
    public func wait(for events: Int16, deadline: Deadline) throws(StreamError) -> Bool {
        while true {
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, deadline.remainingMilliseconds)
            if ready > 0 { return true }
            if ready == 0 { return false }
            if errno != EINTR { throw StreamError.system(what: "poll \(name)", errno: errno) }
        }
    }

    public func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) {
        guard fd >= 0 else { throw StreamError.closed(what: name) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                isSocket ? send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                         : Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written > 0 {
                offset += written
                continue
            }
            if written < 0 && errno == EINTR { continue }
            if written < 0 && errno != EAGAIN && errno != EWOULDBLOCK {
                if errno == EPIPE || errno == ECONNRESET || errno == EIO { throw StreamError.closed(what: "\(name): \(String(cString: strerror(errno)))") }
                throw StreamError.system(what: "write \(name)", errno: errno)
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
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count > 0 { return Array(buffer[0..<count]) }
            if count == 0 { return [] }
            // A pty whose other side closed reads EIO: for us that is the end of the stream.
            if errno == EIO || errno == ECONNRESET { return [] }
            if errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK { throw StreamError.system(what: "read \(name)", errno: errno) }
            if errno == EINTR { continue }
            guard try wait(for: Int16(POLLIN), deadline: deadline) else { throw StreamError.timedOut(what: "reading from \(name)") }
        }
    }
}
