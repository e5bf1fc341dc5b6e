public import Field
import Store
public import Sync

/// Where downloads land on the device: the working-set tables, one transaction per TABLE frame
/// together with the plan position reached (`sync_state`), so a dropped link or a power cut
/// resumes after the last whole frame and never applies a row twice.
public final class DeviceDownload: DownloadSink {
    let device: DeviceDatabase
    var database: Database { device.database }
    private var cachedCatalogue: Catalogue?
    /// Each table's foreign keys as this device's schema declares them, read once per download.
    private var references: [UInt8: [WorkingSetTables.Table.Reference]] = [:]
    /// Documents of a replaced device that could not be stored (duplicate mode).
    public internal(set) var skippedDocuments = 0

    /// The most rows kept per table; the hub sends the most needed ones.
    public static let defaultBudgets: [String: Int] = ["customers": 3_000, "products": 6_000]

    /// The budgets this device declares in every PULL (table name -> most rows kept).
    public let budgets: [String: Int]

    public init(_ device: DeviceDatabase, budgets: [String: Int] = DeviceDownload.defaultBudgets) {
        self.device = device
        self.budgets = budgets
    }

    public struct State: Equatable, Sendable {
        public var pull: String
        public var applied: Int
        public var complete: Bool
        public var resetRequested: Bool
    }

    public func state() throws -> State {
        State(pull: try device.syncState("download_pull") ?? "", applied: Int(try device.syncState("download_applied") ?? "0") ?? 0,
              complete: try device.syncState("download_complete") == "1", resetRequested: try device.syncState("download_reset") == "1")
    }

    /// The PULL this device sends next: where its last download stands, and its budgets.
    public func pullRequest(reset: Bool = false) throws -> Pull {
        let state = try state()
        var budgets: [UInt8: Int] = [:]
        for (name, limit) in self.budgets { if let table = WorkingSetTables.named(name) { budgets[table.id] = limit } }
        return Pull(lastPull: state.pull, applied: state.applied, complete: state.complete,
                    reset: reset || state.resetRequested, budgets: budgets)
    }

    public func begin(_ header: DownloadHeader) throws {
        try device.write {
            if header.reset {
                // Every row left is kept only for a document: the sums start again from zero.
                let checksums = WorkingSetChecksums(database)
                try checksums.accounting { try clearWorkingSet() }
                checksums.cleared()
                try checksums.save()
            }
            try device.setSyncState("download_pull", header.pull)
            try device.setSyncState("download_applied", "0")
            try device.setSyncState("download_complete", "0")
            try device.setSyncState("download_reset", "0")
        }
        cachedCatalogue = nil
    }

    /// The device's own rows under `keys` (a frame's held rows, protocol 5). A row of a table
    /// written outside downloads may not be what the hub's shadow says: then the frame's
    /// checksum refuses it and `heldRowsDiffer` asks for a reset.
    public func heldRows(_ table: WorkingSetTables.Table, keys: [WorkingSetRow]) throws -> [WorkingSetRow?] {
        try device.guarded {
            let statement = try database.statement("SELECT \(table.columnList) FROM \(table.name) WHERE "
                                                    + table.keyColumns.map { "\($0.name) = ?" }.joined(separator: " AND "))
            let count = Int32(table.columns.count)
            return try keys.map { key in
                try statement.bind(key)
                defer { statement.reset() }
                return try statement.step() ? (0..<count).map { statement.value($0) } : nil
            }
        }
    }

    public func heldRowsDiffer() throws {
        try device.write { try device.setSyncState("download_reset", "1") }
    }

    /// Empties the working set for a reset; rows a document points at stay, marked retained, and
    /// so do the rows those point at (a kept customer's territory).
    func clearWorkingSet() throws {
        for table in WorkingSetTables.all.reversed() {
            do {
                try database.savepoint("clear_table") { try database.execute("DELETE FROM \(table.name)") }
            } catch let error as StoreError where error.kind == .constraint {
                for row in try table.rows(in: database) { try purge(table, key: Array(row[..<table.keyCount])) }
            }
        }
    }

    /// Deletes one row; a row something on the device still points at (a document, or a row
    /// kept for one) is kept and marked retained instead. Returns whether it was deleted.
    /// With `checksums`, the row's hash leaves its table's sum (deleted or retained, it no longer
    /// counts), and a delete that cascaded into other tables marks those stale.
    @discardableResult
    func purge(_ table: WorkingSetTables.Table, key: WorkingSetRow, checksums: WorkingSetChecksums? = nil) throws -> Bool {
        let condition = table.keyColumns.map { "\($0.name) = ?" }.joined(separator: " AND ")
        if let checksums {
            let retained = try database.int64("SELECT EXISTS (SELECT 1 FROM working_set_retained WHERE tbl = ? AND key = ?)",
                                              [.integer(Int64(table.id)), .blob(table.key(of: key))]) == 1
            if !retained, let held = try heldRow(table, key: key) { try checksums.remove(table, RowHash.of(table: table.id, held)) }
        }
        do {
            let before = try database.int64("SELECT total_changes()")
            try database.execute("DELETE FROM \(table.name) WHERE \(condition)", key)
            // total_changes counts the rows a foreign key's ON DELETE CASCADE removed too.
            if let checksums, try database.int64("SELECT total_changes()") - before > 1 {
                for dependent in try WorkingSetChecksums.dependents(of: table, in: database) { checksums.markStale(dependent) }
            }
            return true
        } catch let error as StoreError where error.kind == .constraint {
            try database.execute("INSERT INTO working_set_retained(tbl, key) VALUES (?, ?) ON CONFLICT DO NOTHING",
                                 [.integer(Int64(table.id)), .blob(table.key(of: key))])
            return false
        }
    }

    /// The row this device holds under `key`, in wire order, if any.
    func heldRow(_ table: WorkingSetTables.Table, key: WorkingSetRow) throws -> WorkingSetRow? {
        let condition = table.keyColumns.map { "\($0.name) = ?" }.joined(separator: " AND ")
        return try table.rows(in: database, where: "WHERE \(condition)", key).first
    }

    public func catalogue() throws -> Catalogue {
        if let cachedCatalogue { return cachedCatalogue }
        let retained = try retainedKeys(WorkingSetTables.products)
        let parts = try device.guarded {
            try database.query("SELECT part_number FROM products ORDER BY part_number") { $0.text(0) }
        }.filter { retained.isEmpty || !retained.contains(WorkingSetTables.products.key(of: [.text($0)])) }
        let catalogue = Catalogue(ordered: parts)
        cachedCatalogue = catalogue
        return catalogue
    }

    func retainedKeys(_ table: WorkingSetTables.Table) throws -> Set<[UInt8]> {
        Set(try device.guarded {
            try database.query("SELECT key FROM working_set_retained WHERE tbl = ?", [.integer(Int64(table.id))]) { $0.blob(0) }
        })
    }

    public enum Failure: Error, CustomStringConvertible {
        case outOfOrder(expected: Int, got: Int, table: String)
        case noDownload

        public var description: String {
            switch self {
            case .outOfOrder(let expected, let got, let table):
                return "download frame for \(table) starts at row \(got), expected \(expected): refused, nothing applied"
            case .noDownload: return "a download frame arrived before its DOWNLOAD header"
            }
        }
    }

    /// A row of the download this device's schema refuses (a CHECK, a foreign key to a row it
    /// does not hold, a trigger): its frame is not applied, the hub hears which row and why
    /// (ERROR `rowRefused`, in its audit log), and the next sync starts again from that frame.
    /// The key and reason are the hub's text: whoever prints them makes them safe (TerminalText).
    public struct RowRefused: DownloadRefusal, Equatable {
        public let table: String
        /// The key columns and their values, e.g. `id 'CPL900001'`.
        public let key: String
        public let reason: String

        init(table: WorkingSetTables.Table, row: WorkingSetRow, reason: String, reference: WorkingSetTables.Table.Reference?) {
            self.table = table.name
            key = zip(table.keyColumns, row).map { column, value in
                if case .text(let text) = value { return "\(column.name) '\(text)'" }
                if case .integer(let number) = value { return "\(column.name) \(number)" }
                return "\(column.name) NULL"
            }.joined(separator: ", ")
            if let reference {
                self.reason = "\(reason): \(reference.from.joined(separator: ", ")) points at a \(reference.parent) row this handheld does not hold"
            } else {
                self.reason = reason
            }
        }

        public var description: String {
            "the hub sent a row this handheld's schema refuses: \(table) \(key): \(reason)"
        }
    }

    public func apply(_ frame: TableFrame) throws {
        let table = frame.table
        try device.write {
            let applied = Int(try device.syncState("download_applied") ?? "") ?? -1
            guard applied == frame.firstPosition else { throw Failure.outOfOrder(expected: applied, got: frame.firstPosition, table: table.name) }
            let checksums = WorkingSetChecksums(database)
            try checksums.accounting {
            switch frame.phase {
            case .purge:
                for key in frame.rows { try purge(table, key: key, checksums: checksums) }
            case .upsert:
                // Foreign keys are checked row by row, so a refusal names its row; only a table
                // pointing at itself (territories: parents and children share a frame) waits for
                // the end of the frame, and then its rows are searched for the one pointing nowhere.
                let references = try self.references[table.id] ?? table.references(in: database)
                self.references[table.id] = references
                let selfReferencing = references.contains { $0.parent == table.name }
                if selfReferencing { try database.execute("PRAGMA defer_foreign_keys = ON") }
                let statement = try database.statement(Self.upsertSQL(table))
                let folded = FieldSchema.foldedNameTables.contains(table.name)
                // The sum takes the new rows and loses the ones they replace; a replaced row kept
                // only for a document was not counted (and is the hub's again from here on).
                var retained = try retainedKeys(table)
                let stale = try checksums.state(table).stale
                let held = try database.statement("SELECT \(table.columnList) FROM \(table.name) WHERE "
                                                  + table.keyColumns.map { "\($0.name) = ?" }.joined(separator: " AND "))
                for row in frame.rows {
                    if !stale {
                        let key = Array(row[..<table.keyCount])
                        try held.bind(key)
                        if try held.step() {
                            let old = (0..<Int32(table.columns.count)).map { held.value($0) }
                            if retained.isEmpty || retained.remove(table.key(of: key)) == nil {
                                try checksums.remove(table, RowHash.of(table: table.id, old))
                            }
                        }
                        held.reset()
                        try checksums.add(table, RowHash.of(table: table.id, row))
                    }
                    var values = row
                    if folded, case .text(let name) = row[1] { values.append(.text(SearchFolding.fold(name))) }
                    do {
                        try statement.run(values)
                    } catch let error as StoreError where error.kind == .constraint {
                        throw try RowRefused(table: table, row: row, reason: error.message, reference: table.brokenReference(of: row, in: database))
                    }
                }
                if selfReferencing {
                    for reference in references where reference.parent == table.name {
                        if let row = try table.dangling(reference, in: database).first {
                            throw RowRefused(table: table, row: row, reason: "FOREIGN KEY constraint failed", reference: reference)
                        }
                    }
                }
                // A row the hub sends again is the hub's again, not kept for a document.
                if try database.int64("SELECT EXISTS (SELECT 1 FROM working_set_retained WHERE tbl = ?)", [.integer(Int64(table.id))]) == 1 {
                    let forget = try database.statement("DELETE FROM working_set_retained WHERE tbl = ? AND key = ?")
                    for row in frame.rows { try forget.run([.integer(Int64(table.id)), .blob(table.key(of: row))]) }
                }
            }
            }
            try checksums.save()
            try device.setSyncState("download_applied", String(applied + frame.rows.count))
        }
        if table == WorkingSetTables.products { cachedCatalogue = nil }
    }

    static func upsertSQL(_ table: WorkingSetTables.Table) -> String {
        var columns = table.columns.map(\.name)
        if FieldSchema.foldedNameTables.contains(table.name) { columns.append("name_folded") }
        let updates = columns.dropFirst(table.keyCount).map { "\($0) = excluded.\($0)" }
        let conflict = updates.isEmpty ? "DO NOTHING" : "DO UPDATE SET \(updates.joined(separator: ", "))"
        return "INSERT INTO \(table.name)(\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", "))) "
            + "ON CONFLICT(\(table.keyList)) \(conflict)"
    }

    /// Compares the sums the device kept with the hub's: a table marked stale, and one whose
    /// kept sum differs, is summed again whole first, so only a table that really differs asks
    /// for a reset. Work in proportion to what changed, unless something did not go through
    /// the download.
    public func finish(_ done: DownloadDone) throws -> [String] {
        try device.write {
            let checksums = WorkingSetChecksums(database)
            var mismatched: [String] = []
            for expected in done.tables {
                guard let table = WorkingSetTables.byID[expected.table] else { continue }
                var (mine, stale) = try checksums.state(table)
                if stale || mine != expected { mine = try checksums.recompute(table) }
                if mine != expected { mismatched.append(table.name) }
            }
            // The tables the download did not write, checked together (protocol 5): stale ones
            // summed again first; if the sum still differs, every one of them is, and the
            // tables whose rows were written outside downloads are named as the likely cause
            // (all of them when none was).
            let listed = Set(done.tables.map(\.table))
            let others = WorkingSetTables.all.filter { !listed.contains($0.id) }
            func othersSum(recomputingAll: Bool, suspects: inout [String]) throws -> TableChecksum {
                var total = TableChecksum(table: 0)
                for table in others {
                    var (mine, stale) = try checksums.state(table)
                    if stale || recomputingAll {
                        let summed = try checksums.recompute(table)
                        if stale || summed != mine { suspects.append(table.name) }
                        mine = summed
                    }
                    total.rows += mine.rows
                    total.sum &+= mine.sum
                }
                return total
            }
            var suspects: [String] = []
            if try othersSum(recomputingAll: false, suspects: &suspects) != done.others,
               try othersSum(recomputingAll: true, suspects: &suspects) != done.others {
                var named = Set<String>()
                let culprits = suspects.filter { named.insert($0).inserted }
                mismatched += culprits.isEmpty ? others.map(\.name) : culprits
            }
            try checksums.save()
            try device.setSyncState("download_complete", "1")
            try device.setSyncState("download_reset", mismatched.isEmpty ? "0" : "1")
            return mismatched
        }
    }

    /// The sums the device keeps (what `finish` compares), for every table that is not stale.
    public func keptChecksums() throws -> [UInt8: TableChecksum] {
        try device.guarded {
            let checksums = WorkingSetChecksums(database)
            var result: [UInt8: TableChecksum] = [:]
            for table in WorkingSetTables.all {
                let state = try checksums.state(table)
                if !state.stale { result[table.id] = state.checksum }
            }
            return result
        }
    }

    /// What the device holds per table, as the hub computes it: rows and the sum of their
    /// hashes, leaving out rows kept only for documents.
    public func checksums() throws -> [UInt8: TableChecksum] {
        try device.guarded {
            var result: [UInt8: TableChecksum] = [:]
            for table in WorkingSetTables.all {
                let retained = try retainedKeys(table)
                var checksum = TableChecksum(table: table.id)
                for row in try table.rows(in: database) where retained.isEmpty || !retained.contains(table.key(of: row)) {
                    checksum.add(RowHash.of(table: table.id, row))
                }
                result[table.id] = checksum
            }
            return result
        }
    }
}

extension DeviceDownload {
    /// Documents of the replaced handheld, written as history (not into this device's journal:
    /// they are on the hub already). One savepoint each: a document whose customer or product
    /// is outside this working set is skipped and counted, not half-written. A document this
    /// device has changed itself (its own journal names it) is left as it is: a repeated
    /// duplicate refreshes only the copies this device never touched.
    public func documents(_ batch: Batch) throws -> Int {
        try device.write {
            let replay = Replay(database)
            var stored = 0
            for change in batch.changes {
                let mine = try database.int64("SELECT EXISTS (SELECT 1 FROM changes WHERE entity = ? AND entity_id = ?)",
                                              [.text(change.entity), .text(change.entityId)]) == 1
                if mine { continue }
                do {
                    try database.savepoint("document") { try replay.storeDocument(entity: change.entity, payload: change.payload, seq: change.seq) }
                    stored += 1
                } catch let error as StoreError where error.kind == .constraint {
                    skippedDocuments += 1   // points at a customer or product outside this working set
                } catch is Replay.Failure, is FieldError {
                    skippedDocuments += 1   // a kind of document or a payload this satchel cannot read
                }
            }
            // The office's answers arrived before the documents they are about: apply them now
            // (the states themselves stay as they are, and so does their sum).
            try WorkingSetChecksums(database).accounting { try database.execute("UPDATE document_states SET state = state") }
            return stored
        }
    }
}

extension DeviceDownload {
    /// Deletes retained working-set rows no document points at any more (after housekeeping let
    /// the documents go). A row still referenced refuses (foreign key) and stays retained.
    @discardableResult
    public func releaseRetained() throws -> Int {
        try device.write {
            var released = 0
            let checksums = WorkingSetChecksums(database)
            let rows = try database.query("SELECT tbl, key FROM working_set_retained") { ($0.int64(0), $0.blob(1)) }
            try checksums.accounting {
                for (id, key) in rows {
                    guard let table = WorkingSetTables.byID[UInt8(truncatingIfNeeded: id)], let values = try? table.keyValues(key) else { continue }
                    // A row still referenced stays retained (purge keeps it marked). A retained
                    // row is not in the sums, so only a cascade changes them.
                    if try purge(table, key: values, checksums: checksums) {
                        try database.execute("DELETE FROM working_set_retained WHERE tbl = ? AND key = ?", [.integer(id), .blob(key)])
                        released += 1
                    }
                }
            }
            try checksums.save()
            return released
        }
    }
}
