import Foundation
import Hub
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// A handheld's life as the technician and the office live it, with the real satchel and
/// satchel-hub processes over loopback TCP: provisioning with a technician credential, the role
/// the hub sets, a lost handheld wiping itself, and a replacement through upload and duplicate.
@Suite("Device lifecycle end to end: provision, role, lost and wiped, replacement", .serialized)
struct DeviceLifecycleEndToEndTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")
    let sim = BuiltExecutable.path("satchel-sim")
    let password = "пароль-синхр"
    let passphrase = "karta zapasowa Łódź"

    /// The office: a hub with an ERP extract for rep R01, the rep's sync password and one technician.
    final class Office {
        let directory: TemporaryDirectory
        let database: String
        let hubKey: String
        let credential: String
        let running: SyncEndToEndTests.RunningHub
        let test: DeviceLifecycleEndToEndTests

        init(_ name: String, _ test: DeviceLifecycleEndToEndTests, customers: Int = 20) throws {
            self.test = test
            directory = TemporaryDirectory(name)
            database = directory.path + "/hub.db"
            let erp = directory.path + "/erp"
            try #require(try test.run(test.sim, ["seed", "--home", erp, "--customers", String(customers), "--products", "30", "--seed", "7"]).succeeded)
            try #require(try test.run(test.hubBinary, ["rep", "add", "--db", database, "--rep", "R01", "--name", "Светлана Кузнецова"], stdin: test.password + "\n").succeeded)
            try #require(try test.run(test.hubBinary, ["master", "import", "--db", database, "--from", erp + "/satchel.db", "--assign-to", "R01"]).succeeded)
            let added = try test.run(test.hubBinary, ["technician", "add", "--db", database, "--id", "T01", "--name", "Paweł Wróblewski"])
            try #require(added.succeeded, "\(added.stderr)")
            credential = try #require(added.stdout.split(separator: "\n").last.flatMap { $0.split(separator: " ").last }.map(String.init))
            hubKey = try test.run(test.hubBinary, ["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            running = try SyncEndToEndTests.RunningHub(binary: test.hubBinary, database: database)
        }

        func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            try test.run(test.hubBinary, [arguments[0], arguments[1], "--db", database] + arguments.dropFirst(2), stdin: stdin)
        }

        func provision(_ home: String, device: String?, card: String? = nil, extra: [String] = [], credential: String? = nil) throws -> ChildProcess.Result {
            try test.run(test.satchel, ["provision", "--hub", running.address, "--hub-key", hubKey, "--technician-credential", "-"]
                         + (device.map { ["--device", $0, "--rep", "R01"] } ?? []) + extra,
                         home: home, card: card, stdin: (credential ?? self.credential) + "\n")
        }

        deinit { running.stop() }
    }

    func run(_ path: String, _ arguments: [String], home: String? = nil, card: String? = nil, stdin: String? = nil) throws -> ChildProcess.Result {
        var environment: [String: String] = [:]
        if let home { environment["SATCHEL_HOME"] = home }
        if let card { environment["SATCHEL_CARD"] = card }
        return try ChildProcess.run(path, arguments, environment: environment, stdin: stdin, timeoutSeconds: 120)
    }

    func json(_ result: ChildProcess.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
    }

    /// Every file under `root` with its bytes: what "nothing was overwritten" is checked against.
    func tree(_ root: String) -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        guard let walker = FileManager.default.enumerator(atPath: root) else { return files }
        while let name = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[name] = fileBytes(root + "/" + name)
            }
        }
        return files
    }

    @Test("provision: a bare handheld registered with the technician's credential gets the hub's role; twice, a wrong or revoked credential, a revoked identity and a tampered device.conf are refused and change nothing")
    func provisioning() throws {
        let office = try Office("provision", self)
        try #require(try office.hub(["rep", "scope", "--rep", "R01", "--role", "merchandiser"]).succeeded)
        let home = office.directory.path + "/device"
        let first = try office.provision(home, device: "PL01", extra: ["--apn", "firma.apn", "--json"])
        try #require(first.succeeded, "\(first.stderr)")
        let report = try json(first)
        #expect(report["registered"] as? Bool == true)
        #expect(report["role"] as? String == "merchandiser")
        #expect(report["initialised"] as? Bool == true)
        #expect(FileManager.default.fileExists(atPath: home + "/device.conf.seal"))
        #expect(String(decoding: fileBytes(home + "/device.conf"), as: UTF8.self).contains("apn = firma.apn"))
        // The role came with the provisioning answer: before any sync, no orders on this handheld.
        let refusedOrder = try run(satchel, ["order", "new", "--customer", "X", "--line", "Y:1"], home: home)
        #expect(refusedOrder.status == 77)
        #expect(refusedOrder.stderr.contains("merchandisers do not take orders"))
        // The hub keeps the credential's hash only.
        #expect(!fileBytes(office.database).contains(subsequence: Array(office.credential.utf8)))

        let before = tree(home)
        let twice = try office.provision(home, device: "PL01")
        #expect(twice.status == 73)
        #expect(twice.stderr.contains("provisioned already") && twice.stderr.contains("--replace"))
        #expect(tree(home) == before)

        let wrongHome = office.directory.path + "/wrong"
        let wrong = try office.provision(wrongHome, device: "PL02", credential: "T01.0123456789abcdef0123456789abcdef")
        #expect(wrong.status == 77)
        #expect(wrong.stderr.contains("credential of T01 does not check"))
        #expect(!FileManager.default.fileExists(atPath: wrongHome))

        // Tampered: the rep edits device.conf by hand. Every command refuses it (exit 78), and a
        // provisioning over it too; the file stays as the rep left it.
        let edited = fileBytes(home + "/device.conf") + Array("card_must_be_mounted = no\n".utf8)
        writeFile(home + "/device.conf", edited)
        let tampered = try run(satchel, ["status"], home: home)
        #expect(tampered.status == 78)
        #expect(tampered.stderr.contains("does not match its seal"))
        #expect(try office.provision(home, device: nil, extra: ["--replace"]).status == 78)
        #expect(fileBytes(home + "/device.conf") == edited)
        // The technician puts the file back: --replace provisions the same identity again.
        writeFile(home + "/device.conf", before["device.conf"] ?? [])
        let again = try office.provision(home, device: nil, extra: ["--replace", "--json"])
        try #require(again.succeeded, "\(again.stderr)")
        #expect(try json(again)["device"] as? String == "PL01")

        // A revoked identity is not provisioned again; a revoked technician provisions nothing.
        try #require(try office.hub(["device", "revoke", "--device", "PL01"]).succeeded)
        let revokedIdentity = try office.provision(home, device: nil, extra: ["--replace"])
        #expect(revokedIdentity.status == 77)
        #expect(revokedIdentity.stderr.contains("revoked at the hub"))
        try #require(try office.hub(["technician", "revoke", "--id", "T01"]).succeeded)
        let revokedTechnician = try office.provision(office.directory.path + "/third", device: "PL03")
        #expect(revokedTechnician.status == 77)
        #expect(revokedTechnician.stderr.contains("technician T01 is revoked"))
        let events = try SQLiteHubStorage(path: office.database).lifecycleEvents(device: nil, limit: 50).map(\.event)
        #expect(events.contains("credential refused") && events.contains("provisioning refused") && events.contains("provisioned again"))
    }

    @Test("satchel sync --json says when the sync reached each phase: an init with a card over the network passes every phase but the modem's, in order, on the clock the caller times the process with")
    func syncPhases() throws {
        let office = try Office("phases", self)
        let home = office.directory.path + "/device", card = office.directory.path + "/card"
        try FileManager.default.createDirectory(atPath: card, withIntermediateDirectories: true)
        try #require(try run(satchel, ["init", "--device", "PH01", "--rep", "R01"], home: home).succeeded)
        try #require(try run(satchel, ["card", "init"], home: home, card: card, stdin: passphrase + "\n").succeeded)
        let provisioned = try office.provision(home, device: nil, card: card)
        try #require(provisioned.succeeded, "\(provisioned.stderr)")

        let before = ChildProcess.monotonicSeconds()
        let synced = try run(satchel, ["sync", "--mode", "init", "--json"], home: home, card: card, stdin: password + "\n")
        let after = ChildProcess.monotonicSeconds()
        try #require(synced.succeeded, "\(synced.stderr)")
        let report = try json(synced)
        #expect((report["downloaded"] as? Int ?? 0) > 0)
        let phases = try #require(report["phases"] as? [[String: Any]], "\(synced.stdout)")
        #expect(phases.map { $0["phase"] as? String ?? "?" } == ["start", "unlocked", "card_before", "tcp_connected", "handshake_done", "upload_sent",
                                                               "applied", "download_done", "verified", "recorded", "hung_up", "snapshot_written", "exit"])
        let times = phases.map { ($0["at"] as? NSNumber)?.doubleValue ?? -1 }
        #expect(times == times.sorted(), "\(times)")
        #expect((times.first ?? 0) >= before && (times.last ?? .infinity) <= after, "\(before) \(times) \(after)")
    }

    @Test("the role is the hub's: editing the handheld's database does not make a merchandiser's handheld take orders; the office's change arrives with the next sync")
    func roleFromHub() throws {
        let office = try Office("role", self)
        try #require(try office.hub(["rep", "scope", "--rep", "R01", "--role", "merchandiser"]).succeeded)
        let home = office.directory.path + "/device"
        try #require(try office.provision(home, device: "BG01").succeeded)
        try #require(try run(satchel, ["sync", "--mode", "init"], home: home, stdin: password + "\n").succeeded)
        let database = try Database(path: home + "/satchel.db")
        let customer = try database.text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let part = try database.text("SELECT part_number FROM products ORDER BY part_number LIMIT 1")
        try database.execute("UPDATE reps SET role = 'supervisor'")
        let order = ["order", "new", "--customer", customer, "--line", "\(part):2", "--confirm"]
        let refused = try run(satchel, order, home: home)
        #expect(refused.status == 77)
        #expect(refused.stderr.contains("merchandisers do not take orders"))
        try #require(try office.hub(["rep", "scope", "--rep", "R01", "--role", "van_seller"]).succeeded)
        try #require(try run(satchel, ["sync", "--mode", "fast"], home: home, stdin: password + "\n").succeeded)
        let taken = try run(satchel, order, home: home)
        #expect(taken.succeeded, "\(taken.stderr)")
    }

    @Test("a lost handheld: refused from its next contact, its keys destroyed; afterwards nothing on it or its card opens, not even with the backup passphrase; the hub refuses it again and audits each time")
    func lostHandheldWipes() throws {
        let office = try Office("lost", self)
        let home = office.directory.path + "/device", card = office.directory.path + "/card"
        try FileManager.default.createDirectory(atPath: card, withIntermediateDirectories: true)
        try #require(try run(satchel, ["init", "--device", "RU01", "--rep", "R01"], home: home).succeeded)
        try #require(try run(satchel, ["card", "init"], home: home, card: card, stdin: passphrase + "\n").succeeded)
        let provisioned = try office.provision(home, device: nil, card: card, extra: ["--json"])
        try #require(provisioned.succeeded, "\(provisioned.stderr)")
        #expect(try json(provisioned)["escrowed_key_check"] as? String != nil)
        try #require(try run(satchel, ["sync", "--mode", "init"], home: home, card: card, stdin: password + "\n").succeeded)
        let database = try Database(path: home + "/satchel.db")
        let customer = try database.text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let name = try database.text("SELECT name FROM customers WHERE id = ?", [.text(customer)])
        for note in ["Зустріч з власником", "Доставка в четверг"] {
            try #require(try run(satchel, ["visit", "--customer", customer, "--outcome", "no_order", "--note", note], home: home, card: card).succeeded)
        }
        let stolenKey = fileBytes(home + "/device.key")
        let pin = fileBytes(home + "/hub.pin")

        let lost = try office.hub(["device", "lost", "RU01"])
        try #require(lost.succeeded, "\(lost.stderr)")
        let contact = try run(satchel, ["sync"], home: home, card: card, stdin: password + "\n")
        #expect(contact.status == 77)
        #expect(contact.stderr.contains("reported this handheld lost") && contact.stderr.contains("keys are destroyed"))
        for file in ["device.key", "card.key", "satchel.db", "hub.pin"] {
            #expect(!FileManager.default.fileExists(atPath: home + "/" + file), "\(file) survived the wipe")
        }
        #expect(!FileManager.default.fileExists(atPath: card + "/satchel/RU01/card.json"))
        // Nothing decrypts: the card's key slot is gone, so the passphrase opens nothing.
        let restore = try run(satchel, ["restore", "--passphrase-stdin"], home: office.directory.path + "/thief", card: card, stdin: passphrase + "\n")
        #expect(!restore.succeeded)
        for (path, bytes) in tree(card) {
            #expect(!bytes.contains(subsequence: Array(name.utf8)), "\(path) holds the customer's name")
            #expect(!bytes.contains(subsequence: Array("Доставка".utf8)), "\(path) holds a note")
        }
        let after = try run(satchel, ["status"], home: home)
        #expect(after.status == 77)
        #expect(after.stderr.contains("was wiped"))
        // A copy of the key made before the wipe is refused too, and audited.
        let clone = office.directory.path + "/clone"
        try FileManager.default.createDirectory(atPath: clone, withIntermediateDirectories: true)
        try #require(try run(satchel, ["init", "--device", "RU01", "--rep", "R01"], home: clone).succeeded)
        writeFile(clone + "/device.key", stolenKey)
        writeFile(clone + "/hub.pin", pin)
        let cloned = try run(satchel, ["sync"], home: clone, stdin: password + "\n")
        #expect(cloned.status == 77)
        let audit = try SQLiteHubStorage(path: office.database).auditLog(limit: 2)
        #expect(audit.count == 2 && audit.allSatisfy { $0.result == "refused" && $0.error?.contains("reported lost") == true })
        let events = try SQLiteHubStorage(path: office.database).lifecycleEvents(device: "RU01", limit: 10).map(\.event)
        #expect(events.filter { $0 == "wipe ordered" }.count == 2 && events.contains("reported lost") && events.contains("key escrowed"))
    }

    @Test("replacement of a handheld with 50 unsent orders: its card uploads them once with the key the hub released, 50 on the hub, 0 duplicates; the new handheld takes over; the old identity is retired")
    func replacementWithFiftyUnsentOrders() throws {
        let office = try Office("replace50", self)
        let oldHome = office.directory.path + "/old", oldCard = office.directory.path + "/old-card", newHome = office.directory.path + "/new"
        try FileManager.default.createDirectory(atPath: oldCard, withIntermediateDirectories: true)
        try #require(try run(satchel, ["init", "--device", "WAW07", "--rep", "R01"], home: oldHome).succeeded)
        try #require(try run(satchel, ["card", "init"], home: oldHome, card: oldCard, stdin: passphrase + "\n").succeeded)
        try #require(try office.provision(oldHome, device: nil, card: oldCard).succeeded)
        try #require(try run(satchel, ["sync", "--mode", "init"], home: oldHome, card: oldCard, stdin: password + "\n").succeeded)
        let database = try Database(path: oldHome + "/satchel.db")
        let customer = try database.text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let part = try database.text("SELECT part_number FROM products ORDER BY part_number LIMIT 1")
        for quantity in 1...50 {
            let order = try run(satchel, ["order", "new", "--customer", customer, "--line", "\(part):\(quantity)", "--confirm"], home: oldHome, card: oldCard)
            try #require(order.succeeded, "\(order.stderr)")
        }
        // The handheld falls off a van: 50 orders never reached the hub; its card has them.
        let hub = try SQLiteHubStorage(path: office.database)
        #expect(try hub.changeCount(device: "WAW07") == 0)

        let provisioned = try office.provision(newHome, device: "WAW12", extra: ["--replaces", "WAW07", "--json"])
        try #require(provisioned.succeeded, "\(provisioned.stderr)")
        #expect(try hub.lifecycleState(device: "WAW07") == .retired)
        let released = try office.hub(["device", "release-key", "--device", "WAW07", "--to", "WAW12"], stdin: office.credential + "\n")
        try #require(released.succeeded, "\(released.stderr)")
        let sealedKey = released.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let upload = try run(satchel, ["sync", "--mode", "upload", "--from-card", oldCard, "--released-key", "--json"], home: newHome,
                             stdin: password + "\n" + sealedKey + "\n")
        try #require(upload.succeeded, "\(upload.stderr)")
        let uploaded = try json(upload)
        #expect(uploaded["recovered_from"] as? String == "WAW07")
        #expect(uploaded["duplicates"] as? Int == 0)
        // The released key was written for the copy of WAW07 that was read; copy and key are gone.
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: newHome + "/recovered")) ?? []).isEmpty)
        let orders = { try Database(path: office.database).int64("SELECT count(DISTINCT entity_id) FROM device_changes WHERE device_id = 'WAW07' AND entity = 'order'") }
        let duplicated = { try Database(path: office.database).int64("""
            SELECT count(*) FROM (SELECT 1 FROM device_changes WHERE device_id = 'WAW07' GROUP BY entity, entity_id, action, payload HAVING count(*) > 1)
            """) }
        #expect(try orders() == 50)
        #expect(try duplicated() == 0)
        let stored = try hub.changeCount(device: "WAW07")
        #expect(uploaded["uploaded"] as? Int == Int(stored))
        // The technician runs it again: nothing new is stored.
        let again = try json(try run(satchel, ["sync", "--mode", "upload", "--from-card", oldCard, "--released-key", "--json"], home: newHome,
                                     stdin: password + "\n" + sealedKey + "\n"))
        #expect(try hub.changeCount(device: "WAW07") == stored)
        #expect(again["recovered_from"] as? String == "WAW07")
        #expect(try orders() == 50)
        #expect(try duplicated() == 0)

        let duplicate = try run(satchel, ["sync", "--mode", "duplicate", "--json"], home: newHome, stdin: password + "\n")
        try #require(duplicate.succeeded, "\(duplicate.stderr)")
        #expect(try json(duplicate)["documents"] as? Int == 50)
        #expect(try Database(path: newHome + "/satchel.db").int64("SELECT count(*) FROM orders") == 50)
        // The old handheld, found again, is refused: its identity is retired.
        let old = try run(satchel, ["sync", "--mode", "fast"], home: oldHome, card: oldCard, stdin: password + "\n")
        #expect(old.status == 69)
        #expect(old.stderr.contains("revoked"))
        // A key released to WAW12 opens nothing on another handheld.
        let other = office.directory.path + "/other"
        try #require(try office.provision(other, device: "WAW13").succeeded)
        let stolen = try run(satchel, ["sync", "--mode", "upload", "--from-card", oldCard, "--released-key"], home: other, stdin: password + "\n" + sealedKey + "\n")
        #expect(stolen.status == 65)
        #expect(stolen.stderr.contains("does not open with this handheld's key"))
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return false }
        let first = subsequence[0]
        var index = 0
        while index <= count - subsequence.count {
            if self[index] == first && Array(self[index..<(index + subsequence.count)]) == subsequence { return true }
            index += 1
        }
        return false
    }
}
