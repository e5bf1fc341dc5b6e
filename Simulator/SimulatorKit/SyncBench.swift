import Deflate
import Agent
import Dispatch
public import Field
import Foundation
public import Hub
import Seal
import Store
public import Sync
import Transport

/// `satchel-sim bench sync`, the wire half: a rep's day drawn by the same plan as `satchel-sim
/// day` (RepDay: 20-40 stops, orders of 5-30 lines over thousands of parts with skewed
/// popularity, drafts edited, orders held for arrears, payments in PLN, BGN and RUB, a display
/// request, a complaint, notes in Polish, Bulgarian and Russian, captures minutes apart on a
/// simulated clock), captured in-process on a device whose working set came by init; a fast sync
/// at lunch, the office's answers (some before the order reached the hub) and the ERP's evening
/// change (a few hundred prices, about a thousand stock rows across the catalogue), then the
/// evening full sync. Each session is measured against the baseline a plain HTTPS+JSON sync
/// would send: gzip -6 of JSON lines of exactly the rows that crossed (column names, documents
/// as nested objects), one stream per direction; ours is every byte on the socket, handshake
/// included. Several seeds; the figures of the goals are the medians, the worst seed is beside.
/// In-process hub over a socket pair.
public struct SyncBench {
    /// Bytes of one session against its baseline.
    public struct Session: Codable, Sendable {
        public var oursUp = 0, oursDown = 0
        public var gzipJSONUp = 0, gzipJSONDown = 0
        /// Change records up, working-set rows down (what the baseline holds).
        public var recordsUp = 0, rowsDown = 0
        public var roundTrips = 0

        mutating func add(_ other: Session) {
            oursUp += other.oursUp; oursDown += other.oursDown; gzipJSONUp += other.gzipJSONUp; gzipJSONDown += other.gzipJSONDown
            recordsUp += other.recordsUp; rowsDown += other.rowsDown; roundTrips += other.roundTrips
        }
        public var ratioUp: Double { SyncBench.ratio(oursUp, gzipJSONUp) }
        public var ratioDown: Double { SyncBench.ratio(oursDown, gzipJSONDown) }
        public var ratio: Double { SyncBench.ratio(oursUp + oursDown, gzipJSONUp + gzipJSONDown) }
    }

    /// One seed's day.
    public struct Day: Codable, Sendable {
        public var seed: UInt64
        public var visits: Int
        public var orders: Int
        public var orderLines: Int
        public var draftsEdited: Int
        public var heldForArrears: Int
        public var payments: Int
        public var paymentCurrencies: [String]
        public var displayRequests: Int
        public var complaints: Int
        public var capturedMinutes: Int
        public var officeAccepted: Int
        public var officeRejected: Int
        public var evening: OfficeDay.Evening
        public var initial: Session
        public var fast: Session
        public var full: Session
        /// fast + full, the day's traffic after the morning's init.
        public var day: Session
        public var syncErrors: Int
        public var checksumsMatch: Bool
    }

    public struct Result: BenchReport, Codable, Sendable {
        /// Medians over the seeds (the goals), and the worst seed's value beside each.
        public var dayRatioUp: Double
        public var dayRatioDown: Double
        public var initRatio: Double
        public var worstDayRatioUp: Double
        public var worstDayRatioDown: Double
        public var worstInitRatio: Double
        public var fullRatioUp: Double
        public var fullRatioDown: Double
        /// Round trips of the evening full sync after the handshake (the most of any seed).
        public var roundTrips: Int
        public var syncErrors: Int
        public var checksumsMatch: Bool
        /// The first seed's init dropped half way and resumed: bytes received in both sessions
        /// beyond the undisturbed init (handshake and headers of the second session included),
        /// against the largest frame of the init (the goal: at most one frame per table).
        public var initResumedBytesAgain: Int
        public var initLargestFrameBytes: Int
        public var days: [Day]
        public var notes: [String]

        /// Bytes and round trips do not depend on the machine: no noise margin.
        public static let goals: [BenchGoal] = [
            BenchGoal("day_ratio_up", .atMost(0.4), origin: "issue 16"),
            BenchGoal("day_ratio_down", .atMost(0.4), origin: "issue 16"),
            BenchGoal("init_ratio", .atMost(0.4), origin: "issue 16"),
            BenchGoal("sync_errors", .atMost(0), origin: "issue 16"),
            BenchGoal("round_trips", .atMost(3), origin: "issue 6"),
            BenchGoal("init_resumed_frames_again", .atMost(1), origin: "issue 6"),
            BenchGoal("checksums_match", .atLeast(1), origin: "issue 6"),
        ]

        public var figures: [String: Double] {
            var figures = ["day_ratio_up": dayRatioUp, "day_ratio_down": dayRatioDown, "init_ratio": initRatio, "sync_errors": Double(syncErrors),
                           "round_trips": Double(roundTrips), "checksums_match": checksumsMatch ? 1 : 0]
            // A resumed init must not receive more than one frame again (the one the drop cut).
            if initLargestFrameBytes > 0 { figures["init_resumed_frames_again"] = Double(initResumedBytesAgain) / Double(initLargestFrameBytes) }
            return figures
        }
    }

    /// The rep, device and working set every sync benchmark uses.
    public static let device = "WAW07", rep = "R01", password = "hasło"
    public static let workingSet = Seeder.Plan(customers: 2_000, products: 3_000, seed: 21, historyOrdersPerCustomer: 2,
                                               today: CalendarDay.string(fromMilliseconds: benchNow))
    /// The short form's: a smaller territory and catalogue, one seed.
    public static let shortWorkingSet = Seeder.Plan(customers: 300, products: 800, seed: 21, historyOrdersPerCustomer: 2,
                                                    today: CalendarDay.string(fromMilliseconds: benchNow))
    public static let seeds: [UInt64] = [21, 22, 23]
    static let benchNow: Int64 = 1_795_428_000_000

    /// An ERP extract in the working-set shape for the benchmark's rep, imported into `storage`
    /// with every customer assigned to the rep; returns what was seeded and what each customer owes.
    @discardableResult
    public static func loadMasterData(into storage: SQLiteHubStorage, root: String, plan: Seeder.Plan = workingSet) throws -> (Seeder.Summary, overdue: [String: Int64]) {
        let erp = try DeviceDatabase.create(home: root + "/erp", deviceID: device, repID: rep, clock: ManualClock(benchNow))
        let summary = try Seeder.seed(erp, plan: plan)
        try storage.importMasterData(from: erp.path, assignTo: rep)
        let overdue = try erp.database.query("SELECT id, overdue_minor FROM customers") { ($0.text(0), $0.int64(1)) }
        return (summary, Dictionary(overdue, uniquingKeysWith: { first, _ in first }))
    }

    public static func run(short: Bool = false) throws -> Result {
        var days: [Day] = []
        var resumed: (received: Int, baseline: Int, matched: Bool, largestFrame: Int) = (0, 0, true, 0)
        for (index, seed) in (short ? [seeds[0]] : seeds).enumerated() {
            var plan = short ? shortWorkingSet : workingSet
            plan.seed = seed
            days.append(try realisticDay(plan: plan, resumedInit: index == 0 ? { resumed = $0 } : nil))
        }
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        return Result(dayRatioUp: median(days.map(\.day.ratioUp)), dayRatioDown: median(days.map(\.day.ratioDown)),
                      initRatio: median(days.map(\.initial.ratio)), worstDayRatioUp: days.map(\.day.ratioUp).max() ?? 0,
                      worstDayRatioDown: days.map(\.day.ratioDown).max() ?? 0, worstInitRatio: days.map(\.initial.ratio).max() ?? 0,
                      fullRatioUp: median(days.map(\.full.ratioUp)), fullRatioDown: median(days.map(\.full.ratioDown)),
                      roundTrips: days.map(\.full.roundTrips).max() ?? 0, syncErrors: days.map(\.syncErrors).reduce(0, +),
                      checksumsMatch: days.allSatisfy(\.checksumsMatch) && resumed.matched,
                      initResumedBytesAgain: resumed.received - resumed.baseline, initLargestFrameBytes: resumed.largestFrame, days: days,
                      notes: ["working set: \(short ? shortWorkingSet.customers : workingSet.customers) customers, \(short ? shortWorkingSet.products : workingSet.products) products, "
                              + "3 currencies x 2-3 price levels, warehouse and van stock, 90 days of history; seeds \((short ? [seeds[0]] : seeds).map(String.init).joined(separator: ", "))",
                              "ratios: every byte on the socket (handshake included) / gzip -6 of JSON lines of the rows that crossed, one stream per direction"])
    }

    /// Which columns of the day's BATCH bodies cost the uplink's bytes (`bench sync --columns`):
    /// for each column (summed over the sessions and seeds), its bytes before deflate and what
    /// it adds to the deflated body (the body compressed as the channel does, level 9 with the
    /// preset dictionary, with and without the column's bytes). Biggest first.
    public static func columnBreakdown(short: Bool) throws -> [(column: String, raw: Int, deflated: Int)] {
        var batches: [Batch] = []
        for seed in short ? [seeds[0]] : seeds {
            var plan = short ? shortWorkingSet : workingSet
            plan.seed = seed
            _ = try realisticDay(plan: plan, resumedInit: nil, batchSent: { batches.append($0) })
        }
        func deflated(_ bytes: [UInt8]) throws -> Int {
            try Deflater(level: 9, format: .raw, dictionary: SyncDictionary.v3).compress(bytes, flush: .sync).count
        }
        var totals: [String: (raw: Int, deflated: Int)] = [:], order: [String] = []
        for batch in batches {
            let body = batch.encode()
            let whole = try deflated(body)
            totals["(whole bodies)", default: (0, 0)].raw += body.count
            totals["(whole bodies)", default: (0, 0)].deflated += whole
            for span in batch.columnSpans() {
                let without = Array(body[..<span.range.lowerBound] + body[span.range.upperBound...])
                if totals[span.name] == nil { order.append(span.name) }
                totals[span.name, default: (0, 0)].raw += span.range.count
                totals[span.name, default: (0, 0)].deflated += whole - (try deflated(without))
            }
        }
        return (["(whole bodies)"] + order).map { ($0, totals[$0]?.raw ?? 0, totals[$0]?.deflated ?? 0) }
            .sorted { $0.deflated > $1.deflated }
    }

    static func ratio(_ ours: Int, _ theirs: Int) -> Double { theirs == 0 ? .infinity : (Double(ours) / Double(theirs) * 1000).rounded() / 1000 }

    /// One seed's day, measured session by session.
    static func realisticDay(plan: Seeder.Plan, resumedInit: (((received: Int, baseline: Int, matched: Bool, largestFrame: Int)) -> Void)?,
                             batchSent: (Batch) -> Void = { _ in }, downlinkSeen: (DownlinkSession) -> Void = { _ in }) throws -> Day {
        let root = try DayRunner.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hubPath = root + "/hub.db"
        let storage = try SQLiteHubStorage(path: hubPath)
        let deviceKey = X25519.KeyPair.generate()
        try storage.addRep(id: rep, name: "Paweł", passwordHash: try PasswordHash.hash(password: password, cost: .init(opsLimit: 1, memLimit: 64 * 1024)))
        try storage.addDevice(id: device, rep: rep, publicKey: deviceKey.publicKey, now: 0)
        let (seeded, overdue) = try loadMasterData(into: storage, root: root, plan: plan)
        let clock = ManualClock(benchNow)
        let server = SyncServer(clock: { clock.nowMilliseconds() }) { try SQLiteHubStorage(path: hubPath) }
        let handheld = try DeviceDatabase.create(home: root + "/device", deviceID: device, repID: rep, clock: clock)
        let download = RecordingDownload(DeviceDownload(handheld))
        var checksumsMatch = true

        func session(_ mode: SyncMode) throws -> Session {
            let uploaded = try handheld.uploadedThroughSeq()
            let entries = try handheld.changes(after: uploaded)
            let batch = entries.isEmpty ? nil : Batch(id: "\(device)-\(mode)-\(uploaded)", changes: entries)
            if let batch { batchSent(batch) }
            download.lines = []
            download.frames = []
            let result = try server.inProcessSession { deviceEnd in
                let link = CountingStream(deviceEnd, dropAfter: .max)
                download.link = link
                return try SyncClient.run(link, deviceKey: deviceKey, hubKey: try storage.hubKey().publicKey, device: device, password: password,
                                   mode: mode, batch: batch, pull: mode == .fast ? nil : try download.inner.pullRequest(reset: mode == .initialise),
                                   sink: mode == .fast ? nil : download, deadline: .after(seconds: 300))
            }
            checksumsMatch = checksumsMatch && result.mismatched.isEmpty
            downlinkSeen(DownlinkSession(mode: mode, result: result, frames: download.frames, baselineLines: download.lines))
            let up = try entries.map(uplinkLine).joined()
            return Session(oursUp: result.bytesSent, oursDown: result.bytesReceived,
                           gzipJSONUp: try Deflate.compress(Array(up.utf8), level: 6, format: .gzip).count,
                           gzipJSONDown: try Deflate.compress(Array(download.lines.joined().utf8), level: 6, format: .gzip).count,
                           recordsUp: entries.count, rowsDown: download.lines.count, roundTrips: result.roundTrips)
        }

        let initial = try session(.initialise)
        if let resumedInit {
            let resumed = try self.resumedInit(root: root, storage: storage, deviceKey: deviceKey, dropAfter: initial.oursDown / 2)
            resumedInit((resumed.received, resumed.baseline, resumed.matched, resumed.largestFrame))
        }
        let catalogue = (0..<plan.products).map { "PN-\(10_000 + $0)" }
        let day = RepDay.plan(route: seeded.todaysRoute, overdue: overdue, catalogue: catalogue, displayTypes: seeded.displayTypes, seed: plan.seed)
        let started = clock.nowMilliseconds()
        var fast = Session()
        let orders = try capture(day, on: handheld, clock: clock) { stopsDone in
            if stopsDone == day.middayAfter { fast = try session(.fast) }  // lunch: what is captured goes up
        }
        let capturedMinutes = Int((clock.nowMilliseconds() - started) / 60_000)
        // The office answers the day's orders (the afternoon's have not reached it yet), then the ERP's evening change.
        let answers = try OfficeDay.answer(storage, device: device, orders: orders, seed: plan.seed, now: clock.nowMilliseconds())
        let evening = try OfficeDay.eveningChange(hubPath: hubPath, prices: 300, stockRows: 1_000, seed: plan.seed)
        clock.advance(milliseconds: 3_600_000)
        let full = try session(.full)
        var daySession = fast
        daySession.add(full)
        let database = handheld.database
        return Day(seed: plan.seed, visits: day.stops.count, orders: orders.count,
                   orderLines: Int(try database.int64("SELECT count(*) FROM order_lines")),
                   draftsEdited: day.stops.filter { $0.order?.draftLines != nil }.count, heldForArrears: orders.filter(\.held).count,
                   payments: day.stops.filter { $0.payment != nil }.count,
                   paymentCurrencies: try database.query("SELECT DISTINCT currency FROM payments ORDER BY 1") { $0.text(0) },
                   displayRequests: day.stops.filter { $0.display != nil }.count, complaints: day.stops.filter { $0.complaint != nil }.count,
                   capturedMinutes: capturedMinutes, officeAccepted: answers.accepted.count, officeRejected: answers.rejected.count,
                   evening: evening, initial: initial, fast: fast, full: full, day: daySession,
                   syncErrors: try storage.syncErrors(device: device).count + Int(try DeviceStatus.read(handheld).syncErrors),
                   checksumsMatch: checksumsMatch)
    }

    /// Captures `day` on `handheld` in-process, the simulated clock moving on between stops and
    /// documents; `afterStop` runs after each stop with the number of stops done. Returns the
    /// orders (id, held for approval) in the order captured.
    public static func capture(_ day: RepDay, on handheld: DeviceDatabase, clock: ManualClock,
                               afterStop: (Int) throws -> Void = { _ in }) throws -> [(id: String, held: Bool)] {
        let capture = Capture(handheld)
        var orders: [(id: String, held: Bool)] = []
        for (index, stop) in day.stops.enumerated() {
            clock.advance(milliseconds: Int64(stop.minutesAfterPrevious) * 60_000)
            if let order = stop.order {
                let lines = order.lines.map { OrderLineRequest(partNumber: $0.part, quantity: Int64($0.quantity)) }
                let saved: OrderDocument
                if let draftLines = order.draftLines {
                    let draft = try capture.createOrder(customerID: stop.customer, lines: Array(lines.prefix(draftLines)), confirm: false).document
                    clock.advance(milliseconds: 240_000)
                    _ = try capture.addLines(orderID: draft.id, lines: Array(lines.dropFirst(draftLines)))
                    if let lineNo = order.removeLineNo { _ = try capture.removeLine(orderID: draft.id, lineNo: Int64(lineNo)) }
                    clock.advance(milliseconds: 60_000)
                    saved = try capture.confirmOrder(draft.id).document
                } else {
                    saved = try capture.createOrder(customerID: stop.customer, lines: lines, confirm: true).document
                }
                orders.append((id: saved.id, held: saved.approval == .pending))
                clock.advance(milliseconds: 120_000)
            }
            _ = try capture.recordVisit(customerID: stop.customer, outcome: VisitOutcome(rawValue: stop.outcome) ?? .noOrder, note: stop.note)
            if let payment = stop.payment {
                _ = try capture.recordPayment(customerID: stop.customer, amountMinor: Int64(payment.amountMinor),
                                              method: PaymentMethod(rawValue: payment.method) ?? .cash, receipt: payment.receipt)
            }
            if let display = stop.display {
                _ = try capture.requestDisplay(customerID: stop.customer, typeCode: display.type, widthCm: Int64(display.widthCm), heightCm: Int64(display.heightCm), note: display.note)
            }
            if let complaint = stop.complaint {
                _ = try capture.fileComplaint(customerID: stop.customer, category: .damaged, description: complaint.text, partNumber: complaint.part)
            }
            try afterStop(index + 1)
        }
        return orders
    }

    /// A change record as a plain JSON sync would send it: the envelope's fields by name and the
    /// document as a nested object (not an escaped string).
    static func uplinkLine(_ change: ChangeEntry) throws -> String {
        let document = try JSONSerialization.jsonObject(with: Data(try DocumentCodec.decode(change.payload, entity: change.entity).json().utf8), options: [.fragmentsAllowed])
        let line: [String: Any] = ["seq": change.seq, "change_id": change.changeId, "at": change.at, "entity": change.entity,
                                   "entity_id": change.entityId, "action": change.action, "document": document]
        return String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self) + "\n"
    }

    /// The device's download, recording each row that crossed as a JSON line with its column names.
    final class RecordingDownload: DownloadSink {
        let inner: DeviceDownload
        var lines: [String] = []
        /// Each TABLE frame as it arrived, the catalogue it was decoded against and the bytes
        /// the link had carried through it (`bench sync --downlink`).
        var frames: [DownlinkFrame] = []
        var link: CountingStream?
        init(_ inner: DeviceDownload) { self.inner = inner }
        func begin(_ header: DownloadHeader) throws { try inner.begin(header) }
        func catalogue() throws -> Catalogue { try inner.catalogue() }
        func finish(_ done: DownloadDone) throws -> [String] { try inner.finish(done) }
        func documents(_ batch: Batch) throws -> Int { try inner.documents(batch) }
        func heldRows(_ table: WorkingSetTables.Table, keys: [WorkingSetRow]) throws -> [WorkingSetRow?] { try inner.heldRows(table, keys: keys) }
        func heldRowsDiffer() throws { try inner.heldRowsDiffer() }
        func apply(_ frame: TableFrame) throws {
            let catalogue = try inner.catalogue()
            let linesBefore = lines.count
            defer { frames.append(DownlinkFrame(frame: frame, catalogue: catalogue, receivedThrough: link?.received ?? 0, lines: linesBefore..<lines.count)) }
            try inner.apply(frame)
            let columns = Array(frame.columns)
            for row in frame.rows {
                var line: [String: Any] = ["table": frame.table.name, "op": frame.phase == .purge ? "delete" : "upsert"]
                for (column, value) in zip(columns, row) {
                    switch value {
                    case .integer(let number): line[column.name] = number
                    case .text(let text): line[column.name] = text
                    case .real(let number): line[column.name] = number
                    case .null: line[column.name] = NSNull()
                    case .blob(let bytes): line[column.name] = Data(bytes).base64EncodedString()
                    }
                }
                lines.append(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self) + "\n")
            }
        }
    }

    /// An init on a second device of the same rep (registered under its own id), dropped after
    /// `dropAfter` bytes have come down, then resumed by a full sync; then the same device's init
    /// again, undisturbed, as the baseline. Returns the bytes received by the two sessions of the
    /// resumed init, those of the undisturbed one, and whether the working set checked out.
    static func resumedInit(root: String, storage: SQLiteHubStorage, deviceKey: X25519.KeyPair, dropAfter: Int) throws -> (received: Int, baseline: Int, matched: Bool, largestFrame: Int) {
        let hubPath = storage.path
        let server = SyncServer(clock: { benchNow }) { try SQLiteHubStorage(path: hubPath) }
        let key = X25519.KeyPair.generate()
        try storage.addDevice(id: "WAW08", rep: rep, publicKey: key.publicKey, now: 0)
        let handheld = try DeviceDatabase.create(home: root + "/device2", deviceID: "WAW08", repID: rep, clock: ManualClock(benchNow))
        let download = DeviceDownload(handheld)
        var received = 0, baseline = 0, largestFrame = 0
        var matched = true
        for (index, (mode, budget)) in [(SyncMode.initialise, dropAfter), (.full, Int.max), (.initialise, Int.max)].enumerated() {
            let link = try server.inProcessSession { deviceEnd in
                let link = CountingStream(deviceEnd, dropAfter: budget)
                do {
                    let result = try SyncClient.run(link, deviceKey: key, hubKey: try storage.hubKey().publicKey, device: "WAW08", password: password,
                                                    mode: mode, batches: [], pull: try download.pullRequest(reset: mode == .initialise), sink: download,
                                                    deadline: .after(seconds: 120))
                    matched = matched && result.mismatched.isEmpty
                    if index == 2 { largestFrame = result.largestFrame }
                } catch {
                    matched = matched && index == 0  // the drop is expected in the first session only
                }
                return link
            }
            if index < 2 { received += link.received } else { baseline = link.received }
        }
        return (received, baseline, matched, largestFrame)
    }

    /// A device-side stream that counts what comes down and dies after `dropAfter` bytes.
    final class CountingStream: ByteStream {
        let inner: FileDescriptorStream
        let dropAfter: Int
        var received = 0
        init(_ inner: FileDescriptorStream, dropAfter: Int) {
            self.inner = inner
            self.dropAfter = dropAfter
        }
        func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) { try inner.write(bytes, deadline: deadline) }
        func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
            guard received < dropAfter else { inner.close(); throw .closed(what: "link dropped") }
            let chunk = try inner.read(maxCount: min(maxCount, dropAfter - received), deadline: deadline)
            received += chunk.count
            return chunk
        }
        func close() { inner.close() }
    }

    /// The easy day of issue 6 (the encoding's best case, kept for `bench sync-gprs`'s fast sync):
    /// the upload of a standard rep day on a freshly seeded device, as change records and as the
    /// JSON lines they compare to.
    public static func standardDay(in root: String) throws -> (changes: [SyncChange], jsonLines: String) {
        let clock = ManualClock(benchNow)
        let device = try DeviceDatabase.create(home: root + "/device", deviceID: device, repID: rep, clock: clock)
        _ = try Seeder.seed(device, plan: .init(customers: 300, products: 400, seed: 21, historyOrdersPerCustomer: 0,
                                                today: CalendarDay.string(fromMilliseconds: clock.nowMilliseconds())))
        return try standardDay(on: device, clock: clock)
    }

    /// The day's captures: 40 confirmed orders of 10 lines, 30 visits, 10 payments.
    public static func standardDay(on device: DeviceDatabase, clock: ManualClock) throws -> (changes: [SyncChange], jsonLines: String) {
        var random = SeededRandom(seed: 22)
        let capture = Capture(device)
        let customers = try device.database.query("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id") { $0.text(0) }
        let route = try WorkingSet(device).route(day: CalendarDay.string(fromMilliseconds: clock.nowMilliseconds())).map(\.customerID)
        let parts = (0..<400).map { "PN-\(10_000 + $0)" }
        for _ in 0..<40 {
            clock.advance(milliseconds: Int64(random.int(60_000...900_000)))
            _ = try capture.createOrder(customerID: random.pick(customers), lines: (0..<10).map { _ in
                OrderLineRequest(partNumber: random.pick(parts), quantity: Int64(random.int(1...24)))
            }, confirm: true)
        }
        for index in 0..<30 {
            clock.advance(milliseconds: 600_000)
            _ = try capture.recordVisit(customerID: route.isEmpty ? random.pick(customers) : route[index % route.count], outcome: .order, note: "Rozmowa z właścicielem")
        }
        for index in 0..<10 {
            _ = try capture.recordPayment(customerID: random.pick(customers), amountMinor: Int64(random.int(5_000...150_000)), method: .cash, receipt: "KP/\(index + 1)")
        }
        let entries = try device.changes(after: 0)
        let changes = entries
        // The baseline: each entry as the JSON line satchel journaled before the document codec.
        struct JSONLine: Encodable {
            var seq: Int64, change_id: String, at: Int64, entity: String, entity_id: String, action: String, payload: String
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let lines = try entries.map { entry in
            String(decoding: try encoder.encode(JSONLine(seq: entry.seq, change_id: entry.changeId, at: entry.at, entity: entry.entity,
                                                         entity_id: entry.entityId, action: entry.action, payload: try entry.document().json())), as: UTF8.self)
        }
        return (changes, lines.joined(separator: "\n") + "\n")
    }
}
