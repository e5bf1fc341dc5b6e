import Dispatch
import Field
import Foundation
import Hub
import Postgres
import SatchelTesting
import Store
import Sync
import Testing

/// Issue 17 on the PostgreSQL hub: the export the ERP reads, exactly once from the cursor it
/// acknowledges, as on SQLite (ERPExportTests): re-run before the acknowledgement it writes the
/// same documents again; killed midway it leaves no file and no cursor; a batch committing while
/// the export takes its cursor is neither skipped nor exported twice.
@Suite("ERP export on PostgreSQL: the same file as on SQLite, exactly once, whole or not at all", .serialized)
struct ERPExportPostgresTests {
    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs").path
    static let now: Int64 = 1_796_000_200_000

    final class Hubs {
        let directory = TemporaryDirectory("erp-export-pg")
        let database: TestPostgres.Database
        let postgres: PostgresHubStorage
        let sqlite: SQLiteHubStorage
        var seq: Int64 = 0
        init() throws {
            database = try TestPostgres.newDatabase()
            postgres = try PostgresHubStorage(url: database.url)
            sqlite = try SQLiteHubStorage(path: directory.file("hub.db"))
            for storage in [postgres, sqlite] as [any HubStorage] {
                try storage.addRep(id: "rep_kowalska", name: "Zofia Kowalska", passwordHash: "")
                try storage.addDevice(id: "H01", rep: "rep_kowalska", publicKey: Array(repeating: 7, count: 32), now: 1, replaces: nil)
            }
        }

        func change(_ action: String, _ document: Document) -> SyncChange {
            seq += 1
            return SyncChange(seq: seq, changeId: "H01-\(seq)", at: 1_796_000_000_000 + seq, entity: document.kind.entity, entityId: document.id,
                              action: action, payload: DocumentCodec.encode(document))
        }

        /// The same batch into both hubs.
        func send(_ changes: [SyncChange], to storages: [any HubStorage]) throws {
            for storage in storages { _ = try storage.commit(Batch(id: "B\(changes[0].seq)", changes: changes), device: "H01", now: 1_796_000_100_000) }
        }

        func read(_ path: String) -> String { String(decoding: fileBytes(path), as: UTF8.self) }
    }

    /// xmllint (Debian's libxml2-utils) as the independent validator: its exit status and what it said.
    static func xmllint(_ path: String) throws -> (succeeded: Bool, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/xmllint")
        process.arguments = ["--noout", "--schema", docs + "/erp-export.xsd", path]
        let errors = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let said = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus == 0, String(decoding: said, as: UTF8.self))
    }

    /// The change ids a file holds, in file order.
    static func changeIds(_ text: String) -> [String] {
        text.components(separatedBy: " change-id=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
    }

    @Test("the same documents export to the same file, byte for byte, as on SQLite, and it validates with xmllint; re-run before the ack, the same documents again; after the ack none; new ones once; a bad or older ack is refused and moves nothing")
    func sameFileAsSQLiteExactlyOnce() throws {
        let hubs = try Hubs()
        let order = ERPExportTests.order
        try hubs.send([hubs.change("confirmed", order),
                       hubs.change("collected", .payment(PaymentDocument(id: "H01-2", customerId: "CPL000001", amountMinor: 5_000, currency: "PLN", method: .cash,
                                                                        receipt: "KP/12", collectedAt: 1_796_000_000_000))),
                       hubs.change("recorded", ERPExportTests.visit("H01-3"))], to: [hubs.postgres, hubs.sqlite])
        let first = try hubs.postgres.exportERP(to: hubs.directory.file("pg.xml"), now: Self.now)
        let expected = try hubs.sqlite.exportERP(to: hubs.directory.file("sqlite.xml"), now: Self.now)
        #expect(first.after == 0 && first.cursor == expected.cursor && first.documents == 3 && expected.documents == 3)
        let text = hubs.read(hubs.directory.file("pg.xml"))
        #expect(text == hubs.read(hubs.directory.file("sqlite.xml")))
        #expect(Self.changeIds(text) == ["H01-1", "H01-2", "H01-3"])
        #expect(text.contains(#"note="Магазин затворен""#))
        let valid = try Self.xmllint(hubs.directory.file("pg.xml"))
        #expect(valid.succeeded, "\(valid.stderr)")

        // Not acknowledged: the same three again, nothing skipped.
        let again = try hubs.postgres.exportERP(to: hubs.directory.file("again.xml"), now: Self.now)
        #expect(again.cursor == first.cursor && again.documents == 3)
        #expect(Self.changeIds(hubs.read(hubs.directory.file("again.xml"))) == ["H01-1", "H01-2", "H01-3"])

        #expect(throws: HubError.self) { try hubs.postgres.acknowledgeERPExport(cursor: 999) }
        #expect(try hubs.postgres.acknowledgedERPCursor() == 0)
        try hubs.postgres.acknowledgeERPExport(cursor: first.cursor)
        let empty = try hubs.postgres.exportERP(to: hubs.directory.file("empty.xml"), now: Self.now)
        #expect(empty.documents == 0 && empty.after == first.cursor && empty.cursor == first.cursor)
        #expect(try Self.xmllint(hubs.directory.file("empty.xml")).succeeded)

        try hubs.send([hubs.change("recorded", ERPExportTests.visit("H01-4", note: "Zamknięte — закрыто"))], to: [hubs.postgres])
        let next = try hubs.postgres.exportERP(to: hubs.directory.file("next.xml"), since: first.cursor, now: Self.now)
        #expect(next.documents == 1 && next.after == first.cursor)
        #expect(Self.changeIds(hubs.read(hubs.directory.file("next.xml"))) == ["H01-4"])
        try hubs.postgres.acknowledgeERPExport(cursor: next.cursor)
        do {
            try hubs.postgres.acknowledgeERPExport(cursor: first.cursor)
            Issue.record("an older cursor was acknowledged")
        } catch HubError.invalid(let why) {
            #expect(why.contains("older than the acknowledged \(next.cursor)"))
        }
        #expect(try hubs.postgres.acknowledgedERPCursor() == next.cursor)
    }

    @Test("a change inserted by a transaction still open when a later batch committed (its position is the smaller) is not skipped: the export waits for it, or gives up by its deadline writing nothing and moving nothing")
    func aCommitInFlightIsNeitherSkippedNorDoubled() throws {
        let hubs = try Hubs()
        // Another hub process midway through a commit: its row holds the smaller position.
        nonisolated(unsafe) let other = try PostgresConnection(url: hubs.database.url)
        try other.execute("BEGIN")
        try other.execute("""
            INSERT INTO device_changes(change_id, device_id, seq, at, entity, entity_id, action, payload, received_at, epoch)
            VALUES ('H01-100', 'H01', 100, 1796000000100, 'visit', 'H01-100', 'recorded', '{"id":"H01-100"}', 1796000100000, 1)
            """)
        try hubs.send([hubs.change("recorded", ERPExportTests.visit("H01-1"))], to: [hubs.postgres])

        let out = hubs.directory.file("out.xml")
        do {
            _ = try hubs.postgres.exportERP(to: out, now: Self.now, waitMilliseconds: 300)
            Issue.record("the export took a cursor past a commit in flight")
        } catch HubError.storage(let why) {
            #expect(why.contains("commits in flight"), "\(why)")
        }
        #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".partial"))
        #expect(try hubs.postgres.acknowledgedERPCursor() == 0)

        // The other commit ends while the export waits: both documents, in position order.
        let committed = DispatchSemaphore(value: 0)
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) {
            _ = try? other.execute("COMMIT")
            committed.signal()
        }
        let result = try hubs.postgres.exportERP(to: out, now: Self.now, waitMilliseconds: 20_000)
        #expect(committed.wait(timeout: .now() + 20) == .success)
        #expect(result.documents == 2)
        #expect(Self.changeIds(hubs.read(out)) == ["H01-100", "H01-1"])
        try hubs.postgres.acknowledgeERPExport(cursor: result.cursor)
        try hubs.send([hubs.change("recorded", ERPExportTests.visit("H01-2"))], to: [hubs.postgres])
        let next = try hubs.postgres.exportERP(to: out, now: Self.now)
        #expect(Self.changeIds(hubs.read(out)) == ["H01-2"] && next.documents == 1)
    }

    @Test("satchel-hub erp export --postgres killed (SIGKILL) while writing 10,000 documents leaves no file, no export and the cursor where it was; the re-run exports each document exactly once, and after the ack none")
    func killedMidwayThenEachDocumentOnce() throws {
        let hubs = try Hubs()
        let count = 10_000
        try PostgresConnection(url: hubs.database.url).execute("""
            INSERT INTO device_changes(change_id, device_id, seq, at, entity, entity_id, action, payload, received_at, epoch)
            SELECT 'H01-' || g, 'H01', g, 1796000000000 + g, 'visit', 'H01-' || g, 'recorded',
                   '{"id":"H01-' || g || '","customer_id":"CPL000001","note":"Wizyta — визит № ' || g || '"}', 1796000100000, 1
            FROM generate_series(1, \(count)) AS g
            """)
        let out = hubs.directory.file("out.xml")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuiltExecutable.path("satchel-hub"))
        process.arguments = ["erp", "export", "--postgres", hubs.database.url, "--out", out]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Killed once the file is being written (its first 64 KiB flushed), never before.
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning && Date() < deadline {
            let size = (try? FileManager.default.attributesOfItem(atPath: out + ".partial")[.size] as? Int) ?? 0
            if size > 0 { break }
            usleep(5_000)
        }
        let wasWriting = process.isRunning && FileManager.default.fileExists(atPath: out + ".partial")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try #require(wasWriting && process.terminationReason == .uncaughtSignal, "the export finished (or never wrote) before the kill: nothing was tested")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try hubs.postgres.acknowledgedERPCursor() == 0)
        #expect(try PostgresConnection(url: hubs.database.url).int64("SELECT count(*) FROM erp_exports") == 0)

        let rerun = try hubs.postgres.exportERP(to: out, now: Self.now)
        #expect(rerun.documents == count && rerun.after == 0)
        let ids = Self.changeIds(hubs.read(out))
        #expect(ids.count == count && Set(ids).count == count)
        #expect(ids.first == "H01-1" && ids.last == "H01-\(count)")
        #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
        let valid = try Self.xmllint(out)
        #expect(valid.succeeded, "\(valid.stderr.prefix(2_000))")
        try hubs.postgres.acknowledgeERPExport(cursor: rerun.cursor)
        #expect(try hubs.postgres.exportERP(to: out, now: Self.now).documents == 0)
    }
}
