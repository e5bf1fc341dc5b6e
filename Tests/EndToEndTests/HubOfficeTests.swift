import Foundation
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// The office side of `satchel-hub` as a process: what it refuses, with which exit code and
/// message, and the permissions of the files it writes (issue 10, reproductions 6 and 12).
@Suite("satchel-hub's office commands as processes", .serialized)
struct HubOfficeTests {
    let hubBinary = BuiltExecutable.path("satchel-hub")
    let sim = BuiltExecutable.path("satchel-sim")

    func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
    }

    func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o777 : nil
    }

    @Test("hub.db, its -wal and -shm are created owner-only (they hold the hub's private key and password hashes), even under umask 022")
    func hubFilesAreOwnerOnly() throws {
        let directory = TemporaryDirectory("hub-modes")
        let database = directory.path + "/hub.db"
        let previous = umask(0o022)
        defer { umask(previous) }
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Ёлена Щукина"], stdin: "hasło-sync\n").succeeded)
        #expect(mode(database) == 0o600)
        // While a connection is open (a serving hub's sessions, here this test's), the -wal and
        // -shm exist: SQLite gives them the main file's mode.
        let open = try Database(path: database)
        try #require(try hub(["rep", "password", "--db", database, "--rep", "R01"], stdin: "nowe-hasło\n").succeeded)
        #expect(mode(database + "-wal") == 0o600)
        #expect(mode(database + "-shm") == 0o600)
        #expect(try open.int64("SELECT count(*) FROM reps") == 1)
    }

    @Test("a hub file others can read is tightened to 600, with a warning that says what it holds and what to do")
    func looseHubFileIsTightened() throws {
        let directory = TemporaryDirectory("hub-loose")
        let database = directory.path + "/hub.db"
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Paweł Kowalczyk"], stdin: "hasło-sync\n").succeeded)
        chmod(database, 0o644)
        let key = try hub(["key", "--db", database])
        #expect(key.succeeded)
        #expect(key.stderr.contains("was open to other users (mode 644)"))
        #expect(key.stderr.contains("satchel-hub rep password"))
        #expect(mode(database) == 0o600)
        let again = try hub(["key", "--db", database])
        #expect(again.stderr.isEmpty)
        #expect(again.stdout == key.stdout)
    }

    @Test("an extract holding a row the handhelds refuse is refused with exit 65, the row named, the hub unchanged; rep scope --territory NOPE exits 66 by name")
    func officeRefusals() throws {
        let directory = TemporaryDirectory("hub-office")
        let database = directory.path + "/hub.db", erp = directory.path + "/erp", extract = directory.path + "/extract.db"
        try #require(try ChildProcess.run(sim, ["seed", "--home", erp, "--customers", "30", "--products", "40", "--seed", "3"], timeoutSeconds: 60).succeeded)
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Светлана Кузнецова"], stdin: "hasło-sync\n").succeeded)
        try #require(try hub(["master", "import", "--db", database, "--from", erp + "/satchel.db"]).succeeded)
        // The ERP's export: the same tables without the device's constraints, and one bad customer.
        let copy = try Database(path: extract)
        try copy.execute("ATTACH DATABASE ? AS erp", [.text(erp + "/satchel.db")])
        for table in ["territories", "reps", "products", "product_units", "customers", "customer_price_levels", "prices", "stock", "display_types",
                      "display_type_materials", "routes", "route_stops", "history_orders", "history_lines", "equipment"] {
            try copy.execute("CREATE TABLE \(table) AS SELECT * FROM erp.\(table)")
        }
        try copy.execute("UPDATE customers SET name = 'Żabka Łódź', currency = 'ZŁOTY' WHERE id = (SELECT min(id) FROM customers)")
        let bad = try copy.text("SELECT id FROM customers WHERE name = 'Żabka Łódź'")
        let before = fileBytes(database)

        let refused = try hub(["master", "import", "--db", database, "--from", extract])
        #expect(refused.status == 65)
        #expect(refused.stdout.isEmpty)
        #expect(refused.stderr.contains("extract.db refused, nothing imported: 1 row the handhelds' schema would refuse"))
        #expect(refused.stderr.contains("customers id '\(bad)', column currency = 'ZŁOTY': CHECK constraint failed: length(currency) = 3"))
        #expect(fileBytes(database) == before)

        let scope = try hub(["rep", "scope", "--db", database, "--rep", "R01", "--territory", "NOPE"])
        #expect(scope.status == 66)
        #expect(scope.stderr.contains("territory NOPE in the master data (known: "))
        let channel = try hub(["rep", "scope", "--db", database, "--rep", "R01", "--channel", "hurtowy"])
        #expect(channel.status == 66)
        #expect(channel.stderr.contains("channel hurtowy: no product of the master data is in it (channels: "))
        #expect(fileBytes(database) == before)

        // What the office does next: fixes the currency and imports again.
        try copy.execute("UPDATE customers SET currency = 'PLN' WHERE id = ?", [.text(bad)])
        let fixed = try hub(["master", "import", "--db", database, "--from", extract])
        #expect(fixed.succeeded, "\(fixed.stderr)")
        #expect(try Database(path: database).text("SELECT name FROM customers WHERE id = ?", [.text(bad)]) == "Żabka Łódź")
    }

    @Test("a handheld that cannot apply a row the hub sends exits 65 naming table, key and constraint; the hub's audit has the device's words, not \"peer closed\"")
    func handheldNamesTheRowItRefuses() throws {
        let satchel = BuiltExecutable.path("satchel")
        let directory = TemporaryDirectory("hub-device-refuses")
        let database = directory.path + "/hub.db", erp = directory.path + "/erp", home = directory.path + "/device"
        let password = "hasło-sync"
        try #require(try ChildProcess.run(sim, ["seed", "--home", erp, "--customers", "20", "--products", "20", "--seed", "4"], timeoutSeconds: 60).succeeded)
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Олег Смирнов"], stdin: password + "\n").succeeded)
        try #require(try hub(["master", "import", "--db", database, "--from", erp + "/satchel.db", "--assign-to", "R01"]).succeeded)
        let environment = ["SATCHEL_HOME": home]
        try #require(try ChildProcess.run(satchel, ["init", "--device", "D7", "--rep", "R01"], environment: environment, timeoutSeconds: 30).succeeded)
        let keys = try ChildProcess.run(satchel, ["keys", "--json"], environment: environment, timeoutSeconds: 30)
        let key = try #require(try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])["public_key"] as? String ?? ""
        try #require(try hub(["device", "add", "--db", database, "--device", "D7", "--rep", "R01", "--key", key]).succeeded)
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let running = try SyncEndToEndTests.RunningHub(binary: hubBinary, database: database)
        defer { running.stop() }
        try #require(try ChildProcess.run(satchel, ["provision", "--hub", running.address, "--hub-key", hubKey], environment: environment, timeoutSeconds: 30).succeeded)
        let loaded = try ChildProcess.run(satchel, ["sync", "--mode", "init"], environment: environment, stdin: password + "\n", timeoutSeconds: 60)
        try #require(loaded.succeeded, "\(loaded.stderr)")
        // This handheld's schema is stricter than the hub's (another satchel version), and the
        // office renames a customer to what it refuses.
        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers ORDER BY id LIMIT 1")
        try Database(path: home + "/satchel.db").execute("""
            CREATE TRIGGER no_zabka BEFORE UPDATE ON customers WHEN NEW.name LIKE 'Żabka%' BEGIN SELECT RAISE(ABORT, 'nazwa zastrzeżona'); END
            """)
        try Database(path: database).execute("UPDATE customers SET name = 'Żabka Łódź' WHERE id = ?", [.text(customer)])
        let refused = try ChildProcess.run(satchel, ["sync", "--mode", "full"], environment: environment, stdin: password + "\n", timeoutSeconds: 60)
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("the hub sent a row this handheld's schema refuses: customers id '\(customer)': nazwa zastrzeżona"), "\(refused.stderr)")
        // The hub writes its audit entry as the session ends, a moment after the device gave up.
        var audit = try hub(["audit", "--db", database, "--limit", "1"]).stdout
        // At most 60 s (was 50 polls of 0.1 s, short for a loaded CI machine).
        let auditDeadline = ChildProcess.monotonicSeconds() + 60
        while ChildProcess.monotonicSeconds() < auditDeadline, !audit.contains("failed") {
            usleep(100_000)
            audit = try hub(["audit", "--db", database, "--limit", "1"]).stdout
        }
        #expect(audit.contains("the device stopped the session: the hub sent a row this handheld's schema refuses: customers id '\(customer)': nazwa zastrzeżona"), "\(audit)")
        #expect(!audit.contains("peer closed"))
    }
}
