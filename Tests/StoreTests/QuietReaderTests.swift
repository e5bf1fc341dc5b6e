import Foundation
import SatchelTesting
import Store
import Testing

/// The read-only open that `status` and `doctor` use (issue 10, reproduction 14): it must leave
/// the data directory exactly as it found it. (That a writer in another process cannot checkpoint
/// under it is an end-to-end test: POSIX locks do not conflict within one process.)
@Suite("Store: a read-only connection that leaves no trace")
struct QuietReaderTests {
    let directory = TemporaryDirectory("quiet")
    var path: String { directory.file("satchel.db") }

    func names() throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() }

    func reader() throws -> Database {
        var options = Database.Options()
        options.readOnly = true
        options.create = false
        options.immutable = true
        return try Database(path: path, options: options)
    }

    func writeRow(_ text: String) throws {
        let writer = try Database(path: path)
        try writer.execute("CREATE TABLE IF NOT EXISTS t (x TEXT)")
        try writer.execute("INSERT INTO t VALUES (?)", [.text(text)])
    }

    @Test("with no -wal it opens immutable, reads, and creates no -wal or -shm")
    func noTrace() throws {
        try writeRow("Łódź")
        try #require(try names() == ["satchel.db"])
        let before = fileBytes(path)
        do {
            let database = try reader()
            #expect(database.isImmutable)
            #expect(try database.text("SELECT x FROM t") == "Łódź")
            #expect(try database.integrityCheck().isEmpty)
            #expect(try names() == ["satchel.db"])
        }
        let unchanged = fileBytes(path) == before
        #expect(try names() == ["satchel.db"] && unchanged)
    }

    @Test("with a -wal beside the file it reads the WAL's commits (not immutable)")
    func readsTheWAL() throws {
        try writeRow("Родопи")
        let writer = try Database(path: path)
        try writer.execute("INSERT INTO t VALUES ('Źródło')")  // committed to the WAL, writer still open
        let database = try reader()
        #expect(!database.isImmutable)
        #expect(try database.int64("SELECT count(*) FROM t") == 2)
        withExtendedLifetime(writer) {}
    }
}
