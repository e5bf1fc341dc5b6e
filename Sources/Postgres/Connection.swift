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
        let bound = BoundParameters(parameters)
        let result: OpaquePointer? = bound.withPointers { pointers in
            PQexecParams(handle, sql, Int32(parameters.count), nil, pointers, bound.lengths, bound.formats, 0)
        }
        return try checked(result, sql: sql)
    }

    /// Statements prepared on this connection (`PostgresStatement.prepareAs`), by name: each is
    /// parsed and planned by the server once per connection, not once per use.
    private var prepared: Set<String> = []

    /// Sends `statements` one after another without waiting for each answer (libpq's pipeline
    /// mode): one round trip for all of them, as the server runs them in order, each with its
    /// own snapshot as if sent alone. Returns each one's result; the first that fails throws
    /// (the server skipped those after it). In a transaction the caller rolls back on a throw.
    /// Fit for statements whose answers are small: the answers are read after everything is sent.
    public func pipeline(_ statements: [PostgresStatement]) throws(PostgresError) -> [PostgresResult] {
        guard !statements.isEmpty else { return [] }
        return try receive(try send(statements))
    }

    /// What `send` sent, for `receive` to read the answers of.
    private struct SentPipeline {
        let statements: [PostgresStatement]
        /// What each result read back answers: a statement's prepare, or the statement itself.
        let expected: [(statement: Int, isPrepare: Bool)]
        let sendFailure: PostgresError?
    }

    /// Sends `statements` and their sync in pipeline mode, without reading anything back. Until
    /// `receive`, nothing else may use the connection.
    private func send(_ statements: [PostgresStatement]) throws(PostgresError) -> SentPipeline {
        guard PQenterPipelineMode(handle) == 1 else { throw PostgresError(state: nil, message: "cannot enter pipeline mode: \(lastError)", sql: statements[0].sql) }
        // What each result read back answers: a statement's prepare, or the statement itself.
        var expected: [(statement: Int, isPrepare: Bool)] = []
        var sendFailure: PostgresError?
        for (index, statement) in statements.enumerated() {
            let bound = BoundParameters(statement.parameters)
            let count = Int32(statement.parameters.count)
            let sent: Int32
            if let name = statement.prepareAs {
                if !prepared.contains(name) {
                    guard PQsendPrepare(handle, name, statement.sql, count, nil) == 1 else {
                        sendFailure = PostgresError(state: nil, message: "cannot send the preparation of \(name): \(lastError)", sql: statement.sql); break
                    }
                    expected.append((index, true))
                }
                sent = bound.withPointers { pointers in
                    PQsendQueryPrepared(handle, name, count, pointers, bound.lengths, bound.formats, 0)
                }
            } else {
                sent = bound.withPointers { pointers in
                    PQsendQueryParams(handle, statement.sql, count, nil, pointers, bound.lengths, bound.formats, 0)
                }
            }
            guard sent == 1 else { sendFailure = PostgresError(state: nil, message: "cannot send: \(lastError)", sql: statement.sql); break }
            expected.append((index, false))
        }
        if sendFailure == nil, PQpipelineSync(handle) != 1 {
            sendFailure = PostgresError(state: nil, message: "cannot send the pipeline's sync: \(lastError)", sql: statements[0].sql)
        }
        return SentPipeline(statements: statements, expected: expected, sendFailure: sendFailure)
    }

    /// Reads every answer of a pipeline `send` sent, leaves pipeline mode; throws the first failure.
    private func receive(_ sent: SentPipeline) throws(PostgresError) -> [PostgresResult] {
        let statements = sent.statements, expected = sent.expected, sendFailure = sent.sendFailure
        // Every result sent for is read (and the sync's), whatever failed, so the connection
        // leaves pipeline mode clean for the next statement.
        var results: [PostgresResult] = []
        var firstFailure: PostgresError? = sendFailure
        for (index, isPrepare) in expected {
            let sql = statements[index].sql
            if let result = PQgetResult(handle) {
                if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
                    PQclear(result)
                } else {
                    do {
                        let checkedResult = try checked(result, sql: sql)
                        if isPrepare { prepared.insert(statements[index].prepareAs ?? "") } else { results.append(checkedResult) }
                    } catch {
                        if firstFailure == nil { firstFailure = error }
                    }
                }
                // Each command's results end with a null.
                while let extra = PQgetResult(handle) { PQclear(extra) }
            } else if firstFailure == nil {
                firstFailure = PostgresError(state: "08006", message: "no answer in the pipeline: \(lastError)", sql: sql)
            }
        }
        if sendFailure == nil {
            // The sync's own result: PGRES_PIPELINE_SYNC.
            while let result = PQgetResult(handle) {
                let status = PQresultStatus(result)
                PQclear(result)
                if status == PGRES_PIPELINE_SYNC { break }
            }
        }
        if PQexitPipelineMode(handle) != 1 && firstFailure == nil {
            firstFailure = PostgresError(state: nil, message: "cannot leave pipeline mode: \(lastError)", sql: statements[0].sql)
        }
        if let firstFailure { throw firstFailure }
        guard results.count == statements.count else {
            throw PostgresError(state: nil, message: "the pipeline answered \(results.count) of \(statements.count) statements", sql: statements[0].sql)
        }
        return results
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

    /// A transaction whose BEGIN and first statements go to the server in one round trip
    /// (`pipeline`); `body` gets their results, in order. Committed if `body` returns, rolled
    /// back if anything throws.
    public func transaction<T>(_ isolation: Isolation = .readCommitted, pipelining first: [PostgresStatement], _ body: ([PostgresResult]) throws -> T) throws -> T {
        try transaction(isolation, pipelining: first, meanwhile: {}) { results, _ in try body(results) }
    }

    /// As `transaction(_:pipelining:_:)`, and `work` runs while the server answers the first
    /// statements: the client's own work overlaps the round trip. `work` must not use this
    /// connection. `body` gets what `work` returned or threw, to use only when it needs it.
    public func transaction<W, T>(_ isolation: Isolation = .readCommitted, pipelining first: [PostgresStatement], meanwhile work: () throws -> W,
                                  _ body: ([PostgresResult], Result<W, any Error>) throws -> T) throws -> T {
        do {
            let begin = PostgresStatement("BEGIN ISOLATION LEVEL \(isolation.rawValue)")
            let sent = try send([begin] + first)
            let worked = Result { try work() }
            let results = Array(try receive(sent).dropFirst())
            let result = try body(results, worked)
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
    /// A `text[]` (nil: a NULL element), sent in PostgreSQL's binary array form: for
    /// `unnest($n::text[])`, a whole column in one parameter that the server reads without
    /// parsing or unescaping a literal.
    case textArray([String?])
    /// A `bigint[]` (nil: a NULL element), binary as `textArray`.
    case integerArray([Int64?])

    public init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    public init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
}

/// One statement for `pipeline`. `prepareAs`: a name to prepare it under on first use and run
/// it by from then on (the SQL must be the same for every use of the name).
public struct PostgresStatement: Sendable {
    public var sql: String
    public var parameters: [PostgresValue]
    public var prepareAs: String?
    public init(_ sql: String, _ parameters: [PostgresValue] = [], prepareAs: String? = nil) {
        self.sql = sql; self.parameters = parameters; self.prepareAs = prepareAs
    }
}

/// Parameters as libpq takes them: a pointer, a length and a format (0 text, 1 binary) each,
/// all in one buffer sized before it is filled and filled by memcpy: building a batch's
/// parameters value by value through Array's generic appends was a sixth of the hub's commit
/// of a batch (debug build, `bench hub-ingest`).
struct BoundParameters {
    private var storage: [UInt8] = []
    /// Each parameter's start in `storage`; nil for NULL.
    private var offsets: [Int?] = []
    var lengths: [Int32] = []
    var formats: [Int32] = []

    init(_ parameters: [PostgresValue]) {
        var total = 0
        for parameter in parameters { total += Self.size(of: parameter) }
        var offsets: [Int?] = [], lengths: [Int32] = [], formats: [Int32] = []
        offsets.reserveCapacity(parameters.count); lengths.reserveCapacity(parameters.count); formats.reserveCapacity(parameters.count)
        storage = [UInt8](unsafeUninitializedCapacity: max(total, 1)) { buffer, initialized in
            var out = Writer(base: UnsafeMutableRawPointer(buffer.baseAddress!))
            for parameter in parameters {
                let start = out.offset
                switch parameter {
                case .null: offsets.append(nil); lengths.append(0); formats.append(0); continue
                case .integer(let value): out.text(String(value))
                case .real(let value): out.text(String(value))
                case .text(let value): out.text(value)
                case .bytes(let value): value.withUnsafeBytes { out.bytes($0) }
                case .textArray(let values):
                    out.arrayHeader(elementType: 25, count: values.count, hasNulls: values.contains(nil))
                    for value in values {
                        guard var value else { out.int32(-1); continue }
                        value.withUTF8 { bytes in
                            out.int32(Int32(bytes.count))
                            out.bytes(UnsafeRawBufferPointer(bytes))
                        }
                    }
                case .integerArray(let values):
                    out.arrayHeader(elementType: 20, count: values.count, hasNulls: values.contains(nil))
                    for value in values {
                        guard let value else { out.int32(-1); continue }
                        out.int32(8)
                        out.int64(value)
                    }
                }
                offsets.append(start)
                switch parameter {
                case .integer, .real, .text: lengths.append(0); formats.append(0)
                default: lengths.append(Int32(out.offset - start)); formats.append(1)
                }
            }
            precondition(out.offset <= max(total, 1), "BoundParameters: sized \(total) bytes, wrote \(out.offset)")
            initialized = out.offset
        }
        self.offsets = offsets; self.lengths = lengths; self.formats = formats
    }

    /// The bytes `init` writes for one parameter.
    private static func size(of parameter: PostgresValue) -> Int {
        switch parameter {
        case .null: return 0
        case .integer(let value): return String(value).utf8.count + 1
        case .real(let value): return String(value).utf8.count + 1
        case .text(let value): return value.utf8.count + 1
        case .bytes(let value): return value.count
        case .textArray(let values):
            var size = 20 + 4 * values.count
            for value in values { size += value?.utf8.count ?? 0 }
            return size
        case .integerArray(let values): return 20 + 12 * values.count
        }
    }

    /// Writes into the buffer `init` sized, big-endian as PostgreSQL's binary forms are.
    private struct Writer {
        let base: UnsafeMutableRawPointer
        var offset = 0

        /// Text format: the UTF-8 bytes and a terminating NUL (libpq reads up to it).
        mutating func text(_ value: String) {
            var value = value
            value.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
            base.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
            offset += 1
        }

        mutating func bytes(_ bytes: UnsafeRawBufferPointer) {
            guard let source = bytes.baseAddress, bytes.count > 0 else { return }
            memcpy(base + offset, source, bytes.count)
            offset += bytes.count
        }

        mutating func int32(_ value: Int32) {
            base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Int32.self)
            offset += 4
        }

        mutating func int64(_ value: Int64) {
            base.storeBytes(of: value.bigEndian, toByteOffset: offset, as: Int64.self)
            offset += 8
        }

        /// array_recv's form: dimensions (0 for an empty array, else 1), a has-nulls flag, the
        /// element type's OID, then the length and lower bound of the one dimension; each
        /// element follows as its length (-1 for NULL) and bytes.
        mutating func arrayHeader(elementType: Int32, count: Int, hasNulls: Bool) {
            int32(count == 0 ? 0 : 1)
            int32(hasNulls ? 1 : 0)
            int32(elementType)
            if count > 0 {
                int32(Int32(count))
                int32(1)
            }
        }
    }

    /// `body` gets each parameter's pointer (nil for NULL), valid only during the call.
    func withPointers<R>(_ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            return body(offsets.map { offset in offset.map { base + $0 } })
        }
    }
}

/// One result set, freed with it.
public final class PostgresResult {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQclear(handle) }
    public var rows: Int { Int(PQntuples(handle)) }
    /// Each row as `row` reads it.
    public func rows<T>(row: (PostgresRow) throws -> T) rethrows -> [T] {
        try (0..<rows).map { try row(PostgresRow(result: self, index: $0)) }
    }
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
