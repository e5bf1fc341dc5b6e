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
