import Field
import Foundation
import SatchelTesting
import Store
import Testing

/// Repro 7 of issue 10: damage is refused, nothing foreign is touched.
@Suite("DeviceDatabase: refused files stay byte-identical, damage stops writes")
struct RefusalTests {
    /// A data directory whose database file the test writes itself.
    static func emptyHome(_ directory: TemporaryDirectory) throws -> (home: String, path: String) {
        let home = directory.path + "/home"
        _ = try DeviceDatabase.create(home: home, deviceID: "BG02", repID: "R05")
        let path = home + "/" + DeviceDatabase.fileName
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        return (home, path)
    }

    @Test("another program's SQLite file in rollback-journal mode is refused and not switched to WAL")
    func foreignRollbackFile() throws {
        let directory = TemporaryDirectory("refuse")
        let (home, path) = try Self.emptyHome(directory)
        do {
            var options = Database.Options()
            options.walMode = false
            let other = try Database(path: path, options: options)
            try other.execute("CREATE TABLE zdjęcia (id INTEGER PRIMARY KEY, opis TEXT)")
            try other.execute("INSERT INTO zdjęcia(opis) VALUES ('Магазин Ёлка')")
        }
        let before = fileFingerprints(path)
        let error = #expect(throws: FieldError.self) { _ = try DeviceDatabase.open(home: home) }
        guard case .foreignDatabase = error else { Issue.record("expected foreignDatabase, got \(String(describing: error))"); return }
        #expect(fileFingerprints(path) == before)
    }

    @Test("a database of a newer satchel is refused untouched, even while its new header is only in the WAL")
    func newerSchemaInWAL() throws {
        let directory = TemporaryDirectory("refuse")
        let home = directory.path + "/home"
        let path = home + "/" + DeviceDatabase.fileName
        let crashed = directory.path + "/crashed"
        do {
            let device = try DeviceDatabase.create(home: home, deviceID: "RU01", repID: "R09")
            try device.database.checkpoint()
            try device.database.execute("PRAGMA user_version=99")
            // A power cut now leaves the new user_version in the WAL only: copy the files as they are.
            try FileManager.default.createDirectory(atPath: crashed, withIntermediateDirectories: true)
            for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: path + suffix, toPath: crashed + "/satchel.db" + suffix) }
        }
        let copy = crashed + "/satchel.db"
        #expect(fileBytes(copy + "-wal").count > 32)
        let before = fileFingerprints(copy)
        let error = #expect(throws: FieldError.self) { _ = try DeviceDatabase.open(home: crashed) }
        #expect(error == .newerSchema(path: copy, detail: "schema 99, this satchel knows \(FieldSchema.migrations.count)"))
        #expect(fileFingerprints(copy) == before, "the WAL must not be checkpointed nor a -shm created")
    }

    @Test("a newer database in rollback-journal mode is refused and not switched to WAL")
    func newerSchemaRollback() throws {
        let directory = TemporaryDirectory("refuse")
        let home = directory.path + "/home"
        let path = home + "/" + DeviceDatabase.fileName
        do {
            let device = try DeviceDatabase.create(home: home, deviceID: "PL03", repID: "R01")
            try device.database.execute("PRAGMA user_version=42")
            try device.database.checkpoint()
            _ = try device.database.text("PRAGMA journal_mode=DELETE")
        }
        let before = fileFingerprints(path)
        #expect(before["-wal"] == "absent")
        #expect(throws: FieldError.newerSchema(path: path, detail: "schema 42, this satchel knows \(FieldSchema.migrations.count)")) {
            _ = try DeviceDatabase.open(home: home)
        }
        #expect(fileFingerprints(path) == before)
    }

    @Test("a 0-byte file is refused as damaged and stays 0 bytes, with nothing created beside it")
    func emptyFile() throws {
        let directory = TemporaryDirectory("refuse")
        let (home, path) = try Self.emptyHome(directory)
        writeFile(path, [])
        let before = fileFingerprints(path)
        let error = #expect(throws: FieldError.self) { _ = try DeviceDatabase.open(home: home) }
        guard case .damagedDatabase(_, let detail) = error else { Issue.record("expected damagedDatabase, got \(String(describing: error))"); return }
        #expect(detail.contains("0 bytes"))
        #expect(error?.exitCode == 69)
        #expect(fileFingerprints(path) == before)
    }

    @Test("a text file in place of the database is refused untouched")
    func notSQLite() throws {
        let directory = TemporaryDirectory("refuse")
        let (home, path) = try Self.emptyHome(directory)
        writeFile(path, Array("Hurtownia Żółw; Магазин Ёлка; Бакалия Свети Георги\n".utf8))
        let before = fileFingerprints(path)
        let error = #expect(throws: FieldError.self) { _ = try DeviceDatabase.open(home: home) }
        guard case .damagedDatabase = error else { Issue.record("expected damagedDatabase, got \(String(describing: error))"); return }
        #expect(fileFingerprints(path) == before)
    }

    @Test("a new database whose header is still only in the WAL (power cut after init) opens")
    func ownHeaderInWAL() throws {
        let directory = TemporaryDirectory("refuse")
        let home = directory.path + "/home"
        let crashed = directory.path + "/crashed"
        let device = try DeviceDatabase.create(home: home, deviceID: "BG04", repID: "R02")
        try FileManager.default.createDirectory(atPath: crashed, withIntermediateDirectories: true)
        for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: device.path + suffix, toPath: crashed + "/satchel.db" + suffix) }
        // The main file alone still says application_id 0: only the WAL knows better.
        try FileManager.default.copyItem(atPath: crashed + "/satchel.db", toPath: crashed + "/main-only.db")
        guard case .sqlite(let main) = DatabaseFile.inspect(crashed + "/main-only.db"),
              case .sqlite(let combined) = DatabaseFile.inspect(crashed + "/satchel.db") else {
            Issue.record("headers not readable")
            return
        }
        #expect(main.applicationID == 0 && !main.fromWAL)
        #expect(combined.fromWAL && combined.applicationID == Int64(FieldSchema.applicationID))
        #expect(combined.userVersion == Int64(FieldSchema.migrations.count))
        #expect(try DeviceDatabase.open(home: crashed).deviceID() == "BG04")
    }

    /// Damages `table`'s root page on disk (after a checkpoint).
    static func corruptRootPage(of table: String, in device: DeviceDatabase) throws {
        try device.database.checkpoint()
        let root = try device.database.int64("SELECT rootpage FROM sqlite_schema WHERE name = ?", [.text(table)])
        corruptPageHeader(device.path, page: root, pageSize: try device.database.int64("PRAGMA page_size"))
    }

    @Test("SQLITE_CORRUPT in one capture stops every later write, in this process and the next, until the file is replaced")
    func corruptionStopsWrites() throws {
        let fixture = try Fixture()
        _ = try fixture.capture.recordVisit(customerID: "CPL1", outcome: .order, note: "Hurtownia Żółw")
        let good = fixture.directory.path + "/good.db"
        try fixture.device.database.backup(to: good)
        try Self.corruptRootPage(of: "visits", in: fixture.device)
        let device = try DeviceDatabase.open(home: fixture.home, clock: fixture.clock)
        let capture = Capture(device)
        let visit = #expect(throws: FieldError.self) { try capture.recordVisit(customerID: "CBG1", outcome: .noOrder) }
        guard case .damagedDatabase = visit else { Issue.record("expected damagedDatabase, got \(String(describing: visit))"); return }
        let damagedBytes = fileBytes(device.path)
        // The payments table is intact, but the database is not: the payment must not go in.
        let payment = #expect(throws: FieldError.self) { try capture.recordPayment(customerID: "CPL1", amountMinor: 120_00, method: .cash, receipt: "KP/7") }
        guard case .damagedDatabase(_, let detail) = payment else { Issue.record("expected damagedDatabase, got \(String(describing: payment))"); return }
        #expect(detail.contains("found earlier"))
        #expect(payment?.description.contains("satchel restore") == true)
        #expect(throws: FieldError.self) { _ = try DeviceDatabase.open(home: fixture.home) }
        #expect(fileBytes(device.path) == damagedBytes)
        // What a restore does: a rebuilt file renamed into place; the marker no longer applies.
        try FileManager.default.removeItem(atPath: device.path + "-wal")
        try? FileManager.default.removeItem(atPath: device.path + "-shm")
        #expect(rename(good, device.path) == 0)
        let restored = try DeviceDatabase.open(home: fixture.home, clock: fixture.clock)
        _ = try Capture(restored).recordPayment(customerID: "CPL1", amountMinor: 120_00, method: .cash, receipt: "KP/7")
        #expect(!FileManager.default.fileExists(atPath: fixture.home + "/" + DamageMarker.fileName))
    }

    @Test("quick_check finds damage no capture touches and stops writes")
    func quickCheckFindsUntouchedDamage() throws {
        let fixture = try Fixture()
        try Self.corruptRootPage(of: "equipment", in: fixture.device)
        let device = try DeviceDatabase.open(home: fixture.home, clock: fixture.clock)
        _ = try Capture(device).recordVisit(customerID: "CBG1", outcome: .noOrder, note: "Бакалия Свети Георги: затворено")
        #expect(throws: FieldError.self) { try device.checkForDamage() }
        let visit = #expect(throws: FieldError.self) { try Capture(device).recordVisit(customerID: "CBG1", outcome: .noOrder) }
        guard case .damagedDatabase = visit else { Issue.record("expected damagedDatabase, got \(String(describing: visit))"); return }
    }
}
