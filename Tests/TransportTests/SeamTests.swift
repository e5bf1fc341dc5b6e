#if canImport(Glibc)
import Glibc
#endif
import SystemCalls
import Testing
import Transport

/// The socket path (a socketpair, the same FileDescriptorStream the TCP link and the serial port
/// use) under forced errnos: what sync sees when the kernel says EINTR, EAGAIN, EIO or ENOSPC.
@Suite("Transport through the syscall seam")
struct TransportSeamTests {
    let text = Array("Zażółć gęślą jaźń — Съешь же ещё этих мягких французских булок".utf8)

    @Test("EINTR on read, send and poll is retried: the bytes arrive as if nothing happened")
    func interrupted() throws {
        let (a, b) = try StreamPair.make()
        let log = try SystemCalls.withFaults([.init("send", .interrupted, times: 3), .init("read", .interrupted, times: 3), .init("poll", .interrupted, times: 2)]) {
            try a.write(text, deadline: .after(seconds: 2))
            #expect(try b.read(exactly: text.count, deadline: .after(seconds: 2)) == text)
        }
        #expect(log.injected.filter { $0 == "send" }.count == 3 && log.injected.filter { $0 == "read" }.count == 3)
    }

    @Test("EAGAIN on send and read waits for the descriptor (poll) and then completes")
    func wouldBlock() throws {
        let (a, b) = try StreamPair.make()
        let log = try SystemCalls.withFaults([.onCall(1, of: "send", .wouldBlock), .onCall(1, of: "read", .wouldBlock)]) {
            try a.write(text, deadline: .after(seconds: 2))
            #expect(try b.read(exactly: text.count, deadline: .after(seconds: 2)) == text)
        }
        #expect(log.injected.count == 2 && (log.calls["poll"] ?? 0) >= 2, "\(log.calls)")
    }

    @Test("EIO on read is the end of the stream (a pty whose modem went away); EIO or EPIPE on send is `closed` with the cause named; ENOSPC is a typed system error with its errno")
    func failures() throws {
        let (a, b) = try StreamPair.make()
        SystemCalls.withFaults([.onCall(1, of: "read", .ioError)]) {
            #expect((try? b.read(maxCount: 10, deadline: .after(seconds: 1))) == [])
        }
        let closed = #expect(throws: StreamError.self) {
            try SystemCalls.withFaults([.onCall(1, of: "send", .ioError)]) { () throws(StreamError) in try a.write(text, deadline: .after(seconds: 1)) }
        }
        #expect(closed?.description.contains("Input/output error (errno 5)") == true, "\(String(describing: closed))")
        let full = #expect(throws: StreamError.self) {
            try SystemCalls.withFaults([.onCall(1, of: "send", .noSpace)]) { () throws(StreamError) in try a.write(text, deadline: .after(seconds: 1)) }
        }
        #expect(full == .system(what: "write pair a", errno: ENOSPC))
        // The stream still works after a refused call: nothing was half-sent by the failed ones.
        try a.write(text, deadline: .after(seconds: 1))
        #expect(try b.read(exactly: text.count, deadline: .after(seconds: 1)) == text)
    }

    @Test("close reports what close(2) said, once")
    func closeResult() throws {
        let (a, _) = try StreamPair.make()
        var result: Errno?
        SystemCalls.withFaults([.init("close", .ioError)]) { result = a.closeReportingError() }
        #expect(result == .ioError)
        #expect(a.closeReportingError() == nil && a.fd == -1)
    }

    @Test("a connect interrupted by a signal goes on and still connects; one refused names the address and the errno")
    func connect() throws {
        let listener = try TCPListener("127.0.0.1:0")
        let stream = try SystemCalls.withFaults([.onCall(1, of: "connect", .interrupted)]) { () throws(StreamError) in
            _ = try TCP.connect("127.0.0.1:\(listener.port)", deadline: .after(seconds: 2))
        }
        #expect(stream.injected == ["connect"])
        let refused = #expect(throws: StreamError.self) {
            try SystemCalls.withFaults([.onCall(1, of: "connect", Errno(ECONNREFUSED))]) { () throws(StreamError) in
                _ = try TCP.connect("127.0.0.1:\(listener.port)", deadline: .after(seconds: 2))
            }
        }
        #expect(refused == .system(what: "connect 127.0.0.1:\(listener.port)", errno: ECONNREFUSED))
    }
}
