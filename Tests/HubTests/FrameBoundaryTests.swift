import Agent
import Dispatch
import Field
import Hub
import SatchelTesting
import Seal
import Store
import Sync
import Testing
import Transport

/// A full sync (the day's documents up, price and stock changes down) cut at every frame
/// boundary, in each direction, then retried: each ends in the same state as the undisturbed
/// sync: the same documents on the hub, once; the same working set on the device.
@Suite("Full sync dropped at every frame boundary, either way", .serialized)
struct FrameBoundaryTests {
    enum Direction: String, Sendable { case up, down }

    /// The device's end of the link. Records what crosses it, and drops the link once `limit`
    /// bytes have gone in `direction` (a write that would cross it goes out only up to it).
    final class CuttingStream: ByteStream {
        let inner: FileDescriptorStream
        let direction: Direction?
        let limit: Int
        var sent: [UInt8] = [], received: [UInt8] = []

        init(_ inner: FileDescriptorStream, cut direction: Direction?, after limit: Int) {
            self.inner = inner
            self.direction = direction
            self.limit = limit
        }

        func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) {
            if direction == .up {
                let room = limit - sent.count
                guard room > 0 else { inner.close(); throw .closed(what: "link cut") }
                if bytes.count > room {
                    try inner.write(Array(bytes.prefix(room)), deadline: deadline)
                    sent += bytes.prefix(room)
                    inner.close()
                    throw .closed(what: "link cut")
                }
            }
            try inner.write(bytes, deadline: deadline)
            sent += bytes
        }

        func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
            var wanted = maxCount
            if direction == .down {
                let room = limit - received.count
                guard room > 0 else { inner.close(); throw .closed(what: "link cut") }
                wanted = min(wanted, room)
            }
            let chunk = try inner.read(maxCount: wanted, deadline: deadline)
            received += chunk
            return chunk
        }

        func close() { inner.close() }
    }

    /// Byte offsets where frames end (every frame, handshake messages included, is a u16
    /// big-endian length and that many bytes: docs/protocol.md §2).
    static func boundaries(_ bytes: [UInt8]) -> [Int] {
        var offsets: [Int] = []
        var at = 0
        while at + 2 <= bytes.count {
            at += 2 + Int(bytes[at]) << 8 + Int(bytes[at + 1])
            if at <= bytes.count { offsets.append(at) }
        }
        return offsets
    }

    /// One world: hub with master data, a device loaded by init, the day's documents captured,
    /// the office's price and stock changes made. Deterministic, so every world is the same.
    final class World: @unchecked Sendable {
        let setup: DownloadTests.Setup
        init() throws {
            setup = try DownloadTests.Setup(customers: 60, products: 300)
            _ = try setup.sync(.initialise)
            let capture = Capture(setup.device)
            for index in 0..<25 {
                _ = try capture.createOrder(customerID: "CBG\(100_000 + index % 20)", lines: (0..<6).map {
                    OrderLineRequest(partNumber: "PN-\(10_000 + (index * 7 + $0) % 300)", quantity: Int64(1 + $0))
                }, confirm: true)
                _ = try capture.recordVisit(customerID: "CBG\(100_000 + index % 20)", outcome: .order, note: "Визита \(index) — wizyta")
            }
            try setup.hub("UPDATE prices SET price_minor = price_minor + 7 WHERE level = 'dealer'")
            try setup.hub("UPDATE stock SET quantity = quantity + 3 WHERE location = 'van:BG03'")
        }

        func session(cut direction: Direction?, after limit: Int) throws -> CuttingStream {
            try setup.server.inProcessSession { deviceEnd in
                let link = CuttingStream(deviceEnd, cut: direction, after: limit)
                defer { link.close() }
                do {
                    _ = try setup.sync(.full, over: link)
                } catch SyncChannel.Failure.stream(.closed) where direction != nil {
                    // the cut: the next session retries. An undisturbed session must succeed, and a
                    // cut session must fail only by losing its link.
                }
                return link
            }
        }

        struct State: Equatable {
            var hubChanges: Int64
            var uploadedThrough: String
            var checksums: [UInt8: TableChecksum]
        }

        func state() throws -> State {
            State(hubChanges: try setup.storage.changeCount(device: "BG03"),
                  uploadedThrough: try setup.device.database.text("SELECT value FROM sync_state WHERE key = 'uploaded_through_seq'"),
                  checksums: try DeviceDownload(setup.device).checksums())
        }
    }

    @Test("every boundary, up and down: the retried sync ends where the undisturbed one does")
    func everyBoundary() throws {
        let reference = try World()
        let recorded = try reference.session(cut: nil, after: 0)
        let expected = try reference.state()
        #expect(expected.hubChanges == 50)
        let cuts = Self.boundaries(recorded.sent).map { (Direction.up, $0) } + Self.boundaries(recorded.received).map { (Direction.down, $0) }
        // Protocol 5 packs a flight's messages into shared frames. Up: handshake, AUTH + BATCH +
        // PULL, ACK (which ends the session); down: handshake, then AUTH_RESULT, RECEIPT,
        // DOWNLOAD, the TABLE messages and DONE in as few frames as fit.
        #expect(cuts.filter { $0.0 == .up }.count >= 3 && cuts.filter { $0.0 == .down }.count >= 2)
        for (direction, offset) in cuts {
            let world = try World()
            _ = try world.session(cut: direction, after: offset)
            _ = try world.session(cut: nil, after: 0)
            #expect(try world.state() == expected, "cut \(direction.rawValue) after \(offset) bytes")
        }
    }
}
