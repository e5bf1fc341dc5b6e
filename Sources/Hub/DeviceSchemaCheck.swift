import Field
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
        var options = Database.Options()
        options.walMode = false
        // Checked below, table by table, so a refusal names the row and not only the commit.
        options.foreignKeys = false
        database = try Database(path: ":memory:", options: options)
        try database.migrate(FieldSchema.migrations, applicationID: FieldSchema.applicationID)
    }

    /// Inserts `rows` of `table` as a device stores them; returns the rows the schema refused
    /// (those are left out, so rows pointing at them are refused by `foreignKeyRefusals`).
    func insert(_ table: WorkingSetTables.Table, _ rows: [WorkingSetRow]) throws -> [Refusal] {
        var columns = table.columns.map(\.name)
        let folded = FieldSchema.foldedNameTables.contains(table.name)
        if folded { columns.append("name_folded") }
        let statement = try database.statement(
            "INSERT INTO \(table.name)(\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))")
        var refusals: [Refusal] = []
        for row in rows {
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
            } catch let error as StoreError where error.kind == .constraint {
                refusals.append(refusal(table, row, column: Self.column(named: error.message, in: table), reason: error.message))
            }
        }
        return refusals
    }

    /// Rows whose foreign key points at nothing among the rows inserted, per the device schema's
    /// own foreign keys (`PRAGMA foreign_key_list`). With `cascade`, a refused row is taken out and
    /// the check runs again, so what pointed at it is refused too (what a download can send);
    /// without, each row is refused for its own reason only (what an import reports).
    func foreignKeyRefusals(cascade: Bool) throws -> [Refusal] {
        var refusals: [Refusal] = []
        while true {
            var found: [Refusal] = []
            for table in WorkingSetTables.all {
                for reference in try table.references(in: database) {
                    let columns = reference.from.joined(separator: ", ")
                    let rows = try table.dangling(reference, in: database)
                    for row in rows {
                        let description = reference.from.count == 1 ? "\(reference.parent) has no \(reference.to[0]) \(Displayed.value(row[table.columns.firstIndex { $0.name == reference.from[0] }!]))"
                            : "no matching \(reference.parent) row"
                        found.append(refusal(table, row, column: columns, reason: "FOREIGN KEY constraint failed: \(description)"))
                    }
                }
            }
            refusals += found
            guard cascade, !found.isEmpty else { return refusals }
            for refusal in found {
                let condition = refusal.table.keyColumns.map { "\($0.name) = ?" }.joined(separator: " AND ")
                try database.execute("DELETE FROM \(refusal.table.name) WHERE \(condition)", refusal.keyValues)
            }
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
/// audit log: control characters as `\u{..}`, so a name holding `ESC[2J` cannot drive a terminal.
enum Displayed {
    static func text(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

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
