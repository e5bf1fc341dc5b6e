import CSQLite
import Field
import Foundation
import Store

/// `satchel-sim bench capture`: the agent's capture path and customer card against the same
/// SQL issued through raw sqlite3 C calls, interleaved in one run on the same machine, plus the
/// size and peak memory of the `satchel` binary against a hello-world built the same way.
public struct CaptureBench {
    public struct Options: Sendable {
        public var orders: Int
        public var cards: Int
        public var satchelPath: String
        public var helloPath: String
        public init(orders: Int, cards: Int, satchelPath: String, helloPath: String) {
            self.orders = orders; self.cards = cards; self.satchelPath = satchelPath; self.helloPath = helloPath
        }
    }

    public struct Result: Codable, Sendable {
        /// Capture throughput, ours / raw sqlite3 (>= 0.8 wanted).
        public var ratio: Double
        public var ordersPerSide: Int
        public var linesPerOrder: Int
        public var oursOrdersPerSecond: Double
        public var rawOrdersPerSecond: Double
        /// Customer card time with 100,000 history lines, ours / raw (<= 1.5 wanted).
        public var cardRatio: Double
        public var cardHistoryLines: Int
        public var oursCardMilliseconds: Double
        public var rawCardMilliseconds: Double
        public var satchelStrippedBytes: Int?
        public var helloStrippedBytes: Int?
        public var statusCustomers: Int
        public var statusMaxRSSKiB: Int?
        public var helloMaxRSSKiB: Int?
        /// Peak RSS of `satchel status` / hello-world (<= 1.3 wanted).
        public var rssRatio: Double?
        public var notes: [String]
    }

    public static func run(_ options: Options) throws -> Result {
        let root = try DayRunner.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var notes: [String] = []

        let (oursSeconds, rawSeconds) = try captureRace(root: root, orders: options.orders)
        let (oursCard, rawCard, historyLines) = try cardRace(root: root, reads: options.cards)

        let satchelBytes = strippedSize(options.satchelPath, root: root, notes: &notes)
        let helloBytes = strippedSize(options.helloPath, root: root, notes: &notes)

        // Peak memory of `satchel status` on a 5,000-customer working set vs the hello-world.
        let statusHome = root + "/status"
        let statusCustomers = 5_000
        let device = try DeviceDatabase.create(home: statusHome, deviceID: "BENCH", repID: "R01")
        _ = try Seeder.seed(device, plan: .init(customers: statusCustomers, products: 3_000, seed: 5, historyOrdersPerCustomer: 4,
                                                today: CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())))
        var statusRSS: Int?, helloRSS: Int?
        if FileManager.default.isExecutableFile(atPath: options.satchelPath), FileManager.default.isExecutableFile(atPath: options.helloPath) {
            var satchelPeaks: [Int] = [], helloPeaks: [Int] = []
            for _ in 0..<5 {
                satchelPeaks.append(try peakRSS(options.satchelPath, ["status", "--home", statusHome], root: root))
                helloPeaks.append(try peakRSS(options.helloPath, [], root: root))
            }
            statusRSS = satchelPeaks.sorted()[2]
            helloRSS = helloPeaks.sorted()[2]
        } else {
            notes.append("satchel or bench-hello not found next to satchel-sim: build with `swift build -c release --static-swift-stdlib` first")
        }
        return Result(
            ratio: round3(rawSeconds / oursSeconds), ordersPerSide: options.orders, linesPerOrder: 10,
            oursOrdersPerSecond: round3(Double(options.orders) / oursSeconds), rawOrdersPerSecond: round3(Double(options.orders) / rawSeconds),
            cardRatio: round3(oursCard / rawCard), cardHistoryLines: historyLines,
            oursCardMilliseconds: round3(oursCard * 1000 / Double(options.cards)), rawCardMilliseconds: round3(rawCard * 1000 / Double(options.cards)),
            satchelStrippedBytes: satchelBytes, helloStrippedBytes: helloBytes, statusCustomers: statusCustomers,
            statusMaxRSSKiB: statusRSS, helloMaxRSSKiB: helloRSS,
            rssRatio: statusRSS.flatMap { s in helloRSS.map { round3(Double(s) / Double($0)) } }, notes: notes)
    }

    static func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    // MARK: Capture: Field's Capture vs the same statements through raw C calls

    static func captureRace(root: String, orders: Int) throws -> (ours: Double, raw: Double) {
        let today = CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())
        let plan = Seeder.Plan(customers: 200, products: 300, seed: 11, historyOrdersPerCustomer: 0, routeStops: 1...1, today: today)
        let oursDevice = try DeviceDatabase.create(home: root + "/ours", deviceID: "OURS", repID: "R01")
        _ = try Seeder.seed(oursDevice, plan: plan)
        let rawDevice = try DeviceDatabase.create(home: root + "/raw", deviceID: "RAW", repID: "R01")
        _ = try Seeder.seed(rawDevice, plan: plan)
        let customers = try oursDevice.database.query("SELECT id FROM customers ORDER BY id") { $0.text(0) }
        let parts = try oursDevice.database.query("SELECT part_number FROM products WHERE channel <> 'display' ORDER BY part_number") { $0.text(0) }
        var random = SeededRandom(seed: 99)
        let work: [(String, [OrderLineRequest])] = (0..<orders).map { _ in
            (random.pick(customers), (0..<10).map { _ in OrderLineRequest(partNumber: random.pick(parts), quantity: Int64(random.int(1...40))) })
        }
        let capture = Capture(oursDevice)
        let raw = try RawCapture(path: rawDevice.path)
        // Our payload for a 10-line order, so the raw side writes as many journal bytes.
        let samplePayload = try FieldJSON.payload(try capture.createOrder(customerID: work[0].0, lines: work[0].1, confirm: true).document)
        try raw.capture(customer: work[0].0, lines: work[0].1, payload: samplePayload)

        var ours = 0.0, rawTime = 0.0
        let round = 10
        var index = 0
        while index < work.count {
            let slice = work[index..<min(index + round, work.count)]
            var start = ChildProcess.monotonicSeconds()
            for (customer, lines) in slice { _ = try capture.createOrder(customerID: customer, lines: lines, confirm: true) }
            ours += ChildProcess.monotonicSeconds() - start
            start = ChildProcess.monotonicSeconds()
            for (customer, lines) in slice { try raw.capture(customer: customer, lines: lines, payload: samplePayload) }
            rawTime += ChildProcess.monotonicSeconds() - start
            index += round
        }
        return (ours, rawTime)
    }

    // MARK: Customer card: Field's Customers.card vs the same four queries through raw C calls

    static func cardRace(root: String, reads: Int) throws -> (ours: Double, raw: Double, lines: Int) {
        let device = try DeviceDatabase.create(home: root + "/card", deviceID: "CARD", repID: "R01")
        let today = CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())
        _ = try Seeder.seed(device, plan: .init(customers: 50, products: 500, seed: 3, historyOrdersPerCustomer: 2, routeStops: 1...1, today: today))
        let customer = try device.database.text("SELECT id FROM customers ORDER BY id LIMIT 1")
        let parts = try device.database.query("SELECT part_number FROM products ORDER BY part_number") { $0.text(0) }
        var random = SeededRandom(seed: 4)
        let historyOrders = 10_000, linesPerOrder = 10
        try WorkingSet(device).apply { writer in
            for index in 0..<historyOrders {
                let month = 1 + index % 12, day = 1 + index % 28
                try writer.history(.init(
                    ref: "BENCH-\(index)", customerID: customer, day: "2026-\(month < 10 ? "0" : "")\(month)-\(day < 10 ? "0" : "")\(day)",
                    currency: "PLN", paidLate: index % 7 == 0,
                    lines: (0..<linesPerOrder).map { _ in (partNumber: random.pick(parts), quantity: Int64(random.int(1...20)), amountMinor: Int64(random.int(100...50_000))) }))
            }
        }
        let lines = Int(try device.database.int64("SELECT count(*) FROM history_lines WHERE customer_id = ?", [.text(customer)]))
        let customers = Customers(device)
        let raw = try RawCard(path: device.path)
        _ = try customers.card(customer)
        let yearAgo = CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds(), addingDays: -365)
        try raw.read(customer: customer, yearAgo: yearAgo)
        var ours = 0.0, rawTime = 0.0
        for _ in 0..<reads {
            var start = ChildProcess.monotonicSeconds()
            _ = try customers.card(customer)
            ours += ChildProcess.monotonicSeconds() - start
            start = ChildProcess.monotonicSeconds()
            try raw.read(customer: customer, yearAgo: yearAgo)
            rawTime += ChildProcess.monotonicSeconds() - start
        }
        return (ours, rawTime, lines)
    }

    /// Peak RSS of a command, in KiB, measured by GNU time. Not by our own wait4: Linux carries
    /// the spawning process's peak into the child's `ru_maxrss` at exec, so a child of this
    /// 20 MB benchmark would never read below 20 MB. GNU time is small, so its children read true.
    static func peakRSS(_ path: String, _ arguments: [String], root: String) throws -> Int {
        let report = root + "/rss.txt"
        let result = try ChildProcess.run("/usr/bin/time", ["-f", "%M", "-o", report, path] + arguments, timeoutSeconds: 60)
        guard result.succeeded else { throw DayRunner.Failure.command("\(path) \(arguments.joined(separator: " ")) under /usr/bin/time", result) }
        let text = try String(contentsOfFile: report, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let kib = Int(text.split(separator: "\n").last ?? "") else { throw DayRunner.Failure.setup("GNU time printed no peak RSS: \(text)") }
        return kib
    }

    static func strippedSize(_ path: String, root: String, notes: inout [String]) -> Int? {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            notes.append("\(path) not found: binary size not measured")
            return nil
        }
        let copy = root + "/" + (path as NSString).lastPathComponent + ".stripped"
        do {
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            let strip = try ChildProcess.run("/usr/bin/strip", [copy], timeoutSeconds: 60)
            guard strip.succeeded else {
                notes.append("strip failed on \(path): \(strip.stderr)")
                return nil
            }
            return (try FileManager.default.attributesOfItem(atPath: copy)[.size] as? NSNumber)?.intValue
        } catch {
            notes.append("cannot measure \(path): \(error)")
            return nil
        }
    }
}

/// The settings `DeviceDatabase` opens with, so both sides of a race run under the same pragmas.
enum RawPragmas {
    static let device = ["PRAGMA cache_size=-256", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"]
}

/// The raw side of the capture race: the same SQL as `Capture.createOrder`, prepared once and
/// driven with bare sqlite3 calls, on a database opened with the same pragmas.
final class RawCapture {
    let db: OpaquePointer
    let begin, commit, customer, nextSeq, insertOrder, price, insertLine, finish, change: OpaquePointer

    init(path: String) throws {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let handle else { throw RawError.open(path) }
        db = handle
        for pragma in RawPragmas.device {
            guard sqlite3_exec(db, pragma, nil, nil, nil) == SQLITE_OK else { throw RawError.sql(pragma) }
        }
        func prepare(_ sql: String) throws -> OpaquePointer {
            var statement: OpaquePointer?
            guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
                throw RawError.sql(sql)
            }
            return statement
        }
        begin = try prepare("BEGIN IMMEDIATE")
        commit = try prepare("COMMIT")
        customer = try prepare(Capture.SQL.customerForOrder)
        nextSeq = try prepare("UPDATE device SET next_seq = next_seq + 1 RETURNING id, next_seq - 1")
        insertOrder = try prepare(Capture.SQL.insertOrder)
        price = try prepare(Capture.SQL.priceLine)
        insertLine = try prepare(Capture.SQL.insertLine)
        finish = try prepare(Capture.SQL.finishOrder)
        change = try prepare("INSERT INTO changes(seq, change_id, at, entity, entity_id, action, payload) VALUES (NULL, ?, ?, ?, ?, ?, ?)")
    }

    enum RawError: Error { case open(String), sql(String), step(String) }

    private func text(_ statement: OpaquePointer, _ index: Int32, _ value: String) {
        _ = satchel_sqlite3_bind_text_copy(statement, index, value, -1)
    }

    private func run(_ statement: OpaquePointer) throws {
        var code = sqlite3_step(statement)
        while code == SQLITE_ROW { code = sqlite3_step(statement) }
        sqlite3_reset(statement)
        guard code == SQLITE_DONE else { throw RawError.step(String(cString: sqlite3_errmsg(db))) }
    }

    private func nextID() throws -> String {
        guard sqlite3_step(nextSeq) == SQLITE_ROW else { throw RawError.step("next_seq") }
        let id = String(cString: sqlite3_column_text(nextSeq, 0)) + "-" + String(sqlite3_column_int64(nextSeq, 1))
        sqlite3_reset(nextSeq)
        return id
    }

    func capture(customer customerID: String, lines: [OrderLineRequest], payload: String) throws {
        try run(begin)
        text(customer, 1, customerID)
        guard sqlite3_step(customer) == SQLITE_ROW else { throw RawError.step("customer") }
        let currency = String(cString: sqlite3_column_text(customer, 0))
        let level = String(cString: sqlite3_column_text(customer, 1))
        sqlite3_reset(customer)
        let now = SystemClock().nowMilliseconds()
        let id = try nextID()
        text(insertOrder, 1, id); text(insertOrder, 2, customerID); text(insertOrder, 3, level); text(insertOrder, 4, currency)
        text(insertOrder, 5, ""); sqlite3_bind_int64(insertOrder, 6, now)
        try run(insertOrder)
        var total: Int64 = 0
        for (index, line) in lines.enumerated() {
            text(price, 1, line.partNumber); text(price, 2, ""); text(price, 3, level); text(price, 4, currency)
            guard sqlite3_step(price) == SQLITE_ROW else { throw RawError.step("price") }
            let unit = String(cString: sqlite3_column_text(price, 0))
            let unitPrice = sqlite3_column_int64(price, 1)
            sqlite3_reset(price)
            let amount = unitPrice * line.quantity
            total += amount
            text(insertLine, 1, id); sqlite3_bind_int64(insertLine, 2, Int64(index + 1)); text(insertLine, 3, line.partNumber)
            text(insertLine, 4, unit); sqlite3_bind_int64(insertLine, 5, line.quantity); sqlite3_bind_int64(insertLine, 6, line.quantity)
            sqlite3_bind_int64(insertLine, 7, unitPrice); sqlite3_bind_int64(insertLine, 8, amount)
            try run(insertLine)
        }
        text(finish, 1, "confirmed"); text(finish, 2, "none"); sqlite3_bind_null(finish, 3); sqlite3_bind_int64(finish, 4, total)
        sqlite3_bind_int64(finish, 5, now); text(finish, 6, id)
        try run(finish)
        let changeID = try nextID()
        text(change, 1, changeID); sqlite3_bind_int64(change, 2, now); text(change, 3, "order"); text(change, 4, id)
        text(change, 5, "confirmed"); text(change, 6, payload)
        try run(change)
        try run(commit)
    }

    deinit {
        for statement in [begin, commit, customer, nextSeq, insertOrder, price, insertLine, finish, change] { sqlite3_finalize(statement) }
        sqlite3_close_v2(db)
    }
}

/// The raw side of the card race: `Customers.SQL`'s four queries, every column read.
final class RawCard {
    let db: OpaquePointer
    let statements: [OpaquePointer]

    init(path: String) throws {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK, let handle else { throw RawCapture.RawError.open(path) }
        db = handle
        for pragma in RawPragmas.device {
            guard sqlite3_exec(db, pragma, nil, nil, nil) == SQLITE_OK else { throw RawCapture.RawError.sql(pragma) }
        }
        statements = try [Customers.SQL.header, Customers.SQL.recentOrders, Customers.SQL.yearSummary, Customers.SQL.topParts].map { sql in
            var statement: OpaquePointer?
            guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK, let statement else {
                throw RawCapture.RawError.sql(sql)
            }
            return statement
        }
    }

    func read(customer: String, yearAgo: String) throws {
        for (index, statement) in statements.enumerated() {
            _ = satchel_sqlite3_bind_text_copy(statement, 1, customer, -1)
            if index == 2 { _ = satchel_sqlite3_bind_text_copy(statement, 2, yearAgo, -1) }
            var checksum = 0
            while sqlite3_step(statement) == SQLITE_ROW {
                for column in 0..<sqlite3_column_count(statement) {
                    if sqlite3_column_type(statement, column) == SQLITE_TEXT {
                        checksum &+= String(cString: sqlite3_column_text(statement, column)).utf8.count
                    } else {
                        checksum &+= Int(sqlite3_column_int64(statement, column))
                    }
                }
            }
            sqlite3_reset(statement)
            if checksum == Int.min { print(checksum) }  // keeps the reads from being optimised away
        }
    }

    deinit {
        statements.forEach { sqlite3_finalize($0) }
        sqlite3_close_v2(db)
    }
}
