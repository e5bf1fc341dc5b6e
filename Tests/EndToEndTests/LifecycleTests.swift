import Foundation
import ModemSimulator
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// Issue 14's device lifecycle through the real `satchel`: the daemon under systemd's
/// notification protocol, the doctor, the role workplaces.
@Suite("Device lifecycle: systemd notifications, doctor, role workplaces", .serialized)
struct LifecycleTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")

    func seeded(_ directory: TemporaryDirectory) throws -> String {
        let home = directory.path + "/device"
        let seeded = try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "12", "--products", "20", "--history", "1", "--seed", "14"], timeoutSeconds: 60)
        try #require(seeded.succeeded, "satchel-sim seed failed: \(seeded.stderr)")
        return home
    }

    /// A datagram socket bound where `$NOTIFY_SOCKET` will point, as systemd's manager holds one.
    final class NotifySocket {
        let fd: Int32
        let name: String

        /// `path` starting with "@" binds in the abstract namespace.
        init(_ path: String) throws {
            name = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(path.utf8)
            let abstract = bytes.first == UInt8(ascii: "@")
            if abstract { bytes[0] = 0 }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1))
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
        }

        deinit { close(fd) }

        /// Every datagram waiting, without blocking.
        func received() -> [String] {
            var messages: [String] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if got <= 0 { return messages }
                messages.append(String(decoding: buffer[0..<got], as: UTF8.self))
            }
        }
    }

    @Test("under systemd the daemon says READY=1 after its first check and WATCHDOG=1 after every one, waiting half the watchdog interval")
    func daemonNotifiesSystemd() throws {
        let directory = TemporaryDirectory("life-notify")
        let home = try seeded(directory)
        let socket = try NotifySocket(directory.path + "/notify")
        // --interval 60 with a 2 s watchdog: the wait must be cut to 1 s, or three checks would
        // take two minutes and the run would time out.
        let started = ChildProcess.monotonicSeconds()
        let daemon = try ChildProcess.run(satchel, ["daemon", "--ticks", "3", "--interval", "60"],
                                          environment: ["SATCHEL_HOME": home, "NOTIFY_SOCKET": socket.name, "WATCHDOG_USEC": "2000000"],
                                          timeoutSeconds: 30)
        try #require(daemon.succeeded, "\(daemon.stdout) \(daemon.stderr)")
        #expect(ChildProcess.monotonicSeconds() - started < 20)
        let messages = socket.received()
        try #require(messages.count == 3, "\(messages)")
        #expect(messages[0].split(separator: "\n").contains("READY=1"), "\(messages[0])")
        #expect(messages[0].contains("STATUS=checking the card every 1 s"), "\(messages[0])")
        #expect(messages[1] == "WATCHDOG=1" && messages[2] == "WATCHDOG=1", "\(messages)")
    }

    @Test("the notification reaches an abstract-namespace socket (@name), and a watchdog meant for another process is ignored")
    func daemonNotifiesAbstractSocket() throws {
        let directory = TemporaryDirectory("life-notify-abstract")
        let home = try seeded(directory)
        let socket = try NotifySocket("@satchel-notify-test-\(getpid())")
        let daemon = try ChildProcess.run(satchel, ["daemon", "--ticks", "1", "--interval", "60"],
                                          environment: ["SATCHEL_HOME": home, "NOTIFY_SOCKET": socket.name, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"],
                                          timeoutSeconds: 30)
        try #require(daemon.succeeded, "\(daemon.stdout) \(daemon.stderr)")
        let messages = socket.received()
        try #require(messages.count == 1, "\(messages)")
        #expect(messages[0].contains("READY=1") && messages[0].contains("every 60 s"), "\(messages[0])")
    }

    @Test("without $NOTIFY_SOCKET the daemon runs as before and sends nothing")
    func daemonWithoutSystemd() throws {
        let directory = TemporaryDirectory("life-notify-none")
        let home = try seeded(directory)
        let daemon = try ChildProcess.run(satchel, ["daemon", "--ticks", "1"], environment: ["SATCHEL_HOME": home, "NOTIFY_SOCKET": ""], timeoutSeconds: 30)
        #expect(daemon.succeeded, "\(daemon.stdout) \(daemon.stderr)")
    }

    @Test("hardware/flash/flash.sh prepares a directory as a handheld's root: tree, modes, contents read back by satchel, second flash refused, unit verified")
    func flashScriptIntoDirectory() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let check = try ChildProcess.run("/bin/sh", [repository + "/hardware/flash/check.sh", satchel], timeoutSeconds: 120)
        #expect(check.succeeded && check.stdout.contains("flash check: ok"), "\(check.stdout) \(check.stderr)")
    }

    // MARK: doctor

    static let passphrase = "hasło zapasowe — резерв"
    var repositoryHardware: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/hardware"
    }

    /// Every file under `path` with its bytes and mode, for "the doctor changed nothing".
    func tree(_ path: String) -> [String: String] {
        var found: [String: String] = [:]
        guard let walker = FileManager.default.enumerator(atPath: path) else { return found }
        while let relative = walker.nextObject() as? String {
            let full = path + "/" + relative
            let attributes = try? FileManager.default.attributesOfItem(atPath: full)
            let mode = (attributes?[.posixPermissions] as? Int).map { String($0, radix: 8) } ?? "?"
            let isDirectory = (attributes?[.type] as? FileAttributeType) == .typeDirectory
            found[relative] = mode + (isDirectory ? "/" : " " + fileBytes(full).map { String($0, radix: 16) }.joined())
        }
        return found
    }

    struct DoctorDevice {
        var home: String
        var card: FakeCard
        var battery: FakeBattery
        var lock: String
    }

    /// A seeded device with its card, its sync key, a battery at 80% and, when given, a modem port.
    func doctorDevice(_ directory: TemporaryDirectory, modemPort: String?) throws -> DoctorDevice {
        let home = try seeded(directory)
        let device = DoctorDevice(home: home, card: try FakeCard(path: directory.path + "/card"),
                                  battery: try FakeBattery(directory: directory.path + "/battery", percent: 80, status: .discharging),
                                  lock: directory.path + "/lock")
        try FileManager.default.createDirectory(atPath: device.lock, withIntermediateDirectories: true)
        func run(_ arguments: [String], stdin: String? = nil) throws {
            let result = try ChildProcess.run(satchel, arguments, environment: ["SATCHEL_HOME": home], stdin: stdin, timeoutSeconds: 60)
            try #require(result.succeeded, "\(arguments): \(result.stderr)")
        }
        try run(["card", "init", "--card", device.card.path], stdin: Self.passphrase + "\n")
        try run(["visit", "--customer", try Database(path: home + "/satchel.db").text("SELECT id FROM customers ORDER BY id LIMIT 1"), "--outcome", "no_order", "--note", "Wizyta kontrolna — проверка"])
        try run(["keys"])
        try run(["config", "set", "battery", device.battery.directory])
        if let modemPort {
            try run(["config", "set", "modem_port", modemPort])
            try run(["config", "set", "modem_profile", "simcom-sim800"])
        }
        return device
    }

    func doctor(_ device: DoctorDevice, timeout: Double = 60) throws -> (result: ChildProcess.Result, findings: [String: [String: Any]], json: [String: Any]) {
        let result = try ChildProcess.run(satchel, ["doctor", "--json", "--lock-dir", device.lock, "--modem-timeout", "1", "--probe-timeout", "10"],
                                          environment: ["SATCHEL_HOME": device.home, "SATCHEL_HARDWARE": repositoryHardware], timeoutSeconds: timeout)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stdout) \(result.stderr)")
        var findings: [String: [String: Any]] = [:]
        for finding in object["findings"] as? [[String: Any]] ?? [] {
            if let check = finding["check"] as? String, findings[check] == nil { findings[check] = finding }
        }
        return (result, findings, object)
    }

    @Test("doctor with the simulated modem: every check reported, the SIM's PIN request and attempts named, no PIN sent, home and card byte-identical")
    func doctorWithModem() throws {
        let directory = TemporaryDirectory("life-doctor-modem")
        var config = SimulatedModemConfig()
        config.dialect = .simcom
        config.pinAttempts = 3
        config.timeScale = 0.01
        config.guardSeconds = 0.03
        let modem = try SimulatedModem(config: config)
        modem.start()
        defer { modem.stop() }
        let device = try doctorDevice(directory, modemPort: modem.path)
        let home = tree(device.home), card = tree(device.card.path)

        let (result, findings, json) = try doctor(device)
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(json["ok"] as? Bool == true && json["severity"] as? String == "warning")
        for check in ["data directory", "database", "working set", "last sync", "unsent documents", "clock", "device key", "hub pin",
                      "card", "card space", "last snapshot", "battery", "modem", "sim"] {
            #expect(findings[check] != nil, "no \(check) finding: \(findings.keys.sorted())")
        }
        #expect(findings["database"]?["severity"] as? String == "ok")
        #expect(findings["card"]?["severity"] as? String == "ok", "\(findings["card"] ?? [:])")
        #expect(findings["battery"]?["detail"] as? String == "80%")
        #expect((findings["modem"]?["detail"] as? String ?? "").contains("SIMCOM"), "\(findings["modem"] ?? [:])")
        let sim = try #require(findings["sim"])
        #expect(sim["severity"] as? String == "warning" && (sim["detail"] as? String ?? "").contains("3 PIN attempts left"), "\(sim)")
        #expect((sim["next"] as? String ?? "").contains("satchel modem unlock"))
        #expect(findings["unsent documents"]?["severity"] as? String == "warning")
        #expect(findings["hub pin"]?["severity"] as? String == "warning")
        #expect(modem.stats.pinCommands == 0, "the doctor sent a PIN")
        #expect(tree(device.home) == home, "doctor changed the data directory")
        #expect(tree(device.card.path) == card, "doctor changed the card")

        // The text form says the same, one line per finding with the next step under it.
        let text = try ChildProcess.run(satchel, ["doctor", "--lock-dir", device.lock, "--modem-timeout", "1"],
                                        environment: ["SATCHEL_HOME": device.home, "SATCHEL_HARDWARE": repositoryHardware], timeoutSeconds: 60)
        #expect(text.status == 0 && text.stdout.contains("WARNING sim: PIN required, 3 PIN attempts left") && text.stdout.contains("next: satchel modem unlock"), "\(text.stdout)")
        #expect(modem.stats.pinCommands == 0)
    }

    @Test("doctor: one PIN attempt left, a critical battery and a readable card key are problems (exit 1), each with the next step; still no PIN sent")
    func doctorProblems() throws {
        let directory = TemporaryDirectory("life-doctor-problems")
        var config = SimulatedModemConfig()
        config.dialect = .simcom
        config.pinAttempts = 1
        config.timeScale = 0.01
        config.guardSeconds = 0.03
        let modem = try SimulatedModem(config: config)
        modem.start()
        defer { modem.stop() }
        let device = try doctorDevice(directory, modemPort: modem.path)
        try device.battery.set(percent: 4, status: .discharging)
        chmod(device.home + "/card.key", 0o644)
        let home = tree(device.home)

        let (result, findings, json) = try doctor(device)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(json["ok"] as? Bool == false && json["severity"] as? String == "problem")
        let sim = try #require(findings["sim"])
        #expect(sim["severity"] as? String == "problem" && (sim["next"] as? String ?? "").contains("do not guess"), "\(sim)")
        #expect(findings["battery"]?["severity"] as? String == "problem")
        let permissions = try #require(findings["permissions"])
        #expect(permissions["severity"] as? String == "problem" && (permissions["next"] as? String ?? "").contains("chmod 600"), "\(permissions)")
        #expect(modem.stats.pinCommands == 0, "the doctor sent a PIN")
        #expect(tree(device.home) == home, "doctor changed the data directory")
    }

    @Test("doctor: a configured modem port with no modem is a problem named with what to check; no modem configured means no modem finding")
    func doctorWithoutModem() throws {
        let directory = TemporaryDirectory("life-doctor-nomodem")
        let device = try doctorDevice(directory, modemPort: "/dev/satchel-none-\(getpid())")
        let started = ChildProcess.monotonicSeconds()
        let (result, findings, _) = try doctor(device, timeout: 30)
        #expect(ChildProcess.monotonicSeconds() - started < 20)
        #expect(result.status == 1, "\(result.stderr)")
        let modem = try #require(findings["modem"])
        #expect(modem["severity"] as? String == "problem" && (modem["next"] as? String ?? "").contains("udev"), "\(modem)")

        let bare = TemporaryDirectory("life-doctor-bare")
        let plain = try doctorDevice(bare, modemPort: nil)
        let (clean, cleanFindings, _) = try doctor(plain)
        #expect(clean.status == 0, "\(clean.stdout) \(clean.stderr)")
        #expect(cleanFindings["modem"] == nil && cleanFindings["sim"] == nil)
    }

    // MARK: role workplaces

    @Test("a merchandiser's handheld, its role set at the hub and brought by a sync, refuses `order new` (exit 77, saying why) and accepts a visit; a van seller takes orders")
    func merchandiserRefusesOrders() throws {
        let directory = TemporaryDirectory("life-roles")
        let database = directory.path + "/hub.db", erp = directory.path + "/erp", home = directory.path + "/device"
        let hubBinary = BuiltExecutable.path("satchel-hub")
        let password = "hasło-синхр-Łódź"
        func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
        }
        func device(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            try ChildProcess.run(satchel, arguments, environment: ["SATCHEL_HOME": home], stdin: stdin, timeoutSeconds: 60)
        }
        try #require(try ChildProcess.run(sim, ["seed", "--home", erp, "--customers", "15", "--products", "20", "--seed", "4"], timeoutSeconds: 60).succeeded)
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R07", "--name", "Радка Петрова"], stdin: password + "\n").succeeded)
        try #require(try hub(["master", "import", "--db", database, "--from", erp + "/satchel.db", "--assign-to", "R07"]).succeeded)
        let scoped = try hub(["rep", "scope", "--db", database, "--rep", "R07", "--role", "merchandiser"])
        try #require(scoped.succeeded, "\(scoped.stderr)")
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let running = try SyncEndToEndTests.RunningHub(binary: hubBinary, database: database)
        defer { running.stop() }
        try #require(try device(["init", "--device", "MR1", "--rep", "R07"]).succeeded)
        let key = try #require(try JSONSerialization.jsonObject(with: Data(try device(["keys", "--json"]).stdout.utf8)) as? [String: Any])["public_key"] as? String ?? ""
        try #require(try hub(["device", "add", "--db", database, "--device", "MR1", "--rep", "R07", "--key", key]).succeeded)
        try #require(try device(["provision", "--hub", running.address, "--hub-key", hubKey]).succeeded)
        let loaded = try device(["sync", "--mode", "init"], stdin: password + "\n")
        try #require(loaded.succeeded, "\(loaded.stderr)")
        #expect(try Database(path: home + "/satchel.db").text("SELECT role FROM reps WHERE id = 'R07'") == "merchandiser")

        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers ORDER BY id LIMIT 1")
        let part = try Database(path: home + "/satchel.db").text("SELECT part_number FROM products ORDER BY part_number LIMIT 1")
        let changes = try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM changes")
        let refused = try device(["order", "new", "--customer", customer, "--line", "\(part):2", "--confirm"])
        #expect(refused.status == 77, "\(refused.status) \(refused.stderr)")
        #expect(refused.stderr.contains("merchandisers do not take orders; this handheld's workplace is merchandiser (set by the hub)"), "\(refused.stderr)")
        #expect(try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM changes") == changes)
        #expect(try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM orders") == 0)
        let payment = try device(["payment", "--customer", customer, "--amount", "12.50", "--receipt", "KP-1"])
        #expect(payment.status == 77 && payment.stderr.contains("merchandisers do not collect payments"), "\(payment.stderr)")

        let visit = try device(["visit", "--customer", customer, "--outcome", "no_order", "--note", "Półka uzupełniona — рафт попълнен"])
        #expect(visit.succeeded, "\(visit.stderr)")
        #expect(try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM visits") == 1)

        // The office makes the rep a van seller; the next sync brings it and orders are taken.
        try #require(try hub(["rep", "scope", "--db", database, "--rep", "R07", "--role", "van_seller"]).succeeded)
        let synced = try device(["sync", "--mode", "full"], stdin: password + "\n")
        try #require(synced.succeeded, "\(synced.stderr)")
        let order = try device(["order", "new", "--customer", customer, "--line", "\(part):2", "--confirm"])
        #expect(order.succeeded, "\(order.stderr)")
        let quote = try device(["quote", "--customer", customer, "--line", "\(part):1"])
        #expect(quote.status == 77 && quote.stderr.contains("van sellers do not make quotes; this handheld's workplace is van seller"), "\(quote.stderr)")
    }
}
