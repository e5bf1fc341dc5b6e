import Agent
import Field
import Foundation
import Hub
import SatchelTesting
import Seal
import Store
import Sync
import Testing
import Transport

/// Issue 10, reproduction 6: one master-data row a handheld's schema refuses must never stop a
/// fleet. The import refuses it by name; a row already in a hub file is held back from the
/// devices whose scope holds it (and audited); a device that cannot apply a row says which.
@Suite("Bad master data: refused at import, held back from downloads, named by the device", .serialized)
struct BadMasterDataTests {
    typealias Setup = DownloadTests.Setup

    /// An ERP extract as the office's exporter writes it: the working-set tables in plain SQLite,
    /// without the device schema's constraints (CREATE TABLE AS copies none).
    static func extract(from setup: Setup, _ name: String, _ edit: (Database) throws -> Void) throws -> String {
        let path = setup.directory.path + "/" + name
        let extract = try Database(path: path)
        try extract.execute("ATTACH DATABASE ? AS erp", [.text(setup.erp.path)])
        for table in WorkingSetTables.all where !["document_states", "sync_errors"].contains(table.name) {
            try extract.execute("CREATE TABLE \(table.name) AS SELECT \(table.columnList) FROM erp.\(table.name)")
        }
        try extract.execute("DETACH DATABASE erp")
        try edit(extract)
        return path
    }

    /// Every master-data and sign-in table of the hub, row by row, for "nothing changed".
    static func hubTables(_ path: String) throws -> [String: [WorkingSetRow]] {
        let database = try Database(path: path)
        var tables: [String: [WorkingSetRow]] = [:]
        for table in WorkingSetTables.all { tables[table.name] = try table.rows(in: database) }
        tables["rep_customers"] = try database.query("SELECT rep_id, customer_id FROM rep_customers ORDER BY 1, 2") { [$0.value(0), $0.value(1)] }
        return tables
    }

    static let zabka = "INSERT INTO customers VALUES ('CPL900001', 'Żabka Łódź', 'ul. Piotrkowska 12, Łódź', 'BG-SOF', 'PLN', 100000, 0, 0, 0, 0, 'zła', 'customer', '')"

    @Test("an extract with a customer the device schema refuses (a CHECK) and a unit of a product that does not exist (a foreign key) is refused whole, each row named; the hub is unchanged; fixed, it imports and reaches the device")
    func importRefusesWhatDevicesRefuse() throws {
        let setup = try Setup()
        let bad = try Self.extract(from: setup, "bad.db") { extract in
            try extract.execute(Self.zabka)
            try extract.execute("INSERT INTO products VALUES ('PN-BG-0077', 'Кафе Родопа 250 г', 'pcs', 'retail')")
            try extract.execute("INSERT INTO product_units VALUES ('PN-BG-0777', 'кашон', 12)")   // a typo in the part number
        }
        let before = try Self.hubTables(setup.hubPath)
        let hubBytes = fileBytes(setup.hubPath), walBytes = fileBytes(setup.hubPath + "-wal"), extractBytes = fileBytes(bad)
        do {
            try setup.storage.importMasterData(from: bad)
            Issue.record("an extract the handhelds would refuse was imported")
        } catch HubError.invalid(let why) {
            #expect(why.contains("bad.db refused, nothing imported: 2 rows"))
            #expect(why.contains("customers id 'CPL900001', column discipline = 'zła': CHECK constraint failed"))
            #expect(why.contains("product_units part_number 'PN-BG-0777', unit 'кашон', column part_number = 'PN-BG-0777': FOREIGN KEY constraint failed: products has no part_number 'PN-BG-0777'"))
            #expect(why.contains("Fix them in the ERP extract and import it again"))
        }
        #expect(try Self.hubTables(setup.hubPath) == before)
        #expect(fileBytes(setup.hubPath) == hubBytes)
        #expect(fileBytes(setup.hubPath + "-wal") == walBytes)
        #expect(fileBytes(bad) == extractBytes)

        // What the back office does next: fixes the two rows and imports again.
        let fixed = try Self.extract(from: setup, "fixed.db") { extract in
            try extract.execute(Self.zabka.replacingOccurrences(of: "'zła'", with: "'hesitant'"))
            try extract.execute("INSERT INTO products VALUES ('PN-BG-0077', 'Кафе Родопа 250 г', 'pcs', 'retail')")
            try extract.execute("INSERT INTO product_units VALUES ('PN-BG-0077', 'кашон', 12)")
        }
        try setup.storage.importMasterData(from: fixed)
        let result = try setup.sync(.initialise)
        #expect(result.mismatched == [])
        #expect(try setup.device.database.text("SELECT name FROM customers WHERE id = 'CPL900001'") == "Żabka Łódź")
        #expect(try setup.device.database.int64("SELECT factor FROM product_units WHERE part_number = 'PN-BG-0077' AND unit = 'кашон'") == 12)
    }

    @Test("a value of the wrong kind, a NULL where the device needs a value and a reps row of an unknown role are named too")
    func importNamesKindsAndNulls() throws {
        let setup = try Setup()
        let bad = try Self.extract(from: setup, "kinds.db") { extract in
            try extract.execute("UPDATE stock SET quantity = 'dużo' WHERE part_number = 'PN-10001' AND location = 'warehouse'")
            try extract.execute("UPDATE products SET name = NULL WHERE part_number = 'PN-10002'")
            try extract.execute("UPDATE reps SET role = 'начальник' WHERE id = 'R07'")
            try extract.execute("INSERT INTO territories SELECT * FROM territories WHERE id = 'BG'")   // the same row twice
        }
        do {
            try setup.storage.importMasterData(from: bad)
            Issue.record("imported")
        } catch HubError.invalid(let why) {
            #expect(why.contains("stock location 'warehouse', part_number 'PN-10001', column quantity = 'dużo': not an integer"))
            #expect(why.contains("products part_number 'PN-10002', column name = NULL: not text (NULL is not allowed here)"))
            #expect(why.contains("reps id 'R07', column role = 'начальник': CHECK constraint failed"))
            #expect(why.contains("territories id 'BG', column id = 'BG': UNIQUE constraint failed: territories.id"))
        }
    }

    @Test("rep scope naming a territory or channel the master data lacks is refused by name and changes nothing; so is an extract assigned to an unknown rep")
    func unknownNamesRefused() throws {
        let setup = try Setup()
        let before = try Self.hubTables(setup.hubPath)
        #expect(throws: HubError.notFound("territory NOPE in the master data (known: BG, BG-SOF, PL-MAZ)")) {
            try setup.storage.setRepScope(rep: "R07", territory: "NOPE", channel: nil)
        }
        #expect(throws: HubError.self) { try setup.storage.setRepScope(rep: "R07", territory: "BG", channel: "hurt") }
        #expect(throws: HubError.notFound("rep R99")) { try setup.storage.setRepScope(rep: "R99", territory: "BG", channel: nil) }
        #expect(throws: HubError.self) { try setup.storage.importMasterData(from: setup.erp.path, assignTo: "R99") }
        #expect(try Self.hubTables(setup.hubPath) == before)
        #expect(try setup.sync(.initialise).mismatched == [])
    }

    @Test("an extract that drops the territory a rep of the hub's own works in is refused, naming that rep: its handhelds would refuse the rep's row")
    func importChecksTheHubsOwnReps() throws {
        let setup = try Setup()
        try setup.storage.addRep(id: "R08", name: "Agnieszka Wójcik", passwordHash: PasswordHash.hash(password: "hasło-drugie", cost: DownloadTests.cost))
        try setup.storage.setRepScope(rep: "R08", territory: "PL-MAZ", channel: nil)
        let withoutMazovia = try Self.extract(from: setup, "no-maz.db") { extract in
            try extract.execute("DELETE FROM customer_price_levels WHERE customer_id IN (SELECT id FROM customers WHERE territory_id = 'PL-MAZ')")
            try extract.execute("DELETE FROM route_stops WHERE customer_id IN (SELECT id FROM customers WHERE territory_id = 'PL-MAZ')")
            try extract.execute("DELETE FROM history_lines WHERE customer_id IN (SELECT id FROM customers WHERE territory_id = 'PL-MAZ')")
            try extract.execute("DELETE FROM history_orders WHERE customer_id IN (SELECT id FROM customers WHERE territory_id = 'PL-MAZ')")
            try extract.execute("DELETE FROM customers WHERE territory_id = 'PL-MAZ'")
            try extract.execute("DELETE FROM territories WHERE id = 'PL-MAZ'")
        }
        do {
            try setup.storage.importMasterData(from: withoutMazovia)
            Issue.record("imported")
        } catch HubError.invalid(let why) {
            #expect(why.contains("1 row the handhelds' schema would refuse"))
            #expect(why.contains("reps id 'R08', column territory_id = 'PL-MAZ': FOREIGN KEY constraint failed: territories has no id 'PL-MAZ'"))
        }
    }

    /// A second rep in Mazowieckie with a handheld of its own.
    static func secondRep(_ setup: Setup) throws -> (X25519.KeyPair, DeviceDatabase) {
        let key = X25519.KeyPair.generate()
        try setup.storage.addRep(id: "R08", name: "Agnieszka Wójcik", passwordHash: PasswordHash.hash(password: "hasło-drugie", cost: DownloadTests.cost))
        try setup.storage.setRepScope(rep: "R08", territory: "PL-MAZ", channel: nil)
        try setup.storage.addDevice(id: "PL05", rep: "R08", publicKey: key.publicKey, now: 0)
        let device = try DeviceDatabase.create(home: setup.directory.path + "/pl05", deviceID: "PL05", repID: "R08", clock: ManualClock(DownloadTests.now))
        return (key, device)
    }

    static func sync(_ setup: Setup, _ key: X25519.KeyPair, _ device: DeviceDatabase, _ id: String, _ password: String, _ mode: SyncMode) throws -> SyncResult {
        let download = DeviceDownload(device)
        return try setup.server.inProcessSession { end in
            try SyncClient.run(end, deviceKey: key, hubKey: try setup.storage.hubKey().publicKey, device: id, password: password, mode: mode,
                               batches: [], pull: try download.pullRequest(reset: mode == .initialise), sink: download, deadline: .after(seconds: 20))
        }
    }

    @Test("rows already in the hub file that devices refuse (a territory under one that does not exist, a customer with a CHECK-violating value) are held back and audited; both reps sync; fixed at the office, they arrive")
    func badRowsInTheHubDoNotStopTheFleet() throws {
        let setup = try Setup()
        let (key, other) = try Self.secondRep(setup)
        // Rows that reached the hub before its import checked them.
        try setup.hub("INSERT INTO territories VALUES ('PL-LDZ', 'Łódzkie', 'PL-NOPE')")
        try setup.hub(Self.zabka)
        try setup.hub("INSERT INTO customer_price_levels VALUES ('CPL900001', 'customer')")
        let first = try setup.sync(.initialise)
        #expect(first.mismatched == [])
        #expect(try setup.device.database.int64("SELECT count(*) FROM customers") == 55)
        #expect(try setup.device.database.int64("SELECT count(*) FROM customers WHERE id = 'CPL900001'") == 0)
        let audit = try #require(try setup.storage.auditLog(limit: 1).first)
        #expect(audit.result == "ok")
        #expect(audit.error?.contains("held back 3 rows") == true)
        #expect(audit.error?.contains("territories id 'PL-LDZ', column parent_id = 'PL-NOPE': FOREIGN KEY constraint failed") == true)
        #expect(audit.error?.contains("customers id 'CPL900001', column discipline = 'zła': CHECK constraint failed") == true)
        #expect(audit.error?.contains("customer_price_levels customer_id 'CPL900001', level 'customer'") == true)
        // The other rep's handheld, whose scope holds only the bad territory, syncs too.
        let otherResult = try Self.sync(setup, key, other, "PL05", "hasło-drugie", .full)
        #expect(otherResult.mismatched == [])
        #expect(try other.database.int64("SELECT count(*) FROM customers") == 5)
        #expect(try other.database.int64("SELECT count(*) FROM territories") == 3)
        // Nothing stays stuck: the next full sync has nothing to send and agrees.
        let again = try setup.sync(.full)
        #expect(again.downloaded == 0 && again.mismatched == [])

        // The office fixes both rows; they come down with the next full sync.
        try setup.hub("UPDATE territories SET parent_id = NULL WHERE id = 'PL-LDZ'")
        try setup.hub("UPDATE customers SET discipline = 'hesitant' WHERE id = 'CPL900001'")
        let fixed = try setup.sync(.full)
        #expect(fixed.mismatched == [])
        #expect(fixed.downloaded == 3)
        #expect(try setup.device.database.text("SELECT discipline FROM customers WHERE id = 'CPL900001'") == "hesitant")
        #expect(try setup.storage.auditLog(limit: 1).first?.error == nil)
    }

    @Test("a customer the hub already sent turns bad at the hub: the device lets it go (with what pointed at it) and the checksums still agree")
    func rowTurningBadIsPurged() throws {
        let setup = try Setup()
        _ = try setup.sync(.initialise)
        #expect(try setup.device.database.int64("SELECT count(*) FROM customer_price_levels WHERE customer_id = 'CBG100003'") == 2)
        try setup.hub("UPDATE customers SET credit_limit_minor = -1 WHERE id = 'CBG100003'")
        let result = try setup.sync(.full)
        #expect(result.mismatched == [])
        #expect(try setup.device.database.int64("SELECT count(*) FROM customers WHERE id = 'CBG100003'") == 0)
        #expect(try setup.storage.auditLog(limit: 1).first?.error?.contains("customers id 'CBG100003', column credit_limit_minor = -1") == true)
        #expect(try setup.sync(.full).mismatched == [])
    }

    @Test("a device that cannot apply a row says which (table, key, constraint) and tells the hub, which audits the device's reason")
    func deviceNamesTheRowItRefuses() throws {
        let setup = try Setup()
        _ = try setup.sync(.initialise)
        // A handheld whose schema is stricter than the hub knows (another satchel version).
        try setup.device.database.execute("""
            CREATE TRIGGER no_zabka BEFORE INSERT ON customers WHEN NEW.name LIKE 'Żabka%' BEGIN SELECT RAISE(ABORT, 'nazwa zastrzeżona'); END
            """)
        try setup.hub(Self.zabka.replacingOccurrences(of: "'zła'", with: "'strict'"))
        do {
            _ = try setup.sync(.full)
            Issue.record("the device applied a row its schema refuses")
        } catch let refusal as DeviceDownload.RowRefused {
            #expect(refusal.table == "customers" && refusal.key == "id 'CPL900001'")
            #expect(refusal.reason == "nazwa zastrzeżona")
        }
        let audit = try #require(try setup.storage.auditLog(limit: 1).first)
        #expect(audit.result == "failed")
        #expect(audit.error == "the device stopped the session: the hub sent a row this handheld's schema refuses: customers id 'CPL900001': nazwa zastrzeżona")
        #expect(try setup.device.database.int64("SELECT count(*) FROM customers WHERE id = 'CPL900001'") == 0)

        // A device that lost a parent row: the foreign key is named, not only "constraint failed".
        try setup.device.database.execute("DROP TRIGGER no_zabka")
        try setup.hub("DELETE FROM customers WHERE id = 'CPL900001'")
        try setup.device.database.execute("PRAGMA foreign_keys = OFF")
        try setup.device.database.execute("DELETE FROM territories WHERE id = 'BG-SOF'")
        try setup.device.database.execute("PRAGMA foreign_keys = ON")
        try setup.hub("UPDATE customers SET balance_minor = 777 WHERE id = 'CBG100004'")
        do {
            _ = try setup.sync(.full)
            Issue.record("applied")
        } catch let refusal as DeviceDownload.RowRefused {
            #expect(refusal.description == "the hub sent a row this handheld's schema refuses: customers id 'CBG100004': "
                        + "FOREIGN KEY constraint failed: territory_id points at a territories row this handheld does not hold")
        }
        let lastAudit = try setup.storage.auditLog(limit: 1).first
        #expect(lastAudit?.error?.contains("customers id 'CBG100004': FOREIGN KEY") == true, "\(String(describing: lastAudit))")
    }
}
