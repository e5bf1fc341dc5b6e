import Agent
import CSQLite
import Field
import Foundation
import Store
import Seal

/// `satchel-sim bench capture`: the agent's capture path and customer card against the same
/// SQL issued through raw sqlite3 C calls, interleaved in one run on the same machine; capture
/// including the card append against the same SQL plus as many bytes appended and fsynced to a
/// file by raw calls; the size and peak memory of the `satchel` binary against hello-worlds
/// built the same way, one of them opening the same database and running the same queries.
public struct CaptureBench {
    public struct Options: Sendable {
        public var orders: Int
        public var cards: Int
        public var satchelPath: String
        public var helloPath: String
        public var sqliteHelloPath: String
        /// Runs of each process for the peak-RSS medians.
        public var memoryRuns: Int
        public init(orders: Int, cards: Int, satchelPath: String, helloPath: String, sqliteHelloPath: String, memoryRuns: Int = 5) {
            self.orders = orders; self.cards = cards; self.satchelPath = satchelPath; self.helloPath = helloPath
            self.sqliteHelloPath = sqliteHelloPath; self.memoryRuns = memoryRuns
        }
    }

    /// The goals, from issues 3 and 10 (docs/benchmarks.md). The short form's margins are for a
    /// few dozen orders on a shared 2-core machine, where one slow fsync moves a ratio by several
    /// percent; sizes and memory are not noisy and get none.
    public static let goals: [BenchGoal] = [
        BenchGoal("ratio", .atLeast(0.8), origin: "issue 3", shortMargin: 0.1),
        BenchGoal("ratio_with_card", .atLeast(0.9), origin: "issue 10", shortMargin: 0.1),
        BenchGoal("card_ratio", .atMost(1.5), origin: "issue 3", shortMargin: 0.1),
        BenchGoal("satchel_stripped_bytes", .atMost(16_000_000), origin: "issue 3", releaseImageOnly: true),
        BenchGoal("status_max_rss_mb", .atMost(14), origin: "issue 10", releaseImageOnly: true),
        BenchGoal("rss_ratio_vs_sqlite_hello", .atMost(1.15), origin: "issue 10", shortMargin: 0.03),
    ]

    public struct Result: BenchReport, Codable, Sendable {
        /// Capture throughput, ours / raw sqlite3 (goal >= 0.8).
        public var ratio: Double?
        public var ordersPerSide: Int
        public var linesPerOrder: Int
        public var oursOrdersPerSecond: Double?
        public var rawOrdersPerSecond: Double?
        /// Capture including the card append (what "saved" means on a device with a card) /
        /// the same SQL plus the same bytes appended and fsynced to a file by raw calls (goal >= 0.9).
        public var ratioWithCard: Double?
        public var oursWithCardOrdersPerSecond: Double?
        public var rawWithFileOrdersPerSecond: Double?
        /// Card bytes one capture appended (journal growth; the raw side appends as many).
        public var cardBytesPerOrder: Double?
        /// Customer card time with 100,000 history lines, ours / raw (goal <= 1.5).
        public var cardRatio: Double?
        public var cardHistoryLines: Int
        public var oursCardMilliseconds: Double?
        public var rawCardMilliseconds: Double?
        public var satchelStrippedBytes: Int?
        public var helloStrippedBytes: Int?
        public var sqliteHelloStrippedBytes: Int?
        public var statusCustomers: Int
        public var statusMaxRSSKiB: Int?
        /// The same in MB (10^6 bytes), the unit of the goal (<= 14).
        public var statusMaxRssMb: Double?
        public var helloMaxRSSKiB: Int?
        public var sqliteHelloMaxRSSKiB: Int?
        /// Peak RSS of `satchel status` / the SQLite hello-world running the same statements (goal <= 1.15).
        public var rssRatioVsSqliteHello: Double?
        /// Peak RSS of `satchel status` / the hello-world that loads no SQLite (issue 3's figure, kept for comparison).
        public var rssRatio: Double?
        /// Whether satchel-sim (and so, by default, the binaries measured) is a release build.
        public var releaseBuild: Bool
        public var notes: [String]

        public static var goals: [BenchGoal] { CaptureBench.goals }

        public var figures: [String: Double] {
            var figures: [String: Double] = [:]
            figures["ratio"] = ratio
            figures["ratio_with_card"] = ratioWithCard
            figures["card_ratio"] = cardRatio
            figures["satchel_stripped_bytes"] = satchelStrippedBytes.map(Double.init)
            figures["status_max_rss_mb"] = statusMaxRssMb
            figures["rss_ratio_vs_sqlite_hello"] = rssRatioVsSqliteHello
            return figures
        }
    }

    public static func run(_ options: Options) throws -> Result {
        let root = try DayRunner.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var notes: [String] = []

        let (oursSeconds, rawSeconds) = try captureRace(root: root, orders: options.orders)
        let withCard = try captureWithCardRace(root: root, orders: options.orders)
        notes.append(withCard.note)
        let (oursCard, rawCard, historyLines) = try cardRace(root: root, reads: options.cards)

        let satchelBytes = strippedSize(options.satchelPath, root: root, notes: &notes)
        let helloBytes = strippedSize(options.helloPath, root: root, notes: &notes)
        let sqliteHelloBytes = strippedSize(options.sqliteHelloPath, root: root, notes: &notes)

        // Peak memory of `satchel status` on a 5,000-customer working set vs the hello-worlds.
        let statusHome = root + "/status"
        let statusCustomers = 5_000
        // Seeded, then closed: a device at rest, as the rep finds it (no `-wal` beside the file).
        let statusDatabase = try {
            let device = try DeviceDatabase.create(home: statusHome, deviceID: "BENCH", repID: "R01")
            _ = try Seeder.seed(device, plan: .init(customers: statusCustomers, products: 3_000, seed: 5, historyOrdersPerCustomer: 4,
                                                    today: CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())))
            try device.database.checkpoint()
            return device.path
        }()
        // Interleaved, run by run, so a busy moment of the machine hits all three alike.
        let peaks = interleavedPeakRSS([(options.satchelPath, ["status", "--home", statusHome]), (options.helloPath, []),
                                        (options.sqliteHelloPath, sqliteHelloArguments(database: statusDatabase))],
                                       runs: max(1, options.memoryRuns), root: root, notes: &notes)
        let statusRSS = peaks[0], helloRSS = peaks[1], sqliteHelloRSS = peaks[2]
        if statusRSS == nil { notes.append("status_max_rss_mb, rss_ratio_vs_sqlite_hello: `satchel status` not measured") }
        if sqliteHelloRSS == nil { notes.append("rss_ratio_vs_sqlite_hello: the SQLite hello-world (\(options.sqliteHelloPath)) not measured") }
        func perSecond(_ seconds: Double?) -> Double? { seconds.map { round3(Double(options.orders) / $0) } }
        func ratio(_ numerator: Int?, _ denominator: Int?) -> Double? {
            guard let numerator, let denominator, denominator > 0 else { return nil }
            return round3(Double(numerator) / Double(denominator))
        }
        return Result(
            ratio: round3(rawSeconds / oursSeconds), ordersPerSide: options.orders, linesPerOrder: 10,
            oursOrdersPerSecond: perSecond(oursSeconds), rawOrdersPerSecond: perSecond(rawSeconds),
            ratioWithCard: round3(withCard.raw / withCard.ours),
            oursWithCardOrdersPerSecond: perSecond(withCard.ours), rawWithFileOrdersPerSecond: perSecond(withCard.raw),
            cardBytesPerOrder: (withCard.bytesPerOrder * 10).rounded() / 10,
            cardRatio: round3(oursCard / rawCard), cardHistoryLines: historyLines,
            oursCardMilliseconds: round3(oursCard * 1000 / Double(options.cards)), rawCardMilliseconds: round3(rawCard * 1000 / Double(options.cards)),
            satchelStrippedBytes: satchelBytes, helloStrippedBytes: helloBytes, sqliteHelloStrippedBytes: sqliteHelloBytes,
            statusCustomers: statusCustomers, statusMaxRSSKiB: statusRSS,
            statusMaxRssMb: statusRSS.map { (Double($0) * 1024 / 1e6 * 1000).rounded() / 1000 },
            helloMaxRSSKiB: helloRSS, sqliteHelloMaxRSSKiB: sqliteHelloRSS,
            rssRatioVsSqliteHello: ratio(statusRSS, sqliteHelloRSS), rssRatio: ratio(statusRSS, helloRSS),
            releaseBuild: BenchCheck.isReleaseBuild, notes: notes)
    }

    /// The statements `satchel status` runs on a device without a card, in its order: Store's
    /// read-only open (`Database.configure`), `DeviceDatabase.openReadOnly`'s checks and the
    /// agent's schema check, `DeviceStatus.read`, and the card report's two reads; handed to the
    /// SQLite hello-world, which opens the file as that read-only open does (`--read-only`), so
    /// both run the very same SQL.
    static func sqliteHelloArguments(database: String) -> [String] {
        let now = SystemClock().nowMilliseconds()
        let statements = RawPragmas.readOnly + ["PRAGMA application_id", "PRAGMA user_version", "PRAGMA user_version",
                                                DeviceStatus.SQL.ordersByState, DeviceStatus.SQL.counts,
                                                "PRAGMA page_count", "PRAGMA page_size", "PRAGMA user_version",
                                                "SELECT id FROM device", "SELECT COALESCE(max(seq), 0) FROM changes"]
        return ["--database", database, "--read-only"] + statements.flatMap { ["--sql", $0] }
            + ["--bind", "text:" + CalendarDay.string(fromMilliseconds: now), "--bind", "integer:\(CalendarDay.startOfDay(containing: now))"]
    }

    /// The median of `runs` peak-RSS measurements of each program, taken in turn, or nil (with a
    /// note) for a program that is missing or fails: a figure that could not be measured stays missing.
    static func interleavedPeakRSS(_ programs: [(path: String, arguments: [String])], runs: Int, root: String, notes: inout [String]) -> [Int?] {
        var peaks: [[Int]?] = programs.map { program in
            guard FileManager.default.isExecutableFile(atPath: program.path) else {
                notes.append("\(program.path) not found: peak RSS not measured (build it: swift build, or hardware/build-release.sh)")
                return nil
            }
            return []
        }
        for _ in 0..<runs {
            for (index, program) in programs.enumerated() where peaks[index] != nil {
                do {
                    peaks[index]?.append(try peakRSS(program.path, program.arguments, root: root))
                } catch {
                    notes.append("peak RSS of \(program.path) not measured: \(error)")
                    peaks[index] = nil
                }
            }
        }
        return peaks.map { $0.map { $0.sorted()[$0.count / 2] } }
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
        let samplePayload = DocumentCodec.encode(.order(try capture.createOrder(customerID: work[0].0, lines: work[0].1, confirm: true).document))
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

    // MARK: Capture with the card: Capture + the card append vs the same SQL + raw append and fsync

    /// Capture as "saved" means it on a device with a card: Agent's one capture path
    /// (`DeviceAgent.capture(in:)`, what every capture command runs: the database commit, then the
    /// fsynced, encrypted card-journal append), timed up to its acknowledgement, against the raw
    /// capture plus the same number of bytes appended to a file and fsynced with bare
    /// write(2)/fsync(2). Interleaved in rounds of 10. The snapshot the capture path takes after
    /// the acknowledgement when one is due (every 25 changes, the device's default) is not part
    /// of "saved" and not timed, but it runs as on a device: each one lets the journal drop the
    /// segments it covers, and the append's cost depends on how much journal the card holds.
    static func captureWithCardRace(root: String, orders: Int) throws -> (ours: Double, raw: Double, bytesPerOrder: Double, note: String) {
        let today = CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())
        let plan = Seeder.Plan(customers: 200, products: 300, seed: 11, historyOrdersPerCustomer: 0, routeStops: 1...1, today: today)
        let home = root + "/ours-card"
        let oursDevice = try DeviceDatabase.create(home: home, deviceID: "CARD1", repID: "R01")
        _ = try Seeder.seed(oursDevice, plan: plan)
        let rawDevice = try DeviceDatabase.create(home: root + "/raw-file", deviceID: "RAW1", repID: "R01")
        _ = try Seeder.seed(rawDevice, plan: plan)
        let card = try FakeCard(path: root + "/card")
        var configuration = AgentConfiguration(home: home, cardRoot: card.path)
        configuration.keyCost = .init(opsLimit: 1, memLimit: 64 * 1024)  // card init is not timed
        let agent = DeviceAgent(configuration)
        let initialised = try agent.initCard(oursDevice, passphrase: "bench passphrase — hasło")
        guard initialised.state == .ok else { throw DayRunner.Failure.setup("card init for the capture-with-card race: \(initialised.state) \(initialised.message ?? "")") }

        let customers = try oursDevice.database.query("SELECT id FROM customers ORDER BY id") { $0.text(0) }
        let parts = try oursDevice.database.query("SELECT part_number FROM products WHERE channel <> 'display' ORDER BY part_number") { $0.text(0) }
        var random = SeededRandom(seed: 98)
        let work: [(String, [OrderLineRequest])] = (0..<(orders + 1)).map { _ in
            (random.pick(customers), (0..<10).map { _ in OrderLineRequest(partNumber: random.pick(parts), quantity: Int64(random.int(1...40))) })
        }
        let capture = Capture(oursDevice)
        let raw = try RawCapture(path: rawDevice.path)
        let rawFile = root + "/raw-file/journal"
        let descriptor = open(rawFile, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard descriptor >= 0 else { throw DayRunner.Failure.setup("cannot open \(rawFile): errno \(errno)") }
        defer { close(descriptor) }

        // One saved order on our side, timed to its acknowledgement, which must say the card has
        // it; what the card grew by then is what the raw side writes for the same order. What
        // this process wrote after the acknowledgement (a snapshot, when one was due) is counted
        // too, so the raw side can write as much at the same point, untimed (below).
        func saveOurs(_ customer: String, _ lines: [OrderLineRequest]) throws -> (seconds: Double, appended: Int, writtenAfter: Int) {
            let before = directoryBytes(card.path)
            var seconds = 0.0, appended = 0, writtenAtAcknowledgement = 0
            let start = ChildProcess.monotonicSeconds()
            let saved = try agent.capture(.orders, in: oursDevice, { _ in try capture.createOrder(customerID: customer, lines: lines, confirm: true) }) { _ in
                seconds = ChildProcess.monotonicSeconds() - start
                appended = directoryBytes(card.path) - before
                writtenAtAcknowledgement = try bytesWrittenByThisProcess()
            }
            guard saved.onCard else {
                throw DayRunner.Failure.setup("the card append failed during the race: \(saved.warning ?? "\(saved.card.state)")")
            }
            return (seconds, appended, try bytesWrittenByThisProcess() - writtenAtAcknowledgement)
        }
        // The raw side's counterpart of a snapshot's writes: as many bytes written to a new file
        // on the same file system, fsynced, the file then removed, as the snapshot did.
        func writeLikeSnapshot(_ bytes: Int) throws {
            let scratch = root + "/raw-file/snapshot-like.tmp"
            let fd = open(scratch, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { throw DayRunner.Failure.setup("cannot open \(scratch): errno \(errno)") }
            defer { close(fd); unlink(scratch) }
            let chunk = [UInt8](repeating: 0xA5, count: 64 * 1024)
            var left = bytes
            while left > 0 {
                let count = min(left, chunk.count)
                guard chunk.withUnsafeBytes({ write(fd, $0.baseAddress, count) }) == count else {
                    throw DayRunner.Failure.setup("write to \(scratch) failed: errno \(errno)")
                }
                left -= count
            }
            guard fsync(fd) == 0 else { throw DayRunner.Failure.setup("fsync of \(scratch) failed: errno \(errno)") }
        }
        func saveRaw(_ customer: String, _ lines: [OrderLineRequest], payload: [UInt8], bytes: [UInt8]) throws {
            try raw.capture(customer: customer, lines: lines, payload: payload)
            guard bytes.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == bytes.count, fsync(descriptor) == 0 else {
                throw DayRunner.Failure.setup("raw append to \(rawFile) failed: errno \(errno)")
            }
        }
        let samplePayload = DocumentCodec.encode(.order(try agent.capture(.orders, in: oursDevice, { _ in
            try capture.createOrder(customerID: work[0].0, lines: work[0].1, confirm: true) }).value.document))
        try saveRaw(work[0].0, work[0].1, payload: samplePayload, bytes: [UInt8](repeating: 0x5A, count: 2_000))

        // Fairness: the snapshots our side takes after an acknowledgement (untimed) write the
        // database's size to the same file system, and their writes could slow the next timed
        // fsync; so after the raw capture at the same position the raw side writes and fsyncs as
        // many bytes, also untimed. Each capture is timed alone, and the notes give the median of
        // the captures right after such writes against the others, on each side.
        var ours = 0.0, rawTime = 0.0, appendedTotal = 0, snapshots = 0, snapshotBytes = 0
        var oursAfterWrites: [Double] = [], oursOther: [Double] = [], rawAfterWrites: [Double] = [], rawOther: [Double] = []
        var index = 1, oursWroteBefore = false, rawWroteBefore = false
        while index < work.count {
            let slice = work[index..<min(index + 10, work.count)]
            var appended: [Int] = [], writtenAfter: [Int] = []
            for (customer, lines) in slice {
                let saved = try saveOurs(customer, lines)
                ours += saved.seconds
                if oursWroteBefore { oursAfterWrites.append(saved.seconds) } else { oursOther.append(saved.seconds) }
                oursWroteBefore = saved.writtenAfter > 0
                appended.append(saved.appended)
                writtenAfter.append(saved.writtenAfter)
                if saved.writtenAfter > 0 { snapshots += 1; snapshotBytes += saved.writtenAfter }
            }
            appendedTotal += appended.reduce(0, +)
            for ((customer, lines), (bytes, after)) in zip(slice, zip(appended, writtenAfter)) {
                let start = ChildProcess.monotonicSeconds()
                try saveRaw(customer, lines, payload: samplePayload, bytes: [UInt8](repeating: 0x5A, count: bytes))
                let seconds = ChildProcess.monotonicSeconds() - start
                rawTime += seconds
                if rawWroteBefore { rawAfterWrites.append(seconds) } else { rawOther.append(seconds) }
                rawWroteBefore = after > 0
                if after > 0 { try writeLikeSnapshot(after) }
            }
            index += 10
        }
        func median(_ values: [Double]) -> String {
            values.isEmpty ? "none" : String(format: "%.2f ms", values.sorted()[values.count / 2] * 1000)
        }
        let note = "ratio_with_card: \(snapshots) snapshots after acknowledgements (\(snapshotBytes / max(1, snapshots)) bytes written each, untimed), "
            + "the raw side writing and fsyncing as many at the same points; median capture right after those writes / otherwise: "
            + "ours \(median(oursAfterWrites)) (\(oursAfterWrites.count)) / \(median(oursOther)) (\(oursOther.count)), "
            + "raw \(median(rawAfterWrites)) (\(rawAfterWrites.count)) / \(median(rawOther)) (\(rawOther.count))"
        return (ours, rawTime, Double(appendedTotal) / Double(orders), note)
    }

    /// Bytes this process has handed to write(2) and its kin so far (`wchar` in /proc/self/io):
    /// what a snapshot wrote, counted around it.
    static func bytesWrittenByThisProcess() throws -> Int {
        let text = try String(contentsOfFile: "/proc/self/io", encoding: .utf8)
        for line in text.split(separator: "\n") where line.hasPrefix("wchar:") {
            if let value = Int(line.dropFirst("wchar:".count).trimmingCharacters(in: .whitespaces)) { return value }
        }
        throw DayRunner.Failure.setup("/proc/self/io has no wchar line")
    }

    /// Bytes in every regular file under `path`.
    static func directoryBytes(_ path: String) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        while let relative = walker.nextObject() as? String {
            if let attributes = walker.fileAttributes, attributes[.type] as? FileAttributeType == .typeRegular {
                total += (attributes[.size] as? NSNumber)?.intValue ?? 0
            }
            _ = relative
        }
        return total
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
    /// Store's `Database.configure` for the device database, statement by statement and in its
    /// order (the busy deadline is a C call the SQLite hello-world makes itself).
    static let device = ["PRAGMA cache_size=-256", "PRAGMA schema_version", "PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"]
    /// The same for a read-only open (`satchel status`, lists, `doctor`): it stops after the header read.
    static let readOnly = Array(device.prefix(2))
}

/// The raw side of the capture race: the same SQL as `Capture.createOrder`, prepared once and
/// driven with bare sqlite3 calls, on a database opened with the same pragmas.
final class RawCapture {
    let db: OpaquePointer
    let begin, commit, customer, nextSeq, insertOrder, clearLines, price, insertLine, finish, change: OpaquePointer

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
        clearLines = try prepare(Capture.SQL.clearLines)
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

    func capture(customer customerID: String, lines: [OrderLineRequest], payload: [UInt8]) throws {
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
        text(clearLines, 1, id)
        try run(clearLines)
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
        text(change, 5, "confirmed")
        _ = payload.withUnsafeBytes { satchel_sqlite3_bind_blob_copy(change, 6, $0.baseAddress, Int32($0.count)) }
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
