import Deflate
import Foundation
import Seal
import Sync
import Testing
import Transport

@Suite("SyncChannel: frames, handshake, compressed and encrypted messages")
struct ChannelTests {
    static let dictionary = Array("order_id part_number quantity unit_price_minor customer_id PLN BGN RUB confirmed visit payment".utf8)

    /// A device and a hub channel over a socket pair, the hub on its own thread.
    func connected(hello: String = "WAW07") throws -> (device: SyncChannel, hub: SyncChannel, welcome: [UInt8]) {
        let (deviceEnd, hubEnd) = try StreamPair.make()
        let hubKey = X25519.KeyPair.generate(), deviceKey = X25519.KeyPair.generate()
        let box = Box(hubEnd)
        let hub = onThread {
            box.hub = try? SyncChannel.accept(box.end, hubKey: hubKey, dictionary: Self.dictionary, deadline: .after(seconds: 5)) { key, hello in
                box.seenKey = key
                return Array("welcome \(String(decoding: hello, as: UTF8.self))".utf8)
            }
        }
        let (device, welcome) = try SyncChannel.connect(deviceEnd, deviceKey: deviceKey, hubKey: hubKey.publicKey, hello: Array(hello.utf8),
                                                        dictionary: Self.dictionary, deadline: .after(seconds: 5))
        hub.wait()
        #expect(box.seenKey == deviceKey.publicKey)
        return (device, try #require(box.hub), welcome)
    }

    @Test("messages cross both ways, compressed and encrypted, in order")
    func roundTrip() throws {
        let (device, hub, welcome) = try connected()
        #expect(welcome == Array("welcome WAW07".utf8))
        let rows = (0..<200).map { "order_id=WAW07-\($0) part_number=PN-\(10_000 + $0 % 50) quantity=\($0 % 12 + 1) Łódź Пловдив" }.joined(separator: "\n")
        try device.send(.init(type: 3, body: Array(rows.utf8)), deadline: .after(seconds: 2))
        try device.send(.init(type: 4, body: []), deadline: .after(seconds: 2))
        #expect(try hub.receive(deadline: .after(seconds: 2)) == .init(type: 3, body: Array(rows.utf8)))
        #expect(try hub.receive(deadline: .after(seconds: 2)) == .init(type: 4, body: []))
        try hub.send(.init(type: 5, body: Array("receipt".utf8)), deadline: .after(seconds: 2))
        #expect(try device.receive(deadline: .after(seconds: 2)).body == Array("receipt".utf8))
        #expect(device.bytesSent < rows.utf8.count / 4)  // columnar-ish text compresses well with a shared context
    }

    @Test("the byte counters start with the handshake: every byte on the socket, on both sides")
    func countersIncludeTheHandshake() throws {
        let (device, hub, welcome) = try connected(hello: "WAW07")
        // Message 1: length header, ephemeral key, encrypted static key + tag, hello + tag.
        // Message 2: length header, ephemeral key, welcome + tag.
        #expect(device.bytesSent == 2 + 32 + 48 + 5 + 16)
        #expect(device.bytesReceived == 2 + 32 + welcome.count + 16)
        #expect(hub.bytesReceived == device.bytesSent && hub.bytesSent == device.bytesReceived)
        try device.send(.init(type: 3, body: Array("Łódź Пловдив".utf8)), deadline: .after(seconds: 2))
        _ = try hub.receive(deadline: .after(seconds: 2))
        #expect(hub.bytesReceived == device.bytesSent && device.bytesSent > 2 + 32 + 48 + 5 + 16)
    }

    @Test("a device that pinned another key, or a silent hub, fails within the deadline")
    func handshakeFailures() throws {
        let (deviceEnd, hubEnd) = try StreamPair.make()
        let started = Deadline.now
        let error = #expect(throws: SyncChannel.Failure.self) {
            try SyncChannel.connect(deviceEnd, deviceKey: .generate(), hubKey: X25519.KeyPair.generate().publicKey, hello: [],
                                    dictionary: Self.dictionary, deadline: .after(milliseconds: 150))
        }
        #expect(error == .stream(.timedOut(what: "reading from pair a")))
        #expect(Deadline.now.nanoseconds - started.nanoseconds < 2_000_000_000)
        withExtendedLifetime(hubEnd) {}
    }

    @Test("a replayed, reordered or altered frame is refused")
    func tamperedFrames() throws {
        let (deviceEnd, hubEnd) = try StreamPair.make()
        let hubKey = X25519.KeyPair.generate()
        let box = Box(hubEnd)
        let accepting = onThread { box.hub = try? SyncChannel.accept(box.end, hubKey: hubKey, dictionary: Self.dictionary, deadline: .after(seconds: 5)) { _, _ in [] } }
        let (device, _) = try SyncChannel.connect(deviceEnd, deviceKey: .generate(), hubKey: hubKey.publicKey, hello: [], dictionary: Self.dictionary, deadline: .after(seconds: 5))
        accepting.wait()
        let hub = try #require(box.hub)
        // Capture what the device sends by sending it, then replay the same bytes by hand.
        try device.send(.init(type: 1, body: Array("batch 1".utf8)), deadline: .after(seconds: 1))
        let frame = try hubEnd.read(maxCount: 1_000, deadline: .after(seconds: 1))
        try deviceEnd.write(frame, deadline: .after(seconds: 1))  // hub end reads it as the first frame
        #expect(try hub.receive(deadline: .after(seconds: 1)).body == Array("batch 1".utf8))
        try deviceEnd.write(frame, deadline: .after(seconds: 1))  // the same frame again
        #expect(throws: SyncChannel.Failure.decryption) { try hub.receive(deadline: .after(seconds: 1)) }
    }

    @Test("frames over the limit are refused on the way out")
    func oversized() throws {
        let (device, _, _) = try connected()
        let random = Random.bytes(70_000)  // incompressible
        #expect(throws: SyncChannel.Failure.self) { try device.send(.init(type: 1, body: random), deadline: .after(seconds: 1)) }
    }

    /// Hands one end of the pair to the hub's thread; the test waits for that thread before reading.
    final class Box: @unchecked Sendable {
        let end: FileDescriptorStream
        var hub: SyncChannel?
        var seenKey: [UInt8]?
        init(_ end: FileDescriptorStream) { self.end = end }
    }

    func onThread(_ body: @escaping @Sendable () -> Void) -> DispatchGroup {
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group, execute: body)
        return group
    }
}
