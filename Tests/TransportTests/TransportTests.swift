import Testing
import Transport

@Suite("Transport: streams with deadlines")
struct TransportTests {
    @Test("bytes cross a stream pair, and read(exactly:) gathers them across writes")
    func pair() throws {
        let (a, b) = try StreamPair.make()
        try a.write(Array("Zażółć ".utf8), deadline: .after(seconds: 1))
        try a.write(Array("Здравей".utf8), deadline: .after(seconds: 1))
        let total = "Zażółć Здравей".utf8.count
        #expect(try b.read(exactly: total, deadline: .after(seconds: 1)) == Array("Zażółć Здравей".utf8))
    }

    @Test("a read with nothing to read times out at its deadline, not later")
    func readDeadline() throws {
        let (a, b) = try StreamPair.make()
        defer { withExtendedLifetime(a) {} }  // the peer stays open and silent
        let started = Deadline.now
        #expect(throws: StreamError.timedOut(what: "reading from pair b")) { try b.read(maxCount: 10, deadline: .after(milliseconds: 80)) }
        let waited = Deadline.now.nanoseconds - started.nanoseconds
        #expect(waited >= 70_000_000 && waited < 1_000_000_000)
    }

    @Test("a closed peer reads as the end of the stream, and read(exactly:) says how far it got")
    func closedPeer() throws {
        let (a, b) = try StreamPair.make()
        try a.write([1, 2], deadline: .after(seconds: 1))
        a.close()
        let error = #expect(throws: StreamError.self) { try b.read(exactly: 4, deadline: .after(seconds: 1)) }
        #expect(error == .closed(what: "peer closed after 2 of 4 bytes"))
    }

    @Test("connecting to a port nobody listens on fails at once with the address named")
    func refused() throws {
        let error = #expect(throws: StreamError.self) { try TCP.connect("127.0.0.1:1", deadline: .after(seconds: 2)) }
        #expect(error?.description.contains("127.0.0.1:1") == true)
        #expect(throws: StreamError.self) { try TCP.connect("nonsense", deadline: .after(seconds: 1)) }
    }
}
