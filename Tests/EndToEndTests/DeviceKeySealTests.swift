import Foundation
import ModemSimulator
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// Issue 14's leftovers, through the real `satchel`: the device key sealed under the data key,
/// a bare restore that leaves no usable key in the data directory, and the SIM PIN at unlock.
@Suite("satchel: the device key sealed, bare restore, SIM PIN at unlock", .serialized)
struct DeviceKeySealTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")
    let password = "Żółw-Ёжик 2026"
    let passphrase = "hasło zapasowe — резерв"
    var hardware: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/hardware"
    }

    typealias Device = AppPasswordTests.Device

    /// A seeded plain device and its own runtime directory on tmpfs, as `AppPasswordTests` makes them.
    func seeded(_ directory: TemporaryDirectory) throws -> Device { try AppPasswordTests().seeded(directory) }

    func run(_ device: Device, _ arguments: [String], stdin: String? = nil, extra: [String: String] = [:]) throws -> ChildProcess.Result {
        try ChildProcess.run(satchel, arguments, environment: device.environment.merging(extra) { $1 }, stdin: stdin, timeoutSeconds: 120)
    }

    func files(_ directory: String) -> [String] {
        (FileManager.default.enumerator(atPath: directory)?.allObjects as? [String] ?? []).map { directory + "/" + $0 }
    }

    /// Files under `directory` holding `needle` (raw bytes).
    func holding(_ directory: String, _ needle: [UInt8]) -> [String] {
        files(directory).filter { FileManager.default.contents(atPath: $0)?.range(of: Data(needle)) != nil }
    }

    func bytes(_ path: String) -> [UInt8] { FileManager.default.contents(atPath: path).map { Array($0) } ?? [] }

    @Test("device.key: sealed by `password set` (neither its bytes nor their hex in any file), a plain one from before is sealed at the next unlock; locked, `satchel keys` refuses; unlocked, keys works with the same key")
    func deviceKeySealed() throws {
        let directory = TemporaryDirectory("e2e-devicekey")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        let plainKey = bytes(device.home + "/device.key")
        try #require(plainKey.count == 32, "the seeded device has a plain device key")
        let hex = Array(plainKey.map { String(format: "%02x", $0) }.joined().utf8)
        let before = try run(device, ["keys", "--json"])
        try #require(before.succeeded, "\(before.stderr)")
        #expect(!holding(device.home, plainKey).isEmpty, "the control: the plain key is there to find")

        try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        #expect(holding(device.home, plainKey).isEmpty && holding(device.home, hex).isEmpty, "\(holding(device.home, plainKey))")
        #expect(String(decoding: bytes(device.home + "/device.key"), as: UTF8.self).hasPrefix("satchel-sealed-device-key 1\n"))
        let unlockedKeys = try run(device, ["keys", "--json"])
        #expect(unlockedKeys.succeeded && unlockedKeys.stdout == before.stdout, "\(unlockedKeys.stdout) \(unlockedKeys.stderr)")

        // Locked: nothing here opens the key.
        _ = try run(device, ["lock"])
        let locked = try run(device, ["keys"])
        #expect(locked.status == 77 && locked.stderr.contains("satchel unlock"), "\(locked.status) \(locked.stderr)")
        #expect(holding(device.home, plainKey).isEmpty)

        // A handheld from before this change: device.key plain beside data.key. The next unlock seals it.
        FileManager.default.createFile(atPath: device.home + "/device.key", contents: Data(plainKey), attributes: [.posixPermissions: 0o600])
        try #require(try run(device, ["unlock"], stdin: password + "\n").succeeded)
        #expect(holding(device.home, plainKey).isEmpty, "unlock did not seal the plain device.key")
        #expect(try run(device, ["keys", "--json"]).stdout == before.stdout)

        // A sealed device.key that does not open (changed) is refused as damaged, left as it is.
        var damaged = bytes(device.home + "/device.key")
        damaged[40] = damaged[40] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        FileManager.default.createFile(atPath: device.home + "/device.key", contents: Data(damaged), attributes: [.posixPermissions: 0o600])
        let refused = try run(device, ["keys"])
        #expect(refused.status == 69 && refused.stderr.contains("device.key is damaged"), "\(refused.status) \(refused.stderr)")
        #expect(bytes(device.home + "/device.key") == damaged)
    }

    @Test("a bare restore (internal storage gone) of a device with an app password: the key never lands in card.key; without --app-password-stdin it lives in memory only (gone after a reboot: restore again); with it, data.key is sealed at once and the device unlocks with it")
    func bareRestoreLeavesNoKey() throws {
        let directory = TemporaryDirectory("e2e-bare-restore")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        let card = directory.path + "/card"
        try FileManager.default.createDirectory(atPath: card, withIntermediateDirectories: true)
        try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        let initCard = try run(device, ["card", "init", "--card", card], stdin: passphrase + "\n")
        try #require(initCard.succeeded, "\(initCard.stderr)")
        let ordered = try run(device, ["order", "new", "--customer", device.customer, "--line", "PN-10000:3", "--confirm", "--json"])
        try #require(ordered.succeeded, "\(ordered.stderr)")
        let deviceKey = try run(device, ["keys", "--json"]).stdout

        // Internal storage lost, the session with it (a new handheld, or a reboot after the loss).
        try FileManager.default.removeItem(atPath: device.home)
        try? FileManager.default.removeItem(atPath: device.runtime)
        let restored = try run(device, ["restore", "--from", card, "--passphrase-stdin"], stdin: passphrase + "\n")
        try #require(restored.succeeded, "\(restored.stderr)")
        #expect(restored.stdout.contains("in memory only"), "\(restored.stdout)")
        #expect(bytes(device.home + "/card.key").count != 32, "the data key was written to card.key")
        #expect(!FileManager.default.fileExists(atPath: device.home + "/data.key"))
        #expect(files(device.home).allSatisfy { FileManager.default.contents(atPath: $0)?.range(of: Data(device.customerName.utf8)) == nil })
        // While the session lasts the device works, as itself.
        #expect(try run(device, ["order", "list", "--json"]).stdout.contains(device.customer))
        #expect(try run(device, ["keys", "--json"]).stdout == deviceKey, "restore from card keeps the identity")
        // A reboot before `password set`: nothing in the data directory opens the data.
        try FileManager.default.removeItem(atPath: device.runtime)
        let gone = try run(device, ["order", "list"])
        #expect(gone.status == 77 && gone.stderr.contains("restore again"), "\(gone.status) \(gone.stderr)")

        // Again, with the app password given: sealed at once, unlocked, and it is the password from then on.
        let newPassword = "нова парола 2026"
        try FileManager.default.removeItem(atPath: device.home)
        let sealed = try run(device, ["restore", "--from", card, "--passphrase-stdin", "--app-password-stdin"], stdin: passphrase + "\n" + newPassword + "\n")
        try #require(sealed.succeeded, "\(sealed.stderr)")
        #expect(bytes(device.home + "/card.key").count != 32)
        #expect(FileManager.default.fileExists(atPath: device.home + "/data.key"))
        #expect(try run(device, ["order", "list", "--json"]).stdout.contains(device.customer))
        _ = try run(device, ["lock"])
        #expect(try run(device, ["order", "list"]).status == 77)
        #expect(try run(device, ["keys"]).status == 77)
        #expect(try run(device, ["unlock"], stdin: password + "\n").status == 77, "the old password does not open the restored device")
        #expect(try run(device, ["unlock"], stdin: newPassword + "\n").succeeded)
        #expect(try run(device, ["keys", "--json"]).stdout == deviceKey)
        // An unacceptable app password is refused before anything is restored.
        try FileManager.default.removeItem(atPath: device.home)
        let short = try run(device, ["restore", "--from", card, "--passphrase-stdin", "--app-password-stdin"], stdin: passphrase + "\nab\n")
        #expect(short.status == 65 && !FileManager.default.fileExists(atPath: device.home + "/satchel.db"), "\(short.status) \(short.stderr)")
    }

    /// The unlocked data key: the 32-byte session file on tmpfs (`SessionKeyFile`), the one place it may be.
    func sessionKey(_ device: Device) throws -> [UInt8] {
        let sessions = files(device.runtime).filter { ($0 as NSString).lastPathComponent.hasPrefix("session-") && bytes($0).count == 32 }
        return bytes(try #require(sessions.first, "no session key under \(device.runtime)"))
    }

    /// Files under `home` holding `key` raw or as hex (either case).
    func holdingKey(_ home: String, _ key: [UInt8]) -> [String] {
        let hex = key.map { String(format: "%02x", $0) }.joined()
        return holding(home, key) + holding(home, Array(hex.utf8)) + holding(home, Array(hex.uppercased().utf8))
    }

    @Test("a passphrase restore on a handheld that has or had an app password never writes the key to the data directory: unlocked it keeps card.key a marker; locked it needs the app password (refused without, nothing changed); after keys-destroyed it is refused, and restoring into an empty data directory as the technician guide says works, sealed")
    func passphraseRestoreOnAPasswordDevice() throws {
        let directory = TemporaryDirectory("e2e-restore-password-device")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        let card = directory.path + "/card"
        try FileManager.default.createDirectory(atPath: card, withIntermediateDirectories: true)
        try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        try #require(try run(device, ["card", "init", "--card", card], stdin: passphrase + "\n").succeeded)
        try #require(try run(device, ["order", "new", "--customer", device.customer, "--line", "PN-10000:3", "--confirm"]).succeeded)
        let dataKey = try sessionKey(device)
        #expect(holdingKey(device.home, dataKey).isEmpty, "the control: the key is not in the data directory before any restore")
        let cardKey = device.home + "/card.key"

        // Unlocked, card.key lost: the passphrase's key is the data key; card.key becomes the marker again.
        try FileManager.default.removeItem(atPath: cardKey)
        let unlocked = try run(device, ["restore", "--force", "--passphrase-stdin"], stdin: passphrase + "\n")
        try #require(unlocked.succeeded, "\(unlocked.status) \(unlocked.stderr)")
        #expect(holdingKey(device.home, dataKey).isEmpty, "the key in plaintext after an unlocked restore: \(holdingKey(device.home, dataKey))")
        #expect(bytes(cardKey).count != 32)
        #expect(try run(device, ["order", "list", "--json"]).stdout.contains(device.customer))

        // Locked, card.key lost: refused without the app password, the data directory as it was.
        try FileManager.default.removeItem(atPath: cardKey)
        _ = try run(device, ["lock"])
        let before = tree(device.home)
        let locked = try run(device, ["restore", "--force", "--passphrase-stdin"], stdin: passphrase + "\n")
        #expect(locked.status == 77 && locked.stderr.contains("--app-password-stdin"), "\(locked.status) \(locked.stderr)")
        #expect(tree(device.home) == before, "a refused restore changed the data directory")
        #expect(holdingKey(device.home, dataKey).isEmpty, "\(holdingKey(device.home, dataKey))")
        // With the device's app password on the next line: restored, unlocked, the key still only under the password.
        let withPassword = try run(device, ["restore", "--force", "--passphrase-stdin", "--app-password-stdin"], stdin: passphrase + "\n" + password + "\n")
        try #require(withPassword.succeeded, "\(withPassword.status) \(withPassword.stderr)")
        #expect(holdingKey(device.home, dataKey).isEmpty, "the key in plaintext after a restore with the app password: \(holdingKey(device.home, dataKey))")
        #expect(try run(device, ["order", "list", "--json"]).stdout.contains(device.customer))

        // Keys destroyed (three wrong passwords), card.key gone with the rest: refused, nothing written.
        try #require(try run(device, ["config", "set", "password_attempts", "3"]).succeeded)
        _ = try run(device, ["lock"])
        for _ in 0..<3 { _ = try run(device, ["unlock"], stdin: "nie to hasło\n") }
        try #require(FileManager.default.fileExists(atPath: device.home + "/keys-destroyed"))
        try? FileManager.default.removeItem(atPath: cardKey)
        let destroyedBefore = tree(device.home)
        for stdin in [passphrase + "\n", passphrase + "\n" + password + "\n"] {
            let flags = stdin.hasSuffix(password + "\n") ? ["--app-password-stdin"] : []
            let destroyed = try run(device, ["restore", "--force", "--passphrase-stdin"] + flags, stdin: stdin)
            #expect(destroyed.status == 77 && destroyed.stderr.contains("Move the data directory aside"), "\(destroyed.status) \(destroyed.stderr)")
            #expect(tree(device.home) == destroyedBefore, "a refused restore changed the data directory")
            #expect(holdingKey(device.home, dataKey).isEmpty, "the key in plaintext on a keys-destroyed device: \(holdingKey(device.home, dataKey))")
        }
        // The technician guide's way: the data directory aside, restored into an empty one, sealed under the new password.
        try FileManager.default.moveItem(atPath: device.home, toPath: directory.path + "/device.destroyed")
        let newPassword = "nowe hasło 2026"
        let fresh = try run(device, ["restore", "--from", card, "--passphrase-stdin", "--app-password-stdin"], stdin: passphrase + "\n" + newPassword + "\n")
        try #require(fresh.succeeded, "\(fresh.status) \(fresh.stderr)")
        #expect(holdingKey(device.home, dataKey).isEmpty, "\(holdingKey(device.home, dataKey))")
        #expect(holdingKey(directory.path + "/device.destroyed", dataKey).isEmpty)
        #expect(try run(device, ["order", "list", "--json"]).stdout.contains(device.customer))
    }

    /// Every file under `root` with its bytes, for "nothing changed".
    func tree(_ root: String) -> [String: Data] {
        var found: [String: Data] = [:]
        for path in files(root) {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                found[path] = FileManager.default.contents(atPath: path) ?? Data()
            }
        }
        return found
    }

    @Test("a card from another device (same device id, another key) in an unlocked handheld with an app password: captures warn and never write to it, restore without or with a wrong passphrase is refused; the card and the data directory are byte-identical")
    func cardOfAnotherDevice() throws {
        let directory = TemporaryDirectory("e2e-foreign-card")
        let first = try seeded(directory)
        let second = Device(home: directory.path + "/second", runtime: first.runtime + "-second", customer: first.customer, customerName: first.customerName)
        defer {
            try? FileManager.default.removeItem(atPath: first.runtime)
            try? FileManager.default.removeItem(atPath: second.runtime)
        }
        let seededSecond = try ChildProcess.run(sim, ["seed", "--home", second.home, "--customers", "30", "--products", "40", "--seed", "3", "--json"], timeoutSeconds: 120)
        try #require(seededSecond.succeeded, "\(seededSecond.stderr)")
        let card = directory.path + "/card"
        try FileManager.default.createDirectory(atPath: card, withIntermediateDirectories: true)
        for device in [first, second] {
            try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        }
        try #require(try run(first, ["card", "init", "--card", card], stdin: passphrase + "\n").succeeded)
        try #require(try run(first, ["order", "new", "--customer", first.customer, "--line", "PN-10000:1", "--confirm"]).succeeded)

        // The first handheld's card in the second one.
        try #require(try run(second, ["config", "set", "card", card]).succeeded)
        let cardBefore = tree(card)
        let captured = try run(second, ["order", "new", "--customer", second.customer, "--line", "PN-10000:2", "--confirm"])
        #expect(captured.succeeded && captured.stderr.contains("not yet on the card"), "\(captured.status) \(captured.stderr)")
        #expect(tree(card) == cardBefore, "the second handheld wrote to another device's card")

        let homeBefore = tree(second.home)
        let noPassphrase = try run(second, ["restore", "--force"])
        #expect(noPassphrase.status == 65 && noPassphrase.stderr.contains("does not open"), "\(noPassphrase.status) \(noPassphrase.stderr)")
        let wrongPassphrase = try run(second, ["restore", "--force", "--passphrase-stdin"], stdin: "nie to hasło zapasowe\n")
        #expect(wrongPassphrase.status == 65, "\(wrongPassphrase.status) \(wrongPassphrase.stderr)")
        #expect(tree(card) == cardBefore && tree(second.home) == homeBefore, "a refused restore changed something")
        // The right passphrase: the card's key is not the second handheld's data key, so keeping it would
        // put it in plaintext beside data.key: refused, nothing changed, the first's key nowhere in the second.
        let firstKey = try sessionKey(first)
        let rightPassphrase = try run(second, ["restore", "--force", "--passphrase-stdin"], stdin: passphrase + "\n")
        #expect(rightPassphrase.status == 77 && rightPassphrase.stderr.contains("not under this device's data key"), "\(rightPassphrase.status) \(rightPassphrase.stderr)")
        #expect(tree(card) == cardBefore && tree(second.home) == homeBefore, "a refused restore changed something")
        #expect(holdingKey(second.home, firstKey).isEmpty, "\(holdingKey(second.home, firstKey))")
        #expect(files(card).allSatisfy { FileManager.default.contents(atPath: $0)?.range(of: Data(first.customerName.utf8)) == nil })
    }

    /// Eight digits no sealed byte stream will show by chance: the scan for it after unlock means something.
    static let simPIN = "73921548"

    func simulatedModem(attempts: Int) throws -> SimulatedModem {
        var config = SimulatedModemConfig()
        config.pin = Self.simPIN
        config.dialect = .simcom
        config.pinAttempts = attempts
        config.timeScale = 0.01
        config.guardSeconds = 0.03
        let modem = try SimulatedModem(config: config)
        modem.start()
        return modem
    }

    @Test("the SIM PIN at unlock, with the simulated modem on a pty: asked only when the SIM wants it, sent once; never at the attempts floor; a wrong one not resent; the device unlocks whatever the SIM says")
    func simPINAtUnlock() throws {
        let directory = TemporaryDirectory("e2e-sim-unlock")
        let device = try seeded(directory)
        defer { try? FileManager.default.removeItem(atPath: device.runtime) }
        let lock = directory.path + "/lock"
        try FileManager.default.createDirectory(atPath: lock, withIntermediateDirectories: true)
        try #require(try run(device, ["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        let environment = ["SATCHEL_HARDWARE": hardware]
        func unlock(_ stdin: String) throws -> ChildProcess.Result {
            _ = try run(device, ["lock"])
            return try run(device, ["unlock", "--lock-dir", lock, "--modem-timeout", "20"], stdin: stdin, extra: environment)
        }

        do {
            let modem = try simulatedModem(attempts: 3)
            defer { modem.stop() }
            try #require(try run(device, ["config", "set", "modem_port", modem.path]).succeeded)
            try #require(try run(device, ["config", "set", "modem_profile", "simcom-sim800"]).succeeded)
            let wrong = try unlock(password + "\n0000\n")
            #expect(wrong.succeeded && wrong.stdout.contains("unlocked") && wrong.stderr.contains("rejected"), "\(wrong.stdout) \(wrong.stderr)")
            #expect(modem.stats.pinCommands == 1, "a wrong PIN was sent \(modem.stats.pinCommands) times")
            let right = try unlock(password + "\n" + Self.simPIN + "\n")
            #expect(right.succeeded && right.stdout.contains("SIM unlocked (2 attempts were left)"), "\(right.stdout) \(right.stderr)")
            #expect(modem.stats.pinCommands == 2)
            // The SIM is ready now: no PIN asked, none sent.
            let ready = try unlock(password + "\n")
            #expect(ready.succeeded && ready.stdout.contains("SIM is ready"), "\(ready.stdout) \(ready.stderr)")
            #expect(modem.stats.pinCommands == 2)
            // The PIN is written nowhere: not in the data directory, not beside the session key.
            #expect(holding(device.home, Array(Self.simPIN.utf8)).isEmpty && holding(device.runtime, Array(Self.simPIN.utf8)).isEmpty)
            // A wrong app password never reaches the modem.
            let wrongPassword = try unlock("zła\n1234\n")
            #expect(wrongPassword.status == 77)
            #expect(modem.stats.pinCommands == 2)
        }
        do {
            // One attempt left: at the floor, the PIN is not even asked, and the device still unlocks.
            let modem = try simulatedModem(attempts: 1)
            defer { modem.stop() }
            try #require(try run(device, ["config", "set", "modem_port", modem.path]).succeeded)
            let floor = try unlock(password + "\n" + Self.simPIN + "\n")
            #expect(floor.succeeded && floor.stderr.contains("PIN not sent: 1 attempt left"), "\(floor.stdout) \(floor.stderr)")
            #expect(modem.stats.pinCommands == 0 && modem.stats.pinSentAtOrBelowFloor == 0)
            #expect(try run(device, ["status"]).succeeded, "the device is unlocked")
            // No PIN on standard input: nothing sent, said so.
        }
        do {
            let modem = try simulatedModem(attempts: 3)
            defer { modem.stop() }
            try #require(try run(device, ["config", "set", "modem_port", modem.path]).succeeded)
            let none = try unlock(password + "\n")
            #expect(none.succeeded && none.stderr.contains("none given, nothing sent"), "\(none.stdout) \(none.stderr)")
            #expect(modem.stats.pinCommands == 0)
        }
    }
}
