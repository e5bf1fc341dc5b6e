import Foundation
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// Issue 14, "a lost device leaks nothing": the app password and the encrypted database,
/// through the real `satchel` as the rep and the technician run it.
@Suite("satchel with an app password: encrypted at rest, locked, refused", .serialized)
struct AppPasswordTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")
    let password = "Żółw-Ёжик 2026"

    /// A seeded plain device (a handheld from before app passwords) and its own runtime directory on tmpfs.
    struct Device {
        let home: String
        let runtime: String
        let customer: String
        let customerName: String
        var environment: [String: String] { ["SATCHEL_HOME": home, "SATCHEL_RUNTIME_DIR": runtime] }
    }

    func seeded(_ directory: TemporaryDirectory) throws -> Device {
        let home = directory.path + "/device"
        let seeded = try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "30", "--products", "40", "--seed", "3", "--json"], timeoutSeconds: 120)
        try #require(seeded.succeeded, "satchel-sim seed failed: \(seeded.stderr)")
        let database = try Database(path: home + "/satchel.db")
        let (customer, name) = try #require(try database.first("SELECT id, name FROM customers WHERE overdue_minor = 0 AND currency = 'PLN' ORDER BY id LIMIT 1") { ($0.text(0), $0.text(1)) })
        let runtime = "/dev/shm/satchel-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        return Device(home: home, runtime: runtime, customer: customer, customerName: name)
    }

    func run(_ device: Device, _ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(satchel, arguments, environment: device.environment, stdin: stdin, timeoutSeconds: 120)
    }

    func contains(_ path: String, _ text: String) -> Bool {
        FileManager.default.contents(atPath: path)?.range(of: Data(text.utf8)) != nil
    }

    func filesOf(_ directory: String) -> [String] {
        (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).map { directory + "/" + $0 }
    }

    @Test("password set encrypts an existing plain database: before, the file shows the customer's name; after, no file does, and the commands work as before")
    func passwordSetEncryptsAPlainDatabase() throws {
        let directory = TemporaryDirectory("e2e-password")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        #expect(filesOf(device.home).contains { contains($0, device.customerName) }, "the control: plain, the name is there to find")
        let set = try run(device, ["password", "set"], stdin: password + "\n" + password + "\n")
        try #require(set.succeeded, "\(set.stderr)")
        #expect(filesOf(device.home).allSatisfy { !contains($0, device.customerName) && !contains($0, password) })
        #expect(!FileManager.default.fileExists(atPath: device.home + "/satchel.db.sealing"))
        let ordered = try run(device, ["order", "new", "--customer", device.customer, "--line", "PN-10000:2", "--note", "Доставка до обяд", "--confirm", "--json"])
        try #require(ordered.succeeded, "\(ordered.stderr)")
        let shown = try run(device, ["customer", "show", device.customer])
        #expect(shown.succeeded && shown.stdout.contains(device.customerName))
        #expect(filesOf(device.home).allSatisfy { !contains($0, "Доставка до обяд") && !contains($0, device.customerName) })
        // Plain SQLite sees no database at all.
        var plain = Database.Options()
        plain.encryption = .plain
        plain.create = false
        #expect(throws: StoreError.self) { _ = try Database(path: device.home + "/satchel.db", options: plain).int64("SELECT count(*) FROM customers") }
        // A second `password set` is refused; `password change` keeps the data.
        let again = try run(device, ["password", "set"], stdin: "inne hasło\ninne hasło\n")
        #expect(again.status == 77 && again.stderr.contains("password change"))
        let changed = try run(device, ["password", "change"], stdin: password + "\nнова парола\nнова парола\n")
        try #require(changed.succeeded, "\(changed.stderr)")
        _ = try run(device, ["lock"])
        #expect(try run(device, ["unlock"], stdin: password + "\n").status == 77)
        #expect(try run(device, ["unlock"], stdin: "нова парола\n").succeeded)
        #expect(try run(device, ["order", "list", "--json"]).stdout.contains(device.customer))
    }

    @Test("a locked device refuses every command that reads data, with what to do; unlock opens it again")
    func lockedRefuses() throws {
        let directory = TemporaryDirectory("e2e-locked")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        #expect(try run(device, ["lock"]).succeeded)
        let session = try FileManager.default.contentsOfDirectory(atPath: device.runtime)
        #expect(session.isEmpty, "locking removes the session key: \(session)")
        for arguments in [["status"], ["customer", "show", device.customer], ["order", "new", "--customer", device.customer, "--line", "PN-10000:1", "--confirm"]] {
            let refused = try run(device, arguments)
            #expect(refused.status == 77 && refused.stderr.contains("satchel unlock"), "\(arguments): \(refused.status) \(refused.stderr)")
        }
        try #require(try run(device, ["unlock"], stdin: password + "\n").succeeded)
        #expect(try run(device, ["status"]).succeeded)
        // The session file: 0600, in a 0700 directory on tmpfs, holding no text.
        let files = try FileManager.default.contentsOfDirectory(atPath: device.runtime)
        try #require(files.count == 1)
        let attributes = try FileManager.default.attributesOfItem(atPath: device.runtime + "/" + files[0])
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect((try FileManager.default.attributesOfItem(atPath: device.runtime)[.posixPermissions] as? Int) == 0o700)
    }

    @Test("the idle lock: a session unused for longer than idle_lock_minutes is removed and the password asked again")
    func idleLock() throws {
        let directory = TemporaryDirectory("e2e-idle")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        try #require(try run(device, ["config", "set", "idle_lock_minutes", "2"]).succeeded)
        try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        #expect(try run(device, ["status"]).succeeded)
        let session = device.runtime + "/" + (try FileManager.default.contentsOfDirectory(atPath: device.runtime))[0]
        // Last used three minutes ago.
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-180)], ofItemAtPath: session)
        let idle = try run(device, ["status"])
        #expect(idle.status == 77 && idle.stderr.contains("locked"))
        #expect(!FileManager.default.fileExists(atPath: session))
    }

    @Test("wrong passwords count, wait longer each time, and at password_attempts destroy the keys: the device then needs a technician")
    func wrongPasswordsDestroyTheKeys() throws {
        let directory = TemporaryDirectory("e2e-attempts")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        try #require(try run(device, ["config", "set", "password_attempts", "3"]).succeeded)
        try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        _ = try run(device, ["lock"])
        let first = try run(device, ["unlock"], stdin: "zła\n")
        #expect(first.status == 77 && first.stderr.contains("2 attempts left"))
        let second = try run(device, ["unlock"], stdin: "грешна\n")
        #expect(second.status == 77 && second.stderr.contains("1 attempt left"))
        let third = try run(device, ["unlock"], stdin: "неверно\n")
        #expect(third.status == 69 && third.stderr.contains("technician"), "\(third.stderr)")
        #expect(!FileManager.default.fileExists(atPath: device.home + "/data.key"))
        // Even the right password cannot bring the key back: it is gone.
        let right = try run(device, ["unlock"], stdin: password + "\n")
        #expect(right.status == 69 && right.stderr.contains("destroyed"))
        #expect(try run(device, ["status"]).status == 69)
        // The database is still there, unreadable: nothing was deleted, nothing is in plaintext.
        #expect(FileManager.default.fileExists(atPath: device.home + "/satchel.db"))
        #expect(filesOf(device.home).allSatisfy { !contains($0, device.customerName) })
    }

    @Test("a tampered database page is refused as damaged with what to do, and the file is left byte-identical")
    func tamperedPageRefused() throws {
        let directory = TemporaryDirectory("e2e-tamper")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        let path = device.home + "/satchel.db"
        var bytes = fileBytes(path)
        // Page 1 (the schema's root): every open reads it.
        bytes[1000] ^= 0x20
        writeFile(path, bytes)
        let refused = try run(device, ["customer", "find", "a", "--json"])
        #expect(refused.status == 69 && refused.stderr.contains("failed authentication"), "\(refused.status) \(refused.stderr)")
        let write = try run(device, ["order", "new", "--customer", device.customer, "--line", "PN-10000:1", "--confirm"])
        #expect(write.status == 69)
        let unchanged = fileBytes(path) == bytes
        #expect(unchanged, "the refused file must stay byte-identical")
    }

    @Test("a tampered data.key (Argon2id cost raised past the bounds, or a changed salt) is refused before any work, counts no attempt")
    func tamperedKeyFileRefused() throws {
        let directory = TemporaryDirectory("e2e-keyfile")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        _ = try run(device, ["lock"])
        let path = device.home + "/data.key"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        let greedy = original.replacingOccurrences(of: "argon2id 3 8388608", with: "argon2id 3 4294967296")
        try greedy.write(toFile: path, atomically: false, encoding: .utf8)
        let refused = try run(device, ["unlock"], stdin: password + "\n")
        #expect(refused.status == 78 && refused.stderr.contains("outside"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == greedy)
        #expect(!FileManager.default.fileExists(atPath: device.home + "/password.attempts"))
        // A salt changed within the format fails like a wrong password: it is sealed as additional data.
        var lines = original.split(separator: "\n").map(String.init)
        lines[2] = "salt " + String(repeating: "ab", count: 16)
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        #expect(try run(device, ["unlock"], stdin: password + "\n").status == 77)
        try original.write(toFile: path, atomically: false, encoding: .utf8)
        #expect(try run(device, ["unlock"], stdin: password + "\n").succeeded)
    }

    @Test("a device.conf asking for more attempts than allowed is refused naming the line, and left as it is")
    func tamperedConfigurationRefused() throws {
        let directory = TemporaryDirectory("e2e-conf")
        let device = try seeded(directory)
        let path = device.home + "/device.conf"
        try "password_attempts = 100000\n".write(toFile: path, atomically: false, encoding: .utf8)
        let refused = try run(device, ["unlock"], stdin: password + "\n")
        #expect(refused.status == 78 && refused.stderr.contains("line 1"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "password_attempts = 100000\n")
    }

    @Test("a session directory that is not on tmpfs is refused: the key would survive a reboot; nothing is written")
    func runtimeDirectoryMustBeInMemory() throws {
        let directory = TemporaryDirectory("e2e-runtime")
        let device = try seeded(directory)
        let onDisk = directory.path + "/runtime"
        let refused = try ChildProcess.run(satchel, ["password", "set"], environment: ["SATCHEL_HOME": device.home, "SATCHEL_RUNTIME_DIR": onDisk],
                                           stdin: password + "\n" + password + "\n", timeoutSeconds: 60)
        #expect(refused.status == 77 && refused.stderr.contains("tmpfs"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: device.home + "/data.key"))
        #expect(filesOf(device.home).contains { contains($0, device.customerName) }, "still the plain database, untouched")
    }

    @Test("after a simulated day with the device locked, no customer name, part number, price, password or passphrase is in any file of the device or the card; the same day without a password shows them")
    func plaintextScanAfterADay() throws {
        let directory = TemporaryDirectory("e2e-scan")
        let options = EncryptionBench.Options(orders: 1, unlocks: 1, satchelPath: satchel, hardware: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("hardware").path)
        let locked = try EncryptionBench.scannedDay(root: directory.path + "/locked", options: options, appPassword: password)
        #expect(locked.needles > 50 && locked.files > 5)
        #expect(locked.findings.isEmpty, "\(locked.findings.prefix(5))")
        // The scan covers the identity files too: the sealed device key, the hub pin, the sealed configuration.
        for name in ["device.key", "hub.pin", "device.conf", "data.key", "card.key"] {
            #expect(FileManager.default.fileExists(atPath: directory.path + "/locked/device/" + name), "\(name) was not there to scan")
        }
        let plain = try EncryptionBench.scannedDay(root: directory.path + "/plain", options: options, appPassword: nil)
        #expect(plain.findings.count > 50, "the control: without the password the scan finds the plaintext")
        #expect(plain.findings.contains { $0.needle == "device.key bytes" && $0.file.hasSuffix("/device.key") }, "the control: a plain device.key is found")
    }
}

@Suite("power cuts on the encrypted database", .serialized)
struct EncryptedPowerCutTests {
    @Test("SIGKILLs at random instants, internal storage wiped and restored from the card, with an app password: nothing acknowledged lost, no id reused, every copy passes integrity_check")
    func powerCutsOnTheEncryptedDatabase() throws {
        var options = PowerCut.Options(cycles: 40, seed: 7, wipeInternal: true, satchelPath: BuiltExecutable.path("satchel"))
        options.appPassword = "Żółw-Ёжик 2026"
        let report = try PowerCut.run(options)
        #expect(report.acknowledged > 5 && report.wipes > 3)
        #expect(report.lost == 0 && report.duplicates == 0 && report.idsReused == 0 && report.integrityFailures == 0, "\(report.problems)")
    }
}
