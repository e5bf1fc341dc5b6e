import Field
import Foundation
import Postgres
import Store
import Sync

/// The ERP import on the PostgreSQL hub (issue 17): the same file, the same checks, the same
/// refusals and all or nothing.
///
/// The checks are the handheld's own schema (SQLite: `ERPStaging`), so the file is imported
/// first into a scratch SQLite hub in a temporary directory that holds a copy of this hub's master
/// data (a row kept from the hub is checked against the file's rows exactly as on SQLite). Only
/// a file that passes reaches PostgreSQL: in one transaction, under the master data's advisory
/// lock (one import at a time, downloads see the old or the new data whole), each table the file
/// wrote is emptied and sent whole with `COPY ... FROM STDIN`; reps are updated in place or
/// added (their sign-in lives here). A refused file, a dropped connection or a killed process
/// leaves the hub as it was: PostgreSQL rolls the open transaction back.
///
/// Memory stays bounded: the hub's rows are read into the scratch file page by page through a
/// cursor, and the scratch's rows go out in chunks of COPY lines.
extension PostgresHubStorage {
    /// SQLite's hub tables the import writes, with the PostgreSQL table each is kept in.
    static let erpTables: [(sqlite: String, postgres: String)] =
        [("erp_currencies", "erp_currencies"), ("erp_open_items", "open_items")]
        + MasterDataSchema.importedTables.map { ($0.name, $0.name) }

    public func importERP(path: String) throws -> ERPImportSummary {
        let directory = NSTemporaryDirectory() + "satchel-erp-import-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw HubError.storage("cannot make the ERP import's scratch directory \(directory): \(error); nothing imported")
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try guarded {
            try connection.transaction {
                try connection.execute("SELECT pg_advisory_xact_lock(\(Self.masterDataLock))")
                let scratch = try SQLiteHubStorage(path: directory + "/scratch.db")
                // A throwaway file: nothing in it must survive a crash (the journal in memory
                // still rolls a failed statement back).
                try scratch.guarded {
                    try scratch.database.execute("PRAGMA journal_mode = MEMORY")
                    try scratch.database.execute("PRAGMA synchronous = OFF")
                }
                try copyMasterData(into: scratch)
                let (summary, tables) = try scratch.importERPTables(path: path)
                for (sqliteTable, postgresTable) in Self.erpTables where tables.contains(sqliteTable) {
                    try connection.execute("DELETE FROM \(postgresTable)")
                    try send(sqliteTable, from: scratch, to: postgresTable)
                }
                if tables.contains("reps") { try updateReps(from: scratch, added: summary.addedReps) }
                return summary
            }
        }
    }

    /// The columns of `table` as both backends hold them (`erp_currencies` is the hub's own).
    static func erpColumns(_ sqliteTable: String) -> [(name: String, integer: Bool)] {
        if sqliteTable == "erp_currencies" { return [("code", false), ("minor_units", true)] }
        let table = WorkingSetTables.named(sqliteTable == "erp_open_items" ? "open_items" : sqliteTable)!
        return table.columns.map { ($0.name, $0.kind == .integer || $0.kind == .optionalInteger) }
    }

    /// This hub's master data, reps and currencies into the scratch hub, a page at a time.
    func copyMasterData(into scratch: SQLiteHubStorage) throws {
        let tables = Self.erpTables.map { (sqlite: $0.sqlite, postgres: $0.postgres, columns: Self.erpColumns($0.sqlite)) }
            + [(sqlite: "reps", postgres: "reps", columns: [("id", false), ("name", false), ("territory_id", false), ("role", false)])]
        try scratch.guarded {
            try scratch.database.transaction(.immediate) {
                for table in tables {
                    let names = table.columns.map(\.name)
                    let insert = try scratch.database.statement(table.sqlite == "reps"
                        ? "INSERT INTO reps(id, name, territory_id, role, password_hash) VALUES (?, ?, ?, ?, '')"
                        : "INSERT INTO \(table.sqlite)(\(names.joined(separator: ", "))) VALUES (\(names.map { _ in "?" }.joined(separator: ", ")))")
                    try connection.execute("DECLARE erp_seed NO SCROLL CURSOR FOR SELECT \(names.joined(separator: ", ")) FROM \(table.postgres)")
                    while true {
                        let fetched = try connection.query("FETCH 4096 FROM erp_seed") { row in
                            insert.reset()
                            for (index, column) in table.columns.enumerated() {
                                let position = Int32(index + 1)
                                if row.isNull(index) { try insert.bindNull(at: position) }
                                else if column.integer { try insert.bind(row.int64(index), at: position) }
                                else { try insert.bind(row.text(index), at: position) }
                            }
                            try insert.runBound()
                        }
                        if fetched.isEmpty { break }
                    }
                    try connection.execute("CLOSE erp_seed")
                }
            }
        }
    }

    /// The scratch hub's `sqliteTable` into this hub's (emptied) `postgresTable`, COPY text format.
    func send(_ sqliteTable: String, from scratch: SQLiteHubStorage, to postgresTable: String) throws {
        let columns = Self.erpColumns(sqliteTable)
        let list = columns.map(\.name).joined(separator: ", ")
        let copy = "COPY \(postgresTable)(\(list)) FROM STDIN"
        try scratch.guarded {
            let select = try scratch.database.statement("SELECT \(list) FROM \(sqliteTable)")
            defer { select.reset() }
            var lines: [String] = []
            lines.reserveCapacity(8192)
            while try select.step() {
                var line = ""
                for index in columns.indices {
                    if index > 0 { line += "\t" }
                    let column = Int32(index)
                    if select.isNull(column) { line += "\\N" }
                    else if columns[index].integer { line += String(select.int64(column)) }
                    else { line += PostgresCopy.text(select.text(column)) }
                }
                lines.append(line)
                if lines.count >= 8192 { try connection.copy(copy, lines: lines); lines.removeAll(keepingCapacity: true) }
            }
            if !lines.isEmpty { try connection.copy(copy, lines: lines) }
        }
    }

    /// The file's reps: the hub's updated in place, the new ones added without a sync password
    /// (as on SQLite: their handheld syncs once the office sets one).
    func updateReps(from scratch: SQLiteHubStorage, added: [String]) throws {
        let reps = try scratch.guarded {
            try scratch.database.query("SELECT id, name, territory_id, role FROM reps") { ($0.text(0), $0.text(1), $0.optionalText(2), $0.text(3)) }
        }
        let arrays: [PostgresValue] = [.text(PostgresArray.text(reps.map(\.0))), .text(PostgresArray.text(reps.map(\.1))),
                                       .text(PostgresArray.optionalText(reps.map(\.2))), .text(PostgresArray.text(reps.map(\.3)))]
        try connection.execute("""
            UPDATE reps SET name = s.n, territory_id = s.t, role = s.r FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS s(i, n, t, r)
            WHERE reps.id = s.i AND (reps.name, reps.territory_id, reps.role) IS DISTINCT FROM (s.n, s.t, s.r)
            """, arrays)
        let new = Set(added)
        let adding = reps.filter { new.contains($0.0) }
        guard !adding.isEmpty else { return }
        try connection.execute("""
            INSERT INTO reps(id, name, territory_id, role, password_hash) SELECT i, n, t, r, '' FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS s(i, n, t, r)
            """, [.text(PostgresArray.text(adding.map(\.0))), .text(PostgresArray.text(adding.map(\.1))),
                  .text(PostgresArray.optionalText(adding.map(\.2))), .text(PostgresArray.text(adding.map(\.3)))])
    }
}

/// A value in COPY's text format: backslash, tab, line feed and carriage return escaped.
enum PostgresCopy {
    static func text(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == 0x5C || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) else { return value }
        var out = ""
        out.reserveCapacity(value.utf8.count + 8)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
