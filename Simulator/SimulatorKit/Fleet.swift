import Field
import Foundation
public import Hub
import Postgres
public import Seal
import Store
import Sync
import Transport
public import ModemSimulator

/// `satchel-sim fleet` (issue 15): N handhelds (`FleetDevice`, the real protocol through
/// `SyncClient`) against one or more real `satchel-hub serve` processes on one storage, each
/// device doing a day's full sync (orders up; prices, stock and the office's answers down),
/// their starts spread over a window. Before the window, not measured: the hub's storage is
/// made, the master data imported, every rep and device provisioned through the hub's storage
/// API, and each device's morning init (with yesterday's orders) run through the hubs; then the
/// office answers yesterday's orders and the ERP changes prices and stock, so each day's sync
/// has them to bring down. After the run, what each device was acknowledged for is checked
/// against what the hub's storage holds, by document id: lost and duplicates come from there,
/// never from the devices' belief.
public struct Fleet {
    public struct Options: Sendable {
        public var devices: Int
        /// Addresses the hubs listen on, one `satchel-hub serve` each (port 0: one is picked).
        public var hubs: [String] = ["127.0.0.1:0"]
        /// gprs, edge, umts, or nil for an unshaped loopback.
        public var link: LinkProfile?
        public var windowSeconds: Double = 10
        /// Seconds into the window when the first hub process is killed (SIGKILL).
        public var killHubAfter: Double?
        /// A PostgreSQL URL whose role may create databases: the hubs share a database of their
        /// own made there (dropped afterwards); nil: one SQLite file.
        public var postgresAdmin: String?
        public var hubSessions = 2048
        public var retryAfter = 5
        public var customersPerDevice = 30
        public var customerPool = 600
        public var products = 300
        public var ordersPerDay: ClosedRange<Int> = 4...12
        public var passwordCost: PasswordHash.Cost = .interactive
        public var hubBinary: String
        public var seed: UInt64 = 15
        public var setupConcurrency = 16
        /// The first devices of the fleet that also keep a real device database written by the
        /// agent's `DeviceDownload`, compared with their light working set at every DONE.
        public var checkedDevices = 1
        /// Where the acknowledged document ids go, one `device<TAB>document` a line (for a
        /// check of one's own against the hub's storage).
        public var acknowledgedOut: String?
        public var workDirectory: String?
        public init(devices: Int, hubBinary: String) { self.devices = devices; self.hubBinary = hubBinary }
    }

    public struct Report: Codable, Sendable {
        public var devices: Int
        public var syncsOK: Int
        public var failed: Int
        public var refused: Int
        public var retries: Int
        public var lost: Int
        public var duplicates: Int
        public var storedNotAcknowledged: Int
        public var documentsAcknowledged: Int
        public var syncsPerSecond: Double
        public var p50Seconds: Double
        public var p99Seconds: Double
        public var maxSeconds: Double
        public var maxConcurrent: Int
        public var hubMaxOpenSessions: Int
        public var hubMaxRSSMB: Double
        public var hubs: Int
        public var checkedDevices: Int
        public var hubKilled: Bool
        public var storage: String
        public var link: String
        public var windowSeconds: Double
        public var daySeconds: Double
        public var setupSeconds: Double
        public var provisionSeconds: Double
        public var rowsDownPerSync: Double
        /// Of those, rows sent as differences to the row the device held (protocol 5).
        public var heldRowsDownPerSync: Double
        public var workingSetRowsPerDevice: Double
        public var firstErrors: [String]
        /// The PostgreSQL database the run made, when kept (a --work-directory was given).
        public var database: String?
        public var notes: [String]

        enum CodingKeys: String, CodingKey {
            case devices, refused, retries, lost, duplicates, failed, hubs, storage, link, notes, database
            case syncsOK = "syncs_ok"
            case storedNotAcknowledged = "stored_not_acknowledged"
            case documentsAcknowledged = "documents_acknowledged"
            case syncsPerSecond = "syncs_per_s"
            case p50Seconds = "p50_s", p99Seconds = "p99_s", maxSeconds = "max_s"
            case maxConcurrent = "max_concurrent"
            case hubMaxOpenSessions = "hub_max_open_sessions"
            case hubMaxRSSMB = "hub_max_rss_mb"
            case hubKilled = "hub_killed"
        case checkedDevices = "checked_devices"
            case windowSeconds = "window_s", daySeconds = "day_s", setupSeconds = "setup_s", provisionSeconds = "provision_s"
            case rowsDownPerSync = "rows_down_per_sync"
            case heldRowsDownPerSync = "held_rows_down_per_sync"
            case workingSetRowsPerDevice = "working_set_rows_per_device"
            case firstErrors = "first_errors"
        }

        /// Whether the run meets the command's own conditions: every device synced, nothing lost,
        /// nothing twice.
        public var passed: Bool { lost == 0 && duplicates == 0 && syncsOK == devices && failed == 0 }
    }

    static let password = "hasło-floty"
    static let now: Int64 = 1_795_428_000_000

    public static func run(_ options: Options, progress: @escaping @Sendable (String) -> Void = { _ in }) throws -> Report {
        guard options.devices >= 1, !options.hubs.isEmpty else { throw FleetFailure("at least one device and one hub") }
        let root = options.workDirectory ?? NSTemporaryDirectory() + "satchel-fleet-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { if options.workDirectory == nil { try? FileManager.default.removeItem(atPath: root) } }

        // Storage.
        let store: FleetStore
        var dropDatabase: (() -> Void)?
        var databaseName: String?
        if let admin = options.postgresAdmin {
            let connection = try PostgresConnection(url: admin)
            let name = "fleet_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
            try connection.execute("CREATE DATABASE \(name) ENCODING 'UTF8' TEMPLATE template0")
            if options.workDirectory == nil {
                dropDatabase = { _ = try? connection.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
            } else {
                databaseName = name
            }
            guard var components = URLComponents(string: admin) else { throw FleetFailure("--postgres \(admin) is not a URL") }
            components.path = "/" + name
            store = .postgres(components.string ?? admin)
        } else {
            store = .sqlite(root + "/hub.db")
        }
        defer { dropDatabase?() }
        let storage = try store.open()
        let hubKey = try storage.hubKey().publicKey

        // Master data: one territory's ERP extract, each rep given a slice of its customers.
        let erp = try DeviceDatabase.create(home: root + "/erp", deviceID: "ERP1", repID: "R01", clock: ManualClock(now))
        _ = try Seeder.seed(erp, plan: Seeder.Plan(customers: options.customerPool, products: options.products, seed: options.seed,
                                                   historyOrdersPerCustomer: 1, today: CalendarDay.string(fromMilliseconds: SyncServer.systemNow())))
        try storage.importMasterData(from: erp.path, assignTo: nil)
        let customers = try erp.database.query("SELECT id FROM customers ORDER BY id") { $0.text(0) }
        let parts = try erp.database.query("SELECT part_number FROM products ORDER BY part_number") { $0.text(0) }

        // Provisioning, through the storage API.
        let provisionStarted = ChildProcess.monotonicSeconds()
        let hash = try PasswordHash.hash(password: password, cost: options.passwordCost)
        let width = max(5, String(options.devices).count)
        let devices = try (0..<options.devices).map { index -> FleetDevice in
            let number = String(repeating: "0", count: width - String(index + 1).count) + String(index + 1)
            let slice = (0..<min(options.customersPerDevice, customers.count)).map { customers[(index * options.customersPerDevice + $0) % customers.count] }
            return try FleetDevice(id: "FL\(number)", rep: "FR\(number)", customers: slice, seed: options.seed &+ UInt64(index) &* 7919,
                                   checkedHome: index < options.checkedDevices ? root + "/checked/FL\(number)" : nil)
        }
        try parallel(devices, threads: store.isPostgres ? 4 : 1) { device, storage in
            try storage.addRep(id: device.rep, name: "Paweł Wróblewski", passwordHash: hash)
            try storage.addDevice(id: device.id, rep: device.rep, publicKey: device.key.publicKey, now: SyncServer.systemNow())
        } storage: { try store.open() }
        try store.assign(devices.map { ($0.rep, $0.customers) })
        let provisionSeconds = ChildProcess.monotonicSeconds() - provisionStarted
        progress("provisioned \(devices.count) devices in \(String(format: "%.1f", provisionSeconds)) s")

        // The hubs.
        var hubs: [FleetHub] = []
        defer { for hub in hubs { hub.stop() } }
        for (index, listen) in options.hubs.enumerated() {
            hubs.append(try FleetHub(binary: options.hubBinary, storage: store.arguments, listen: listen, sessions: options.hubSessions,
                                     retryAfter: options.retryAfter, log: root + "/hub-\(index).log"))
        }
        let addresses = hubs.map(\.address)
        progress("hubs listening on \(addresses.joined(separator: ", "))")

        // The morning: each device's init with yesterday's orders, unshaped, not measured.
        let setupStarted = ChildProcess.monotonicSeconds()
        let tally = Tally()
        try parallel(devices, threads: options.setupConcurrency) { (device: FleetDevice, _: Void) in
            try device.capture(orders: 3, parts: parts, at: now - 86_400_000)
            try attempt(device, mode: .initialise, hubs: addresses, hubKey: hubKey, link: nil, tally: tally, giveUp: Deadline.after(seconds: 600),
                        progress: progress)
        } storage: { () }
        let setupSeconds = ChildProcess.monotonicSeconds() - setupStarted
        let workingSetRows = Double(devices.map(\.sink.rowCount).reduce(0, +)) / Double(devices.count)
        progress("morning inits done in \(String(format: "%.1f", setupSeconds)) s, \(Int(workingSetRows)) working-set rows per device")

        // The office answers yesterday's orders; the ERP's evening change of prices and stock.
        try parallel(devices, threads: store.isPostgres ? 4 : 1) { device, storage in
            for (index, order) in device.acknowledged.prefix(2).enumerated() {
                try storage.setDocumentState(device: device.id, entity: "order", entityId: order, state: index == 0 ? "accepted" : "rejected",
                                             approval: nil, now: SyncServer.systemNow())
            }
        } storage: { try store.open() }
        let changedPrices = Array(parts.prefix(max(1, parts.count / 10))), changedStock = Array(parts.prefix(max(1, parts.count * 3 / 10)))
        try store.execute("UPDATE prices SET price_minor = price_minor + 5 WHERE part_number IN (\(changedPrices.map { "'\($0)'" }.joined(separator: ", ")))")
        try store.execute("UPDATE stock SET quantity = quantity + 7 WHERE part_number IN (\(changedStock.map { "'\($0)'" }.joined(separator: ", ")))")

        // The day.
        for device in devices {
            try device.capture(orders: device.random.int(options.ordersPerDay), parts: parts, at: now)
        }
        let window = max(0, options.windowSeconds)
        var startRandom = SeededRandom(seed: options.seed ^ 0x5eed)
        let starts = devices.map { _ in Double.random(in: 0...1, using: &startRandom) * window }
        let order = starts.indices.sorted { starts[$0] < starts[$1] }
        let dayTally = Tally()
        let done = DispatchGroup()
        let dayStarted = ChildProcess.monotonicSeconds()
        let sampler = Sampler(hubs: hubs)
        sampler.start()
        var killed = false
        let killAt = options.killHubAfter
        for index in order {
            while true {
                let elapsed = ChildProcess.monotonicSeconds() - dayStarted
                if let killAt, !killed, elapsed >= killAt, hubs.count > 1 {
                    hubs[0].kill()
                    killed = true
                    progress("killed hub 0 (pid \(hubs[0].pid)) at \(String(format: "%.1f", elapsed)) s")
                }
                if elapsed >= starts[index] { break }
                usleep(UInt32(min(0.05, starts[index] - elapsed) * 1_000_000) + 1)
            }
            let device = devices[index]
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                let started = ChildProcess.monotonicSeconds()
                do {
                    try attempt(device, mode: .full, hubs: addresses, hubKey: hubKey, link: options.link, tally: dayTally,
                                giveUp: Deadline.after(seconds: window + 900), first: index % addresses.count,
                                progress: progress)
                    dayTally.finished(seconds: ChildProcess.monotonicSeconds() - started, rows: device.sink.rowsDown, held: device.sink.heldDown)
                } catch {
                    dayTally.failed("\(device.id): \(error)")
                }
            }
            thread.stackSize = 512 << 10
            thread.start()
        }
        // The kill may be due after the last start.
        while let killAt, !killed, hubs.count > 1, done.wait(timeout: .now() + 0.05) == .timedOut {
            if ChildProcess.monotonicSeconds() - dayStarted >= killAt {
                hubs[0].kill()
                killed = true
                progress("killed hub 0 (pid \(hubs[0].pid))")
            }
        }
        done.wait()
        let daySeconds = ChildProcess.monotonicSeconds() - dayStarted
        sampler.stop()
        let rss = hubs.map(\.peakRSSKiB).max() ?? 0

        // The check: what the hub holds, by id, against what each device was acknowledged for.
        let held = try store.heldDocuments()
        var lost = 0, duplicates = 0, acknowledgedCount = 0
        var acknowledgedSet = Set<String>()
        for device in devices {
            for order in device.acknowledged {
                acknowledgedCount += 1
                acknowledgedSet.insert(order)
                if held[order]?.device != device.id { lost += 1 }
            }
        }
        for (_, entry) in held where entry.count > 1 { duplicates += entry.count - 1 }
        let storedNotAcknowledged = held.keys.filter { !acknowledgedSet.contains($0) }.count
        if let path = options.acknowledgedOut {
            let lines = devices.flatMap { device in device.acknowledged.map { "\(device.id)\t\($0)" } }
            try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }

        let (durations, rowsDown, failures, errors, refused, retries, concurrent) = dayTally.snapshot()
        let heldDown = dayTally.heldRows
        let sorted = durations.sorted()
        func percentile(_ p: Double) -> Double { sorted.isEmpty ? .nan : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)] }
        return Report(devices: devices.count, syncsOK: durations.count, failed: failures, refused: refused, retries: retries, lost: lost,
                      duplicates: duplicates, storedNotAcknowledged: storedNotAcknowledged, documentsAcknowledged: acknowledgedCount,
                      syncsPerSecond: Double(durations.count) / daySeconds, p50Seconds: percentile(0.5), p99Seconds: percentile(0.99),
                      maxSeconds: sorted.last ?? .nan, maxConcurrent: concurrent, hubMaxOpenSessions: sampler.maxOpen,
                      hubMaxRSSMB: Double(rss) / 1024, hubs: hubs.count,
                      checkedDevices: devices.filter { $0.checked != nil }.count, hubKilled: killed, storage: store.isPostgres ? "postgresql" : "sqlite",
                      link: options.link?.name ?? "none", windowSeconds: window, daySeconds: daySeconds, setupSeconds: setupSeconds,
                      provisionSeconds: provisionSeconds, rowsDownPerSync: durations.isEmpty ? 0 : Double(rowsDown) / Double(durations.count),
                      heldRowsDownPerSync: durations.isEmpty ? 0 : Double(heldDown) / Double(durations.count),
                      workingSetRowsPerDevice: workingSetRows, firstErrors: errors, database: databaseName,
                      notes: ["\(options.customersPerDevice) customers per rep out of \(customers.count), \(parts.count) products; "
                              + "orders per day \(options.ordersPerDay.lowerBound)-\(options.ordersPerDay.upperBound) of 5-30 lines; the ERP changed "
                              + "\(changedPrices.count) products' prices and \(changedStock.count) products' stock, the office answered 2 orders per device",
                              "password hash: argon2id ops \(options.passwordCost.opsLimit), \(options.passwordCost.memLimit >> 20) MiB (verified by the hub at every session)",
                              "checked_devices: devices whose every download also went into a real device database through the agent's DeviceDownload and matched the light working set table by table",
                              "syncs_per_s: syncs ok / seconds from the window's start to the last device's end; p50/p99: a device's first connect to its sync's end, retries included",
                              "hub_max_open_sessions: the hubs' sessions_open gauge summed, sampled every 0.2 s; max_concurrent: devices between connect and session end, counted by the devices"])
    }

    /// One device's session until it succeeds: refused (hub busy) waits what it was told; a
    /// link that failed (a hub gone) tries the next hub after a short pause.
    static func attempt(_ device: FleetDevice, mode: SyncMode, hubs: [String], hubKey: [UInt8], link: LinkProfile?, tally: Tally, giveUp: Deadline,
                        first: Int = 0, progress: (String) -> Void) throws {
        var hub = first
        var lastError = ""
        while !giveUp.hasPassed {
            let deadline = Deadline.after(seconds: 300)
            do {
                let socket = try TCP.connect(hubs[hub % hubs.count], deadline: .after(seconds: 30))
                let stream: any ByteStream = link.map { ShapedStream(socket, down: $0.bytesPerSecond, up: $0.upBytesPerSecond, roundTrip: $0.roundTripSeconds) } ?? socket
                tally.opened()
                defer { tally.closed(); stream.close() }
                _ = try device.session(stream, hubKey: hubKey, password: password, mode: mode, deadline: deadline)
                return
            } catch SyncFailure.hubError(let code, let message) where code == .hubBusy {
                tally.refusal()
                let seconds = message.split(separator: " ").reversed().dropFirst().first.flatMap { Int($0) } ?? 5
                usleep(UInt32(min(seconds, 60)) * 1_000_000 + UInt32.random(in: 0...500_000))
            } catch {
                lastError = "\(error)"
                let text = "\(device.id) \(mode) via \(hubs[hub % hubs.count]): \(error)"
                if tally.retry(text) { progress("attempt failed, retrying: " + text) }
                hub += 1
                usleep(200_000 + UInt32.random(in: 0...300_000))
            }
        }
        throw FleetFailure("gave up: \(lastError)")
    }

    /// `body` for every item on `threads` threads, each with its own `storage()`; the first error is thrown.
    static func parallel<S>(_ items: [FleetDevice], threads: Int, _ body: @escaping (FleetDevice, S) throws -> Void,
                            storage: @escaping () throws -> S) throws {
        let work = ParallelWork(items: items, body: body, storage: storage)
        let group = DispatchGroup()
        for _ in 0..<max(1, threads) {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                work.run()
            }
        }
        group.wait()
        if let failure = work.failure { throw failure }
    }
}

/// The shared queue of `Fleet.parallel`.
final class ParallelWork<S>: @unchecked Sendable {
    let items: [FleetDevice]
    let body: (FleetDevice, S) throws -> Void
    let storage: () throws -> S
    private let lock = NSLock()
    private var next = 0
    private(set) var failure: (any Error)?

    init(items: [FleetDevice], body: @escaping (FleetDevice, S) throws -> Void, storage: @escaping () throws -> S) {
        self.items = items; self.body = body; self.storage = storage
    }

    func run() {
        do {
            let own = try storage()
            while true {
                lock.lock()
                let index = next
                next += 1
                let stop = failure != nil
                lock.unlock()
                guard index < items.count, !stop else { return }
                try body(items[index], own)
            }
        } catch {
            lock.lock(); if failure == nil { failure = error }; lock.unlock()
        }
    }
}

/// The counters the devices share.
final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var durations: [Double] = []
    private var rows = 0
    private var failures = 0
    private var errors: [String] = []
    private var refused = 0
    private var retries = 0
    private var open = 0
    private var maxOpen = 0

    func opened() { lock.lock(); open += 1; maxOpen = max(maxOpen, open); lock.unlock() }
    func closed() { lock.lock(); open -= 1; lock.unlock() }
    func refusal() { lock.lock(); refused += 1; lock.unlock() }
    /// A failed attempt (retried): counted, and the first few kept with their error, so a run
    /// whose sessions all fail says why instead of retrying silently until it gives up.
    private var attemptErrors: [String] = []
    /// Returns whether `error` is one of the first few (to be shown as it happens).
    @discardableResult
    func retry(_ error: String) -> Bool {
        lock.lock(); defer { lock.unlock() }
        retries += 1
        guard attemptErrors.count < 5 else { return false }
        attemptErrors.append(error)
        return true
    }
    var firstAttemptErrors: [String] { lock.lock(); defer { lock.unlock() }; return attemptErrors }
    private var held = 0
    func finished(seconds: Double, rows: Int, held: Int) { lock.lock(); durations.append(seconds); self.rows += rows; self.held += held; lock.unlock() }
    var heldRows: Int { lock.lock(); defer { lock.unlock() }; return held }
    func failed(_ error: String) { lock.lock(); failures += 1; if errors.count < 5 { errors.append(error) }; lock.unlock() }
    func snapshot() -> ([Double], Int, Int, [String], Int, Int, Int) {
        lock.lock(); defer { lock.unlock() }
        return (durations, rows, failures, errors, refused, retries, maxOpen)
    }
}

/// The hubs' open sessions, read from their metrics endpoints while the day runs.
final class Sampler: @unchecked Sendable {
    let hubs: [FleetHub]
    private let lock = NSLock()
    private var running = true
    private(set) var maxOpen = 0
    private let finished = DispatchSemaphore(value: 0)

    init(hubs: [FleetHub]) { self.hubs = hubs }

    func start() {
        Thread.detachNewThread { [self] in
            while isRunning {
                let open = hubs.compactMap { $0.openSessions() }.reduce(0, +)
                lock.lock(); maxOpen = max(maxOpen, open); lock.unlock()
                for hub in hubs { hub.sampleRSS() }
                usleep(200_000)
            }
            finished.signal()
        }
    }

    var isRunning: Bool { lock.lock(); defer { lock.unlock() }; return running }
    func stop() { lock.lock(); running = false; lock.unlock(); _ = finished.wait(timeout: .now() + 5) }
}

/// The hub's storage as the fleet sets it up and checks it afterwards.
enum FleetStore {
    case sqlite(String)
    case postgres(String)

    var isPostgres: Bool { if case .postgres = self { return true } else { return false } }

    func open() throws -> any HubStorage {
        switch self {
        case .sqlite(let path): return try SQLiteHubStorage(path: path)
        case .postgres(let url): return try PostgresHubStorage(url: url)
        }
    }

    var arguments: [String] {
        switch self {
        case .sqlite(let path): return ["--db", path]
        case .postgres(let url): return ["--postgres", url]
        }
    }

    /// The office assigning each rep its customers.
    func assign(_ assignments: [(rep: String, customers: [String])]) throws {
        switch self {
        case .sqlite(let path):
            let database = try Database(path: path)
            try database.transaction {
                for (rep, customers) in assignments {
                    for customer in customers {
                        try database.execute("INSERT OR IGNORE INTO rep_customers(rep_id, customer_id) VALUES (?, ?)", [.text(rep), .text(customer)])
                    }
                }
            }
        case .postgres(let url):
            let connection = try PostgresConnection(url: url)
            for chunk in stride(from: 0, to: assignments.count, by: 500) {
                let slice = assignments[chunk..<min(chunk + 500, assignments.count)]
                let reps = slice.flatMap { entry in entry.customers.map { _ in entry.rep } }, customers = slice.flatMap(\.customers)
                try connection.execute("INSERT INTO rep_customers(rep_id, customer_id) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING",
                                       [.text(FleetStore.textArray(reps)), .text(FleetStore.textArray(customers))])
            }
        }
    }

    /// A PostgreSQL text[] literal.
    static func textArray(_ values: [String]) -> String {
        "{" + values.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ",") + "}"
    }

    func execute(_ sql: String) throws {
        switch self {
        case .sqlite(let path): try Database(path: path).execute(sql)
        case .postgres(let url): _ = try PostgresConnection(url: url).execute(sql)
        }
    }

    /// Each fleet document the hub holds: the device it is stored under, and how many times.
    func heldDocuments() throws -> [String: (device: String, count: Int)] {
        let sql = "SELECT entity_id, min(device_id), count(*) FROM device_changes WHERE device_id LIKE 'FL%' AND entity = 'order' GROUP BY entity_id"
        let rows: [(String, String, Int)]
        switch self {
        case .sqlite(let path): rows = try Database(path: path).query(sql) { ($0.text(0), $0.text(1), Int($0.int64(2))) }
        case .postgres(let url): rows = try PostgresConnection(url: url).query(sql) { ($0.text(0), $0.text(1), $0.int(2)) }
        }
        return Dictionary(rows.map { ($0.0, (device: $0.1, count: $0.2)) }, uniquingKeysWith: { first, _ in first })
    }
}

/// One `satchel-hub serve` process of the fleet, its session log in a file.
final class FleetHub: @unchecked Sendable {
    let process = Process()
    private(set) var address = ""
    private(set) var metricsAddress = ""
    private let lock = NSLock()
    private var output = ""
    private var peak = 0
    private var dead = false
    var pid: Int32 { process.processIdentifier }

    init(binary: String, storage: [String], listen: String, sessions: Int, retryAfter: Int, log: String) throws {
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["serve"] + storage + ["--listen", listen, "--sessions", String(sessions), "--retry-after", String(retryAfter),
                                                   "--metrics", "127.0.0.1:0", "--drain-seconds", "5"]
        let pipe = Pipe()
        process.standardOutput = pipe
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock(); self.output += String(decoding: data, as: UTF8.self); self.lock.unlock()
        }
        try process.run()
        let deadline = Deadline.after(seconds: 60)
        while !deadline.hasPassed {
            lock.lock()
            let text = output
            lock.unlock()
            if let listening = text.split(separator: "\n").first(where: { $0.hasPrefix("satchel-hub listening on ") }),
               let metrics = text.split(separator: "\n").first(where: { $0.hasPrefix("satchel-hub metrics on http://") }) {
                address = String(listening.dropFirst("satchel-hub listening on ".count))
                metricsAddress = String(metrics.dropFirst("satchel-hub metrics on http://".count).prefix { $0 != "/" })
                return
            }
            guard process.isRunning else { throw FleetFailure("satchel-hub serve exited with \(process.terminationStatus) before listening; see \(log)") }
            usleep(20_000)
        }
        process.terminate()
        throw FleetFailure("satchel-hub serve did not say where it listens within 60 s; see \(log)")
    }

    /// VmHWM, the process's peak resident set, while it lives (KiB).
    func sampleRSS() {
        lock.lock(); let gone = dead; lock.unlock()
        guard !gone, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") else { return }
        lock.lock(); peak = max(peak, kib); lock.unlock()
    }

    var peakRSSKiB: Int { sampleRSS(); lock.lock(); defer { lock.unlock() }; return peak }

    func openSessions() -> Int? {
        lock.lock(); let gone = dead; lock.unlock()
        guard !gone, let socket = try? TCP.connect(metricsAddress, deadline: .after(seconds: 2)) else { return nil }
        defer { socket.close() }
        let deadline = Deadline.after(seconds: 2)
        guard (try? socket.write(Array("GET /metrics HTTP/1.0\r\nHost: \(metricsAddress)\r\n\r\n".utf8), deadline: deadline)) != nil else { return nil }
        var bytes: [UInt8] = []
        while let chunk = try? socket.read(maxCount: 65_536, deadline: deadline), !chunk.isEmpty { bytes += chunk }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("satchel_hub_sessions_open ") }) else { return nil }
        return Int(line.split(separator: " ").last ?? "")
    }

    func kill() {
        sampleRSS()
        lock.lock(); dead = true; lock.unlock()
        Foundation.kill(pid, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Deadline.after(seconds: 30)
        while process.isRunning && !deadline.hasPassed { usleep(20_000) }
        if process.isRunning { Foundation.kill(pid, SIGKILL) }
    }
}
