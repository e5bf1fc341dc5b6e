import Field
import Foundation
import Store
import Sync

/// Working-set rows checked against the handheld's own schema before the hub accepts or sends
/// them. The rows go into an in-memory database built by the device's migrations
/// (`FieldSchema.migrations`), so every CHECK, NOT NULL, UNIQUE and foreign key a handheld
/// enforces is enforced here by the same SQL, and a constraint a new device migration adds is
/// checked on the hub the day it is written. Rules restated beside `WorkingSetTables` would
/// drift from the schema; this cannot. The wire adds one rule of its own: a value of the
/// column's kind (`WorkingSetTables.Kind`), or the TABLE encoder cannot send the row at all.
struct DeviceSchemaCheck {
    /// One row the device would refuse: which table and key, which column when SQLite says, why.
    struct Refusal: Equatable, CustomStringConvertible {
        var table: WorkingSetTables.Table
        var key: [UInt8]
        var keyValues: WorkingSetRow
        var column: String?
        var value: DatabaseValue?
        var reason: String

        var description: String {
            let key = zip(table.keyColumns, keyValues).map { "\($0.name) \(Displayed.value($1))" }.joined(separator: ", ")
            var text = "\(table.name) \(key)"
            if let column {
                text += ", column \(column)"
                if let value { text += " = \(Displayed.value(value))" }
            }
            return text + ": " + Displayed.text(reason)
        }
    }

    private let database: Database

    init() throws {
        database = try Self.deviceSchema()
        // One transaction for every row, never committed: the database is thrown away with
        // this value, and a refused row aborts only its own statement.
        try database.execute("BEGIN")
    }

    /// An empty device database in memory, made by the device's migrations.
    static func deviceSchema() throws -> Database {
        var options = Database.Options()
        options.walMode = false
        // Foreign keys are checked by `foreignKeyRefusals`, over the whole scope at once.
        options.foreignKeys = false
        let database = try Database(path: ":memory:", options: options)
        try database.migrate(FieldSchema.migrations, applicationID: FieldSchema.applicationID)
        return database
    }

    /// The device schema's foreign keys per working-set table (`PRAGMA foreign_key_list`), read
    /// once from the migrations.
    static let references: [String: [WorkingSetTables.Table.Reference]] = {
        guard let database = try? deviceSchema() else { return [:] }
        var references: [String: [WorkingSetTables.Table.Reference]] = [:]
        for table in WorkingSetTables.all { references[table.name] = (try? table.references(in: database)) ?? [] }
        return references
    }()

    /// Rows that passed before, by table and row hash: a row's CHECKs, NOT NULLs and kinds
    /// depend on its values alone, so a scope most devices share is checked once per process,
    /// not once per session (the import fills it too). Bounded: cleared when it grows past a
    /// few million rows.
    final class PassedRows: @unchecked Sendable {
        private let lock = NSLock()
        private var rows = Set<Row>()
        struct Row: Hashable { var table: UInt8; var hash: UInt64 }
        static let limit = 4_000_000

        func contains(_ row: Row) -> Bool { lock.lock(); defer { lock.unlock() }; return rows.contains(row) }
        func insert(_ new: [Row]) {
            lock.lock(); defer { lock.unlock() }
            if rows.count + new.count > Self.limit { rows.removeAll() }
            rows.formUnion(new)
        }
    }
    static let passed = PassedRows()

    /// Stores `rows` of `table` as a device does (its `name_folded` too); returns the rows the
    /// schema refuses, for a CHECK, a NOT NULL, a duplicate key, or a value not of the column's
    /// kind. With `hashes` (the rows' RowHash, in order), rows that passed before skip the work;
    /// without (an import, which must see every row, a duplicate key too), all are checked.
    /// `remember: false` (the ERP import, which streams files of millions of rows) keeps the
    /// passed rows out of `passed`, so its memory stays bounded and no row is hashed.
    func rowRefusals(_ table: WorkingSetTables.Table, _ rows: [WorkingSetRow], hashes: [UInt64]? = nil, remember: Bool = true) throws -> [Refusal] {
        var columns = table.columns.map(\.name)
        let folded = FieldSchema.foldedNameTables.contains(table.name)
        if folded { columns.append("name_folded") }
        let statement = try database.statement(
            "INSERT INTO \(table.name)(\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))")
        var refusals: [Refusal] = []
        var passed: [PassedRows.Row] = []
        for (index, row) in rows.enumerated() {
            let known = PassedRows.Row(table: table.id, hash: hashes?[index] ?? (remember ? RowHash.of(table: table.id, row) : 0))
            if hashes != nil, Self.passed.contains(known) { continue }
            if let index = table.columns.indices.first(where: { !Self.fits(row[$0], table.columns[$0].kind) }) {
                let column = table.columns[index]
                refusals.append(refusal(table, row, column: column.name,
                                        reason: "not \(column.kind == .integer || column.kind == .optionalInteger ? "an integer" : "text")"
                                            + (column.kind == .integer || column.kind == .text ? " (NULL is not allowed here)" : "")))
                continue
            }
            var values = row
            if folded, case .text(let name) = row[1] { values.append(.text(SearchFolding.fold(name))) }
            do {
                try statement.run(values)
                if remember { passed.append(known) }
            } catch let error as StoreError where error.kind == .constraint {
                refusals.append(refusal(table, row, column: Self.column(named: error.message, in: table), reason: error.message))
            }
        }
        Self.passed.insert(passed)
        return refusals
    }

    /// Rows of `scope` (one list per working-set table, in `WorkingSetTables.all` order) whose
    /// foreign key, per the device schema, points at no row of the scope that is not `refused`.
    /// With `cascade`, each refused row is taken out and the check runs again, so what pointed
    /// at it is refused too (what a download can send); without, a row pointing at a refused one
    /// is not named again (what an import reports: each row for its own reason).
    /// Every key the device schema's foreign keys name is its parent's primary key, which is the
    /// working-set table's key, so presence is a lookup of the key bytes the planner uses.
    static func foreignKeyRefusals(_ scope: [[WorkingSetRow]], refused: [Refusal], cascade: Bool) -> [Refusal] {
        // Keys as their values (no encoding per row): refused ones per table, present ones per parent table.
        var out: [String: Set<WorkingSetRow>] = [:]
        for refusal in refused { out[refusal.table.name, default: []].insert(refusal.keyValues) }
        let parents = Set(references.values.flatMap { $0.map(\.parent) })
        var present: [String: Set<WorkingSetRow>] = [:]
        for (table, rows) in zip(WorkingSetTables.all, scope) where parents.contains(table.name) {
            let gone = out[table.name] ?? []
            present[table.name] = Set(rows.lazy.map { Array($0[..<table.keyCount]) }.filter { !gone.contains($0) })
        }
        var refusals: [Refusal] = []
        while true {
            var found = 0
            for (table, rows) in zip(WorkingSetTables.all, scope) {
                for reference in references[table.name] ?? [] {
                    guard let parent = WorkingSetTables.named(reference.parent),
                          reference.to.count == parent.keyCount, Set(reference.to) == Set(parent.keyColumns.map(\.name)) else { continue }
                    // Where each of the parent's key columns comes from in this table's rows.
                    let sources = parent.keyColumns.compactMap { key in
                        reference.to.firstIndex(of: key.name).flatMap { position in table.columns.firstIndex { $0.name == reference.from[position] } }
                    }
                    guard sources.count == parent.keyCount, let available = present[parent.name] else { continue }
                    for row in rows {
                        let values = sources.map { row[$0] }
                        if available.contains(values) || values.contains(.null) { continue }
                        let key = Array(row[..<table.keyCount])
                        if out[table.name]?.contains(key) == true { continue }
                        if !cascade, out[parent.name]?.contains(values) == true { continue }
                        let missing = zip(parent.keyColumns, values).map { "\($0.name) \(Displayed.value($1))" }.joined(separator: ", ")
                        refusals.append(Refusal(table: table, key: table.key(of: row), keyValues: key, column: reference.from.joined(separator: ", "),
                                                value: reference.from.count == 1 ? values[0] : nil,
                                                reason: "FOREIGN KEY constraint failed: \(parent.name) has no \(missing)"))
                        found += 1
                        if cascade {
                            out[table.name, default: []].insert(key)
                            present[table.name]?.remove(key)
                        }
                    }
                }
            }
            guard cascade, found > 0 else { return refusals }
        }
    }

    private func refusal(_ table: WorkingSetTables.Table, _ row: WorkingSetRow, column: String?, reason: String) -> Refusal {
        let value = column.flatMap { name in table.columns.firstIndex { $0.name == name } }.map { row[$0] }
        return Refusal(table: table, key: table.key(of: row), keyValues: Array(row[..<table.keyCount]), column: column, value: value, reason: reason)
    }

    static func fits(_ value: DatabaseValue, _ kind: WorkingSetTables.Kind) -> Bool {
        switch (kind, value) {
        case (.integer, .integer), (.optionalInteger, .integer), (.optionalInteger, .null),
             (.text, .text), (.optionalText, .text), (.optionalText, .null): return true
        default: return false
        }
    }

    /// The column SQLite's message names: `NOT NULL constraint failed: customers.name`,
    /// `UNIQUE constraint failed: customers.id`, or the first column a CHECK's expression uses.
    static func column(named message: String, in table: WorkingSetTables.Table) -> String? {
        if let dot = message.lastIndex(of: "."), message.hasPrefix("NOT NULL") || message.hasPrefix("UNIQUE") {
            let name = String(message[message.index(after: dot)...])
            return table.columns.contains { $0.name == name } ? name : nil
        }
        guard message.hasPrefix("CHECK") else { return nil }
        let words = Set(message.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") }).map(String.init))
        return table.columns.first { words.contains($0.name) }?.name
    }
}

/// Text from outside (master data, a device's message) shown to the office or written to the
/// audit log, through the same rule as the handheld's terminal (TerminalText): a name holding
/// `ESC[2J` cannot drive a terminal.
enum Displayed {
    static func text(_ text: String) -> String { TerminalText.safe(text) }

    static func value(_ value: DatabaseValue) -> String {
        switch value {
        case .null: return "NULL"
        case .integer(let number): return String(number)
        case .real(let number): return String(number)
        case .text(let text): return "'\(self.text(text))'"
        case .blob(let bytes): return "a blob of \(bytes.count) bytes"
        }
    }
}
