#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemCalls

public enum TCP {
    /// Connects to an IPv4 `host:port` (dotted quad or "localhost") within the deadline.
    public static func connect(_ address: String, deadline: Deadline) throws(StreamError) -> FileDescriptorStream {
        let (host, port) = try split(address)
        let target = try socketAddress(host, port, address)
        let fd: Int32
        do { fd = try SystemCalls.socket(AF_INET, Int32(SOCK_STREAM.rawValue)) } catch { throw StreamError.system(what: "socket for \(address)", errno: error.rawValue) }
        let stream = FileDescriptorStream(fd: fd, name: "tcp \(address)")
        do {
            try SystemCalls.connect(fd, target)
        } catch where error == .inProgress {
            guard try stream.wait(for: Int16(POLLOUT), deadline: deadline) else { throw StreamError.timedOut(what: "connecting to \(address)") }
            let failure: Errno?
            do { failure = try SystemCalls.socketError(fd) } catch { failure = error }
            if let failure { throw StreamError.system(what: "connect \(address)", errno: failure.rawValue) }
        } catch {
            throw StreamError.system(what: "connect \(address)", errno: error.rawValue)
        }
        try? SystemCalls.setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        return stream
    }

    static func split(_ address: String) throws(StreamError) -> (String, UInt16) {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw StreamError.system(what: "address '\(address)' is not host:port", errno: EINVAL)
        }
        return (String(address[..<colon]), port)
    }

    static func socketAddress(_ host: String, _ port: UInt16, _ address: String) throws(StreamError) -> sockaddr_in {
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &target.sin_addr) == 1 else {
            throw StreamError.system(what: "address \(address) is not an IPv4 host:port", errno: EINVAL)
        }
        return target
    }
}

/// Two connected in-memory streams (a socketpair), for tests of code that speaks ByteStream.
public enum StreamPair {
    public static func make() throws(StreamError) -> (FileDescriptorStream, FileDescriptorStream) {
        let fds: (Int32, Int32)
        do { fds = try SystemCalls.socketPair() } catch { throw StreamError.system(what: "socketpair", errno: error.rawValue) }
        return (FileDescriptorStream(fd: fds.0, name: "pair a"), FileDescriptorStream(fd: fds.1, name: "pair b"))
    }
}

/// A listening TCP socket whose accept waits with a deadline (for the hub and for tests).
/// Sendable: its state is an immutable descriptor, and accept(2) may be called from any thread.
public final class TCPListener: @unchecked Sendable {
    public let fd: Int32
    public let port: UInt16

    /// Listens on an IPv4 `host:port`; port 0 picks a free one (read it back from `port`).
    public init(_ address: String, backlog: Int32 = 64) throws(StreamError) {
        let (host, requested) = try TCP.split(address)
        let local = try TCP.socketAddress(host, requested, "listen address \(address)")
        let fd: Int32
        do { fd = try SystemCalls.socket(AF_INET, Int32(SOCK_STREAM.rawValue)) } catch { throw StreamError.system(what: "socket for \(address)", errno: error.rawValue) }
        let actual: sockaddr_in
        do {
            try? SystemCalls.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            try SystemCalls.bind(fd, local)
            try SystemCalls.listen(fd, backlog: backlog)
            actual = try SystemCalls.localAddress(fd)
        } catch {
            try? SystemCalls.close(fd)
            throw StreamError.system(what: "listen on \(address)", errno: error.rawValue)
        }
        self.fd = fd
        self.port = UInt16(bigEndian: actual.sin_port)
    }

    deinit { try? SystemCalls.close(fd) }

    /// The next connection, or nil when the deadline passes first (or a signal interrupts the wait).
    public func accept(deadline: Deadline) throws(StreamError) -> FileDescriptorStream? {
        do {
            guard try SystemCalls.poll(fd, events: Int16(POLLIN), milliseconds: deadline.remainingMilliseconds) != 0 else { return nil }
        } catch where error == .interrupted {
            return nil
        } catch {
            throw StreamError.system(what: "poll listener", errno: error.rawValue)
        }
        let client: Int32
        do { client = try SystemCalls.accept(fd) } catch { throw StreamError.system(what: "accept", errno: error.rawValue) }
        try? SystemCalls.setOption(client, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        return FileDescriptorStream(fd: client, name: "tcp peer")
    }
}
