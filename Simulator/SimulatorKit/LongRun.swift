import Agent
import Dispatch
import Field
import Foundation
import Hub
import Seal
import Store
import Sync
import Transport

/// Weeks of a rep's days in minutes (`satchel-sim days`): each day the office plans a route a
/// week ahead, moves prices and stock and answers yesterday's orders; the rep syncs in full in
/// the morning, works the route (visits, orders, payments) and syncs again in the evening. The
/// device and the hub run in this process on simulated clocks, through the real sync code and
/// the device's housekeeping. What it shows: the device database stays bounded.
public struct LongRun {
    public struct Day: Codable, Sendable {
        public var day: Int
        /// Database file plus its WAL, after the evening sync.
        public var databaseBytes: Int64
        public var customers: Int64
        public var orders: Int64
        public var visits: Int64
        public var changes: Int64
        public var retained: Int64
        public var downloaded: Int
        public var uploaded: Int
    }

    public struct Result: Codable, Sendable {
        public var days: [Day]
        public var captured: Int
        public var hubChanges: Int64
        /// The largest database of the last third of the run / the largest of the middle third.
        public var growthLastThird: Double
        public var mismatches: Int
    }

    public static func run(days: Int, seed: UInt64, customers: Int = 300, products: Int = 400) throws -> Result {
        let root = try DayRunner.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let start: Int64 = 1_795_392_000_000  // 2026-11-23 00:00 UTC
        let clock = ManualClock(start + 7 * 3_600_000)
        let hubPath = root + "/hub.db"
        let storage = try SQLiteHubStorage(path: hubPath)
        try storage.addRep(id: "R01", name: "Paweł Wróblewski", passwordHash: try PasswordHash.hash(password: "hasło", cost: .init(opsLimit: 1, memLimit: 64 * 1024)))
        // The office's extract; the rep covers the Mazovian territory, routes reach beyond it.
        let erp = try DeviceDatabase.create(home: root + "/erp", deviceID: "LR01", repID: "R01", clock: clock)
        _ = try Seeder.seed(erp, plan: .init(customers: customers, products: products, seed: seed, historyOrdersPerCustomer: 2, today: CalendarDay.string(fromMilliseconds: start)))
        try storage.importMasterData(from: erp.path)
        let office = try Database(path: hubPath)
        let allCustomers = try office.query("SELECT id FROM customers ORDER BY id") { $0.text(0) }
        let server = SyncServer(clock: { clock.nowMilliseconds() }) { try SQLiteHubStorage(path: hubPath) }

        let home = root + "/device"
        let device = try DeviceDatabase.create(home: home, deviceID: "LR01", repID: "R01", clock: clock)
        let sync = DeviceSync(DeviceAgent(AgentConfiguration(home: home)))
        try storage.addDevice(id: "LR01", rep: "R01", publicKey: try sync.makeKeyPair().publicKey, now: clock.nowMilliseconds())
        try sync.provision(address: "127.0.0.1:1", hubKey: Hex.encode(try storage.hubKey().publicKey))

        func session(_ mode: SyncMode) throws -> DeviceSync.Report {
            try server.inProcessSession { try sync.run(mode, device, password: "hasło", over: $0, hub: "in-process") }
        }

        var random = SeededRandom(seed: seed &+ 1)
        var result = Result(days: [], captured: 0, hubChanges: 0, growthLastThird: 0, mismatches: 0)
        let capture = Capture(device)
        let parts = try office.query("SELECT part_number FROM products WHERE channel <> 'display' ORDER BY part_number") { $0.text(0) }
        for day in 0..<days {
            let midnight = start + Int64(day) * 86_400_000
            clock.set(midnight + 6 * 3_600_000)
            // The office, early: next week's route, prices and stock, answers to orders.
            let routeDay = CalendarDay.string(fromMilliseconds: midnight + 6 * 86_400_000)
            var stops = allCustomers
            stops.shuffle(using: &random)
            try office.transaction {
                try office.execute("INSERT INTO routes(id, rep_id, day) VALUES (?, 'R01', ?)", [.text("RT-\(routeDay)"), .text(routeDay)])
                for (position, customer) in stops.prefix(25).enumerated() {
                    try office.execute("INSERT INTO route_stops(route_id, position, customer_id) VALUES (?, ?, ?)",
                                       [.text("RT-\(routeDay)"), .integer(Int64(position + 1)), .text(customer)])
                }
                for _ in 0..<50 {
                    try office.execute("UPDATE prices SET price_minor = ? WHERE part_number = ? AND level = 'customer'",
                                       [.integer(Int64(random.int(100...90_000))), .text(random.pick(parts))])
                }
                for _ in 0..<200 {
                    try office.execute("UPDATE stock SET quantity = ? WHERE part_number = ? AND location = 'van:LR01'",
                                       [.integer(Int64(random.int(0...80))), .text(random.pick(parts))])
                }
            }
            // Yesterday's orders are accepted; orders two weeks old are settled (invoice paid).
            let orders = try office.query("SELECT entity_id, max(at) FROM device_changes WHERE device_id = 'LR01' AND entity = 'order' GROUP BY entity_id") {
                ($0.text(0), $0.int64(1))
            }
            for (order, at) in orders {
                let age = clock.nowMilliseconds() - at
                let state = age > 14 * 86_400_000 ? "settled" : "accepted"
                try storage.setDocumentState(device: "LR01", entity: "order", entityId: order, state: state, approval: nil, now: clock.nowMilliseconds())
            }
            clock.set(midnight + 7 * 3_600_000)
            let morning = try session(day == 0 ? .initialise : .full)
            result.mismatches += morning.mismatched.count

            // The route.
            let today = CalendarDay.string(fromMilliseconds: clock.nowMilliseconds())
            for (position, stop) in try WorkingSet(device).route(day: today).enumerated() {
                clock.advance(milliseconds: 15 * 60_000)
                _ = try capture.recordVisit(customerID: stop.customerID, outcome: .order, note: "Wizyta — визит \(day)")
                result.captured += 1
                if random.chance(0.5) {
                    let order = try? capture.createOrder(customerID: stop.customerID, lines: (0..<5).map { _ in
                        OrderLineRequest(partNumber: random.pick(parts), quantity: Int64(random.int(1...12)))
                    }, confirm: true)
                    if order != nil { result.captured += 1 }
                }
                if random.chance(0.2) {
                    _ = try capture.recordPayment(customerID: stop.customerID, amountMinor: Int64(random.int(1_000...90_000)), method: .cash, receipt: "KP/\(day)/\(position + 1)")
                    result.captured += 1
                }
            }
            clock.set(midnight + 18 * 3_600_000)
            let evening = try session(.full)
            result.mismatches += evening.mismatched.count
            func count(_ sql: String) throws -> Int64 { try device.database.int64(sql) }
            let bytes = fileSize(device.path) + fileSize(device.path + "-wal")
            result.days.append(Day(day: day + 1, databaseBytes: bytes, customers: try count("SELECT count(*) FROM customers"),
                                   orders: try count("SELECT count(*) FROM orders"), visits: try count("SELECT count(*) FROM visits"),
                                   changes: try count("SELECT count(*) FROM changes"), retained: try count("SELECT count(*) FROM working_set_retained"),
                                   downloaded: morning.downloaded + evening.downloaded, uploaded: morning.uploaded + evening.uploaded))
        }
        result.hubChanges = try storage.changeCount(device: "LR01")
        let third = max(1, days / 3)
        let middle = result.days.dropFirst(third).prefix(third).map(\.databaseBytes).max() ?? 1
        let last = result.days.suffix(third).map(\.databaseBytes).max() ?? 0
        result.growthLastThird = (Double(last) / Double(max(1, middle)) * 1000).rounded() / 1000
        return result
    }

    static func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }
}
