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

    init(id: String, rep: String, customers: [String], seed: UInt64) {
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
        var pull = sink.pullRequest()
        if mode == .initialise { pull.reset = true }
        let result = try SyncClient.run(stream, deviceKey: key, hubKey: hubKey, device: id, password: password, mode: mode, batches: batches,
                                        pull: pull, sink: sink, deadline: deadline)
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

    func newSession() {
        cachedCatalogue = nil
        rowsDown = 0
    }

    func pullRequest() -> Pull {
        Pull(lastPull: pull, applied: applied, complete: complete, reset: resetRequested, budgets: [:])
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
        if mismatched.isEmpty { complete = true } else { resetRequested = true }
        return mismatched
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
