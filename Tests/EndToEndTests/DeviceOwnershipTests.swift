import Foundation
import Hub
import ModemSimulator
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// Issue 10's reproductions 5, 9, 13 (the snapshot after a download) and 14, through the real
/// `satchel`: the device's configuration lives in its data directory, "saved" means on the card
/// when the device has one, read-only commands change nothing, and writing resumes when the
/// battery allows it.
@Suite("The agent owns the device: configuration, card truth, read-only commands, battery", .serialized)
struct DeviceOwnershipTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")
    let hubBinary = BuiltExecutable.path("satchel-hub")
    static let passphrase = "zapasowe hasło Żółw"

    /// A seeded device whose card was set up once with `--card`; no later command names the card.
    struct Device {
        var home: String
        var card: FakeCard
        var customer: String
        var environment: [String: String] { ["SATCHEL_HOME": home] }
    }

    func device(_ directory: TemporaryDirectory, initialiseCard: Bool = true) throws -> Device {
        let home = directory.path + "/device"
        let seeded = try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "20", "--products", "30", "--history", "1", "--seed", "6"], timeoutSeconds: 60)
        try #require(seeded.succeeded, "satchel-sim seed failed: \(seeded.stderr)")
        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let device = Device(home: home, card: try FakeCard(path: directory.path + "/card"), customer: customer)
        if initialiseCard {
            let initialised = try satchel(["card", "init", "--card", device.card.path], device, stdin: Self.passphrase + "\n")
            try #require(initialised.succeeded, "satchel card init failed: \(initialised.stderr)")
        }
        return device
    }

    func satchel(_ arguments: [String], _ device: Device, stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(satchel, arguments, environment: device.environment, stdin: stdin, timeoutSeconds: 60)
    }

    func json(_ result: ChildProcess.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
    }

    func visit(_ device: Device, note: String) throws -> ChildProcess.Result {
        try satchel(["visit", "--customer", device.customer, "--outcome", "no_order", "--note", note], device)
    }

    /// Every file under `path` with its bytes (directories as empty entries), for "nothing changed".
    func tree(_ path: String) -> [String: [UInt8]] {
        var found: [String: [UInt8]] = [:]
        guard let walker = FileManager.default.enumerator(atPath: path) else { return found }
        while let relative = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: path + "/" + relative, isDirectory: &isDirectory)
            found[relative + (isDirectory.boolValue ? "/" : "")] = isDirectory.boolValue ? [] : fileBytes(path + "/" + relative)
        }
        return found
    }

    // MARK: Repro 5: the card

    @Test("a capture without --card goes to the card `card init` recorded in the device configuration")
    func captureFindsTheConfiguredCard() throws {
        let directory = TemporaryDirectory("own-card")
        let device = try device(directory)
        let config = try json(try satchel(["config", "show", "--json"], device))
        #expect(config["card"] as? String == device.card.path)

        let saved = try visit(device, note: "Rozmowa o ekspozycji — разговор")
        try #require(saved.succeeded, "\(saved.stderr)")
        #expect(!saved.stderr.contains("WARNING"), "\(saved.stderr)")
        let card = try json(try satchel(["card", "status", "--json"], device))
        let changes = try Database(path: device.home + "/satchel.db").int64("SELECT max(seq) FROM changes")
        #expect(card["state"] as? String == "ok" && card["behind"] as? Int == 0)
        #expect(card["journal_through_seq"] as? Int64 == changes)
    }

    @Test("a configured card that cannot be reached warns on every capture; so does a card key without a configured card")
    func unreachableCardWarnsEveryTime() throws {
        let directory = TemporaryDirectory("own-warn")
        let device = try device(directory)
        try device.card.remove()
        for note in ["Bez karty 1 — без карты", "Bez karty 2 — без карта"] {
            let saved = try visit(device, note: note)
            try #require(saved.succeeded, "\(saved.stderr)")
            #expect(saved.stderr.contains("WARNING: saved on this device only, not yet on the card"), "\(saved.stderr)")
            #expect(saved.stderr.contains(device.card.path))
        }
        try device.card.insert()
        // The configuration is gone but the backup key is not: the device still backs up to a card.
        try FileManager.default.removeItem(atPath: device.home + "/device.conf")
        let saved = try visit(device, note: "Konfiguracja zniknęła")
        try #require(saved.succeeded, "\(saved.stderr)")
        #expect(saved.stderr.contains("WARNING: saved on this device only") && saved.stderr.contains("config set card"), "\(saved.stderr)")
    }

    @Test("an empty mount point is absent, never not_initialised with advice to run card init")
    func emptyMountPointIsAbsent() throws {
        let directory = TemporaryDirectory("own-absent")
        let device = try device(directory)
        // Unmounted: the card's files are elsewhere, an empty directory is left at the mount point.
        try device.card.remove()
        try FileManager.default.createDirectory(atPath: device.card.path, withIntermediateDirectories: false)
        let card = try json(try satchel(["card", "status", "--json"], device))
        #expect(card["state"] as? String == "absent")
        #expect(!(card["message"] as? String ?? "").contains("card init"), "\(card)")
        let status = try json(try satchel(["status", "--json"], device))
        #expect((status["card"] as? [String: Any])?["state"] as? String == "absent")
        #expect(try FileManager.default.contentsOfDirectory(atPath: device.card.path).isEmpty)
    }

    @Test("a card path that must be mounted and is not: card status says absent, card init refuses and writes nothing")
    func unmountedCardIsRefused() throws {
        let directory = TemporaryDirectory("own-mount")
        let device = try device(directory, initialiseCard: false)
        try #require(try satchel(["config", "set", "card", device.card.path], device).succeeded)
        try #require(try satchel(["config", "set", "card_must_be_mounted", "yes"], device).succeeded)
        #expect(try json(try satchel(["card", "status", "--json"], device))["state"] as? String == "absent")
        let refused = try satchel(["card", "init"], device, stdin: Self.passphrase + "\n")
        #expect(refused.status == 66 && refused.stderr.contains("nothing is mounted at \(device.card.path)"), "\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: device.card.path).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: device.home + "/card.key"))
    }

    @Test("card status says behind, not ok, while acknowledged changes are not on the card; the next capture catches up")
    func cardStatusSaysBehind() throws {
        let directory = TemporaryDirectory("own-behind")
        let device = try device(directory)
        try device.card.remove()
        try #require(try visit(device, note: "Поза картой").succeeded)
        try #require(try visit(device, note: "Poza kartą").succeeded)
        try device.card.insert()
        let behind = try json(try satchel(["card", "status", "--json"], device))
        #expect(behind["state"] as? String == "behind" && behind["behind"] as? Int == 2, "\(behind)")
        let text = try satchel(["card", "status"], device)
        #expect(text.stdout.hasPrefix("behind") && text.stdout.contains("2 changes behind"), "\(text.stdout)")
        try #require(try visit(device, note: "Z powrotem").succeeded)
        let caught = try json(try satchel(["card", "status", "--json"], device))
        #expect(caught["state"] as? String == "ok" && caught["behind"] as? Int == 0)
    }

    /// tmpfs needs mount privileges (CI runs as root in a container that has them); without them
    /// the same refusal is checked through the FileSystem seam in the Backup tests.
    static let canMount: Bool = {
        let probe = TemporaryDirectory("own-probe")
        guard (try? ChildProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe.path], timeoutSeconds: 10))?.succeeded == true else { return false }
        _ = try? ChildProcess.run("/bin/umount", [probe.path], timeoutSeconds: 10)
        return true
    }()

    @Test("card init on a mounted card too small for the backup fails with exit 74 and leaves the card empty and no key",
          .enabled(if: canMount, "needs mount privileges for a small tmpfs"))
    func cardTooSmall() throws {
        let directory = TemporaryDirectory("own-small")
        let device = try device(directory, initialiseCard: false)
        let mounted = try ChildProcess.run("/bin/mount", ["-t", "tmpfs", "-o", "size=96k", "tmpfs", device.card.path], timeoutSeconds: 10)
        try #require(mounted.succeeded, "\(mounted.stderr)")
        defer { _ = try? ChildProcess.run("/bin/umount", [device.card.path], timeoutSeconds: 10) }
        try #require(try satchel(["config", "set", "card_must_be_mounted", "yes"], device).succeeded)
        let refused = try satchel(["card", "init", "--card", device.card.path], device, stdin: Self.passphrase + "\n")
        #expect(refused.status == 74 && refused.stderr.contains("KiB free") && !refused.stdout.contains("Card ready"), "\(refused.stdout) \(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: device.card.path).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: device.home + "/card.key"))
    }

    // MARK: Repro 14: read-only commands

    @Test("doctor, status, keys, lists and shows on a lost database rebuild nothing, change no file, and point to satchel restore")
    func readOnlyCommandsRebuildNothing() throws {
        let directory = TemporaryDirectory("own-readonly")
        let device = try device(directory)
        try #require(try visit(device, note: "Przed awarią — перед аварией").succeeded)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: device.home + "/satchel.db" + suffix) }
        let home = tree(device.home), card = tree(device.card.path)
        let commands: [[String]] = [["doctor"], ["status"], ["status", "--json"], ["keys"], ["card", "status"], ["route"], ["order", "list"],
                                    ["customer", "show", device.customer], ["customer", "find", "zolw"], ["sync-errors"]]
        for command in commands {
            let result = try satchel(command, device)
            #expect(result.status == 66, "\(command): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains("satchel restore") && result.stderr.contains("nothing was rebuilt"), "\(command): \(result.stderr)")
            #expect(tree(device.home) == home, "\(command) changed the data directory")
            #expect(tree(device.card.path) == card, "\(command) changed the card")
        }
        #expect(!FileManager.default.fileExists(atPath: device.home + "/satchel.db"))
        // A command that writes still restores, and says so loudly.
        let saved = try visit(device, note: "Po odtworzeniu")
        try #require(saved.succeeded, "\(saved.stderr)")
        #expect(saved.stderr.contains("THE DATABASE WAS REBUILT FROM THE CARD"), "\(saved.stderr)")
        #expect(try Database(path: device.home + "/satchel.db").int64("SELECT count(*) FROM visits WHERE note = 'Przed awarią — перед аварией'") == 1)
    }

    @Test("read-only commands on a healthy database leave every file byte-identical and create none")
    func readOnlyCommandsTouchNothing() throws {
        let directory = TemporaryDirectory("own-untouched")
        let device = try device(directory)
        try #require(try visit(device, note: "Берёзка — Łódź").succeeded)
        try #require(try satchel(["keys"], device).succeeded)  // the sync key pair is made on first use
        let before = tree(device.home)
        try #require(before["satchel.db-wal"] == nil, "the last writer left a WAL: \(before.keys.sorted())")
        for command in [["doctor"], ["status", "--json"], ["keys"], ["card", "status"], ["order", "list"], ["route"], ["customer", "find", "berez"], ["config", "show"]] {
            let result = try satchel(command, device)
            #expect(result.succeeded, "\(command): \(result.stderr)")
            #expect(tree(device.home) == before, "\(command) changed \(Set(tree(device.home).keys).symmetricDifference(before.keys).sorted())")
        }
    }

    // MARK: Repro 9: the battery

    @Test("writes stopped at critical battery resume without the daemon once the charger is in; status says when writing is stopped")
    func chargerResumesWrites() throws {
        let directory = TemporaryDirectory("own-battery")
        let device = try device(directory)
        let battery = try FakeBattery(directory: directory.path + "/battery", percent: 4, status: .discharging)
        try #require(try satchel(["config", "set", "battery", battery.directory], device).succeeded)
        let daemon = try satchel(["daemon", "--ticks", "1", "--interval", "1"], device)
        try #require(daemon.succeeded && daemon.stdout.contains("writes stopped"), "\(daemon.stdout) \(daemon.stderr)")

        let stopped = try visit(device, note: "Nie zapisze się")
        #expect(stopped.status == 75 && stopped.stderr.contains("writing is stopped"), "\(stopped.stderr)")
        let status = try json(try satchel(["status", "--json"], device))
        let writing = try #require(status["writing"] as? [String: Any])
        #expect(writing["stopped"] as? Bool == true && (writing["reason"] as? String ?? "").contains("battery critical"))
        #expect(writing["resumes_on_next_write"] as? Bool == false)
        #expect(try satchel(["status"], device).stdout.contains("WRITING STOPPED: battery critical"))

        // The charger goes in; the daemon does not run.
        try battery.set(percent: 5, status: .charging)
        #expect(try json(try satchel(["status", "--json"], device))["writing"].flatMap { $0 as? [String: Any] }?["resumes_on_next_write"] as? Bool == true)
        let resumed = try visit(device, note: "Ładowarka podłączona — зарядно")
        try #require(resumed.succeeded, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("writing resumed: battery 5%, charging"), "\(resumed.stderr)")
        let after = try #require(try json(try satchel(["status", "--json"], device))["writing"] as? [String: Any])
        #expect(after["stopped"] as? Bool == false)
        #expect(!(try satchel(["status"], device).stdout.contains("WRITING STOPPED")))
    }

    // MARK: Repro 13: the snapshot after a download

    @Test("a sync that downloads snapshots after the download: a device restored from the card keeps the customers its orders point at")
    func snapshotAfterDownload() throws {
        let directory = TemporaryDirectory("own-download")
        let database = directory.path + "/hub.db", erp = directory.path + "/erp", home = directory.path + "/device"
        let card = try FakeCard(path: directory.path + "/card")
        let password = "hasło-синхр"
        func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
        }
        let device = Device(home: home, card: card, customer: "")
        try #require(try ChildProcess.run(sim, ["seed", "--home", erp, "--customers", "25", "--products", "30", "--seed", "3"], timeoutSeconds: 60).succeeded)
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Bożena Żółtowska"], stdin: password + "\n").succeeded)
        try #require(try hub(["master", "import", "--db", database, "--from", erp + "/satchel.db", "--assign-to", "R01"]).succeeded)
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let running = try SyncEndToEndTests.RunningHub(binary: hubBinary, database: database)
        defer { running.stop() }
        try #require(try satchel(["init", "--device", "DL1", "--rep", "R01"], device).succeeded)
        let key = try json(try satchel(["keys", "--json"], device))["public_key"] as? String ?? ""
        try #require(try hub(["device", "add", "--db", database, "--device", "DL1", "--rep", "R01", "--key", key]).succeeded)
        try #require(try satchel(["provision", "--hub", running.address, "--hub-key", hubKey, "--card", card.path], device).succeeded)
        try #require(try satchel(["card", "init"], device, stdin: Self.passphrase + "\n").succeeded)

        let loaded = try satchel(["sync", "--mode", "init", "--json"], device, stdin: password + "\n")
        try #require(loaded.succeeded, "\(loaded.stderr)")
        let customers = try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM customers")
        try #require(customers > 0)
        let cardStatus = try json(try satchel(["card", "status", "--json"], device))
        // card init took #1, the sync one before its download (#2) and one after it (#3).
        #expect(cardStatus["snapshot_generation"] as? Int == 3, "\(cardStatus)")

        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        let part = try Database(path: home + "/satchel.db").text("SELECT part_number FROM products ORDER BY part_number LIMIT 1")
        let order = try satchel(["order", "new", "--customer", customer, "--line", "\(part):2", "--confirm", "--json"], device)
        try #require(order.succeeded, "\(order.stderr)")
        let orderID = try json(order)["id"] as? String ?? ""

        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: home + "/satchel.db" + suffix) }
        let restored = try satchel(["restore", "--json"], device)
        try #require(restored.succeeded, "\(restored.stderr)")
        let after = try Database(path: home + "/satchel.db")
        #expect(try after.int64("SELECT count(*) FROM customers") == customers)
        #expect(try after.int64("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id = ?", [.text(orderID)]) == 1)
    }
}

extension DeviceOwnershipTests {
    @Test("a damaged device configuration is refused by name and line, by readers and writers alike, and left byte-identical")
    func damagedConfigurationRefused() throws {
        let directory = TemporaryDirectory("own-config")
        let device = try device(directory)
        let path = device.home + "/device.conf"
        let damaged = Array("card = \(device.card.path)\nbatery = /sys/class/power_supply/battery\n".utf8)
        writeFile(path, damaged)
        for command in [["status"], ["visit", "--customer", device.customer, "--outcome", "order"], ["config", "set", "battery", "/sys/class/power_supply/BAT0"]] {
            let refused = try satchel(command, device)
            #expect(refused.status == 78 && refused.stderr.contains("device.conf is damaged at line 2") && refused.stderr.contains("batery"), "\(command): \(refused.stderr)")
            #expect(fileBytes(path) == damaged)
        }
        try FileManager.default.removeItem(atPath: path)
        let bad = try satchel(["config", "set", "card_must_be_mounted", "może"], device)
        #expect(bad.status == 65 && bad.stderr.contains("expected yes or no"))
        let unknown = try satchel(["config", "set", "karta", "/media/card"], device)
        #expect(unknown.status == 65 && unknown.stderr.contains("unknown key"))
        #expect(!FileManager.default.fileExists(atPath: path))
        // A relative path is recorded absolute: the configuration outlives the shell it was typed in.
        let relative = try ChildProcess.run("/bin/sh", ["-c", "cd \"$1\" && exec \"$2\" config set card karta", "sh", directory.path, satchel],
                                           environment: device.environment, timeoutSeconds: 30)
        #expect(relative.succeeded, "\(relative.stderr)")
        #expect(try json(try satchel(["config", "show", "--json"], device))["card"] as? String == directory.path + "/karta")
    }
}

extension DeviceOwnershipTests {
    @Test("sync over the modem through Agent finds the modem's port and profile in the device configuration that provision wrote")
    func modemFromTheConfiguration() throws {
        let directory = TemporaryDirectory("own-modem")
        let home = directory.path + "/device", database = directory.path + "/hub.db", lock = directory.path + "/lock"
        try FileManager.default.createDirectory(atPath: lock, withIntermediateDirectories: true)
        try #require(try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "10", "--products", "10", "--seed", "11"], timeoutSeconds: 60).succeeded)
        let device = Device(home: home, card: try FakeCard(path: directory.path + "/card"), customer: "")
        let key = try json(try satchel(["keys", "--json"], device))["public_key"] as? String ?? ""
        func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
        }
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Иван Петров"], stdin: "парола-sync\n").succeeded)
        try #require(try hub(["device", "add", "--db", database, "--device", "SIM1", "--rep", "R01", "--key", key]).succeeded)
        let running = try SyncEndToEndTests.RunningHub(binary: hubBinary, database: database)
        defer { running.stop() }
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let modem = try SimulatedModem(config: .simcomWithoutPIN(link: .edge, guardSeconds: 0.04, timeScale: 0.02))
        modem.start()
        defer { modem.stop() }
        let hardware = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("hardware").path
        let provisioned = try satchel(["provision", "--hub", running.address, "--hub-key", hubKey, "--modem-port", modem.path,
                                       "--modem-profile", "simcom-sim800", "--card", device.card.path], device)
        try #require(provisioned.succeeded, "\(provisioned.stderr)")
        let settings = try #require(try json(try satchel(["config", "show", "--json"], device))["settings"] as? [String: String])
        #expect(settings == ["modem_port": modem.path, "modem_profile": "simcom-sim800", "card": device.card.path])
        try #require(try satchel(["card", "init"], device, stdin: Self.passphrase + "\n").succeeded)
        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers ORDER BY id LIMIT 1")
        try #require(try satchel(["visit", "--customer", customer, "--outcome", "order", "--note", "Przez modem — през модема"], device).succeeded)

        let synced = try ChildProcess.run(satchel, ["sync", "--over-modem", "--apn", "firma.apn", "--lock-dir", lock, "--hardware", hardware,
                                                    "--timeout", "2", "--timeout-scale", "0.05", "--guard-ms", "40", "--json"],
                                          environment: device.environment, stdin: "парола-sync\n", timeoutSeconds: 120)
        try #require(synced.succeeded, "\(synced.stderr)")
        #expect(try json(synced)["uploaded"] as? Int == 1)
        #expect(try SQLiteHubStorage(path: database).changeCount(device: "SIM1") == 1)
        #expect(try json(try satchel(["card", "status", "--json"], device))["state"] as? String == "ok")
    }
}

extension DeviceOwnershipTests {
    @Test("a capture in another process while a read-only reader is open does not checkpoint into the main file under the reader")
    func writerLeavesTheMainFileAloneUnderAReader() throws {
        let directory = TemporaryDirectory("own-quiet")
        let device = try device(directory)
        try #require(try visit(device, note: "Pierwsza — първа").succeeded)
        let path = device.home + "/satchel.db"
        try #require(!FileManager.default.fileExists(atPath: path + "-wal"))
        let before = fileBytes(path)
        var options = Database.Options()
        options.readOnly = true
        options.create = false
        options.immutable = true
        let reader = try Database(path: path, options: options)
        #expect(reader.isImmutable)
        let visits = try reader.int64("SELECT count(*) FROM visits")
        try #require(try visit(device, note: "Druga — втора").succeeded)  // the writer closes last: it would checkpoint
        let unchanged = fileBytes(path) == before
        #expect(unchanged, "the main file changed under the reader")
        #expect(FileManager.default.fileExists(atPath: path + "-wal"), "the writer checkpointed and removed its WAL under the reader")
        #expect(try reader.int64("SELECT count(*) FROM visits") == visits)
        #expect(try reader.quickCheck().isEmpty)
        withExtendedLifetime(reader) {}
        #expect(try Database(path: path).int64("SELECT count(*) FROM visits") == visits + 1)
    }
}
