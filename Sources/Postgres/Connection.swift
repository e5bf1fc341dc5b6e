#if canImport(Glibc)
import Glibc
#endif
import CLibPQ

/// A thin typed wrapper over libpq, in the manner of Store over SQLite: one blocking connection,
/// parameters always bound (never spliced into SQL), errors that carry the SQLSTATE, the
/// statement and what to do next. Blocking fits the hub: a thread per session, each with its
/// own storage connection.
public final class PostgresConnection {
    let handle: OpaquePointer
    /// The URL with the password masked, for messages.
    public let shownURL: String

    /// `url`: a libpq connection string or URI (postgresql://user:pass@host:port/db).
    /// `timeoutSeconds`: connecting gives up after this long (libpq's connect_timeout).
    public init(url: String, timeoutSeconds: Int = 10) throws(PostgresError) {
        shownURL = Self.masked(url)
        let keywords = ["dbname", "connect_timeout", "application_name"]
        let values = [url, String(max(2, timeoutSeconds)), "satchel-hub"]
        let connection: OpaquePointer? = withCStrings(keywords) { keys in
            withCStrings(values) { vals in PQconnectdbParams(keys, vals, 1) }
        }
        guard let connection else { throw PostgresError(state: nil, message: "out of memory connecting to \(shownURL)", sql: nil) }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection)).trimmingTrailingNewlines
            PQfinish(connection)
            throw PostgresError(state: "08001", message: "cannot connect to PostgreSQL at \(shownURL): \(message)", sql: nil)
        }
        handle = connection
        _ = try execute("SET client_min_messages = warning")
    }

    deinit { PQfinish(handle) }

    public static func masked(_ url: String) -> String {
        // postgresql://user:secret@host → postgresql://user:***@host
        let characters = Array(url)
        guard let at = characters.lastIndex(of: "@"), let slashes = (0..<max(0, characters.count - 2)).first(where: { characters[$0] == "/" && characters[$0 + 1] == "/" }),
              slashes < at, let colon = characters[(slashes + 2)..<at].firstIndex(of: ":") else { return url }
        return String(characters[...colon]) + "***" + String(characters[at...])
    }

    // MARK: Statements

    /// Runs one statement with `$1`, `$2`... bound to `parameters`; returns its rows.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [PostgresValue] = []) throws(PostgresError) -> PostgresResult {
        var texts: [[CChar]?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        for parameter in parameters {
            switch parameter {
            case .null: texts.append(nil); lengths.append(0); formats.append(0)
            case .integer(let value): texts.append(Array(String(value).utf8CString)); lengths.append(0); formats.append(0)
            case .real(let value): texts.append(Array(String(value).utf8CString)); lengths.append(0); formats.append(0)
            case .text(let value): texts.append(Array(value.utf8CString)); lengths.append(0); formats.append(0)
            case .bytes(let value):
                texts.append(value.map { CChar(bitPattern: $0) } + [0]); lengths.append(Int32(value.count)); formats.append(1)
            }
        }
        let result: OpaquePointer? = withPointers(texts) { pointers in
            PQexecParams(handle, sql, Int32(parameters.count), nil, pointers, lengths, formats, 0)
        }
        return try checked(result, sql: sql)
    }

    /// Runs several statements without parameters (a migration).
    public func execute(script: String) throws(PostgresError) {
        _ = try checked(PQexec(handle, script), sql: script)
    }

    public func query<T>(_ sql: String, _ parameters: [PostgresValue] = [], row: (PostgresRow) throws -> T) throws -> [T] {
        let result = try execute(sql, parameters)
        return try (0..<result.rows).map { try row(PostgresRow(result: result, index: $0)) }
    }

    public func first<T>(_ sql: String, _ parameters: [PostgresValue] = [], row: (PostgresRow) throws -> T) throws -> T? {
        let result = try execute(sql, parameters)
        return result.rows == 0 ? nil : try row(PostgresRow(result: result, index: 0))
    }

    public func int64(_ sql: String, _ parameters: [PostgresValue] = []) throws -> Int64 {
        guard let value = try first(sql, parameters, row: { $0.int64(0) }) else {
            throw PostgresError(state: nil, message: "no row", sql: sql)
        }
        return value
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    public func transaction<T>(_ isolation: Isolation = .readCommitted, _ body: () throws -> T) throws -> T {
        try execute("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            _ = PQexec(handle, "ROLLBACK").map { PQclear($0) }
            throw error
        }
    }

    public enum Isolation: String, Sendable {
        case readCommitted = "READ COMMITTED"
        /// One snapshot for the whole transaction (a long read that must see one state).
        case repeatableRead = "REPEATABLE READ"
        case serializable = "SERIALIZABLE"
    }

    /// Sends rows with COPY ... FROM STDIN in text format (benchmarks' baseline, bulk loads).
    public func copy(_ sql: String, lines: some Sequence<String>) throws(PostgresError) {
        let start = PQexec(handle, sql)
        guard let start, PQresultStatus(start) == PGRES_COPY_IN else { _ = try checked(start, sql: sql); return }
        PQclear(start)
        var buffer = ""
        func flush() throws(PostgresError) {
            let bytes = Array(buffer.utf8)
            let sent = bytes.withUnsafeBufferPointer { pointer in
                pointer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: bytes.count) { PQputCopyData(handle, $0, Int32(bytes.count)) }
            }
            guard sent == 1 else { throw PostgresError(state: nil, message: "COPY: \(lastError)", sql: sql) }
            buffer = ""
        }
        for line in lines {
            buffer += line
            buffer += "\n"
            if buffer.utf8.count > 1 << 16 { try flush() }
        }
        if !buffer.isEmpty { try flush() }
        guard PQputCopyEnd(handle, nil) == 1 else { throw PostgresError(state: nil, message: "COPY end: \(lastError)", sql: sql) }
        while let result = PQgetResult(handle) { _ = try checked(result, sql: sql) }
    }

    var lastError: String { String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines }

    private func checked(_ result: OpaquePointer?, sql: String) throws(PostgresError) -> PostgresResult {
        guard let result else { throw PostgresError(state: nil, message: lastError, sql: sql) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_COPY_IN:
            return PostgresResult(result)
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) } ?? lastError
            PQclear(result)
            throw PostgresError(state: state, message: message, sql: sql)
        }
    }
}

public enum PostgresValue: Equatable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case bytes([UInt8])

    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
}

/// One result set, freed with it.
public final class PostgresResult {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQclear(handle) }
    public var rows: Int { Int(PQntuples(handle)) }
    /// Rows an INSERT, UPDATE or DELETE touched.
    public var affected: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }
}

public struct PostgresRow {
    let result: PostgresResult
    let index: Int
    public func isNull(_ column: Int) -> Bool { PQgetisnull(result.handle, Int32(index), Int32(column)) == 1 }
    public func text(_ column: Int) -> String { String(cString: PQgetvalue(result.handle, Int32(index), Int32(column))) }
    public func optionalText(_ column: Int) -> String? { isNull(column) ? nil : text(column) }
    public func int64(_ column: Int) -> Int64 { Int64(text(column)) ?? 0 }
    public func int(_ column: Int) -> Int { Int(int64(column)) }
    public func optionalInt64(_ column: Int) -> Int64? { isNull(column) ? nil : int64(column) }
    public func bool(_ column: Int) -> Bool { text(column) == "t" }
    /// A bytea column in PostgreSQL's text form (\x followed by hex digits).
    public func bytes(_ column: Int) -> [UInt8] {
        let hex = Array(text(column).utf8.dropFirst(2))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(hex.count / 2)
        func digit(_ c: UInt8) -> UInt8 { c >= 97 ? c - 87 : c >= 65 ? c - 55 : c - 48 }
        var i = 0
        while i + 1 < hex.count { bytes.append(digit(hex[i]) << 4 | digit(hex[i + 1])); i += 2 }
        return bytes
    }
}

public struct PostgresError: Error, Equatable, CustomStringConvertible {
    /// SQLSTATE (23505 unique violation, 40001 serialisation failure, 08xxx connection).
    public var state: String?
    public var message: String
    public var sql: String?
    public var isUniqueViolation: Bool { state == "23505" }
    public var description: String {
        "PostgreSQL error\(state.map { " \($0)" } ?? ""): \(message)" + (sql.map { " [sql: \($0.prefix(200))]" } ?? "")
    }
}

extension String {
    var trimmingTrailingNewlines: String {
        var text = self
        while text.last?.isNewline == true { text.removeLast() }
        return text
    }
}

private func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    return body(copies.map { UnsafePointer($0) } + [nil])
}

private func withPointers<R>(_ buffers: [[CChar]?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = buffers.map { buffer in
        guard let buffer else { return nil }
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: buffer.count)
        pointer.initialize(from: buffer, count: buffer.count)
        return pointer
    }
    defer { copies.forEach { $0?.deallocate() } }
    return body(copies.map { $0.map { UnsafePointer($0) } })
}
