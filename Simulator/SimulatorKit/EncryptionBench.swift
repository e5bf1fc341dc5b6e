import Agent
import Field
import Foundation
import Seal
import Store

/// Every file under `directories` searched for each needle's UTF-8 bytes: the check that a
/// locked device leaks nothing. Run on a device without an app password it must find them
/// (`satchel-sim bench encryption` reports both), so a scan that cannot find anything is caught.
public enum PlaintextScan {
    public struct Finding: Codable, Sendable, Equatable {
        public var file: String
        public var needle: String
    }

    /// `secrets`: binary needles (the device's sync key), named in a finding by their label only.
    public static func scan(_ directories: [String], needles: [String], secrets: [(label: String, bytes: [UInt8])] = []) -> [Finding] {
        var findings: [Finding] = []
        let patterns = needles.filter { !$0.isEmpty }.map { ($0, Data($0.utf8)) } + secrets.filter { !$0.bytes.isEmpty }.map { ($0.label, Data($0.bytes)) }
        for directory in directories {
            guard let walker = FileManager.default.enumerator(atPath: directory) else { continue }
            for case let relative as String in walker {
                let path = directory + "/" + relative
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                      let data = FileManager.default.contents(atPath: path) else { continue }
                for (needle, bytes) in patterns where data.range(of: bytes) != nil { findings.append(Finding(file: path, needle: needle)) }
            }
        }
        return findings
    }

    /// What a simulated day's device must not show: every customer name and part number of the
    /// working set, the JSON key every priced line carries, the sync password, the card's
    /// passphrase and the app password.
    public static func needles(erpDatabase: String, secrets: [String]) throws -> [String] {
        var options = Database.Options()
        options.readOnly = true
        options.create = false
        let erp = try Database(path: erpDatabase, options: options)
        let names = try erp.query("SELECT name FROM customers") { $0.text(0) }
        let parts = try erp.query("SELECT part_number FROM products") { $0.text(0) }
        return names + parts + ["unit_price_minor"] + secrets
    }
}

/// `satchel-sim bench encryption`: what the app password and the sealed database cost and
/// what they hide, measured side by side in one run.
public struct EncryptionBench {
    public struct Options: Sendable {
        public var orders: Int
        public var unlocks: Int
        public var satchelPath: String
        public var hardware: String
        public var day: Bool
        public init(orders: Int, unlocks: Int, satchelPath: String, hardware: String, day: Bool = true) {
            self.orders = orders; self.unlocks = unlocks; self.satchelPath = satchelPath; self.hardware = hardware; self.day = day
        }
    }

    public static let goals: [BenchGoal] = [
        BenchGoal("capture_ratio_sealed_vs_plain", .atLeast(0.7), origin: "issue 14", shortMargin: 0.1),
        BenchGoal("unlock_seconds", .atMost(1.0), origin: "issue 14"),
        BenchGoal("unlock_extra_rss_mb", .atMost(16), origin: "issue 14"),
        BenchGoal("plaintext_found_locked", .atMost(0), origin: "issue 14"),
        // The control: the same day without an app password, where the scan must find plaintext.
        BenchGoal("plaintext_found_without_password", .atLeast(1), origin: "issue 14 (the scan can fail)"),
    ]

    public struct Result: BenchReport, Codable, Sendable {
        public var captureRatioSealedVsPlain: Double?
        public var ordersPerSide: Int
        public var sealedOrdersPerSecond: Double?
        public var plainOrdersPerSecond: Double?
        /// Median wall time of the `satchel unlock` process (start, Argon2id, session file, exit).
        public var unlockSeconds: Double?
        /// Median time of `DeviceLock.unlock` alone, in this process.
        public var unlockInProcessSeconds: Double?
        public var unlockMaxRSSKiB: Int?
        /// The same binary running `satchel lock` (no Argon2id): the baseline.
        public var lockMaxRSSKiB: Int?
        public var unlockExtraRssMb: Double?
        public var plaintextFoundLocked: Int?
        public var plaintextFoundWithoutPassword: Int?
        public var needles: Int?
        public var filesScanned: Int?
        public var examplesFound: [PlaintextScan.Finding]
        public var notes: [String]

        public static var goals: [BenchGoal] { EncryptionBench.goals }
        public var figures: [String: Double] {
            var figures: [String: Double] = [:]
            figures["capture_ratio_sealed_vs_plain"] = captureRatioSealedVsPlain
            figures["unlock_seconds"] = unlockSeconds
            figures["unlock_extra_rss_mb"] = unlockExtraRssMb
            figures["plaintext_found_locked"] = plaintextFoundLocked.map(Double.init)
            figures["plaintext_found_without_password"] = plaintextFoundWithoutPassword.map(Double.init)
            return figures
        }
    }

    public static func run(_ options: Options) throws -> Result {
        let root = try DayRunner.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var result = Result(ordersPerSide: options.orders, examplesFound: [], notes: [])

        let (sealed, plain) = try captureRace(root: root, orders: options.orders)
        result.sealedOrdersPerSecond = CaptureBench.round3(Double(options.orders) / sealed)
        result.plainOrdersPerSecond = CaptureBench.round3(Double(options.orders) / plain)
        result.captureRatioSealedVsPlain = CaptureBench.round3(plain / sealed)

        try measureUnlock(root: root, options: options, into: &result)

        if options.day {
            do {
                let appPassword = "Żółw-Ёжик 2026"
                let locked = try scannedDay(root: root + "/day-locked", options: options, appPassword: appPassword)
                let plainDay = try scannedDay(root: root + "/day-plain", options: options, appPassword: nil)
                result.plaintextFoundLocked = locked.findings.count
                result.plaintextFoundWithoutPassword = plainDay.findings.count
                result.needles = locked.needles
                result.filesScanned = locked.files
                result.examplesFound = Array(locked.findings.prefix(5))
            } catch {
                result.notes.append("plaintext scan not measured: \(error)")
            }
        } else {
            result.notes.append("plaintext scan not run (--no-day)")
        }
        return result
    }

    /// Field's capture on a sealed database against the same on a plain one, interleaved in
    /// rounds of 10 so a busy moment of the machine hits both alike.
    static func captureRace(root: String, orders: Int) throws -> (sealed: Double, plain: Double) {
        let today = CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())
        let plan = Seeder.Plan(customers: 200, products: 300, seed: 11, historyOrdersPerCustomer: 0, routeStops: 1...1, today: today)
        let sealedHome = root + "/sealed"
        mkdir(sealedHome, 0o700)
        let key = try PageEncryption(key: .random(count: 32))
        key.register(directory: sealedHome)
        defer { PageEncryption.unregister(directory: sealedHome) }
        let sealedDevice = try DeviceDatabase.create(home: sealedHome, deviceID: "SEALED", repID: "R01")
        guard sealedDevice.database.encryption != nil else { throw DayRunner.Failure.setup("the sealed side opened without its key") }
        _ = try Seeder.seed(sealedDevice, plan: plan)
        let plainDevice = try DeviceDatabase.create(home: root + "/plain", deviceID: "PLAIN", repID: "R01")
        _ = try Seeder.seed(plainDevice, plan: plan)
        let customers = try plainDevice.database.query("SELECT id FROM customers ORDER BY id") { $0.text(0) }
        let parts = try plainDevice.database.query("SELECT part_number FROM products WHERE channel <> 'display' ORDER BY part_number") { $0.text(0) }
        var random = SeededRandom(seed: 99)
        let work: [(String, [OrderLineRequest])] = (0..<orders).map { _ in
            (random.pick(customers), (0..<10).map { _ in OrderLineRequest(partNumber: random.pick(parts), quantity: Int64(random.int(1...40))) })
        }
        let sealedCapture = Capture(sealedDevice), plainCapture = Capture(plainDevice)
        var sealed = 0.0, plain = 0.0, index = 0
        while index < work.count {
            let slice = work[index..<min(index + 10, work.count)]
            var start = ChildProcess.monotonicSeconds()
            for (customer, lines) in slice { _ = try sealedCapture.createOrder(customerID: customer, lines: lines, confirm: true) }
            sealed += ChildProcess.monotonicSeconds() - start
            start = ChildProcess.monotonicSeconds()
            for (customer, lines) in slice { _ = try plainCapture.createOrder(customerID: customer, lines: lines, confirm: true) }
            plain += ChildProcess.monotonicSeconds() - start
            index += 10
        }
        return (sealed, plain)
    }

    static func measureUnlock(root: String, options: Options, into result: inout Result) throws {
        let home = root + "/unlock"
        let runtime = "/dev/shm/satchel-bench-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: runtime) }
        let environment = ["SATCHEL_HOME": home, "SATCHEL_RUNTIME_DIR": runtime]
        let password = "Żółw-Ёжик 2026"
        for (arguments, stdin) in [(["init", "--device", "UNLOCK", "--rep", "R01"], nil as String?), (["password", "set"], password + "\n" + password + "\n")] {
            let done = try ChildProcess.run(options.satchelPath, arguments, environment: environment, stdin: stdin, timeoutSeconds: 60)
            guard done.succeeded else { throw DayRunner.Failure.command("satchel \(arguments.joined(separator: " "))", done) }
        }
        var wall: [Double] = [], inProcess: [Double] = [], unlockRSS: [Int] = [], lockRSS: [Int] = []
        let lock = DeviceLock(home: home, settings: try DeviceSettings.load(home: home))
        for _ in 0..<max(1, options.unlocks) {
            let report = root + "/rss.txt"
            for (arguments, stdin) in [(["lock"], nil as String?), (["unlock"], password + "\n")] {
                let start = ChildProcess.monotonicSeconds()
                let done = try ChildProcess.run("/usr/bin/time", ["-f", "%M", "-o", report, options.satchelPath] + arguments,
                                                environment: environment, stdin: stdin, timeoutSeconds: 60)
                let seconds = ChildProcess.monotonicSeconds() - start
                guard done.succeeded, let text = try? String(contentsOfFile: report, encoding: .utf8),
                      let kib = Int(text.split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") else {
                    throw DayRunner.Failure.command("satchel \(arguments[0]) under /usr/bin/time", done)
                }
                if arguments == ["unlock"] { wall.append(seconds); unlockRSS.append(kib) } else { lockRSS.append(kib) }
            }
            let start = ChildProcess.monotonicSeconds()
            setenv("SATCHEL_RUNTIME_DIR", runtime, 1)
            _ = try lock.unlock(password: password)
            inProcess.append(ChildProcess.monotonicSeconds() - start)
        }
        func median<T: Comparable>(_ values: [T]) -> T { values.sorted()[values.count / 2] }
        result.unlockSeconds = CaptureBench.round3(median(wall))
        result.unlockInProcessSeconds = CaptureBench.round3(median(inProcess))
        result.unlockMaxRSSKiB = median(unlockRSS)
        result.lockMaxRSSKiB = median(lockRSS)
        result.unlockExtraRssMb = CaptureBench.round3(Double(median(unlockRSS) - median(lockRSS)) * 1024 / 1_000_000)
    }

    /// A rep's day through the real satchel (`DayRunner`), the device locked at its end (with an
    /// app password), then every file of the device and the card scanned.
    public static func scannedDay(root: String, options: Options, appPassword: String?, seed: UInt64 = 3)
        throws -> (findings: [PlaintextScan.Finding], needles: Int, files: Int) {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var day = DayRunner.Options(seed: seed, keep: root, satchelPath: options.satchelPath, hardware: options.hardware, customers: 60, products: 80)
        day.appPassword = appPassword
        let report = try DayRunner.run(day)
        guard report.problems.isEmpty, report.lost == 0 else {
            throw DayRunner.Failure.setup("the day had problems: \(report.problems.prefix(3).joined(separator: "; "))")
        }
        // The device's sync key as `satchel init` made it (DayRunner keeps a copy outside the
        // scanned directories): neither its bytes nor their hex may be anywhere, device.key included.
        let deviceKey = (FileManager.default.contents(atPath: root + "/witness/device.key")).map { Array($0) } ?? []
        guard deviceKey.count == 32 else { throw DayRunner.Failure.setup("no copy of the device key in \(root)/witness: the scan would miss it") }
        let needles = try PlaintextScan.needles(erpDatabase: root + "/hub/erp/satchel.db",
                                                secrets: ["hasło-synchronizacji", "day passphrase \(seed)", Hex.encode(deviceKey)] + (appPassword.map { [$0] } ?? []))
        let directories = [root + "/device", root + "/card"]
        let files = directories.reduce(0) { count, directory in
            count + ((FileManager.default.enumerator(atPath: directory)?.allObjects.count) ?? 0)
        }
        return (PlaintextScan.scan(directories, needles: needles, secrets: [("device.key bytes", deviceKey)]), needles.count + 1, files)
    }
}
