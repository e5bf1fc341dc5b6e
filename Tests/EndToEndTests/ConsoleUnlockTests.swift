import Foundation
import ModemSimulator
import SatchelTesting
import SimulatorKit
import Testing

/// The console on a device with an app password: the unlock page in front of everything,
/// wrong passwords (their message, the wait that grows with each, shown), the right one, and
/// the lock coming back while the console is open.
@Suite("satchel console with an app password, in tmux", .serialized)
struct ConsoleUnlockTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")
    let password = "Zolw-2026-kp"

    /// The screen's lines joined by spaces: a message wrapped at 32 columns reads as one again.
    func flat(_ screen: String) -> String {
        screen.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    }

    /// As `ConsoleSession.waitFor`, reading the screen as one line (`flat`).
    @discardableResult
    func waitFor(_ console: ConsoleSession, _ text: String, seconds: Double = 30) throws -> String {
        let deadline = ChildProcess.monotonicSeconds() + seconds
        var shown = ""
        while ChildProcess.monotonicSeconds() < deadline {
            shown = try console.screen()
            if flat(shown).contains(text) { return shown }
            usleep(30_000)
        }
        throw ConsoleSession.Failure.timeout(waitingFor: text, screen: shown)
    }

    func attemptsLeft(_ screen: String) -> Int? {
        guard let range = flat(screen).range(of: #"\d+ attempts? left"#, options: .regularExpression) else { return nil }
        return Int(flat(screen)[range].prefix { $0.isNumber })
    }

    @Test("locked: wrong passwords say so, how many tries are left and the growing wait; the right one opens the route; `satchel lock` meanwhile brings the unlock page back over the page, its entry kept")
    func unlockThenRouteThenLockedAgain() throws {
        let directory = TemporaryDirectory("e2e-console-unlock")
        let home = directory.path + "/device"
        let runtime = "/dev/shm/satchel-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: runtime) }
        let environment = ["SATCHEL_HOME": home, "SATCHEL_RUNTIME_DIR": runtime]
        let seeded = try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "30", "--products", "40", "--seed", "3"], timeoutSeconds: 120)
        try #require(seeded.succeeded, "\(seeded.stderr)")
        let set = try ChildProcess.run(satchel, ["password", "set"], environment: environment, stdin: password + "\n" + password + "\n", timeoutSeconds: 120)
        try #require(set.succeeded, "\(set.stderr)")
        try #require(try ChildProcess.run(satchel, ["lock"], environment: environment, timeoutSeconds: 60).succeeded)

        let console = try ConsoleSession(directory, command: "env SATCHEL_HOME=\(home) SATCHEL_RUNTIME_DIR=\(runtime) \(satchel) console")
        var screen = try console.waitFor("App password:")
        #expect(screen.contains("Satchel locked"))
        #expect(!screen.contains("Route") && !screen.contains("1."), "nothing of the data before the password:\n\(screen)")

        // A wrong one: the message, the tries left, and what the next wrong one will cost.
        try console.type("wrong-one")
        try console.keys("Enter")
        screen = try waitFor(console, "attempts left")
        #expect(flat(screen).contains("wrong app password"), "\(screen)")
        #expect(flat(screen).contains("Next wrong one: wait 0.5 s"), "\(screen)")
        let left = try #require(attemptsLeft(screen), "\(screen)")
        #expect(!screen.contains("wrong-one"), "the password is never shown:\n\(screen)")

        // The second: while it is checked the screen says how long a wrong one waits; then longer.
        try console.type("wrong-two")
        try console.keys("Enter")
        screen = try waitFor(console, "if wrong, wait 0.5 s", seconds: 10)
        #expect(flat(screen).contains("Checking the password... if wrong, wait 0.5 s"), "\(screen)")
        screen = try waitFor(console, "Next wrong one: wait 1 s", seconds: 30)
        #expect(flat(screen).contains("Next wrong one: wait 1 s"), "\(screen)")
        #expect(attemptsLeft(screen) == left - 1, "\(screen)")

        // The right one: the route, from the now-open database.
        try console.type(password)
        try console.keys("Enter")
        screen = try console.waitFor("Route")
        #expect(screen.split(separator: "\n").dropFirst().first?.hasPrefix("1.") == true, "the first stop of the route:\n\(screen)")
        #expect(!screen.contains("App password"))
        #expect(try ChildProcess.run(satchel, ["status"], environment: environment, timeoutSeconds: 60).succeeded, "unlocked for the commands too")

        // Locked from outside (as the idle timer does) while the rep is typing a search: within
        // the console's 5 s tick, with no key pressed, the unlock page covers it; after the
        // password the search is there as it was.
        try console.keys("2")
        try console.waitFor("Find customer")
        try console.type("zz")
        try console.waitFor("zz_")
        try #require(try ChildProcess.run(satchel, ["lock"], environment: environment, timeoutSeconds: 60).succeeded)
        screen = try console.waitFor("App password:", seconds: 15)
        #expect(flat(screen).contains("LOCKED"), "\(screen)")
        #expect(!screen.contains("zz"), "\(screen)")
        try console.type(password)
        try console.keys("Enter")
        screen = try console.waitFor("Unlocked")
        #expect(screen.contains("Find customer") && screen.contains("zz_"), "\(screen)")

        // Locked again, found by a key this time: the key is dropped, not typed into the search.
        try #require(try ChildProcess.run(satchel, ["lock"], environment: environment, timeoutSeconds: 60).succeeded)
        try console.type("q")
        screen = try console.waitFor("App password:", seconds: 15)
        #expect(!screen.contains("*"), "the key that found it locked is not taken as the password:\n\(screen)")
        try console.type(password)
        try console.keys("Enter")
        screen = try console.waitFor("Unlocked")
        #expect(screen.contains("zz_") && !screen.contains("zzq"), "\(screen)")
    }

    /// A locked console on a handheld whose modem (the simulated one, on a pty) has a SIM
    /// asking for its PIN with `attempts` left.
    func lockedConsoleWithModem(_ directory: TemporaryDirectory, attempts: Int) throws -> (console: ConsoleSession, modem: SimulatedModem, device: AppPasswordTests.Device) {
        let device = try AppPasswordTests().seeded(directory)
        let lockDirectory = directory.path + "/lock"
        try FileManager.default.createDirectory(atPath: lockDirectory, withIntermediateDirectories: true)
        func run(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            try ChildProcess.run(satchel, arguments, environment: device.environment, stdin: stdin, timeoutSeconds: 120)
        }
        try #require(try run(["password", "set"], stdin: password + "\n" + password + "\n").succeeded)
        let modem = try DeviceKeySealTests().simulatedModem(attempts: attempts)
        try #require(try run(["config", "set", "modem_port", modem.path]).succeeded)
        try #require(try run(["config", "set", "modem_profile", "simcom-sim800"]).succeeded)
        try #require(try run(["lock"]).succeeded)
        let console = try ConsoleSession(directory, command: "env SATCHEL_HOME=\(device.home) SATCHEL_RUNTIME_DIR=\(device.runtime) SATCHEL_HARDWARE=\(DeviceKeySealTests().hardware) \(satchel) console --lock-dir \(lockDirectory)")
        return (console, modem, device)
    }

    @Test("the SIM PIN at unlock, simulated modem on a pty: after the right password the console asks for it, hidden; a wrong one is sent once and said, the device unlocked anyway; at the next unlock the right one unlocks the SIM; a ready SIM is not asked")
    func simPINAfterThePassword() throws {
        let directory = TemporaryDirectory("e2e-console-sim-pin")
        let (console, modem, device) = try lockedConsoleWithModem(directory, attempts: 3)
        defer { modem.stop(); try? FileManager.default.removeItem(atPath: device.runtime) }
        try console.waitFor("App password:")
        try console.type(password)
        try console.keys("Enter")
        var screen = try waitFor(console, "SIM PIN (3 attempts left):")
        #expect(modem.stats.pinCommands == 0, "asked, nothing sent yet")
        #expect(!screen.contains("Route"), "the PIN page before the route:\n\(screen)")
        // A wrong PIN, shown as stars only: sent once, the SIM's refusal said over the route.
        try console.type("0000")
        try waitFor(console, "****_")
        #expect(!(try console.screen()).contains("0000"))
        try console.keys("Enter")
        screen = try waitFor(console, "the SIM rejected the PIN")
        #expect(screen.contains("Route") && flat(screen).contains("2 attempts left"), "\(screen)")
        #expect(modem.stats.pinCommands == 1 && modem.stats.wrongPins == 1)

        // Locked again: password, then the PIN page with what the SIM has left; the right PIN unlocks it.
        try #require(try ChildProcess.run(satchel, ["lock"], environment: device.environment, timeoutSeconds: 60).succeeded)
        try console.waitFor("App password:", seconds: 15)
        try console.type(password)
        try console.keys("Enter")
        try waitFor(console, "SIM PIN (2 attempts left):")
        try console.type(DeviceKeySealTests.simPIN)
        try console.keys("Enter")
        screen = try waitFor(console, "SIM unlocked (2 attempts were left)")
        #expect(!screen.contains(DeviceKeySealTests.simPIN), "\(screen)")
        #expect(modem.stats.pinCommands == 2)

        // The SIM is ready now: the password alone unlocks, no PIN asked, none sent.
        try #require(try ChildProcess.run(satchel, ["lock"], environment: device.environment, timeoutSeconds: 60).succeeded)
        try console.waitFor("App password:", seconds: 15)
        try console.type(password)
        try console.keys("Enter")
        screen = try waitFor(console, "Unlocked")
        #expect(!flat(screen).contains("SIM PIN"), "\(screen)")
        #expect(modem.stats.pinCommands == 2)
    }

    @Test("the SIM PIN at unlock at the attempts floor: with 2 attempts a wrong PIN leaves 1, and at the next unlock the console does not ask or send, says why, and opens the route; Esc skips the PIN, nothing sent")
    func simPINAttemptsFloor() throws {
        let directory = TemporaryDirectory("e2e-console-sim-floor")
        let (console, modem, device) = try lockedConsoleWithModem(directory, attempts: 2)
        defer { modem.stop(); try? FileManager.default.removeItem(atPath: device.runtime) }
        try console.waitFor("App password:")
        try console.type(password)
        try console.keys("Enter")
        try waitFor(console, "SIM PIN (2 attempts left):")
        // Esc: nothing sent, said so; the route.
        try console.keys("Escape")
        var screen = try waitFor(console, "none given, nothing sent")
        #expect(screen.contains("Route"), "\(screen)")
        #expect(modem.stats.pinCommands == 0)

        try #require(try ChildProcess.run(satchel, ["lock"], environment: device.environment, timeoutSeconds: 60).succeeded)
        try console.waitFor("App password:", seconds: 15)
        try console.type(password)
        try console.keys("Enter")
        try waitFor(console, "SIM PIN (2 attempts left):")
        try console.type("1111")
        try console.keys("Enter")
        try waitFor(console, "the SIM rejected the PIN")
        #expect(modem.stats.pinCommands == 1)

        // One attempt left: at the floor the PIN is not even asked; the device unlocks.
        try #require(try ChildProcess.run(satchel, ["lock"], environment: device.environment, timeoutSeconds: 60).succeeded)
        try console.waitFor("App password:", seconds: 15)
        try console.type(password)
        try console.keys("Enter")
        screen = try waitFor(console, "PIN not sent: 1 attempt left")
        #expect(screen.contains("Route") && !flat(screen).contains("SIM PIN ("), "\(screen)")
        #expect(modem.stats.pinCommands == 1 && modem.stats.pinSentAtOrBelowFloor == 0)
        #expect(try ChildProcess.run(satchel, ["status"], environment: device.environment, timeoutSeconds: 60).succeeded, "the device is unlocked")
    }
}
