import Store
public import Sync

/// The working-set checksums the device keeps as its downloads write (`working_set_checksums`,
/// schema v8), so checking a download against the hub's DONE costs what the download changed,
/// not a read of every table (issue 16). A download's frame adds the hash of each row it writes
/// and takes away the hash of the row it replaces or removes, in the frame's own transaction, so
/// a power cut leaves the sums and the rows as they were together. Anything else that writes a
/// working-set table (a reservation adding a stock row, the seeder, a journal replay after a
/// restore) marks the table stale through the schema's triggers, and so does a purge that
/// cascaded into other tables; a stale table is summed again whole at the next check, and so is
/// any table whose kept sum disagrees with the hub's, before the device believes it drifted.
final class WorkingSetChecksums {
    let database: Database
    private var kept: [UInt8: (checksum: TableChecksum, stale: Bool)] = [:]

    init(_ database: Database) { self.database = database }

    /// What is kept for `table`; a table never summed is stale.
    func state(_ table: WorkingSetTables.Table) throws -> (checksum: TableChecksum, stale: Bool) {
        if let known = kept[table.id] { return known }
        let rows = try database.query("SELECT rows, sum, stale FROM working_set_checksums WHERE tbl = ?", [.integer(Int64(table.id))]) {
            (TableChecksum(table: table.id, rows: Int($0.int64(0)), sum: UInt64(bitPattern: $0.int64(1))), $0.int64(2) != 0)
        }
        let state = rows.first ?? (TableChecksum(table: table.id), true)
        kept[table.id] = state
        return state
    }

    /// Runs `body` with the triggers quiet: the writes in it are accounted for here. Call inside
    /// the transaction that writes, and `save()` before it commits.
    func accounting<T>(_ body: () throws -> T) throws -> T {
        try database.execute("UPDATE working_set_checksum_writer SET applying = 1")
        let result = try body()
        try database.execute("UPDATE working_set_checksum_writer SET applying = 0")
        return result
    }

    /// `hash` leaves the table (a row replaced, deleted or now kept only for a document).
    func remove(_ table: WorkingSetTables.Table, _ hash: UInt64) throws {
        var state = try state(table)
        state.checksum.rows -= 1
        state.checksum.sum &-= hash
        kept[table.id] = state
    }

    func add(_ table: WorkingSetTables.Table, _ hash: UInt64) throws {
        var state = try state(table)
        state.checksum.add(hash)
        kept[table.id] = state
    }

    func markStale(_ table: WorkingSetTables.Table) {
        kept[table.id] = (TableChecksum(table: table.id), true)
    }

    /// Every table holds only retained rows (after a reset): all sums are zero and known.
    func cleared() {
        for table in WorkingSetTables.all { kept[table.id] = (TableChecksum(table: table.id), false) }
    }

    /// Sums `table` whole, leaving out rows kept only for documents, and keeps the result.
    func recompute(_ table: WorkingSetTables.Table) throws -> TableChecksum {
        let retained = Set(try database.query("SELECT key FROM working_set_retained WHERE tbl = ?", [.integer(Int64(table.id))]) { $0.blob(0) })
        var checksum = TableChecksum(table: table.id)
        for row in try table.rows(in: database) where retained.isEmpty || !retained.contains(table.key(of: row)) {
            checksum.add(RowHash.of(table: table.id, row))
        }
        kept[table.id] = (checksum, false)
        return checksum
    }

    /// Writes what changed in memory; inside the transaction that made the changes.
    func save() throws {
        let statement = try database.statement(
            "INSERT INTO working_set_checksums(tbl, rows, sum, stale) VALUES (?, ?, ?, ?) "
                + "ON CONFLICT(tbl) DO UPDATE SET rows = excluded.rows, sum = excluded.sum, stale = excluded.stale")
        for (table, state) in kept.sorted(by: { $0.key < $1.key }) {
            try statement.run([.integer(Int64(table)), .integer(Int64(state.checksum.rows)), .integer(Int64(bitPattern: state.checksum.sum)),
                               .integer(state.stale ? 1 : 0)])
        }
    }

    /// The tables a delete in `table` can cascade into (directly or through another), for a
    /// purge that removed more than its own row.
    static func dependents(of table: WorkingSetTables.Table, in database: Database) throws -> [WorkingSetTables.Table] {
        var found: [WorkingSetTables.Table] = [], frontier = [table.name]
        while let parent = frontier.popLast() {
            for child in WorkingSetTables.all where !found.contains(child) && child != table {
                if try child.references(in: database).contains(where: { $0.parent == parent }) {
                    found.append(child)
                    frontier.append(child.name)
                }
            }
        }
        return found
    }
}
