import Foundation
import Hub
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// A handheld breaks mid-week. Its replacement uploads what the old one never sent, from the
/// old one's card (upload mode), then takes over its working set and documents (duplicate
/// mode). Real satchel and satchel-hub processes, real card files, loopback TCP.
@Suite("Replacing a handheld: upload from the old card, duplicate the old state", .serialized)
struct ReplacementTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")
    let sim = BuiltExecutable.path("satchel-sim")
    let password = "пароль-синхр"
    let passphrase = "karta zapasowa Łódź"

    func run(_ path: String, _ arguments: [String], home: String? = nil, card: String? = nil, stdin: String? = nil) throws -> ChildProcess.Result {
        var environment: [String: String] = [:]
        if let home { environment["SATCHEL_HOME"] = home }
        if let card { environment["SATCHEL_CARD"] = card }
        let result = try ChildProcess.run(path, arguments, environment: environment, stdin: stdin, timeoutSeconds: 60)
        return result
    }

    func json(_ result: ChildProcess.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
    }

    @Test("upload sends the old card's unsent changes once, under the old identity; duplicate copies the old documents to the new device")
    func replaceDevice() throws {
        let directory = TemporaryDirectory("replace")
        let database = directory.path + "/hub.db", erp = directory.path + "/erp"
        let oldHome = directory.path + "/old", oldCard = directory.path + "/old-card", newHome = directory.path + "/new"
        try FileManager.default.createDirectory(atPath: oldCard, withIntermediateDirectories: true)
        // The office: an ERP extract for rep R01 and the rep's sync password.
        try #require(try run(sim, ["seed", "--home", erp, "--customers", "40", "--products", "60", "--seed", "5"]).succeeded)
        try #require(try run(hubBinary, ["rep", "add", "--db", database, "--rep", "R01", "--name", "Светлана Кузнецова"], stdin: password + "\n").succeeded)
        try #require(try run(hubBinary, ["master", "import", "--db", database, "--from", erp + "/satchel.db", "--assign-to", "R01"]).succeeded)
        let hubKey = try run(hubBinary, ["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let running = try SyncEndToEndTests.RunningHub(binary: hubBinary, database: database)
        defer { running.stop() }

        // The old handheld: provisioned, backed up to its card, loaded by init.
        func provision(_ home: String, device: String, card: String?, replaces: String? = nil) throws {
            try #require(try run(satchel, ["init", "--device", device, "--rep", "R01"], home: home, card: card).succeeded)
            let key = try json(try run(satchel, ["keys", "--json"], home: home))["public_key"] as? String ?? ""
            try #require(try run(hubBinary, ["device", "add", "--db", database, "--device", device, "--rep", "R01", "--key", key]
                                 + (replaces.map { ["--replaces", $0] } ?? [])).succeeded)
            try #require(try run(satchel, ["provision", "--hub", running.address, "--hub-key", hubKey], home: home).succeeded)
        }
        try provision(oldHome, device: "OLD1", card: oldCard)
        try #require(try run(satchel, ["card", "init"], home: oldHome, card: oldCard, stdin: passphrase + "\n").succeeded)
        let loaded = try run(satchel, ["sync", "--mode", "init", "--json"], home: oldHome, card: oldCard, stdin: password + "\n")
        try #require(loaded.succeeded, "\(loaded.stderr)")
        let customer = try Database(path: oldHome + "/satchel.db").text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let part = try Database(path: oldHome + "/satchel.db").text("SELECT part_number FROM products ORDER BY part_number LIMIT 1")
        let order = try json(try run(satchel, ["order", "new", "--customer", customer, "--line", "\(part):3", "--confirm", "--json"],
                                     home: oldHome, card: oldCard))["id"] as? String ?? ""
        let second = try json(try run(satchel, ["order", "new", "--customer", customer, "--line", "\(part):1", "--confirm", "--json"],
                                      home: oldHome, card: oldCard))["id"] as? String ?? ""
        for note in ["Rozmowa z właścicielem", "Доставка в четверг", "Благодаря"] {
            try #require(try run(satchel, ["visit", "--customer", customer, "--outcome", "order", "--note", note], home: oldHome, card: oldCard).succeeded)
        }
        #expect(try json(try run(satchel, ["sync", "--mode", "full", "--json"], home: oldHome, card: oldCard, stdin: password + "\n"))["uploaded"] as? Int == 5)
        // Two more visits that never reach the hub: the handheld falls off a van.
        for _ in 0..<2 {
            try #require(try run(satchel, ["visit", "--customer", customer, "--outcome", "no_order"], home: oldHome, card: oldCard).succeeded)
        }
        try #require(try run(hubBinary, ["document", "set", "--db", database, "--device", "OLD1", "--id", order, "--state", "accepted"]).succeeded)

        // The replacement, registered as replacing OLD1 (which is revoked from now on).
        try provision(newHome, device: "NEW1", card: nil, replaces: "OLD1")
        let upload = try run(satchel, ["sync", "--mode", "upload", "--from-card", oldCard, "--json"], home: newHome,
                             stdin: password + "\n" + passphrase + "\n")
        try #require(upload.succeeded, "\(upload.stderr)")
        let uploaded = try json(upload)
        #expect(uploaded["uploaded"] as? Int == 2)
        #expect(uploaded["recovered_from"] as? String == "OLD1")
        // The old device rebuilt to read its changes (its key and database) is gone again.
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: newHome + "/recovered")) ?? []).isEmpty)
        let hub = try SQLiteHubStorage(path: database)
        #expect(try hub.changeCount(device: "OLD1") == 7)
        #expect(try hub.changeCount(device: "NEW1") == 0)
        // Again: the same batch, so the hub answers with the receipt it stored and stores nothing.
        let again = try json(try run(satchel, ["sync", "--mode", "upload", "--from-card", oldCard, "--json"], home: newHome,
                                     stdin: password + "\n" + passphrase + "\n"))
        #expect(again["batch_id"] as? String == uploaded["batch_id"] as? String)
        #expect(again["uploaded"] as? Int == 2)
        #expect(try hub.changeCount(device: "OLD1") == 7)

        let duplicate = try run(satchel, ["sync", "--mode", "duplicate", "--json"], home: newHome, stdin: password + "\n")
        try #require(duplicate.succeeded, "\(duplicate.stderr)")
        let copied = try json(duplicate)
        #expect(copied["documents"] as? Int == 7)
        #expect(copied["mismatched"] as? [String] == [])
        let newDatabase = try Database(path: newHome + "/satchel.db")
        #expect(try newDatabase.text("SELECT state FROM orders WHERE id = ?", [.text(order)]) == "accepted")
        #expect(try newDatabase.int64("SELECT count(*) FROM visits") == 5)
        #expect(try newDatabase.int64("SELECT count(*) FROM changes") == 0)   // history, not this device's outbox
        #expect(try newDatabase.int64("SELECT count(*) FROM customers") == 40)
        #expect(try newDatabase.text("SELECT note FROM visits WHERE note LIKE 'Дост%'") == "Доставка в четверг")
        // The new device's own work goes up under its own identity.
        try #require(try run(satchel, ["visit", "--customer", customer, "--outcome", "order"], home: newHome).succeeded)
        #expect(try json(try run(satchel, ["sync", "--mode", "fast", "--json"], home: newHome, stdin: password + "\n"))["uploaded"] as? Int == 1)
        #expect(try hub.changeCount(device: "NEW1") == 1)

        // Reproduction 10: the technician repeats the duplicate after the rep has worked on the
        // new handheld (an invoice asked for a copied order, a visit, neither synced yet), and
        // the office has meanwhile rejected the other copied order.
        let invoice = try run(satchel, ["order", "request-invoice", order], home: newHome)
        try #require(invoice.succeeded, "\(invoice.stderr)")
        try #require(try run(satchel, ["visit", "--customer", customer, "--outcome", "no_order", "--note", "Własna wizyta — своё"], home: newHome).succeeded)
        try #require(try run(hubBinary, ["document", "set", "--db", database, "--device", "OLD1", "--id", second, "--state", "rejected"]).succeeded)
        let repeated = try run(satchel, ["sync", "--mode", "duplicate", "--json"], home: newHome, stdin: password + "\n")
        try #require(repeated.succeeded, "\(repeated.stderr)")
        #expect(try json(repeated)["uploaded"] as? Int == 2)                  // the new device's own changes went up first
        #expect(try newDatabase.text("SELECT state FROM orders WHERE id = ?", [.text(order)]) == "invoice_requested")
        #expect(try newDatabase.text("SELECT state FROM orders WHERE id = ?", [.text(second)]) == "rejected")   // refreshed: untouched here
        #expect(try newDatabase.int64("SELECT count(*) FROM visits") == 7)
        #expect(try newDatabase.int64("SELECT count(*) FROM visits WHERE note = 'Własna wizyta — своё'") == 1)
        #expect(try newDatabase.int64("SELECT count(*) FROM changes") == 3)   // its own journal, whole
        #expect(try hub.changeCount(device: "NEW1") == 3)
        // The next full sync agrees: the rep's invoice request stands on both ends.
        let full = try run(satchel, ["sync", "--mode", "full", "--json"], home: newHome, stdin: password + "\n")
        try #require(full.succeeded, "\(full.stderr)")
        #expect(try newDatabase.text("SELECT state FROM orders WHERE id = ?", [.text(order)]) == "invoice_requested")
        // The old handheld, found again, is refused.
        let revoked = try run(satchel, ["sync", "--mode", "fast"], home: oldHome, card: oldCard, stdin: password + "\n")
        #expect(revoked.status == 69)
        #expect(revoked.stderr.contains("revoked"))
    }

    @Test("upload and duplicate from a device registered as replacing nothing are refused with the fix named")
    func notAReplacement() throws {
        let directory = TemporaryDirectory("replace-refused")
        let database = directory.path + "/hub.db", home = directory.path + "/device"
        try #require(try run(hubBinary, ["rep", "add", "--db", database, "--rep", "R01", "--name", "Anna"], stdin: password + "\n").succeeded)
        let hubKey = try run(hubBinary, ["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let running = try SyncEndToEndTests.RunningHub(binary: hubBinary, database: database)
        defer { running.stop() }
        try #require(try run(satchel, ["init", "--device", "D1", "--rep", "R01"], home: home).succeeded)
        let key = try json(try run(satchel, ["keys", "--json"], home: home))["public_key"] as? String ?? ""
        try #require(try run(hubBinary, ["device", "add", "--db", database, "--device", "D1", "--rep", "R01", "--key", key]).succeeded)
        try #require(try run(satchel, ["provision", "--hub", running.address, "--hub-key", hubKey], home: home).succeeded)
        let duplicate = try run(satchel, ["sync", "--mode", "duplicate"], home: home, stdin: password + "\n")
        #expect(duplicate.status == 69)
        #expect(duplicate.stderr.contains("--replaces"))
        // The hub writes the audit entry as the session ends, a moment after the device gave up.
        var audit = try SQLiteHubStorage(path: database).auditLog(limit: 1)
        // At most 60 s (was 50 polls of 0.1 s, short for a loaded CI machine).
        let auditDeadline = ChildProcess.monotonicSeconds() + 60
        while ChildProcess.monotonicSeconds() < auditDeadline, audit.isEmpty {
            usleep(100_000)
            audit = try SQLiteHubStorage(path: database).auditLog(limit: 1)
        }
        #expect(audit.first?.result == "refused")
        #expect(audit.first?.mode == "duplicate")
    }
}
