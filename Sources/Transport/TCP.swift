#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public enum TCP {
    /// Connects to an IPv4 `host:port` (dotted quad or "localhost") within the deadline.
    public static func connect(_ address: String, deadline: Deadline) throws(StreamError) -> FileDescriptorStream {
        let (host, port) = try split(address)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StreamError.system(what: "socket for \(address)", errno: errno) }
        let stream = FileDescriptorStream(fd: fd, name: "tcp \(address)")
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &target.sin_addr) == 1 else {
            throw StreamError.system(what: "address \(address) is not an IPv4 host:port", errno: EINVAL)
        }
        let result = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if result != 0 {
            guard errno == EINPROGRESS else { throw StreamError.system(what: "connect \(address)", errno: errno) }
            guard try stream.wait(for: Int16(POLLOUT), deadline: deadline) else { throw StreamError.timedOut(what: "connecting to \(address)") }
            var failure: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length)
            guard failure == 0 else { throw StreamError.system(what: "connect \(address)", errno: failure) }
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return stream
    }

    static func split(_ address: String) throws(StreamError) -> (String, UInt16) {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw StreamError.system(what: "address '\(address)' is not host:port", errno: EINVAL)
        }
        return (String(address[..<colon]), port)
    }
}

/// Two connected in-memory streams (a socketpair), for tests of code that speaks ByteStream.
public enum StreamPair {
    public static func make() throws(StreamError) -> (FileDescriptorStream, FileDescriptorStream) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw StreamError.system(what: "socketpair", errno: errno) }
        return (FileDescriptorStream(fd: fds[0], name: "pair a"), FileDescriptorStream(fd: fds[1], name: "pair b"))
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
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StreamError.system(what: "socket for \(address)", errno: errno) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = requested.bigEndian
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &local.sin_addr) == 1 else {
            close(fd)
            throw StreamError.system(what: "listen address \(address) is not an IPv4 host:port", errno: EINVAL)
        }
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            throw StreamError.system(what: "listen on \(address)", errno: code)
        }
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        self.port = UInt16(bigEndian: actual.sin_port)
    }

    deinit { close(fd) }

    /// The next connection, or nil when the deadline passes first.
    public func accept(deadline: Deadline) throws(StreamError) -> FileDescriptorStream? {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&entry, 1, deadline.remainingMilliseconds)
        if ready == 0 { return nil }
        if ready < 0 { if errno == EINTR { return nil }; throw StreamError.system(what: "poll listener", errno: errno) }
        let client = Glibc.accept(fd, nil, nil)
        guard client >= 0 else { throw StreamError.system(what: "accept", errno: errno) }
        var one: Int32 = 1
        setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return FileDescriptorStream(fd: client, name: "tcp peer")
    }
}
