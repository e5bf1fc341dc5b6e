import Store

/// The downward half of sync (docs/protocol.md §7-8): the device asks with PULL, the hub answers
/// DOWNLOAD (the plan's id and size), then TABLE frames, then DONE with the checksum of every
/// table as the device should now hold it; the device answers ACK. Every TABLE frame is applied
/// in one device transaction together with the count of plan rows applied, so a dropped link
/// resumes after the last whole frame.

/// PULL body: last pull id | rows of it applied | complete flag | reset flag | budgets.
public struct Pull: Equatable, Sendable {
    /// The pull the device was applying last ("" for none), and how far it got.
    public var lastPull: String
    public var applied: Int
    public var complete: Bool
    /// The device holds nothing it can vouch for (init, a failed checksum, lost state): start over.
    public var reset: Bool
    /// The most rows the device will keep per table; the hub sends the most needed ones.
    public var budgets: [UInt8: Int]

    public init(lastPull: String = "", applied: Int = 0, complete: Bool = false, reset: Bool = false, budgets: [UInt8: Int] = [:]) {
        self.lastPull = lastPull; self.applied = applied; self.complete = complete; self.reset = reset; self.budgets = budgets
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.string(lastPull)
        writer.varint(UInt64(applied))
        writer.varint(complete ? 1 : 0)
        writer.varint(reset ? 1 : 0)
        writer.varint(UInt64(budgets.count))
        for (table, limit) in budgets.sorted(by: { $0.key < $1.key }) {
            writer.varint(UInt64(table))
            writer.varint(UInt64(limit))
        }
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> Pull {
        var reader = WireReader(bytes)
        var pull = Pull(lastPull: try reader.string(limit: 128), applied: try reader.count("rows applied", limit: 100_000_000),
                        complete: try reader.varint() == 1, reset: try reader.varint() == 1)
        let count = try reader.count("budget count", limit: 256)
        for _ in 0..<count {
            let table = try reader.count("budget table", limit: 255)
            pull.budgets[UInt8(table)] = try reader.count("budget", limit: 100_000_000)
        }
        try reader.finish()
        return pull
    }
}

/// DOWNLOAD body: pull id | plan rows | reset flag (the device clears its working set first).
public struct DownloadHeader: Equatable, Sendable {
    public var pull: String
    public var rows: Int
    public var reset: Bool

    public init(pull: String, rows: Int, reset: Bool) {
        self.pull = pull; self.rows = rows; self.reset = reset
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.string(pull)
        writer.varint(UInt64(rows))
        writer.varint(reset ? 1 : 0)
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> DownloadHeader {
        var reader = WireReader(bytes)
        let header = DownloadHeader(pull: try reader.string(limit: 128), rows: try reader.count("plan rows", limit: 100_000_000),
                                    reset: try reader.varint() == 1)
        try reader.finish()
        return header
    }
}

/// DONE body: pull id | listed tables: count, then per table id, rows, checksum (u64 LE) |
/// every other table as one: rows, checksum (u64 LE). Since protocol 5 the hub lists the tables
/// the download wrote and sums the rest (row hashes carry their table's id, so the sum of the
/// tables' sums is the sum over their rows): an evening's DONE lists two or three tables, not 19.
public struct DownloadDone: Equatable, Sendable {
    public var pull: String
    public var tables: [TableChecksum]
    /// What every table not in `tables` should hold together (table 0: none in particular).
    public var others: TableChecksum

    public init(pull: String, tables: [TableChecksum], others: TableChecksum = TableChecksum(table: 0)) {
        self.pull = pull; self.tables = tables; self.others = others
    }

    /// The DONE of a plan: `written` (the tables its frames write) listed, the rest summed.
    public init(pull: String, checksums: [TableChecksum], written: Set<UInt8>) {
        var others = TableChecksum(table: 0)
        for checksum in checksums where !written.contains(checksum.table) {
            others.rows += checksum.rows
            others.sum &+= checksum.sum
        }
        self.init(pull: pull, tables: checksums.filter { written.contains($0.table) }, others: others)
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.string(pull)
        writer.varint(UInt64(tables.count))
        for table in tables {
            writer.varint(UInt64(table.table))
            writer.varint(UInt64(table.rows))
            writer.raw(TableFrame.littleEndian(table.sum))
        }
        writer.varint(UInt64(others.rows))
        writer.raw(TableFrame.littleEndian(others.sum))
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> DownloadDone {
        var reader = WireReader(bytes)
        let pull = try reader.string(limit: 128)
        let count = try reader.count("table count", limit: 255)
        var tables: [TableChecksum] = []
        var seen = Set<Int>()
        for _ in 0..<count {
            let id = try reader.count("table", limit: 255)
            // Listed twice, a table would be both checked and left out of the others' sum.
            guard seen.insert(id).inserted else { throw WireReader.Failure.tooLarge(what: "DONE table \(id) listed twice", value: UInt64(id)) }
            let rows = try reader.count("rows", limit: 100_000_000)
            tables.append(TableChecksum(table: UInt8(id), rows: rows, sum: TableFrame.readLittleEndian(try reader.bytes(8))))
        }
        let rows = try reader.count("other tables' rows", limit: 100_000_000)
        let others = TableChecksum(table: 0, rows: rows, sum: TableFrame.readLittleEndian(try reader.bytes(8)))
        try reader.finish()
        return DownloadDone(pull: pull, tables: tables, others: others)
    }
}

/// ACK body: pull id | rows applied. Tells the hub what the device now holds.
public struct DownloadAck: Equatable, Sendable {
    public var pull: String
    public var applied: Int

    public init(pull: String, applied: Int) {
        self.pull = pull; self.applied = applied
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.string(pull)
        writer.varint(UInt64(applied))
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> DownloadAck {
        var reader = WireReader(bytes)
        return DownloadAck(pull: try reader.string(limit: 128), applied: try reader.count("rows applied", limit: 100_000_000))
    }
}

/// The device's product list in byte order of the part numbers: stock, prices and every other
/// column that names a part refer to it by position, which costs a byte where the part number
/// costs eight. Both ends build it from the products the device holds after the frame that
/// last changed them.
public struct Catalogue: Sendable, Equatable {
    public let parts: [String]
    /// Part number -> position, for the side that encodes (the hub); empty when built from parts
    /// already in order (`init(ordered:)`), where `position(of:)` searches `parts` instead.
    let positions: [String: Int]

    public init<S: Sequence>(parts: S) where S.Element == String {
        let sorted = parts.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        self.init(sorted: sorted, positions: Dictionary(sorted.enumerated().map { ($0.element, $0.offset) }, uniquingKeysWith: { first, _ in first }))
    }

    /// Parts the caller read in byte order (SQL `ORDER BY` on a BINARY column): the device, which
    /// decodes positions into parts every full sync, keeps the list as it is, with no sort's
    /// copy and no index of the whole product list (issue 16: work that grew with the scope).
    /// Checked in one pass; a list out of order or with a part twice takes `init(parts:)`.
    public init(ordered parts: [String]) {
        var inOrder = true
        for index in parts.indices.dropFirst() where !parts[index - 1].utf8.lexicographicallyPrecedes(parts[index].utf8) {
            inOrder = false
            break
        }
        if inOrder { self.init(sorted: parts, positions: [:]) } else { self.init(parts: parts) }
    }

    private init(sorted: [String], positions: [String: Int]) {
        self.parts = sorted
        self.positions = positions
    }

    public func position(of part: String) -> Int? {
        if !positions.isEmpty { return positions[part] }
        // Binary search of the ordered parts (`init(ordered:)`).
        var low = 0, high = parts.count
        while low < high {
            let middle = (low + high) / 2
            if parts[middle].utf8.lexicographicallyPrecedes(part.utf8) { low = middle + 1 } else { high = middle }
        }
        return low < parts.count && parts[low] == part ? low : nil
    }

    /// The same parts in the same order, however each was built.
    public static func == (lhs: Catalogue, rhs: Catalogue) -> Bool { lhs.parts == rhs.parts }
}

/// TABLE body: table id | phase (0 purge, 1 upsert) | first plan position | row count |
/// column count | checksum u64 LE | (upserts, protocol 5) held flags: 0 none, or 1 and one flag
/// per row (1: the device holds this row, as the hub's shadow knows it) | the columns one after
/// another (purges: key columns only), each in its layout (`TableColumns`).
/// The column count is the column header: both ends know the columns of a table by its id and
/// the protocol version, and a frame whose count differs (a hub on another schema) is refused
/// by name instead of misread.
public struct TableFrame: Equatable, Sendable {
    public enum Phase: UInt64, Sendable { case purge = 0, upsert = 1 }

    public var table: WorkingSetTables.Table
    public var phase: Phase
    public var firstPosition: Int
    public var rows: [WorkingSetRow]
    /// Per row, the row the device already holds as the hub knows it (nil: none), so integer
    /// columns can travel as differences to it; empty when no row of the frame is held. Only
    /// the table's `heldColumns` of a held row are read.
    public var held: [WorkingSetRow?]

    public static let maxRows = 4_000
    /// Frames are cut at this many body bytes, well under the channel's 64 KiB frame once
    /// compressed (deflate never grows data by more than a few bytes per 16 KiB block).
    public static let targetBytes = 24 * 1024

    public init(table: WorkingSetTables.Table, phase: Phase, firstPosition: Int, rows: [WorkingSetRow], held: [WorkingSetRow?] = []) {
        self.table = table; self.phase = phase; self.firstPosition = firstPosition; self.rows = rows
        self.held = held.count == rows.count && held.contains(where: { $0 != nil }) ? held : []
    }

    /// What the device holds of the rows a frame flags as held: the table, and the key values
    /// of each flagged row; answers per key the device's row, or nil for a row it does not hold.
    public typealias HeldRows = (_ table: WorkingSetTables.Table, _ keys: [WorkingSetRow]) throws -> [WorkingSetRow?]

    public var columns: ArraySlice<WorkingSetTables.Column> { phase == .purge ? table.keyColumns : table.columns[...] }

    /// The hash a row contributes: whole rows for upserts, keys for purges.
    public static func hash(table: WorkingSetTables.Table, phase: Phase, _ row: WorkingSetRow) -> UInt64 {
        RowHash.of(table: table.id, phase == .purge ? Array(row[..<table.keyCount]) : row)
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case unknownTable(UInt64)
        case wrongType(table: String, column: String)
        case checksum(table: String, firstPosition: Int)
        case positionOutOfCatalogue(table: String, position: Int)
        case columns(table: String, sent: Int, known: Int)
        /// A row the frame flags as held that the device does not hold (its working set is not
        /// what the hub's shadow says): the device starts the working set over.
        case notHeld(table: String, position: Int)

        public var description: String {
            switch self {
            case .unknownTable(let id): return "TABLE frame for unknown table \(id)"
            case .wrongType(let table, let column): return "\(table).\(column): value of the wrong type (hub data needs fixing)"
            case .checksum(let table, let first): return "TABLE frame \(table) at row \(first): checksum does not match its rows"
            case .positionOutOfCatalogue(let table, let position): return "TABLE frame \(table): catalogue position \(position) is past the device's catalogue"
            case .notHeld(let table, let position):
                return "TABLE frame \(table): plan row \(position) is sent as a change to a row this device does not hold; the next sync loads the working set again"
            case .columns(let table, let sent, let known):
                return "TABLE frame \(table) has \(sent) columns, this satchel knows \(known): the hub runs another schema; update satchel or the hub"
            }
        }
    }

    public func encode(catalogue: Catalogue?) throws -> [UInt8] {
        var spans: [(name: String, range: Range<Int>)]? = nil
        return try encode(catalogue: catalogue, spans: &spans)
    }

    /// Each part of `encode(catalogue:)`'s bytes by name (`header`, `checksum`, then each
    /// column, key columns as `key <name>`), for the downlink breakdown (`satchel-sim bench sync
    /// --downlink`): which bytes of a frame are which column's.
    public func columnSpans(catalogue: Catalogue?) throws -> [(name: String, range: Range<Int>)] {
        var spans: [(name: String, range: Range<Int>)]? = []
        _ = try encode(catalogue: catalogue, spans: &spans)
        return spans ?? []
    }

    func encode(catalogue: Catalogue?, spans: inout [(name: String, range: Range<Int>)]?) throws -> [UInt8] {
        var writer = WireWriter()
        writer.varint(UInt64(table.id))
        writer.varint(phase.rawValue)
        writer.varint(UInt64(firstPosition))
        writer.varint(UInt64(rows.count))
        writer.varint(UInt64(columns.count))
        spans?.append(("header", 0..<writer.bytes.count))
        var checksum: UInt64 = 0
        for row in rows { checksum &+= Self.hash(table: table, phase: phase, row) }
        var start = writer.bytes.count
        writer.raw(Self.littleEndian(checksum))
        spans?.append(("checksum", start..<writer.bytes.count))
        let catalogue = phase == .upsert ? catalogue : nil
        // The columns first, to know whether any took held differences: the flags go only then.
        var body = WireWriter()
        var columnSpans: [(name: String, range: Range<Int>)] = []
        var usedHeld = false
        let held = phase == .upsert ? self.held : []
        for (index, column) in columns.enumerated() {
            let columnStart = body.bytes.count
            // Keys never: the device reads them before it can look its rows up.
            usedHeld = try TableColumns.encode(column, at: index, of: rows, table: table, catalogue: catalogue,
                                               held: index < table.keyCount ? [] : held, into: &body) || usedHeld
            columnSpans.append((index < table.keyCount ? "key \(column.name)" : column.name, columnStart..<body.bytes.count))
        }
        if phase == .upsert {
            start = writer.bytes.count
            writer.varint(usedHeld ? 1 : 0)
            if usedHeld { for row in held { writer.varint(row == nil ? 0 : 1) } }
            spans?.append(("held flags", start..<writer.bytes.count))
        }
        if usedHeld {
            writer.raw(body.bytes)
        } else {
            // No column took the differences: the same bytes as a frame without held rows.
            body = WireWriter()
            columnSpans = []
            for (index, column) in columns.enumerated() {
                let columnStart = body.bytes.count
                try TableColumns.encode(column, at: index, of: rows, table: table, catalogue: catalogue, into: &body)
                columnSpans.append((index < table.keyCount ? "key \(column.name)" : column.name, columnStart..<body.bytes.count))
            }
            writer.raw(body.bytes)
        }
        let offset = writer.bytes.count - body.bytes.count
        for span in columnSpans { spans?.append((span.name, span.range.lowerBound + offset..<span.range.upperBound + offset)) }
        return writer.bytes
    }

    /// Decodes and checks a frame. `catalogue` is the device's product list as it stands now;
    /// `heldRows` answers what the device holds of the rows the frame flags as held (a frame
    /// that flags some is refused without it: `notHeld`).
    public static func decode(_ bytes: [UInt8], catalogue: Catalogue?, heldRows: HeldRows? = nil) throws -> TableFrame {
        var reader = WireReader(bytes)
        let id = try reader.varint()
        guard id <= 255, let table = WorkingSetTables.byID[UInt8(id)] else { throw Failure.unknownTable(id) }
        let rawPhase = try reader.varint()
        guard let phase = Phase(rawValue: rawPhase) else { throw WireReader.Failure.tooLarge(what: "phase", value: rawPhase) }
        let first = try reader.count("first position", limit: 100_000_000)
        let count = try reader.count("rows", limit: maxRows)
        let columnCount = phase == .purge ? table.keyCount : table.columns.count
        let sentColumns = try reader.varint()
        guard sentColumns == UInt64(columnCount) else {
            throw Failure.columns(table: table.name, sent: Int(truncatingIfNeeded: sentColumns), known: columnCount)
        }
        let checksum = readLittleEndian(try reader.bytes(8))
        let catalogue = phase == .upsert ? catalogue : nil
        var flags: [Bool] = []
        if phase == .upsert {
            let mode = try reader.varint()
            guard mode <= 1 else { throw WireReader.Failure.tooLarge(what: "\(table.name) held flags", value: mode) }
            if mode == 1 {
                flags.reserveCapacity(count)
                for _ in 0..<count {
                    let flag = try reader.varint()
                    guard flag <= 1 else { throw WireReader.Failure.tooLarge(what: "\(table.name) held flag", value: flag) }
                    flags.append(flag == 1)
                }
            }
        }
        var rows = [WorkingSetRow](repeating: [], count: count)
        for index in rows.indices { rows[index].reserveCapacity(columnCount) }
        var held: [WorkingSetRow?] = []
        for (index, column) in table.columns.prefix(columnCount).enumerated() {
            if index == table.keyCount, flags.contains(true) {
                // The keys are in: ask the device for the rows it holds of the flagged ones.
                let flagged = flags.indices.filter { flags[$0] }
                guard let heldRows else { throw Failure.notHeld(table: table.name, position: first + flagged[0]) }
                let found = try heldRows(table, flagged.map { rows[$0] })
                guard found.count == flagged.count else { throw Failure.notHeld(table: table.name, position: first + flagged[0]) }
                held = [WorkingSetRow?](repeating: nil, count: count)
                for (row, device) in zip(flagged, found) {
                    guard let device, device.count == table.columns.count else { throw Failure.notHeld(table: table.name, position: first + row) }
                    held[row] = device
                }
            }
            try TableColumns.decode(column, at: index, count: count, into: &rows, table: table, catalogue: catalogue, held: held, from: &reader)
        }
        try reader.finish()
        let frame = TableFrame(table: table, phase: phase, firstPosition: first, rows: rows, held: held)
        var sum: UInt64 = 0
        for row in rows { sum &+= hash(table: table, phase: phase, row) }
        guard sum == checksum else { throw Failure.checksum(table: table.name, firstPosition: first) }
        return frame
    }

    static func littleEndian(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
    static func readLittleEndian(_ bytes: [UInt8]) -> UInt64 {
        bytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }
}
