import Deflate
import Dispatch
import Field
import Foundation
import Hub
import Seal
import Sync
import Transport

/// `satchel-sim bench sync` (first part): the upload of a standard rep day (40 orders of 10
/// lines, 30 visits, 10 payments) by fast sync, against `gzip -6` of the same records as JSON
/// lines, in one run. The download direction (prices, stock) is not built yet, so this measures
/// the upward half of the figure issue 6 names.
public struct SyncBench {
    public struct Result: Codable, Sendable {
        public var changes: Int
        /// Bytes on the wire for the whole session: handshake, AUTH, BATCH, BYE and the answers.
        public var oursBytes: Int
        public var oursBytesUp: Int
        public var oursBytesDown: Int
        /// gzip -6 of the same change records as JSON lines (what a plain HTTPS+JSON sync would send, before TLS).
        public var gzipJSONBytes: Int
        public var rawJSONBytes: Int
        /// ours / gzip JSON, upward direction only.
        public var wireRatioUp: Double
        /// Round trips after the handshake.
        public var roundTrips: Int
        public var notes: [String]
    }

    public static func run() throws -> Result {
        let root = try DayRunner.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (changes, jsonLines) = try standardDay(in: root)
        return try measure(changes: changes, jsonLines: jsonLines, root: root)
    }

    /// The upload of a standard rep day, as change records and as the JSON lines they compare to.
    public static func standardDay(in root: String) throws -> (changes: [SyncChange], jsonLines: String) {
        let clock = ManualClock(1_795_428_000_000)
        let device = try DeviceDatabase.create(home: root + "/device", deviceID: "WAW07", repID: "R01", clock: clock)
        let summary = try Seeder.seed(device, plan: .init(customers: 300, products: 400, seed: 21, historyOrdersPerCustomer: 0,
                                                          today: CalendarDay.string(fromMilliseconds: clock.nowMilliseconds())))
        var random = SeededRandom(seed: 22)
        let capture = Capture(device)
        let customers = try device.database.query("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id") { $0.text(0) }
        let parts = (0..<400).map { "PN-\(10_000 + $0)" }
        for _ in 0..<40 {
            clock.advance(milliseconds: Int64(random.int(60_000...900_000)))
            _ = try capture.createOrder(customerID: random.pick(customers), lines: (0..<10).map { _ in
                OrderLineRequest(partNumber: random.pick(parts), quantity: Int64(random.int(1...24)))
            }, confirm: true)
        }
        for index in 0..<30 {
            clock.advance(milliseconds: 600_000)
            _ = try capture.recordVisit(customerID: summary.todaysRoute[index % summary.todaysRoute.count], outcome: .order, note: "Rozmowa z właścicielem")
        }
        for _ in 0..<10 {
            _ = try capture.recordPayment(customerID: random.pick(customers), amountMinor: Int64(random.int(5_000...150_000)), method: .cash, receipt: "KP/\(random.int(1...999))")
        }
        let entries = try device.changes(after: 0)
        let changes = entries.map { SyncChange(seq: $0.seq, changeId: $0.changeId, at: $0.at, entity: $0.entity, entityId: $0.entityId, action: $0.action, payload: $0.payload) }
        return (changes, try entries.map { try FieldJSON.payload($0) }.joined(separator: "\n") + "\n")
    }

    static func measure(changes: [SyncChange], jsonLines: String, root: String) throws -> Result {
        let gzipped = try Deflate.compress(Array(jsonLines.utf8), level: 6, format: .gzip)

        // The hub in this process, the device over a socket pair.
        let storage = try SQLiteHubStorage(path: root + "/hub.db")
        let deviceKey = X25519.KeyPair.generate()
        try storage.addRep(id: "R01", name: "Paweł", passwordHash: try PasswordHash.hash(password: "hasło", cost: .init(opsLimit: 1, memLimit: 64 * 1024)))
        try storage.addDevice(id: "WAW07", rep: "R01", publicKey: deviceKey.publicKey, now: 0)
        let server = SyncServer { try SQLiteHubStorage(path: root + "/hub.db") }
        let (deviceEnd, hubEnd) = try StreamPair.make()
        let box = Box(hubEnd)
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { server.handle(box.end) }
        let result = try FastSyncClient.run(deviceEnd, deviceKey: deviceKey, hubKey: try storage.hubKey().publicKey, device: "WAW07", password: "hasło",
                                            batch: Batch(id: "WAW07-bench", changes: changes), deadline: .after(seconds: 30))
        group.wait()
        // Handshake frames are not in the channel's counters: message 1 (2 + 32 + 48 + hello + 16), message 2 (2 + 32 + welcome + 16).
        let hello = Hello(device: "WAW07", mode: .fast).encode().count
        let welcome = Welcome(status: .ok, session: [UInt8](repeating: 0, count: 16), hubTime: 0).encode().count
        let up = result.bytesSent + 2 + 32 + 48 + hello + 16
        let down = result.bytesReceived + 2 + 32 + welcome + 16
        return Result(changes: changes.count, oursBytes: up + down, oursBytesUp: up, oursBytesDown: down, gzipJSONBytes: gzipped.count,
                      rawJSONBytes: jsonLines.utf8.count, wireRatioUp: (Double(up) / Double(gzipped.count) * 1000).rounded() / 1000,
                      roundTrips: result.roundTrips,
                      notes: ["upward half only: full/init downloads (prices, stock) are not built yet"])
    }

    final class Box: @unchecked Sendable {
        let end: FileDescriptorStream
        init(_ end: FileDescriptorStream) { self.end = end }
    }
}
