import Postgres
import Testing

/// The PostgreSQL client's pipeline mode, prepared statements and binary arrays, which a batch's
/// commit on the hub is built on (PostgresHubStorage.commit), against the real server.
@Suite("PostgreSQL pipelines, prepared statements and binary arrays", .serialized)
struct PostgresPipelineTests {
    @Test("binary arrays arrive element for element: quotes, backslashes, braces, NULL, empty text, UTF-8, empty arrays, extreme integers")
    func binaryArraysRoundTrip() throws {
        let database = try TestPostgres.newDatabase()
        defer { withExtendedLifetime(database) {} }
        let connection = try PostgresConnection(url: database.url)
        let texts: [String?] = ["plain", "a \"quoted\" {brace}, comma", "back\\slash", nil, "", "Łódź — доставка „Żółw”", "NULL"]
        let rows = try connection.query("SELECT n, t IS NULL, coalesce(t, '') FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n",
                                        [.textArray(texts)]) { ($0.int(0), $0.bool(1), $0.text(2)) }
        #expect(rows.count == texts.count)
        for (row, text) in zip(rows, texts) {
            #expect(row.1 == (text == nil))
            #expect(row.2 == (text ?? ""))
        }
        let integers: [Int64?] = [0, -1, Int64.max, Int64.min, nil, 1_795_428_000_000]
        let numbers = try connection.query("SELECT coalesce(i::text, 'null') FROM unnest($1::bigint[]) WITH ORDINALITY AS u(i, n) ORDER BY n",
                                           [.integerArray(integers)]) { $0.text(0) }
        #expect(numbers == integers.map { $0.map(String.init) ?? "null" })
        #expect(try connection.int64("SELECT cardinality($1::text[]) + cardinality($2::bigint[])", [.textArray([]), .integerArray([])]) == 0)
    }

    @Test("a pipeline answers each statement in order; a failure throws its SQLSTATE, skips the rest, rolls back, and the connection works on")
    func pipelineFailureLeavesConnectionUsable() throws {
        let database = try TestPostgres.newDatabase()
        defer { withExtendedLifetime(database) {} }
        let connection = try PostgresConnection(url: database.url)
        try connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        let insert = "INSERT INTO t(id) SELECT unnest($1::bigint[]) RETURNING id"
        let results = try connection.pipeline([
            PostgresStatement(insert, [.integerArray([1, 2])], prepareAs: "test_insert"),
            PostgresStatement("SELECT count(*) FROM t"),
        ])
        #expect(results.map(\.rows) == [2, 1])
        #expect(try results[1].rows { $0.int64(0) } == [2])

        // The prepared statement again (prepared once), then a unique violation in the middle of
        // a transaction's pipeline: nothing of the transaction stays, the statement after it never ran.
        var reached = false
        do {
            try connection.transaction(pipelining: [
                PostgresStatement(insert, [.integerArray([3])], prepareAs: "test_insert"),
                PostgresStatement(insert, [.integerArray([1])], prepareAs: "test_insert"),
                PostgresStatement(insert, [.integerArray([4])], prepareAs: "test_insert"),
            ]) { _ in reached = true }
            Issue.record("a duplicate key in a pipeline did not throw")
        } catch let error as PostgresError {
            #expect(error.isUniqueViolation, "\(error)")
        }
        #expect(!reached)
        #expect(try connection.query("SELECT id FROM t ORDER BY id") { $0.int(0) } == [1, 2])
        // Work done while the server answers the pipeline reaches the body, its error too.
        let seen = try connection.transaction(pipelining: [PostgresStatement(insert, [.integerArray([5])], prepareAs: "test_insert")],
                                              meanwhile: { 42 }) { results, worked in (results[0].rows, try worked.get()) }
        #expect(seen == (1, 42))
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try connection.transaction(pipelining: [PostgresStatement(insert, [.integerArray([6])], prepareAs: "test_insert")],
                                       meanwhile: { () throws -> Int in throw Refused() }) { _, worked in try worked.get() }
        }
        #expect(try connection.query("SELECT id FROM t ORDER BY id") { $0.int(0) } == [1, 2, 5])
    }
}
