import Foundation
import SatchelTesting
import Store
import Testing

@Suite("Store: reading a database file's header without opening it")
struct DatabaseFileTests {
    let directory = TemporaryDirectory("header")

    /// A WAL database whose last commits are still only in the WAL, copied as a power cut leaves it.
    func crashedCopy(userVersions: [Int], named name: String) throws -> String {
        let source = directory.file("live-\(name).db")
        let database = try Database(path: source)
        try database.execute("PRAGMA wal_autocheckpoint=0")
        try database.execute("CREATE TABLE t (x TEXT)")
        try database.checkpoint()
        try database.execute("PRAGMA application_id=1234")
        for version in userVersions {
            try database.execute("INSERT INTO t VALUES ('Бакалия Свети Георги')")
            try database.execute("PRAGMA user_version=\(version)")  // last: the WAL ends with page 1's commit
        }
        let copy = directory.file(name + ".db")
        for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: source + suffix, toPath: copy + suffix) }
        return copy
    }

    func header(_ path: String) -> DatabaseFileHeader? {
        if case .sqlite(let header) = DatabaseFile.inspect(path) { return header }
        return nil
    }

    @Test("the newest committed page 1 in the WAL wins over the main file's")
    func walWins() throws {
        let path = try crashedCopy(userVersions: [5, 6], named: "wal")
        #expect(header(path)?.userVersion == 6 && header(path)?.applicationID == 1234 && header(path)?.fromWAL == true)
        try FileManager.default.removeItem(atPath: path + "-wal")
        #expect(header(path)?.userVersion == 0 && header(path)?.fromWAL == false)
    }

    @Test("a torn or damaged last transaction in the WAL does not count, as SQLite's recovery would not count it")
    func tornTail() throws {
        let torn = try crashedCopy(userVersions: [5, 6], named: "torn")
        let wal = fileBytes(torn + "-wal")
        writeFile(torn + "-wal", Array(wal.dropLast(100)))
        #expect(header(torn)?.userVersion == 5)

        let flipped = try crashedCopy(userVersions: [5, 6], named: "flipped")
        var bytes = fileBytes(flipped + "-wal")
        bytes[bytes.count - 10] ^= 0x40
        writeFile(flipped + "-wal", bytes)
        #expect(header(flipped)?.userVersion == 5)
        // SQLite itself, on throwaway copies, agrees.
        for path in [torn, flipped] {
            let probe = path + ".probe"
            for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: path + suffix, toPath: probe + suffix) }
            #expect(try Database(path: probe).userVersion == 5)
        }
    }

    @Test("empty, short and non-SQLite files are named as such; nothing is created beside them")
    func notDatabases() throws {
        writeFile(directory.file("empty.db"), [])
        writeFile(directory.file("short.db"), Array("SQLite format 3".utf8))
        writeFile(directory.file("text.db"), Array(String(repeating: "Hurtownia Żółw ", count: 20).utf8))
        #expect(DatabaseFile.inspect(directory.file("empty.db")) == .empty)
        guard case .notSQLite = DatabaseFile.inspect(directory.file("short.db")), case .notSQLite = DatabaseFile.inspect(directory.file("text.db")) else {
            Issue.record("expected notSQLite")
            return
        }
        #expect(DatabaseFile.inspect(directory.file("missing.db")) == .missing)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["empty.db", "short.db", "text.db"])
    }
}
