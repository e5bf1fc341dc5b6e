import Foundation
import Hub
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// Issue 10, reproductions 1 to 4: a handheld restored from its card (behind or not) comes back
/// as the same device, never issues an id twice, and the hub ends up with every order, with the
/// content the rep was shown. Real satchel and satchel-hub processes, real card files, loopback TCP.
@Suite("Restore: ids never repeat, identity survives, damaged identity files are refused", .serialized)
struct RestoreIdentityTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")
    let sim = BuiltExecutable.path("satchel-sim")
    let password = "hasło-синхр"
    let passphrase = "zapasowa Пловдив 7"

    /// One hub with an ERP extract for rep R01, and one handheld X with a card, provisioned and loaded.
    final class Bench {
        let directory = TemporaryDirectory("restore-identity")
        var database: String { directory.path + "/hub.db" }
        var home: String { directory.path + "/device" }
        var card: String { directory.path + "/card" }
        var cardAway: String { directory.path + "/card-away" }
        let hub: SyncEndToEndTests.RunningHub
        let hubKey: String
        /// Parts priced so that ten of the first make 27.70 PLN and ten of the second 2548.50 PLN.
        let cheap = "PN-10000", dear = "PN-10001"
        var customer = ""
        var environment: [String: String] { ["SATCHEL_HOME": home, "SATCHEL_CARD": card] }

        init(_ test: RestoreIdentityTests) throws {
            let erp = directory.path + "/erp"
            try #require(try ChildProcess.run(test.sim, ["seed", "--home", erp, "--customers", "12", "--products", "20", "--seed", "10"], timeoutSeconds: 60).succeeded)
            let extract = try Database(path: erp + "/satchel.db")
            try extract.execute("UPDATE prices SET price_minor = 277 WHERE part_number = ?", [.text(cheap)])
            try extract.execute("UPDATE prices SET price_minor = 25485 WHERE part_number = ?", [.text(dear)])
            customer = try extract.text("SELECT id FROM customers WHERE currency = 'PLN' AND overdue_minor = 0 ORDER BY id LIMIT 1")
            try extract.execute("UPDATE customers SET name = 'Hurtownia „Żółw” Łódź', credit_limit_minor = 100000000 WHERE id = ?", [.text(customer)])
            try extract.execute("UPDATE customers SET name = 'Магазин „Берёзка”' WHERE id <> ? AND currency = 'RUB'", [.text(customer)])
            try extract.execute("UPDATE customers SET name = 'Бакалия „Родопи”' WHERE id <> ? AND currency = 'BGN'", [.text(customer)])
            try #require(try test.hubCommand(["rep", "add", "--db", directory.path + "/hub.db", "--rep", "R01", "--name", "Zofia Wójcik"], stdin: test.password + "\n").succeeded)
            try #require(try test.hubCommand(["master", "import", "--db", directory.path + "/hub.db", "--from", erp + "/satchel.db", "--assign-to", "R01"]).succeeded)
            hubKey = try test.hubCommand(["key", "--db", directory.path + "/hub.db"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            hub = try SyncEndToEndTests.RunningHub(binary: test.hubBinary, database: directory.path + "/hub.db")
            try FileManager.default.createDirectory(atPath: card, withIntermediateDirectories: true)
        }

        deinit { hub.stop() }

        /// The card's mount point with nothing mounted on it.
        func unmountCard() throws {
            try FileManager.default.moveItem(atPath: card, toPath: cardAway)
            try FileManager.default.createDirectory(atPath: card, withIntermediateDirectories: true)
        }

        func mountCard() throws {
            try FileManager.default.removeItem(atPath: card)
            try FileManager.default.moveItem(atPath: cardAway, toPath: card)
        }

        func deleteDatabase() {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: home + "/satchel.db" + suffix) }
        }

        /// The orders the hub holds for the device, as "id total" (minor units), one per order change, sorted.
        func hubOrders() throws -> [String] {
            try Database(path: database).query("SELECT entity_id, payload FROM device_changes WHERE entity = 'order'") { row in
                let object = try? JSONSerialization.jsonObject(with: Data(row.text(1).utf8)) as? [String: Any]
                return "\(row.text(0)) \((object?["total_minor"] as? NSNumber)?.int64Value ?? -1)"
            }.sorted()
        }
    }

    func hubCommand(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
    }

    func device(_ bench: Bench, _ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(satchel, arguments, environment: bench.environment, stdin: stdin, timeoutSeconds: 90)
    }

    func json(_ result: ChildProcess.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "stdout: \(result.stdout) stderr: \(result.stderr)")
    }

    /// init, keys, device add, provision, sync --mode init, card init: the handheld as handed out.
    func handOut(_ bench: Bench, device id: String = "X") throws -> String {
        try #require(try device(bench, ["init", "--device", id, "--rep", "R01"]).succeeded)
        let key = try json(try device(bench, ["keys", "--json"]))["public_key"] as? String ?? ""
        try #require(try hubCommand(["device", "add", "--db", bench.database, "--device", id, "--rep", "R01", "--key", key]).succeeded)
        try #require(try device(bench, ["provision", "--hub", bench.hub.address, "--hub-key", bench.hubKey]).succeeded)
        let loaded = try device(bench, ["sync", "--mode", "init"], stdin: password + "\n")
        try #require(loaded.succeeded, "\(loaded.stderr)")
        let carded = try device(bench, ["card", "init"], stdin: passphrase + "\n")
        try #require(carded.succeeded, "\(carded.stderr)")
        return key
    }

    func order(_ bench: Bench, _ part: String) throws -> (id: String, total: Int64, stderr: String) {
        let result = try device(bench, ["order", "new", "--customer", bench.customer, "--line", "\(part):10", "--confirm", "--json"])
        try #require(result.succeeded, "\(result.stderr)")
        let object = try json(result)
        let total = ((object["order"] as? [String: Any])?["total_minor"] as? NSNumber)?.int64Value ?? -1
        return (object["id"] as? String ?? "", total, result.stderr)
    }

    @Test("repro 1: after an automatic restore from a card that was behind, the new order gets a new id and reaches the hub beside the old one")
    func restoreFromCardThatWasBehind() throws {
        let bench = try Bench(self)
        _ = try handOut(bench)
        try bench.unmountCard()
        let first = try order(bench, bench.cheap)
        #expect(first.id == "X-000001" && first.total == 2770)
        let sent = try device(bench, ["sync", "--mode", "fast"], stdin: password + "\n")
        try #require(sent.succeeded, "\(sent.stderr)")
        #expect(sent.stdout.contains("1 change sent"))
        try bench.mountCard()
        bench.deleteDatabase()

        let second = try order(bench, bench.dear)
        #expect(second.stderr.contains("REBUILT FROM THE CARD"))
        #expect(second.total == 254850)
        #expect(second.id != first.id)
        #expect(second.id == "X~2-000001")
        let again = try device(bench, ["sync", "--mode", "fast"], stdin: password + "\n")
        try #require(again.succeeded, "\(again.stderr)")
        #expect(again.stdout.contains("1 change sent"))
        #expect(try bench.hubOrders() == ["\(first.id) 2770", "\(second.id) 254850"].sorted())
        // The device's view agrees: nothing left to send, both orders' ids distinct on the hub.
        #expect(try json(try device(bench, ["status", "--json"]))["unsynced_changes"] as? Int == 0)
    }

    @Test("restoring twice in a row from the same card moves to a new epoch each time; then a full sync keeps everything")
    func restoreTwiceThenFullSync() throws {
        let bench = try Bench(self)
        _ = try handOut(bench)
        try bench.unmountCard()
        let lost = try order(bench, bench.cheap)
        #expect(try device(bench, ["sync", "--mode", "fast"], stdin: password + "\n").succeeded)
        try bench.mountCard()
        bench.deleteDatabase()
        let restored = try json(try device(bench, ["restore", "--json"]))
        #expect(restored["epoch"] as? Int == 2)
        let second = try order(bench, bench.dear)
        // The card now has the second order; the technician restores again, forcing it.
        let forced = try device(bench, ["restore", "--force", "--json"])
        try #require(forced.succeeded, "\(forced.stderr)")
        #expect(try json(forced)["epoch"] as? Int == 3)
        let third = try order(bench, bench.cheap)
        #expect(Set([lost.id, second.id, third.id]).count == 3)
        #expect(third.id == "X~3-000003")   // the second order took X~2-000001 and its change X~2-000002
        let full = try device(bench, ["sync", "--mode", "full", "--json"], stdin: password + "\n")
        try #require(full.succeeded, "\(full.stderr)")
        #expect(try bench.hubOrders() == ["\(lost.id) 2770", "\(second.id) 254850", "\(third.id) 2770"].sorted())
        // Only the newest database moved aside is kept.
        let aside = try FileManager.default.contentsOfDirectory(atPath: bench.home).filter { $0.hasPrefix("satchel.db.replaced-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") }
        #expect(aside.count == 1)
        let orders = try json(try device(bench, ["status", "--json"]))
        #expect(orders["unsynced_changes"] as? Int == 0)
    }

    @Test("ids the hub holds with other content: the device exits 65 saying what happened and what to do, marks nothing sent; the audit has the cause")
    func conflictOnBothEnds() throws {
        let bench = try Bench(self)
        _ = try handOut(bench)
        let first = try order(bench, bench.cheap)
        try #require(try device(bench, ["sync", "--mode", "fast"], stdin: password + "\n").succeeded)
        // What a second handheld with a copy of this one's data directory would do: the same ids,
        // other content. Here: the hub's copy differs, and the device sends its change again.
        try Database(path: bench.database).execute(script: dropHubHistoryTriggers)  // staged: the hub's code never edits what it holds
        try Database(path: bench.database).execute("UPDATE device_changes SET payload = replace(payload, '2770', '2771') WHERE entity_id = ?", [.text(first.id)])
        try Database(path: bench.home + "/satchel.db").execute("UPDATE sync_state SET value = '0' WHERE key = 'uploaded_through_seq'")
        _ = try order(bench, bench.dear)   // a new batch (X-1-2) that carries the first change again
        let refused = try device(bench, ["sync", "--mode", "fast"], stdin: password + "\n")
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("held with other content") && refused.stderr.contains("Nothing was marked as sent"))
        #expect(refused.stderr.contains("call the office"))
        #expect(try Database(path: bench.home + "/satchel.db").text("SELECT value FROM sync_state WHERE key = 'uploaded_through_seq'") == "0")
        var audit = try SQLiteHubStorage(path: bench.database).auditLog(limit: 1)
        // At most 60 s (was 50 polls of 0.1 s, short for a loaded CI machine).
        let auditDeadline = ChildProcess.monotonicSeconds() + 60
        while ChildProcess.monotonicSeconds() < auditDeadline, audit.first?.result != "refused" {
            usleep(100_000)
            audit = try SQLiteHubStorage(path: bench.database).auditLog(limit: 1)
        }
        #expect(audit.first?.result == "refused")
        #expect(audit.first?.error?.contains("batch X-1-2") == true && audit.first?.error?.contains("is held with other content") == true)
    }

    @Test("repro 2: a wiped handheld restored from its card keeps its sync key and hub pin; the hub accepts it; device add twice names the device")
    func wipedHandheldKeepsItsIdentity() throws {
        let bench = try Bench(self)
        let key = try handOut(bench)
        let pin = fileBytes(bench.home + "/hub.pin")
        try FileManager.default.removeItem(atPath: bench.home)
        let restored = try device(bench, ["restore", "--passphrase-stdin"], stdin: passphrase + "\n")
        try #require(restored.succeeded, "\(restored.stderr)")
        #expect(restored.stdout.contains("device.key from the card"))
        #expect(try json(try device(bench, ["keys", "--json"]))["public_key"] as? String == key)
        #expect(fileBytes(bench.home + "/hub.pin") == pin)
        let visit = try device(bench, ["visit", "--customer", bench.customer, "--outcome", "no_order", "--note", "Sklep zamknięty — закрыто"])
        try #require(visit.succeeded, "\(visit.stderr)")
        let synced = try device(bench, ["sync", "--mode", "fast"], stdin: password + "\n")
        #expect(synced.succeeded, "\(synced.stderr)")
        #expect(synced.stdout.contains("1 change sent"))

        let twice = try hubCommand(["device", "add", "--db", bench.database, "--device", "X", "--rep", "R01", "--key", String(repeating: "ab", count: 32)])
        #expect(twice.status == 65)
        #expect(twice.stderr.contains("device X is registered already"))
        #expect(!twice.stderr.contains("UNIQUE") && !twice.stderr.contains("constraint"))
        let sameKey = try hubCommand(["device", "add", "--db", bench.database, "--device", "Y", "--rep", "R01", "--key", key])
        #expect(sameKey.status == 65 && sameKey.stderr.contains("for device X"))
    }

    @Test("repro 3: a truncated device.key or hub.pin is refused by keys and sync with what to do, and stays byte for byte as it was")
    func damagedIdentityFilesAreRefused() throws {
        let bench = try Bench(self)
        _ = try handOut(bench)
        let keyFile = bench.home + "/device.key"
        let original = fileBytes(keyFile)
        writeFile(keyFile, Array(original.prefix(11)))
        let keys = try device(bench, ["keys"])
        #expect(keys.status == 69)
        #expect(keys.stderr.contains("device.key is damaged (11 bytes"))
        #expect(keys.stderr.contains("satchel restore --force"))
        let sync = try device(bench, ["sync", "--mode", "fast"], stdin: password + "\n")
        #expect(sync.status == 69 && sync.stderr.contains("device.key is damaged"))
        #expect(fileBytes(keyFile) == Array(original.prefix(11)))
        // What the technician does next: restore brings the key back from the card, the damaged one kept aside.
        let repaired = try device(bench, ["restore", "--force"])
        try #require(repaired.succeeded, "\(repaired.stderr)")
        #expect(fileBytes(keyFile) == original)
        #expect(try FileManager.default.contentsOfDirectory(atPath: bench.home).contains { $0.hasPrefix("device.key.damaged-") })
        #expect(try device(bench, ["sync", "--mode", "fast"], stdin: password + "\n").succeeded)

        let pinFile = bench.home + "/hub.pin"
        let pin = fileBytes(pinFile)
        writeFile(pinFile, Array(pin.prefix(9)))
        let pinned = try device(bench, ["sync", "--mode", "fast"], stdin: password + "\n")
        #expect(pinned.status == 69 && pinned.stderr.contains("hub.pin is damaged"))
        #expect(fileBytes(pinFile) == Array(pin.prefix(9)))

        let cardKey = bench.home + "/card.key"
        let backupKey = fileBytes(cardKey)
        writeFile(cardKey, Array(backupKey.prefix(5)))
        let status = try device(bench, ["card", "status"])
        #expect(status.stdout.contains("card.key is damaged"))
        #expect(fileBytes(cardKey) == Array(backupKey.prefix(5)))
    }

    @Test("a device without a key gets none from keys or sync: only init and provision make one")
    func readOnlyCommandsMakeNoKey() throws {
        let bench = try Bench(self)
        try #require(try device(bench, ["init", "--device", "X", "--rep", "R01"]).succeeded)
        try FileManager.default.removeItem(atPath: bench.home + "/device.key")
        let keys = try device(bench, ["keys"])
        #expect(keys.status == 66 && keys.stderr.contains("satchel provision"))
        #expect(!FileManager.default.fileExists(atPath: bench.home + "/device.key"))
        let provisioned = try device(bench, ["provision", "--hub", bench.hub.address, "--hub-key", bench.hubKey])
        try #require(provisioned.succeeded, "\(provisioned.stderr)")
        #expect(fileBytes(bench.home + "/device.key").count == 32)
    }

    @Test("repro 4: restore refuses a healthy database and lists what it would drop; --force restores and ids still never repeat")
    func restoreRefusesHealthyDatabase() throws {
        let bench = try Bench(self)
        _ = try handOut(bench)
        let onCard = try order(bench, bench.cheap)
        // Two documents the card never sees (its mount point is empty while they are captured).
        try bench.unmountCard()
        let behind = try order(bench, bench.dear)
        let visit = try json(try device(bench, ["visit", "--customer", bench.customer, "--outcome", "not_met", "--note", "Nikogo nie było — никого", "--json"]))["id"] as? String ?? ""
        try bench.mountCard()
        let database = fileBytes(bench.home + "/satchel.db")
        let refused = try device(bench, ["restore"])
        #expect(refused.status == 73)
        #expect(refused.stderr.contains("order \(behind.id)") && refused.stderr.contains("visit \(visit)"))
        #expect(refused.stderr.contains("--force"))
        #expect(!refused.stderr.contains(onCard.id))
        #expect(fileBytes(bench.home + "/satchel.db") == database)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: bench.home).contains { $0.hasPrefix("satchel.db.replaced-") }))

        let forced = try device(bench, ["restore", "--force", "--json"])
        try #require(forced.succeeded, "\(forced.stderr)")
        let report = try json(forced)
        #expect(((report["dropped"] as? [String: Any])?["documents"] as? [String])?.contains("order \(behind.id)") == true)
        let next = try order(bench, bench.dear)
        #expect(![onCard.id, behind.id, visit].contains(next.id))
        // The dropped database is kept beside, and the technician is told where.
        #expect((report["moved_aside"] as? String)?.contains("satchel.db.replaced-") == true)
        // A second forced restore replaces the aside copy instead of adding one.
        #expect(try device(bench, ["restore", "--force"]).succeeded)
        let aside = try FileManager.default.contentsOfDirectory(atPath: bench.home).filter { $0.hasPrefix("satchel.db.replaced-") && !$0.hasSuffix("-wal") && !$0.hasSuffix("-shm") }
        #expect(aside.count == 1)
        // Once the card holds everything the database has (a restore cut short after its swap,
        // run again), a plain restore goes ahead.
        try #require(try device(bench, ["backup"]).succeeded)
        let plain = try device(bench, ["restore", "--json"])
        #expect(plain.succeeded, "\(plain.stderr)")
        #expect(((try json(plain)["dropped"] as? [String: Any])?["documents"] as? [String]) == [])
    }
}
