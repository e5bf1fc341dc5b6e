import Foundation
import Postgres
import Store

/// The few SQL calls that hub code written once for both backends needs (HubStorageShared.swift,
/// DeviceLifecycle.swift):
/// parameters as `?` in order, the types both backends share, one write transaction. The SQL
/// itself must read the same on SQLite and PostgreSQL: `CAST(? AS TEXT)` where PostgreSQL must
/// know a parameter's type, `TRUE`/`FALSE` for flags, no `?` inside a literal. Public only
/// because public protocol methods are implemented over it once; nothing outside the hub's
/// backends should call it.
public protocol HubSQL {
    func rows<T>(_ sql: String, _ parameters: [HubSQLValue], row: (any HubSQLRow) throws -> T) throws -> [T]
    /// Runs a statement; returns the rows it changed.
    @discardableResult
    func run(_ sql: String, _ parameters: [HubSQLValue]) throws -> Int
    /// One statement as a write of its own, its errors as `HubError.storage` (SQLite's after this
    /// process's other writers; on PostgreSQL a statement commits alone); returns the rows it changed.
    @discardableResult
    func runWrite(_ sql: String, _ parameters: [HubSQLValue]) throws -> Int
    /// A write transaction (SQLite's after this process's other writers, SQLiteWriter.swift).
    func inWriteTransaction<T>(_ body: () throws -> T) throws -> T
    /// Inside a write transaction: registrations of devices one at a time, so two of one id or
    /// key cannot both pass the check for an existing one (SQLite's write transaction is
    /// exclusive already; PostgreSQL's run side by side and take a table lock).
    func lockDeviceRegistrations() throws
    /// The backend's errors as `HubError.storage`.
    func storageErrors<T>(_ body: () throws -> T) throws -> T
}

extension HubSQL {
    func firstRow<T>(_ sql: String, _ parameters: [HubSQLValue] = [], row: (any HubSQLRow) throws -> T) throws -> T? {
        try rows(sql, parameters, row: row).first
    }
}

public enum HubSQLValue {
    case null, integer(Int64), text(String), bytes([UInt8])
    init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
}

/// A result row of either backend, by column index from 0.
public protocol HubSQLRow {
    func text(_ column: Int) -> String
    func optionalText(_ column: Int) -> String?
    func int64(_ column: Int) -> Int64
    func optionalInt64(_ column: Int) -> Int64?
    func bytes(_ column: Int) -> [UInt8]
    /// A flag column: SQLite's 0/1, PostgreSQL's boolean.
    func flag(_ column: Int) -> Bool
}

extension HubSQLRow {
    func int(_ column: Int) -> Int { Int(int64(column)) }
}

struct SQLiteHubRow: HubSQLRow {
    let statement: Statement
    public func text(_ column: Int) -> String { statement.text(Int32(column)) }
    public func optionalText(_ column: Int) -> String? { statement.optionalText(Int32(column)) }
    public func int64(_ column: Int) -> Int64 { statement.int64(Int32(column)) }
    public func optionalInt64(_ column: Int) -> Int64? { statement.optionalInt64(Int32(column)) }
    public func bytes(_ column: Int) -> [UInt8] { statement.blob(Int32(column)) }
    public func flag(_ column: Int) -> Bool { statement.int64(Int32(column)) != 0 }
}

struct PostgresHubRow: HubSQLRow {
    let row: PostgresRow
    public func text(_ column: Int) -> String { row.text(column) }
    public func optionalText(_ column: Int) -> String? { row.optionalText(column) }
    public func int64(_ column: Int) -> Int64 { row.int64(column) }
    public func optionalInt64(_ column: Int) -> Int64? { row.optionalInt64(column) }
    public func bytes(_ column: Int) -> [UInt8] { row.bytes(column) }
    public func flag(_ column: Int) -> Bool { row.bool(column) }
}

extension SQLiteHubStorage: HubSQL {
    public func rows<T>(_ sql: String, _ parameters: [HubSQLValue], row: (any HubSQLRow) throws -> T) throws -> [T] {
        try database.query(sql, parameters.map(\.sqlite)) { try row(SQLiteHubRow(statement: $0)) }
    }

    public func run(_ sql: String, _ parameters: [HubSQLValue]) throws -> Int {
        try database.execute(sql, parameters.map(\.sqlite))
        return Int(database.changes)
    }

    public func runWrite(_ sql: String, _ parameters: [HubSQLValue]) throws -> Int { try write { try run(sql, parameters) } }
    public func lockDeviceRegistrations() throws {}
    public func inWriteTransaction<T>(_ body: () throws -> T) throws -> T { try writeTransaction(body) }
    public func storageErrors<T>(_ body: () throws -> T) throws -> T { try guarded(body) }
}

extension PostgresHubStorage: HubSQL {
    public func rows<T>(_ sql: String, _ parameters: [HubSQLValue], row: (any HubSQLRow) throws -> T) throws -> [T] {
        try connection.query(Self.numbered(sql), parameters.map(\.postgres)) { try row(PostgresHubRow(row: $0)) }
    }

    public func run(_ sql: String, _ parameters: [HubSQLValue]) throws -> Int {
        try connection.execute(Self.numbered(sql), parameters.map(\.postgres)).affected
    }

    public func runWrite(_ sql: String, _ parameters: [HubSQLValue]) throws -> Int { try guarded { try run(sql, parameters) } }
    public func lockDeviceRegistrations() throws { try connection.execute("LOCK TABLE devices IN SHARE ROW EXCLUSIVE MODE") }
    public func inWriteTransaction<T>(_ body: () throws -> T) throws -> T { try connection.transaction { try body() } }
    public func storageErrors<T>(_ body: () throws -> T) throws -> T { try guarded(body) }

    /// `?` placeholders as PostgreSQL's `$1`, `$2`... in order (HubSQL's SQL has no `?` in a literal).
    static func numbered(_ sql: String) -> String {
        var result = ""
        result.reserveCapacity(sql.utf8.count + 16)
        var next = 1
        for character in sql {
            if character == "?" {
                result += "$\(next)"
                next += 1
            } else {
                result.append(character)
            }
        }
        return result
    }
}

extension HubSQLValue {
    var sqlite: DatabaseValue {
        switch self {
        case .null: return .null
        case .integer(let value): return .integer(value)
        case .text(let value): return .text(value)
        case .bytes(let value): return .blob(value)
        }
    }

    var postgres: PostgresValue {
        switch self {
        case .null: return .null
        case .integer(let value): return .integer(value)
        case .text(let value): return .text(value)
        case .bytes(let value): return .bytes(value)
        }
    }
}

/// The column types that differ between the hub's two backends, so a table is written once
/// (LifecycleSchema, ApprovalLimitsSchema): SQLite's INTEGER holds 64 bits where PostgreSQL
/// needs BIGINT, bytes are BLOB or BYTEA, and a row id is SQLite's rowid or a BIGSERIAL.
enum HubColumnTypes {
    case sqlite, postgres

    var bigint: String { self == .sqlite ? "INTEGER" : "BIGINT" }
    var bytes: String { self == .sqlite ? "BLOB" : "BYTEA" }
    var rowKey: String { self == .sqlite ? "INTEGER PRIMARY KEY" : "BIGSERIAL PRIMARY KEY" }
}
