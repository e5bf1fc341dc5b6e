import Backup
import Field
import Foundation
import Store

/// `satchel-sim bench backup`: the power-loss figures of issue 4, each measured through the
/// real `satchel` on a database of the size a rep carries (20 MB by default):
/// reopening after a crash with a WAL present, restoring from the card, card bytes per order,
/// capture latency while a snapshot runs, and a scan of the card for plaintext.
public struct BackupBench {
    public struct Options: Sendable {
        public var databaseMB: Int
        public var records: Int
        public var captures: Int
        public var satchelPath: String
        public init(databaseMB: Int = 20, records: Int = 1_000, captures: Int = 200, satchelPath: String) {
            self.databaseMB = databaseMB; self.records = records; self.captures = captures; self.satchelPath = satchelPath
        }
    }

    /// The goals of issue 4. The short form's margins are for p99s of a few dozen children and
    /// medians of three restores on a shared machine; the counts of failures, leaks and rewrites
    /// have none. The two absolute times are the release image's (a debug satchel is -Onone).
    public static let goals: [BenchGoal] = [
        BenchGoal("reopen_status_milliseconds", .atMost(200), origin: "issue 4", shortMargin: 0.1, releaseImageOnly: true),
        BenchGoal("restore_seconds", .atMost(5), origin: "issue 4", shortMargin: 0.1, releaseImageOnly: true),
        BenchGoal("card_bytes_ratio", .atMost(2), origin: "issue 4"),
        BenchGoal("latency_ratio", .atMost(2), origin: "issue 4", shortMargin: 0.25),
        BenchGoal("plaintext_hits", .atMost(0), origin: "issue 4"),
        BenchGoal("failures_side_by_side", .atMost(0), origin: "issue 4"),
        BenchGoal("card_files_rewritten", .atMost(0), origin: "issue 4"),
        BenchGoal("restore_after_side_by_side_complete", .atLeast(1), origin: "issue 4"),
    ]

    /// A figure that could not be measured is nil (and said in `notes`), never 0.
    public struct Result: BenchReport, Codable, Sendable {
        public var databaseBytes: Int64?
        // (a) Reopen after a crash: database + uncheckpointed WAL copied while a writer held them.
        public var crashWALBytes: Int64?
        /// `satchel status` on the crash image, process start included (median of 5). Goal <= 200.
        public var reopenStatusMilliseconds: Double?
        /// `DeviceDatabase.open` + first query in this process (median of 5).
        public var reopenInProcessMilliseconds: Double?
        // (b) Restore: snapshot of the whole database plus `records` journal records after it.
        /// `satchel restore --passphrase-stdin` into an empty data directory (median of 3). Goal <= 5.
        public var restoreSeconds: Double?
        public var restoreJournalRecords: Int?
        public var restoreSnapshotBytes: Int64?
        // (c) Card wear: journal growth per captured order, snapshots off.
        public var cardBytesPerOrder: Double?
        /// The card journal's encoded record (sealed entry + framing, `CardJournal.recordBytes`).
        public var encodedRecordBytesPerOrder: Double?
        /// The change entry's JSON before sealing.
        public var plaintextEntryBytesPerOrder: Double?
        /// cardBytesPerOrder / encodedRecordBytesPerOrder. Goal <= 2.
        public var cardBytesRatio: Double?
        /// Card files whose earlier bytes changed during the captures (append-only wants 0).
        public var cardFilesRewritten: Int
        // (d) Capture latency: `order new --confirm` children, with and without `satchel backup` running beside them.
        public var captureP50QuietMilliseconds: Double?
        public var captureP99QuietMilliseconds: Double?
        public var captureP50DuringSnapshotMilliseconds: Double?
        public var captureP99DuringSnapshotMilliseconds: Double?
        /// p99 during / p99 quiet. Goal <= 2.
        public var latencyRatio: Double?
        public var snapshotsDuringRun: Int
        public var snapshotMilliseconds: Double?
        /// Captures (or backups) that failed while the two ran side by side (must be 0).
        public var failuresSideBySide: Int
        /// After the side-by-side run: restore from the card has every order.
        public var restoreAfterSideBySideComplete: Bool
        // (e) Plaintext on the card.
        public var plaintextNeedles: Int
        public var plaintextHits: Int
        public var plaintextHitExamples: [String]
        public var notes: [String]

        public static var goals: [BenchGoal] { BackupBench.goals }

        public var figures: [String: Double] {
            var figures: [String: Double] = [
                "plaintext_hits": Double(plaintextHits), "failures_side_by_side": Double(failuresSideBySide),
                "card_files_rewritten": Double(cardFilesRewritten), "restore_after_side_by_side_complete": restoreAfterSideBySideComplete ? 1 : 0,
            ]
            figures["reopen_status_milliseconds"] = reopenStatusMilliseconds
            figures["restore_seconds"] = restoreSeconds
            figures["card_bytes_ratio"] = cardBytesRatio
            figures["latency_ratio"] = latencyRatio
            return figures
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case step(String, ChildProcess.Result)
        public var description: String {
            switch self {
            case .step(let what, let result): return "\(what) failed with exit \(result.status): \(result.stderr)"
            }
        }
    }

    static let passphrase = "bench backup passphrase 9"

    public static func run(_ options: Options) throws -> Result {
        let root = try DayRunner.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let home = root + "/device"
        let card = try FakeCard(path: root + "/card")
        var notes: [String] = []
        let quietEnvironment = ["SATCHEL_HOME": home, "SATCHEL_CARD": card.path, "SATCHEL_SNAPSHOT_EVERY": "1000000000"]
        func satchel(_ arguments: [String], _ environment: [String: String] = quietEnvironment, stdin: String? = nil) throws -> ChildProcess.Result {
            let result = try ChildProcess.run(options.satchelPath, arguments, environment: environment, stdin: stdin, timeoutSeconds: 300)
            guard result.succeeded else { throw Failure.step("satchel \(arguments.joined(separator: " "))", result) }
            return result
        }

        // A rep's database of the wanted size: the working set dominates it, history most of all.
        let customers: [String], parts: [String]
        do {
            let device = try DeviceDatabase.create(home: home, deviceID: "BENCH1", repID: "R01")
            _ = try Seeder.seed(device, plan: .init(customers: options.databaseMB * 500, products: 3_000, seed: 7, historyOrdersPerCustomer: 6,
                                                    today: CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())))
            try device.database.checkpoint()
            customers = try device.database.query("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 200") { $0.text(0) }
            parts = try device.database.query("SELECT part_number FROM products WHERE channel != 'display' ORDER BY part_number LIMIT 500") { $0.text(0) }
        }
        let databaseBytes = fileSize(home + "/satchel.db")
        _ = try satchel(["card", "init"], stdin: passphrase + "\n")
        var random = SeededRandom(seed: 11)
        func orderArguments() -> [String] {
            ["order", "new", "--customer", random.pick(customers)] + (0..<10).flatMap { _ in ["--line", "\(random.pick(parts)):\(random.int(1...24))"] } + ["--confirm", "--json"]
        }

        // (c) Card wear: each capture appends its record to the card journal, nothing else.
        let before = Dictionary(card.files().map { ($0.path, $0.bytes) }, uniquingKeysWith: { first, _ in first })
        let bytesBefore = before.values.reduce(0) { $0 + $1.count }
        let lastBefore = try DeviceDatabase.open(home: home).lastChangeSeq()
        for _ in 0..<options.records { _ = try satchel(orderArguments()) }
        let after = card.files()
        let grown = after.reduce(0) { $0 + $1.bytes.count } - bytesBefore
        let rewritten = after.filter { file in before[file.path].map { file.bytes.prefix($0.count) != $0 } ?? false }.count
        let entries = try DeviceDatabase.open(home: home).changes(after: lastBefore, limit: options.records + 10)
        let plaintextBytes = entries.reduce(0) { $0 + $1.record().count }
        let encodedBytes = try entries.reduce(0) { $0 + (try CardJournal.recordBytes(for: $1)) }
        let count = Double(max(1, entries.count))
        if entries.count != options.records { notes.append("expected \(options.records) journal entries, found \(entries.count)") }

        // (e) Plaintext: names, prices as text, the passphrase, and the marks plaintext JSON or
        // SQLite would leave; the card must show none of them.
        var needles = [passphrase, "SQLite format 3", "CREATE TABLE", "\"customer_id\"", "\"unit_price_minor\"", "\"change_id\""]
        do {
            let device = try DeviceDatabase.open(home: home)
            needles += try device.database.query("SELECT name FROM customers ORDER BY id LIMIT 300") { $0.text(0) }
            needles += try device.database.query("SELECT name FROM products ORDER BY part_number LIMIT 300") { $0.text(0) }
            needles += try device.database.query("SELECT DISTINCT total_minor FROM orders WHERE total_minor >= 1000 LIMIT 300") { row in
                let minor = row.int64(0)
                return "\(minor / 100).\(minor % 100 < 10 ? "0" : "")\(minor % 100)"
            }
        }
        let hits = card.plaintextHits(needles)

        // (b) Restore from the card onto a wiped handheld.
        var restoreTimes: [Double] = [], restoredRecords: Int?
        for attempt in 0..<3 {
            let target = root + "/restored-\(attempt)"
            let started = ChildProcess.monotonicSeconds()
            let restored = try satchel(["restore", "--passphrase-stdin", "--json", "--home", target], stdin: passphrase + "\n")
            restoreTimes.append(ChildProcess.monotonicSeconds() - started)
            let report = try JSONSerialization.jsonObject(with: Data(restored.stdout.utf8)) as? [String: Any]
            restoredRecords = report?["journal_records"] as? Int
            try? FileManager.default.removeItem(atPath: target)
        }
        let snapshotBytes = card.files().filter { $0.path.hasSuffix(".sealed") }.map { Int64($0.bytes.count) }.max()

        // (a) Reopen after a crash: a writer that never checkpoints leaves a WAL behind; copies
        // of the database and WAL taken while it holds them are what a power cut leaves.
        let crashSource = root + "/crash-source"
        mkdir(crashSource, 0o700)
        try FileManager.default.copyItem(atPath: home + "/satchel.db", toPath: crashSource + "/satchel.db")
        var statusTimes: [Double] = [], openTimes: [Double] = [], walBytes: Int64?
        do {
            let writer = try DeviceDatabase.open(home: crashSource)
            try writer.database.execute("PRAGMA wal_autocheckpoint=0")
            let capture = Capture(writer)
            for _ in 0..<300 {
                let lines = try (0..<10).map { _ in try OrderLineRequest.parse("\(random.pick(parts)):\(random.int(1...24))", position: 1) }
                _ = try capture.createOrder(customerID: random.pick(customers), priceLevel: nil, lines: lines, confirm: true, note: "")
            }
            walBytes = fileSize(crashSource + "/satchel.db-wal")
            for attempt in 0..<10 {
                let image = root + "/crash-\(attempt)"
                mkdir(image, 0o700)
                for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: crashSource + "/satchel.db" + suffix, toPath: image + "/satchel.db" + suffix) }
                let started = ChildProcess.monotonicSeconds()
                if attempt % 2 == 0 {
                    _ = try satchel(["status", "--home", image], [:])
                    statusTimes.append(ChildProcess.monotonicSeconds() - started)
                } else {
                    let reopened = try DeviceDatabase.open(home: image)
                    _ = try reopened.lastChangeSeq()
                    openTimes.append(ChildProcess.monotonicSeconds() - started)
                }
                try? FileManager.default.removeItem(atPath: image)
            }
        }

        // (d) Capture latency with and without a snapshot beside it, interleaved in rounds so
        // noise hits both sides alike. A snapshot copies and seals the whole database.
        var quiet: [Double] = [], busy: [Double] = [], failures = 0
        let backups = BackgroundLoop(path: options.satchelPath, arguments: ["backup"], environment: quietEnvironment)
        let rounds = 10, perRound = max(1, options.captures / rounds)
        for _ in 0..<rounds {
            for _ in 0..<perRound {
                let started = ChildProcess.monotonicSeconds()
                if (try? satchel(orderArguments())) == nil { failures += 1 }
                quiet.append(ChildProcess.monotonicSeconds() - started)
            }
            backups.start()
            usleep(30_000)  // let the first backup get past its start-up and into the copy
            for _ in 0..<perRound {
                let started = ChildProcess.monotonicSeconds()
                if (try? satchel(orderArguments())) == nil { failures += 1 }
                busy.append(ChildProcess.monotonicSeconds() - started)
            }
            backups.stop()
        }
        failures += backups.failures
        // Two writers to one card journal (the capture's mirror and the backup's catch-up) must
        // not have lost or mangled anything: the card alone must rebuild every order.
        _ = try satchel(["backup"])
        let target = root + "/restored-after"
        _ = try satchel(["restore", "--passphrase-stdin", "--home", target], stdin: passphrase + "\n")
        let expectedOrders = try DeviceDatabase.open(home: home).database.int64("SELECT count(*) FROM orders")
        let restoredOrders = try DeviceDatabase.open(home: target).database.int64("SELECT count(*) FROM orders")
        if restoredOrders != expectedOrders { notes.append("restore after the side-by-side run has \(restoredOrders) orders, the device \(expectedOrders)") }
        if !backups.errors.isEmpty { notes.append("backup failures: " + backups.errors.prefix(3).joined(separator: " | ")) }

        let p99Quiet = percentile(quiet, 0.99), p99Busy = percentile(busy, 0.99)
        if entries.isEmpty { notes.append("card_bytes_ratio: no journal entries found after the captures") }
        if restoredRecords == nil { notes.append("satchel restore --json printed no journal_records") }
        let milliseconds = { (seconds: Double?) in seconds.map { round1($0 * 1000) } }
        return Result(
            databaseBytes: databaseBytes, crashWALBytes: walBytes,
            reopenStatusMilliseconds: milliseconds(median(statusTimes)), reopenInProcessMilliseconds: milliseconds(median(openTimes)),
            restoreSeconds: median(restoreTimes).map(round3), restoreJournalRecords: restoredRecords, restoreSnapshotBytes: snapshotBytes,
            cardBytesPerOrder: entries.isEmpty ? nil : round1(Double(grown) / count),
            encodedRecordBytesPerOrder: entries.isEmpty ? nil : round1(Double(encodedBytes) / count),
            plaintextEntryBytesPerOrder: entries.isEmpty ? nil : round1(Double(plaintextBytes) / count),
            cardBytesRatio: encodedBytes > 0 ? round3(Double(grown) / Double(encodedBytes)) : nil,
            cardFilesRewritten: rewritten,
            captureP50QuietMilliseconds: milliseconds(percentile(quiet, 0.5)), captureP99QuietMilliseconds: milliseconds(p99Quiet),
            captureP50DuringSnapshotMilliseconds: milliseconds(percentile(busy, 0.5)), captureP99DuringSnapshotMilliseconds: milliseconds(p99Busy),
            latencyRatio: p99Busy.flatMap { busy in p99Quiet.map { round3(busy / $0) } }, snapshotsDuringRun: backups.completed,
            snapshotMilliseconds: milliseconds(median(backups.durations)), failuresSideBySide: failures,
            restoreAfterSideBySideComplete: restoredOrders == expectedOrders,
            plaintextNeedles: needles.count, plaintextHits: hits.count, plaintextHitExamples: Array(hits.prefix(5)), notes: notes)
    }

    /// Runs a command again and again on its own thread between `start` and `stop` (which waits
    /// for the child in flight), like the daemon's snapshots running beside the rep's captures.
    final class BackgroundLoop: @unchecked Sendable {
        let path: String, arguments: [String], environment: [String: String]
        private let lock = NSLock()
        private var running = false
        private var thread: Thread?
        private let finished = DispatchSemaphore(value: 0)
        private(set) var completed = 0, failures = 0
        private(set) var durations: [Double] = [], errors: [String] = []

        init(path: String, arguments: [String], environment: [String: String]) {
            self.path = path; self.arguments = arguments; self.environment = environment
        }

        private var shouldRun: Bool { lock.withLock { running } }

        func start() {
            lock.withLock { running = true }
            let thread = Thread { [self] in
                while shouldRun {
                    let started = ChildProcess.monotonicSeconds()
                    let result = try? ChildProcess.run(path, arguments, environment: environment, timeoutSeconds: 300)
                    lock.withLock {
                        if let result, result.succeeded {
                            completed += 1
                            durations.append(ChildProcess.monotonicSeconds() - started)
                        } else {
                            failures += 1
                            errors.append(result?.stderr ?? "could not start")
                        }
                    }
                }
                finished.signal()
            }
            self.thread = thread
            thread.start()
        }

        func stop() {
            lock.withLock { running = false }
            // Every wait has a deadline: a backup takes seconds, not minutes.
            if finished.wait(timeout: .now() + 300) == .timedOut { lock.withLock { failures += 1; errors.append("backup loop did not stop") } }
            thread = nil
        }
    }

    /// nil when the file is not there: a size that could not be read is not 0.
    static func fileSize(_ path: String) -> Int64? {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value
    }

    /// nil for no values: a percentile of nothing is not 0.
    static func percentile(_ values: [Double], _ fraction: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }

    static func median(_ values: [Double]) -> Double? { percentile(values, 0.5) }
    static func round1(_ value: Double) -> Double { (value * 10).rounded() / 10 }
    static func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}
