public import Store

extension WorkingSetTables.Table {
    /// One foreign key of this table as the database's schema declares it
    /// (`PRAGMA foreign_key_list`): these columns must name a row of `parent` by its `to` columns.
    public struct Reference: Sendable, Equatable {
        public var parent: String
        public var from: [String]
        public var to: [String]
    }

    /// The foreign keys the schema of `database` gives this table. Read from the schema, never
    /// restated, so the hub's check and the device's error follow the device's migrations.
    public func references(in database: Database) throws -> [Reference] {
        let rows = try database.query("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?) ORDER BY id, seq", [.text(name)]) {
            ($0.int64(0), $0.text(1), $0.text(2), $0.optionalText(3))
        }
        var references: [Int64: Reference] = [:]
        for (id, parent, from, to) in rows {
            // `to` is NULL when the key names the parent's primary key implicitly.
            let target = to ?? WorkingSetTables.named(parent)?.keyColumns.first?.name ?? "rowid"
            references[id, default: Reference(parent: parent, from: [], to: [])].from.append(from)
            references[id]?.to.append(target)
        }
        return references.keys.sorted().compactMap { references[$0] }
    }

    /// Rows of this table whose `reference` points at no row of its parent (NULLs point nowhere
    /// and are allowed, as in SQLite).
    public func dangling(_ reference: Reference, in database: Database) throws -> [WorkingSetRow] {
        let match = zip(reference.from, reference.to).map { "p.\($1) = c.\($0)" }.joined(separator: " AND ")
        let present = reference.from.map { "c.\($0) IS NOT NULL" }.joined(separator: " AND ")
        return try database.query(
            "SELECT \(columns.map { "c.\($0.name)" }.joined(separator: ", ")) FROM \(name) AS c WHERE \(present) "
                + "AND NOT EXISTS (SELECT 1 FROM \(reference.parent) AS p WHERE \(match)) ORDER BY \(keyColumns.map { "c.\($0.name)" }.joined(separator: ", "))"
        ) { statement in (0..<Int32(columns.count)).map { statement.value($0) } }
    }

    /// The reference `row` breaks in `database`, if any: the first whose parent row is missing.
    public func brokenReference(of row: WorkingSetRow, in database: Database) throws -> Reference? {
        for reference in try references(in: database) {
            let values = reference.from.map { name in columns.firstIndex { $0.name == name }.map { row[$0] } ?? .null }
            if values.contains(.null) { continue }
            let match = reference.to.map { "\($0) = ?" }.joined(separator: " AND ")
            if try database.first("SELECT 1 FROM \(reference.parent) WHERE \(match)", values, row: { _ in true }) == nil { return reference }
        }
        return nil
    }
}
