import Field
import SatchelTesting
import Store
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("DeviceDatabase: opening, refusing, identity")
struct DeviceDatabaseTests {
    @Test("a missing data directory or database says how to initialise")
    func notInitialised() throws {
        let directory = TemporaryDirectory("dev")
        let error = #expect(throws: FieldError.self) { _ = try DeviceDatabase.open(home: directory.path + "/nowhere") }
        #expect(error == .notInitialised(home: directory.path + "/nowhere"))
        #expect(error?.description.contains("satchel init") == true)
        #expect(error?.exitCode == 66)
    }

    @Test("init refuses a second device in the same home and keeps the first")
    func alreadyInitialised() throws {
        let fixture = try Fixture()
        #expect(throws: FieldError.alreadyInitialised(home: fixture.home, device: "PL07")) {
            _ = try DeviceDatabase.create(home: fixture.home, deviceID: "OTHER", repID: "R02")
        }
        #expect(try DeviceDatabase.open(home: fixture.home).deviceID() == "PL07")
    }

    @Test("device ids that cannot prefix document ids are refused", arguments: ["", "PL-07", "Łódź", "a b", String(repeating: "x", count: 33)])
    func badDeviceID(id: String) throws {
        let directory = TemporaryDirectory("dev")
        #expect(throws: FieldError.self) { _ = try DeviceDatabase.create(home: directory.path + "/h", deviceID: id, repID: "R01") }
    }

    @Test("a damaged database file is refused and left byte-for-byte untouched")
    func damaged() throws {
        let fixture = try Fixture()
        let path = fixture.device.path
        try fixture.device.database.checkpoint()
        var bytes = fileBytes(path)
        for offset in 0..<100 { bytes[offset] = UInt8(truncatingIfNeeded: offset * 7 + 1) }  // the header
        writeFile(path, bytes)
        let error = #expect(throws: FieldError.self) { _ = try DeviceDatabase.open(home: fixture.home) }
        guard case .damagedDatabase(let reported, _) = error else {
            Issue.record("expected damagedDatabase, got \(String(describing: error))")
            return
        }
        #expect(reported == path)
        #expect(error?.exitCode == 69)
        #expect(fileBytes(path) == bytes)
    }

    @Test("another program's SQLite file is refused as foreign and left untouched")
    func foreign() throws {
        let directory = TemporaryDirectory("dev")
        let home = directory.path + "/home"
        _ = try DeviceDatabase.create(home: home, deviceID: "X", repID: "R")  // makes the directory
        let path = home + "/" + DeviceDatabase.fileName
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        do {
            let other = try Database(path: path)
            try other.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, data BLOB)")
            try other.checkpoint()
        }
        let before = fileBytes(path)
        let error = #expect(throws: FieldError.self) { _ = try DeviceDatabase.open(home: home) }
        guard case .foreignDatabase = error else {
            Issue.record("expected foreignDatabase, got \(String(describing: error))")
            return
        }
        #expect(fileBytes(path) == before)
    }

    @Test("a database from a newer satchel is refused, not downgraded")
    func newerSchema() throws {
        let fixture = try Fixture()
        try fixture.device.database.execute("PRAGMA user_version=99")
        #expect(throws: FieldError.newerSchema(path: fixture.device.path, detail: "schema 99, this satchel knows \(FieldSchema.migrations.count)")) {
            _ = try DeviceDatabase.open(home: fixture.home)
        }
    }

    @Test("status counts the working set and what is not synced")
    func status() throws {
        let fixture = try Fixture()
        _ = try fixture.capture.createOrder(customerID: "CBG1", lines: [.init(partNumber: "P2", quantity: 1)], confirm: true)
        _ = try fixture.capture.recordVisit(customerID: "CPL1", outcome: .order)
        let status = try DeviceStatus.read(fixture.device)
        #expect(status.device == "PL07" && status.customers == 3 && status.products == 6)
        #expect(status.orders == ["confirmed": 1] && status.ordersHeldForApproval == 1)
        #expect(status.unsyncedChanges == 2 && status.changes == 2)
        #expect(status.routeStopsToday == 2)
        #expect(status.visitsToday == 1)
    }
}
