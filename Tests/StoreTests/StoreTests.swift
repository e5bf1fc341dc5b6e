import CSQLite
import SatchelTesting
import Store
import Testing

@Suite("Store: the thin SQLite layer")
struct StoreTests {
    let directory = TemporaryDirectory("store")

    func open(_ name: String = "a.db", _ configure: (inout Database.Options) -> Void = { _ in }) throws -> Database {
        var options = Database.Options()
        configure(&options)
        return try Database(path: directory.file(name), options: options)
    }

    @Test("opening applies WAL, synchronous=FULL and foreign keys")
    func durableSettings() throws {
        let database = try open()
        #expect(try database.text("PRAGMA journal_mode") == "wal")
        #expect(try database.int64("PRAGMA synchronous") == 2)  // FULL
        #expect(try database.int64("PRAGMA foreign_keys") == 1)
    }

    @Test("typed binding and reading round-trip Cyrillic, Polish, empty text, blobs and NULL")
    func roundTrip() throws {
        let database = try open()
        try database.execute("CREATE TABLE t (a TEXT, b INTEGER, c REAL, d BLOB, e TEXT)")
        let insert = try database.statement("INSERT INTO t VALUES (?, ?, ?, ?, ?)")
        try insert.bind("Zażółć gęślą jaźń — Съешь же ещё", at: 1)
        try insert.bind(Int64.min, at: 2)
        try insert.bind(2.5, at: 3)
        try insert.bind([0, 1, 255, 0], at: 4)
        try insert.bind("", at: 5)
        try insert.runBound()
        try database.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)", [nil, nil, nil, .blob([]), nil])
        let rows = try database.query("SELECT a, b, c, d, e FROM t ORDER BY rowid") { row in
            [row.value(0), row.value(1), row.value(2), row.value(3), row.value(4)]
        }
        #expect(rows[0] == [.text("Zażółć gęślą jaźń — Съешь же ещё"), .integer(Int64.min), .real(2.5), .blob([0, 1, 255, 0]), .text("")])
        #expect(rows[1][0] == .null && rows[1][1] == .null && rows[1][4] == .null)
    }

    @Test("prepared statements are cached by SQL text")
    func statementCache() throws {
        let database = try open()
        let first = try database.statement("SELECT 1")
        let second = try database.statement("SELECT 1")
        #expect(first === second)
        #expect(try database.statement("SELECT 2") !== first)
    }

    @Test("a transaction commits when its body returns and rolls back when it throws")
    func transactions() throws {
        struct Boom: Error {}
        let database = try open()
        try database.execute("CREATE TABLE t (x INTEGER)")
        try database.transaction { try database.execute("INSERT INTO t VALUES (1)") }
        #expect(throws: Boom.self) {
            try database.transaction {
                try database.execute("INSERT INTO t VALUES (2)")
                throw Boom()
            }
        }
        #expect(try database.int64("SELECT group_concat(x) FROM t") == 1)
        #expect(!database.isInTransaction)
    }

    @Test("BEGIN IMMEDIATE fails as busy within the deadline while another connection writes")
    func busyDeadline() throws {
        let writer = try open()
        try writer.execute("CREATE TABLE t (x INTEGER)")
        let other = try open { $0.busyTimeoutMilliseconds = 50 }
        try writer.execute("BEGIN IMMEDIATE")
        defer { try? writer.execute("ROLLBACK") }
        let error = #expect(throws: StoreError.self) { try other.transaction(.immediate) { try other.execute("INSERT INTO t VALUES (1)") } }
        #expect(error?.kind == .busy)
    }

    @Test("migrations run once each, by user_version, and a newer schema is refused")
    func migrations() throws {
        let database = try open()
        let migrations = [Migration("one", "CREATE TABLE a (x);"), Migration("two", "CREATE TABLE b (y); INSERT INTO b VALUES (1);")]
        try database.migrate(migrations, applicationID: 42)
        try database.migrate(migrations)
        #expect(try database.userVersion == 2)
        #expect(try database.applicationID == 42)
        #expect(try database.int64("SELECT count(*) FROM b") == 1)
        #expect(throws: StoreError.self) { try database.migrate([migrations[0]]) }
    }

    @Test("a failed migration leaves the previous version intact")
    func failedMigration() throws {
        let database = try open()
        try database.migrate([Migration("one", "CREATE TABLE a (x);")])
        #expect(throws: StoreError.self) {
            try database.migrate([Migration("one", "CREATE TABLE a (x);"), Migration("bad", "CREATE TABLE c (z); SELECT * FROM missing;")])
        }
        #expect(try database.userVersion == 1)
        #expect(try database.int64("SELECT count(*) FROM sqlite_master WHERE name = 'c'") == 0)
    }

    @Test("errors carry the extended code, SQLite's message and the SQL, never the arguments")
    func errorContext() throws {
        let database = try open()
        try database.execute("CREATE TABLE t (x TEXT UNIQUE)")
        try database.execute("INSERT INTO t VALUES (?)", ["Секретна тайна"])
        let error = #expect(throws: StoreError.self) { try database.execute("INSERT INTO t VALUES (?)", ["Секретна тайна"]) }
        #expect(error?.kind == .constraint)
        #expect(error?.extendedCode == SQLITE_CONSTRAINT | (8 << 8))  // SQLITE_CONSTRAINT_UNIQUE, a macro Swift cannot import
        #expect(error?.sql == "INSERT INTO t VALUES (?)")
        #expect(error?.description.contains("UNIQUE constraint failed") == true)
        #expect(error?.description.contains("Секретна") == false)
        let syntax = #expect(throws: StoreError.self) { try database.execute("SELEC 1") }
        #expect(syntax?.description.contains("SELEC 1") == true)
    }

    @Test("a full database (max_page_count) fails as .full and keeps what was committed")
    func diskFull() throws {
        let database = try open()
        try database.execute("CREATE TABLE t (x BLOB)")
        try database.execute("INSERT INTO t VALUES (zeroblob(1000))")
        let pages = try database.int64("PRAGMA page_count")
        try database.execute("PRAGMA max_page_count=\(pages)")
        let error = #expect(throws: StoreError.self) {
            try database.transaction { try database.execute("INSERT INTO t VALUES (zeroblob(100000))") }
        }
        #expect(error?.kind == .full)
        #expect(try database.int64("SELECT count(*) FROM t") == 1)
    }

    @Test("a file that is not a database is refused as corrupt")
    func notADatabase() throws {
        writeFile(directory.file("junk.db"), Array(repeating: 0x5A, count: 8192))
        let error = #expect(throws: StoreError.self) { _ = try open("junk.db") }
        #expect(error?.kind == .corrupt)
        #expect(error?.path == directory.file("junk.db"))
    }

    @Test("a missing file is not created when create is off")
    func noCreate() throws {
        let error = #expect(throws: StoreError.self) { _ = try open("missing.db") { $0.create = false } }
        #expect(error?.kind == .noAccess)
    }

    @Test("online backup copies every row into a file that passes quick_check")
    func backup() throws {
        let database = try open()
        try database.execute("CREATE TABLE t (x TEXT)")
        try database.transaction {
            for index in 0..<2_000 { try database.execute("INSERT INTO t VALUES (?)", [.text("Клиент \(index) Łódź")]) }
        }
        try database.backup(to: directory.file("copy.db"), pagesPerStep: 8)
        let copy = try open("copy.db")
        #expect(try copy.quickCheck().isEmpty)
        #expect(try copy.int64("SELECT count(*) FROM t") == 2_000)
        #expect(try copy.text("SELECT x FROM t WHERE rowid = 7") == "Клиент 6 Łódź")
    }

    @Test("integrity_check finds a page overwritten on disk")
    func integrityCheckFindsDamage() throws {
        do {
            let database = try open("damaged.db") { $0.walMode = false }
            try database.execute("CREATE TABLE t (x TEXT)")
            try database.execute("CREATE INDEX t_x ON t(x)")
            try database.transaction {
                for index in 0..<3_000 { try database.execute("INSERT INTO t VALUES (?)", [.text("row \(index) with some padding text")]) }
            }
            #expect(try database.integrityCheck().isEmpty)
        }
        var bytes = fileBytes(directory.file("damaged.db"))
        let pageSize = 4096
        for offset in (pageSize * 5)..<(pageSize * 6) { bytes[offset] = 0xA5 }
        writeFile(directory.file("damaged.db"), bytes)
        let database = try open("damaged.db") { $0.walMode = false }
        let problems: [String]
        do { problems = try database.integrityCheck() } catch let error as StoreError {
            #expect(error.kind == .corrupt)
            return
        }
        #expect(!problems.isEmpty)
    }
}
