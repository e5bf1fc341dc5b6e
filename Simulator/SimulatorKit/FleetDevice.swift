import Agent
import Field
import Foundation
import Seal
import Store
public import Sync
import Transport

/// One handheld of `satchel-sim fleet`, light enough for thousands in one process: its own key,
/// its own journal of documents with the device's numbering, and a working set that keeps per
/// row only what the protocol needs of it (the row's hash for the checksums DONE compares, the
/// values of its held columns for protocol 5's differences, the catalogue's part numbers). It
/// speaks the real protocol through `SyncClient`, the code the agent runs; a real device's
/// SQLite databases for 5,000 devices would not fit a run's time or this machine's disk.
final class FleetDevice: @unchecked Sendable {
    let id: String
    let rep: String
    let key: X25519.KeyPair
    let customers: [String]
    let sink = LightWorkingSet()
    /// A checked device also keeps a real device database, written by the agent's own
    /// `DeviceDownload` from the same frames: what the light working set holds is compared with
    /// it at every DONE, so the fleet's light devices are shown to do what real ones do.
    let checked: CheckedSink?
    /// Batches built and not yet acknowledged, in order: a retry sends these very batches again
    /// (same ids, same content), as the agent resends what got no RECEIPT.
    var pending: [Batch] = []
    /// Entity ids of documents a RECEIPT acknowledged (what "lost" is checked against).
    var acknowledged: [String] = []
    /// Every document id this device ever put in a batch.
    var sent: [String] = []
    private var seq: Int64 = 0
    private var orders = 0
    var random: SeededRandom

    init(id: String, rep: String, customers: [String], seed: UInt64, checkedHome: String? = nil) throws {
        let light = sink
        checked = try checkedHome.map { home in
            CheckedSink(light: light, real: DeviceDownload(try DeviceDatabase.create(home: home, deviceID: id, repID: rep)), device: id)
        }
        self.id = id
        self.rep = rep
        self.customers = customers
        key = X25519.KeyPair.generate()
        random = SeededRandom(seed: seed)
    }

    /// Captures `count` confirmed orders of 5-30 lines over `parts` into new batches.
    func capture(orders count: Int, parts: [String], at now: Int64) throws {
        var changes: [SyncChange] = []
        for _ in 0..<count {
            orders += 1
            seq += 1
            let orderID = "\(id)-O\(orders)"
            let lineCount = random.int(5...30)
            var lines: [OrderLine] = []
            var total: Int64 = 0
            for lineNo in 1...lineCount {
                let quantity = Int64(random.int(1...24)), price = Int64(random.int(150...6_000))
                lines.append(OrderLine(lineNo: Int64(lineNo), partNumber: random.pick(parts), unit: "szt", quantity: quantity, baseQuantity: quantity,
                                       unitPriceMinor: price, amountMinor: quantity * price))
                total += quantity * price
            }
            let at = now + Int64(orders) * 60_000
            let order = Document.order(OrderDocument(
                id: orderID, customerId: random.pick(customers), state: .confirmed, approval: .none, holdReason: nil, priceLevel: "customer",
                currency: "PLN", totalMinor: total, note: "Dostawa rano — доставка сутрин, Łódź", createdAt: at, confirmedAt: at, lines: lines))
            changes.append(SyncChange(seq: seq, changeId: "\(id)-\(seq)", at: at, entity: "order", entityId: orderID, action: "confirmed",
                                      payload: DocumentCodec.encode(order)))
            sent.append(orderID)
        }
        pending += Batch.chunks(changes, idPrefix: id)
    }

    /// One session against `hub` over `stream`: the pending batches up, then (`pull`) the
    /// working set's changes down. Acknowledged batches leave `pending` only on their RECEIPT.
    func session(_ stream: any ByteStream, hubKey: [UInt8], password: String, mode: SyncMode, deadline: Deadline) throws -> SyncResult {
        sink.newSession()
        let batches = pending
        var pull = try checked?.pullRequest() ?? sink.pullRequest()
        if mode == .initialise { pull.reset = true }
        let result = try SyncClient.run(stream, deviceKey: key, hubKey: hubKey, device: id, password: password, mode: mode, batches: batches,
                                        pull: pull, sink: checked ?? sink, deadline: deadline)
        // SyncClient checked a RECEIPT for each batch, in order, before returning.
        for batch in batches { acknowledged += batch.changes.map(\.entityId) }
        pending.removeFirst(batches.count)
        guard result.mismatched.isEmpty else { throw FleetFailure("device \(id): working set differs from the hub's checksums in \(result.mismatched.joined(separator: ", "))") }
        return result
    }
}

struct FleetFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The light device's working set: per table, each row's key with its hash and held values.
/// Frames are applied in plan order as the agent's `DeviceDownload` applies them (one at a time,
/// at the position reached), and DONE's checksums are compared table by table.
final class LightWorkingSet: DownloadSink, @unchecked Sendable {
    struct Held { var hash: UInt64; var held: [UInt8]? }
    private var tables: [UInt8: [[UInt8]: Held]] = [:]
    private var sums: [UInt8: TableChecksum] = [:]
    private var parts: Set<String> = []
    private var cachedCatalogue: Catalogue?
    private(set) var pull = ""
    private(set) var applied = 0
    private(set) var complete = false
    private var resetRequested = false
    /// Rows downloaded in the last session.
    private(set) var rowsDown = 0
    /// Of those, rows that came as differences to a row held (protocol 5's held rows).
    private(set) var heldDown = 0

    func newSession() {
        cachedCatalogue = nil
        rowsDown = 0
        heldDown = 0
    }

    /// The budgets a real handheld declares (`DeviceDownload.defaultBudgets`), so the hub plans
    /// for the light device what it plans for a real one.
    static let budgets: [UInt8: Int] = Dictionary(uniqueKeysWithValues: DeviceDownload.defaultBudgets.compactMap { name, limit in
        WorkingSetTables.named(name).map { ($0.id, limit) }
    })

    func pullRequest() -> Pull {
        Pull(lastPull: pull, applied: applied, complete: complete, reset: resetRequested, budgets: Self.budgets)
    }

    func begin(_ header: DownloadHeader) throws {
        if header.reset {
            tables = [:]
            sums = [:]
            parts = []
        }
        pull = header.pull
        applied = 0
        complete = false
        resetRequested = false
        cachedCatalogue = nil
    }

    func catalogue() throws -> Catalogue {
        if let cachedCatalogue { return cachedCatalogue }
        let catalogue = Catalogue(parts: parts)
        cachedCatalogue = catalogue
        return catalogue
    }

    func apply(_ frame: TableFrame) throws {
        guard frame.firstPosition == applied else {
            throw FleetFailure("frame of \(frame.table.name) at plan position \(frame.firstPosition), expected \(applied)")
        }
        let table = frame.table
        var rows = tables[table.id] ?? [:]
        var sum = sums[table.id] ?? TableChecksum(table: table.id)
        for row in frame.rows {
            let key = table.key(of: row)
            if let old = rows.removeValue(forKey: key) {
                sum.rows -= 1
                sum.sum &-= old.hash
            }
            if table.id == WorkingSetTables.products.id, case .text(let part) = row[0] {
                if frame.phase == .purge { parts.remove(part) } else { parts.insert(part) }
            }
            guard frame.phase == .upsert else { continue }
            let hash = TableFrame.hash(table: table, phase: .upsert, row)
            rows[key] = Held(hash: hash, held: table.heldValues(of: row))
            sum.add(hash)
        }
        tables[table.id] = rows
        sums[table.id] = sum
        // Later frames refer to parts by position in the catalogue as it stands after this one
        // (as `DeviceDownload` drops its cached catalogue after a products frame); the catalogue
        // read before the products arrived is empty, and every product_units row past it failed.
        if table.id == WorkingSetTables.products.id { cachedCatalogue = nil }
        applied += frame.rows.count
        rowsDown += frame.rows.count
        heldDown += frame.held.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
    }

    func finish(_ done: DownloadDone) throws -> [String] {
        var mismatched: [String] = []
        var listed: Set<UInt8> = []
        for expected in done.tables {
            listed.insert(expected.table)
            let held = sums[expected.table] ?? TableChecksum(table: expected.table)
            if held.rows != expected.rows || held.sum != expected.sum { mismatched.append(WorkingSetTables.byID[expected.table]?.name ?? "table \(expected.table)") }
        }
        var others = TableChecksum(table: 0)
        for (table, sum) in sums where !listed.contains(table) {
            others.rows += sum.rows
            others.sum &+= sum.sum
        }
        if others.rows != done.others.rows || others.sum != done.others.sum { mismatched.append("(the other tables)") }
        // As DeviceDownload: the download is complete either way; a mismatch asks for a reset.
        complete = true
        resetRequested = !mismatched.isEmpty
        return mismatched
    }

    /// Rows and the sum of their hashes per table, every table listed (what
    /// `DeviceDownload.checksums()` gives for a real device).
    func checksums() -> [UInt8: TableChecksum] {
        Dictionary(uniqueKeysWithValues: WorkingSetTables.all.map { ($0.id, sums[$0.id] ?? TableChecksum(table: $0.id)) })
    }

    func documents(_ batch: Batch) throws -> Int { 0 }

    func heldRows(_ table: WorkingSetTables.Table, keys: [WorkingSetRow]) throws -> [WorkingSetRow?] {
        let rows = tables[table.id] ?? [:]
        return try keys.map { key in
            guard let held = rows[table.key(of: key)] else { return nil }
            guard let values = held.held else { return nil }
            var row = try table.heldRow(values)
            for index in 0..<table.keyCount { row[index] = key[index] }
            return row
        }
    }

    func heldRowsDiffer() throws { resetRequested = true }

    /// Rows held, over all tables.
    var rowCount: Int { tables.values.reduce(0) { $0 + $1.count } }
}

/// The frames of a checked device's sessions go to both its light working set and a real device
/// database through the agent's `DeviceDownload`; any difference between the two (the
/// catalogue frames are decoded against, the rows held, what DONE finds, the sums per table, the
/// next PULL) fails the session, naming it. The real side is applied first: a row the device's
/// schema refuses is refused before the light side takes it.
final class CheckedSink: DownloadSink, @unchecked Sendable {
    let light: LightWorkingSet
    let real: DeviceDownload
    let device: String

    init(light: LightWorkingSet, real: DeviceDownload, device: String) {
        self.light = light; self.real = real; self.device = device
    }

    func differs(_ what: String) -> FleetFailure {
        FleetFailure("device \(device): the light working set differs from the real device database's (DeviceDownload) in \(what)")
    }

    func pullRequest() throws -> Pull {
        let mine = light.pullRequest(), theirs = try real.pullRequest()
        guard mine == theirs else { throw differs("the next PULL: light \(mine), real \(theirs)") }
        return theirs
    }

    func begin(_ header: DownloadHeader) throws {
        try real.begin(header)
        try light.begin(header)
    }

    func catalogue() throws -> Catalogue {
        let mine = try light.catalogue(), theirs = try real.catalogue()
        guard mine == theirs else { throw differs("the catalogue: light \(mine.parts.count) parts, real \(theirs.parts.count)") }
        return theirs
    }

    func apply(_ frame: TableFrame) throws {
        try real.apply(frame)
        try light.apply(frame)
    }

    func finish(_ done: DownloadDone) throws -> [String] {
        let theirs = try real.finish(done), mine = try light.finish(done)
        guard mine == theirs else { throw differs("DONE's mismatched tables: light \(mine), real \(theirs)") }
        let lightSums = light.checksums(), realSums = try real.checksums()
        for table in WorkingSetTables.all where lightSums[table.id] != realSums[table.id] {
            throw differs("\(table.name): light \(lightSums[table.id].map { "\($0.rows) rows" } ?? "none"), real \(realSums[table.id].map { "\($0.rows) rows" } ?? "none")")
        }
        return theirs
    }

    func documents(_ batch: Batch) throws -> Int {
        let theirs = try real.documents(batch)
        _ = try light.documents(batch)
        return theirs
    }

    func heldRows(_ table: WorkingSetTables.Table, keys: [WorkingSetRow]) throws -> [WorkingSetRow?] {
        // A frame takes only the held columns (`heldColumns`) of these rows; the light set keeps
        // only those (NULL elsewhere), as the hub's shadow does: they are what must agree.
        let mine = try light.heldRows(table, keys: keys), theirs = try real.heldRows(table, keys: keys)
        guard mine.map({ $0.flatMap(table.heldValues) }) == theirs.map({ $0.flatMap(table.heldValues) }) else {
            throw differs("the held rows of \(table.name)")
        }
        return theirs
    }

    func heldRowsDiffer() throws {
        try real.heldRowsDiffer()
        try light.heldRowsDiffer()
    }
}

/// A radio link on a socket, for thousands of devices at once: each write waits for its bytes at
/// the uplink's rate, each read for its bytes at the downlink's, and a change of direction (a
/// flight answered) costs half the round trip each way. A model of the link's time, not of its
/// losses; the modem simulator's pty pipe (`LinkProfile`) is the same figures per device.
final class ShapedStream: ByteStream {
    let inner: any ByteStream
    let downBytesPerSecond: Double
    let upBytesPerSecond: Double
    let halfRoundTrip: Double
    private var lastWasWrite: Bool?

    init(_ inner: any ByteStream, down: Double, up: Double, roundTrip: Double) {
        self.inner = inner
        downBytesPerSecond = down
        upBytesPerSecond = up
        halfRoundTrip = roundTrip / 2
    }

    func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) {
        var wait = Double(bytes.count) / upBytesPerSecond
        if lastWasWrite != true { wait += halfRoundTrip }
        lastWasWrite = true
        try pause(wait, deadline: deadline)
        try inner.write(bytes, deadline: deadline)
    }

    func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        // At most a second of the link's bytes at a time, so a large read waits in proportion.
        let bytes = try inner.read(maxCount: min(maxCount, max(512, Int(downBytesPerSecond))), deadline: deadline)
        var wait = Double(bytes.count) / downBytesPerSecond
        if lastWasWrite != false { wait += halfRoundTrip }
        lastWasWrite = false
        try pause(wait, deadline: deadline)
        return bytes
    }

    func close() { inner.close() }

    private func pause(_ seconds: Double, deadline: Deadline) throws(StreamError) {
        guard seconds > 0 else { return }
        if Deadline.after(seconds: seconds).nanoseconds > deadline.nanoseconds { throw .timedOut(what: "the shaped link's bytes would arrive after the session's deadline") }
        usleep(UInt32(min(seconds, 60) * 1_000_000))
    }
}
