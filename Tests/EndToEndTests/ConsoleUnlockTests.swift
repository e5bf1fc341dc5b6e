import Foundation
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
}
