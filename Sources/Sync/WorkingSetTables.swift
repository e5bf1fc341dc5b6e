import Seal
public import Store

/// The tables of the working set as they travel down (docs/protocol.md §6): the same names and
/// columns on the hub and on the device, so neither side sends column names. The order is the
/// order of a download's upserts (parents first); purges run in the reverse order.
public enum WorkingSetTables {
    public enum Kind: Sendable, Equatable {
        case integer, text, optionalInteger, optionalText
    }

    /// How a column is written in a TABLE frame (docs/protocol.md §8). Since protocol 4 every
    /// integer column chooses per frame between its values and their steps, scaled by their
    /// greatest common divisor, and every text column goes as a text column (literals once,
    /// repeats by index, identifiers ending in digits as prefix + number); these codings add a
    /// prediction or a reference on top.
    public enum Coding: Sendable, Equatable {
        /// The column's own values.
        case plain
        /// A part number, sent as its position in the device's catalogue when it is there.
        case part
        /// An integer predicted as a share of another row's value in the same frame: the first
        /// row with equal values in the `group` columns is the reference, the percentage is the
        /// one the last row with the same value in column `by` had against its own reference
        /// (100 for the first), and the residual travels. Price levels are percentages of the
        /// list price (a dealer price is 85 % of it in every group), so the residual is mostly 0.
        /// The group and `by` columns come before this one.
        case share(group: [Int], by: Int)
    }

    public struct Column: Sendable, Equatable {
        public let name: String
        public let kind: Kind
        public let coding: Coding
        init(_ name: String, _ kind: Kind, _ coding: Coding = .plain) {
            self.name = name; self.kind = kind; self.coding = coding
        }
    }

    public struct Table: Sendable, Equatable {
        public let id: UInt8
        public let name: String
        public let columns: [Column]
        /// The first `keyCount` columns are the primary key.
        public let keyCount: Int

        public var keyColumns: ArraySlice<Column> { columns[..<keyCount] }
        public var columnList: String { columns.map(\.name).joined(separator: ", ") }
        public var keyList: String { keyColumns.map(\.name).joined(separator: ", ") }
    }

    static func table(_ id: UInt8, _ name: String, key: Int, _ columns: [Column]) -> Table {
        Table(id: id, name: name, columns: columns, keyCount: key)
    }

    public static let all: [Table] = [
        table(1, "territories", key: 1, [.init("id", .text), .init("name", .text), .init("parent_id", .optionalText)]),
        table(2, "reps", key: 1, [.init("id", .text), .init("name", .text), .init("territory_id", .optionalText), .init("role", .text)]),
        table(3, "products", key: 1,
              [.init("part_number", .text), .init("name", .text), .init("base_unit", .text), .init("channel", .text)]),
        table(4, "product_units", key: 2, [.init("part_number", .text, .part), .init("unit", .text), .init("factor", .integer)]),
        table(5, "customers", key: 1, [
            .init("id", .text), .init("name", .text), .init("address", .text), .init("territory_id", .optionalText),
            .init("currency", .text), .init("credit_limit_minor", .integer), .init("balance_minor", .integer),
            .init("overdue_minor", .integer), .init("overdue_days", .integer), .init("balance_as_of", .integer),
            .init("discipline", .text), .init("default_level", .text), .init("talking_points", .text),
        ]),
        table(6, "customer_price_levels", key: 2, [.init("customer_id", .text), .init("level", .text)]),
        table(7, "prices", key: 3, [.init("part_number", .text, .part), .init("level", .text), .init("currency", .text),
                                    .init("price_minor", .integer, .share(group: [0, 2], by: 1)), .init("valid_until", .optionalText)]),
        table(8, "stock", key: 2, [.init("location", .text), .init("part_number", .text, .part), .init("quantity", .integer)]),
        table(9, "display_types", key: 1, [.init("code", .text), .init("name", .text)]),
        table(10, "display_type_materials", key: 2, [.init("type_code", .text), .init("part_number", .text, .part),
                                                     .init("fixed_quantity", .integer), .init("per_square_metre_milli", .integer)]),
        table(11, "routes", key: 1, [.init("id", .text), .init("rep_id", .text), .init("day", .text)]),
        table(12, "route_stops", key: 2, [.init("route_id", .text), .init("position", .integer), .init("customer_id", .text)]),
        table(13, "history_orders", key: 1, [.init("ref", .text), .init("customer_id", .text), .init("day", .text),
                                             .init("total_minor", .integer), .init("currency", .text), .init("paid_late", .integer)]),
        table(14, "history_lines", key: 2, [.init("ref", .text), .init("line_no", .integer), .init("customer_id", .text),
                                            .init("part_number", .text, .part), .init("quantity", .integer), .init("amount_minor", .integer)]),
        table(15, "equipment", key: 1, [.init("id", .text), .init("customer_id", .text), .init("kind", .text),
                                                          .init("serial", .text), .init("placed_on", .text)]),
        // What the office decided about the device's own documents (accepted, rejected, approved):
        // the hub owns these fields, so its value wins over the device's.
        table(16, "document_states", key: 2, [.init("entity", .text), .init("entity_id", .text), .init("state", .text),
                                              .init("approval", .optionalText), .init("updated_at", .integer)]),
        // Device changes the hub could not take as they were, with the losing value kept.
        table(17, "sync_errors", key: 1, [.init("id", .text), .init("change_id", .text), .init("entity", .text),
                                          .init("entity_id", .text), .init("field", .text), .init("device_value", .optionalText),
                                          .init("hub_value", .optionalText), .init("reason", .text), .init("at", .integer)]),
        // The office's approval limits per role and currency (issue 17): the device says before
        // saving what will need approval, and by whom.
        table(18, "approval_limits", key: 2, [.init("role", .text), .init("currency", .text),
                                              .init("max_discount_basis_points", .integer), .init("max_total_minor", .optionalInteger)]),
        // The ERP's open items of the customers in scope, for payment reminders (issue 17).
        table(19, "open_items", key: 2, [.init("customer_id", .text), .init("ref", .text), .init("issued_on", .optionalText),
                                         .init("due_on", .text), .init("amount_minor", .integer), .init("currency", .text)]),
    ]

    public static let byID: [UInt8: Table] = Dictionary(uniqueKeysWithValues: all.map { ($0.id, $0) })
    public static let products = all[2]

    public static func named(_ name: String) -> Table? { all.first { $0.name == name } }
}

/// One row of a working-set table: its values in the table's column order.
public typealias WorkingSetRow = [DatabaseValue]

extension WorkingSetTables.Table {
    /// The key of a row in a form both ends compare byte for byte (the shadow and plans store it).
    public func key(of row: WorkingSetRow) -> [UInt8] {
        var writer = WireWriter()
        for value in row[..<keyCount] { RowHash.write(value, into: &writer) }
        return writer.bytes
    }

    public func keyValues(_ key: [UInt8]) throws -> WorkingSetRow {
        var reader = WireReader(key)
        let values = try keyColumns.map { _ in try RowHash.read(&reader) }
        guard reader.isAtEnd else { throw WireReader.Failure.tooLarge(what: "key trailing bytes", value: UInt64(key.count)) }
        return values
    }

    /// The columns a download may send as differences to the value the device holds (protocol
    /// 5): the integer columns outside the key. The hub's shadow keeps their values per row.
    public var heldColumns: [Int] {
        columns.indices.filter { $0 >= keyCount && (columns[$0].kind == .integer || columns[$0].kind == .optionalInteger) }
    }

    /// The values of `heldColumns` of a row, as the hub's shadow keeps them (each tagged as
    /// `RowHash` tags it); nil for a table without such columns.
    public func heldValues(of row: WorkingSetRow) -> [UInt8]? {
        let indices = heldColumns
        guard !indices.isEmpty, row.count == columns.count else { return nil }
        var writer = WireWriter()
        for index in indices { RowHash.write(row[index], into: &writer) }
        return writer.bytes
    }

    /// A row of this table's width holding the shadow's `heldValues` in their columns (NULL in
    /// every other column): the reference a TABLE frame's held differences are taken against.
    public func heldRow(_ values: [UInt8]) throws -> WorkingSetRow {
        var row = WorkingSetRow(repeating: .null, count: columns.count)
        var reader = WireReader(values)
        for index in heldColumns { row[index] = try RowHash.read(&reader) }
        guard reader.isAtEnd else { throw WireReader.Failure.tooLarge(what: "held values trailing bytes", value: UInt64(values.count)) }
        return row
    }

    /// Reads the rows of this table, in key order, with the columns in wire order. `values` may
    /// hold more parameters than `condition` uses (one parameter list serves every table).
    public func rows(in database: Database, where condition: String = "", _ values: [DatabaseValue] = []) throws -> [WorkingSetRow] {
        let count = Int32(columns.count)
        let statement = try database.statement("SELECT \(columnList) FROM \(name) \(condition) ORDER BY \(keyList)")
        try statement.bind(Array(values.prefix(statement.parameterCount)))
        defer { statement.reset() }
        var rows: [WorkingSetRow] = []
        while try statement.step() { rows.append((0..<count).map { statement.value($0) }) }
        return rows
    }
}

/// A row's fingerprint: BLAKE2b-64 of its values with their types. A frame's checksum and a
/// table's checksum are the wrapping sums of these, so the hub can compute what the device
/// should hold and the device can check it holds exactly that, in any order.
public enum RowHash {
    public static func of(table: UInt8, _ row: WorkingSetRow) -> UInt64 {
        var writer = WireWriter()
        writer.varint(UInt64(table))
        for value in row { write(value, into: &writer) }
        let digest = Blake2b.hash(writer.bytes, outputLength: 16).prefix(8)
        return digest.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    static func write(_ value: DatabaseValue, into writer: inout WireWriter) {
        switch value {
        case .null: writer.varint(0)
        case .integer(let number): writer.varint(1); writer.int(number)
        case .text(let text): writer.varint(2); writer.string(text)
        case .real(let number): writer.varint(3); writer.varint(number.bitPattern)
        case .blob(let bytes): writer.varint(4); writer.data(bytes)
        }
    }

    static func read(_ reader: inout WireReader) throws -> DatabaseValue {
        switch try reader.varint() {
        case 0: return .null
        case 1: return .integer(try reader.int())
        case 2: return .text(try reader.string(limit: 4096))
        case let tag: throw WireReader.Failure.tooLarge(what: "key value tag", value: tag)
        }
    }
}

/// What a table should hold: the number of rows and the sum of their hashes.
public struct TableChecksum: Equatable, Sendable {
    public var table: UInt8
    public var rows: Int
    public var sum: UInt64

    public init(table: UInt8, rows: Int = 0, sum: UInt64 = 0) {
        self.table = table; self.rows = rows; self.sum = sum
    }

    public mutating func add(_ hash: UInt64) {
        rows += 1
        sum &+= hash
    }
}
