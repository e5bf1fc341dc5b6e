import Foundation
import Modem
import ModemSimulator
import SatchelTesting
import Testing

/// Runs a built executable with stdin, a deadline (killed when it passes) and its output.
func runProcess(_ name: String, _ arguments: [String], stdin: String = "", timeout: Double = 30, directory: String? = nil,
                environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: BuiltExecutable.path(name))
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if let environment { process.environment = environment }
    let input = Pipe(), output = Pipe(), errors = Pipe()
    process.standardInput = input
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    input.fileHandleForWriting.write(Data(stdin.utf8))
    try input.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
            String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
}

@Suite("satchel modem as a process against the simulated modem", .serialized)
struct ModemCommandLineTests {
    let lock = TemporaryDirectory("modem-lock")

    func common(_ simulator: RunningSimulator) -> [String] {
        ["--port", simulator.path, "--lock-dir", lock.path, "--hardware", repositoryHardware.path, "--timeout", "1",
         "--timeout-scale", "0.05", "--guard-ms", "40"]
    }

    @Test("probe --json prints identity, SIM state, attempts, registration, dBm and technology")
    func probe() throws {
        let simulator = try RunningSimulator { $0.dialect = .simcom; $0.pinAttempts = 3; $0.link = .gprs; $0.guardSeconds = 0.04 }
        let run = try runProcess("satchel", ["modem", "probe"] + common(simulator) + ["--json"])
        try #require(run.status == 0, "\(run.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(object["manufacturer"] as? String == "SIMCOM_Ltd")
        #expect(object["model"] as? String == "SIMCOM_SIM800L")
        #expect(object["profile"] as? String == "simcom-sim800")
        #expect((object["imei"] as? String)?.count == 15)
        #expect(object["sim"] as? String == "pin_required")
        #expect(object["pin_attempts"] as? Int == 3)
        #expect(object["registration"] as? String == "not_registered")
        #expect(object.keys.contains("rssi_dbm") && object.keys.contains("technology"))
    }

    @Test("unlock refuses at the floor (exit 81, attempts named), then a wrong PIN goes once (exit 82), nothing on argv")
    func unlockRefusals() throws {
        let simulator = try RunningSimulator { $0.dialect = .quectel; $0.pinAttempts = 2; $0.guardSeconds = 0.04 }
        let wrong = try runProcess("satchel", ["modem", "unlock"] + common(simulator), stdin: "9999\n")
        #expect(wrong.status == 82, "\(wrong.stderr)")
        #expect(wrong.stderr.contains("1 attempts left") && !wrong.stderr.contains("9999"))
        let refused = try runProcess("satchel", ["modem", "unlock"] + common(simulator), stdin: "1234\n")
        #expect(refused.status == 81, "\(refused.stderr)")
        #expect(refused.stderr.contains("1 attempt left"))
        #expect(simulator.modem.stats.pinCommands == 1 && simulator.modem.stats.pukLocks == 0)
        let bad = try runProcess("satchel", ["modem", "unlock"] + common(simulator), stdin: "12ab\n")
        #expect(bad.status == 65)
    }

    @Test("unlock then connect: bytes go through the session to a loopback echo server and back")
    func connect() throws {
        let echo = try LoopbackServer(mode: .echo)
        defer { echo.stop() }
        let simulator = try RunningSimulator { $0.dialect = .simcom; $0.link = .edge; $0.guardSeconds = 0.04 }
        let unlocked = try runProcess("satchel", ["modem", "unlock"] + common(simulator) + ["--json"], stdin: "1234\n")
        try #require(unlocked.status == 0, "\(unlocked.stderr)")
        #expect(unlocked.stdout.contains("\"pin_sent\":true"))
        let run = try runProcess("satchel", ["modem", "connect"] + common(simulator) + [
            "--apn", "internet", "--user", "rep", "--password-stdin", "--to", echo.address, "--send", "Zażółć — заказ", "--payload-bytes", "2000", "--json",
        ], stdin: "s3cret\n")
        try #require(run.status == 0, "\(run.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(object["echo_ok"] as? Bool == true)
        #expect(object["bytes_received"] as? Int == 2000 + "Zażółć — заказ".utf8.count)
        #expect(object["technology"] as? String == "EDGE")
        #expect(object["hung_up_cleanly"] as? Bool == true)
        #expect(echo.connections == 1)
    }

    @Test("connect with a locked SIM exits 80; a port in use exits 75; no such port exits 66")
    func refusals() throws {
        let simulator = try RunningSimulator { $0.guardSeconds = 0.04 }
        let locked = try runProcess("satchel", ["modem", "connect"] + common(simulator) + ["--apn", "internet", "--to", "127.0.0.1:9"])
        #expect(locked.status == 80, "\(locked.stderr)")
        let held = try SerialPort(path: simulator.path, lockDirectory: lock.path)
        defer { held.close() }
        let busy = try runProcess("satchel", ["modem", "probe"] + common(simulator))
        #expect(busy.status == 75 && busy.stderr.contains("in use by process \(getpid())"), "\(busy.stderr)")
        let missing = try runProcess("satchel", ["modem", "probe", "--port", "/dev/satchel-none", "--lock-dir", lock.path])
        #expect(missing.status == 66)
    }

    @Test("satchel-sim modem-chaos: a short run has no hang, no unsafe PIN and no PUK lock")
    func chaos() throws {
        let run = try runProcess("satchel-sim", ["modem-chaos", "--sessions", "12", "--seed", "5", "--json", "--hardware", repositoryHardware.path], timeout: 60)
        try #require(run.status == 0, "\(run.stdout) \(run.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(object["sessions"] as? Int == 12)
        #expect(object["hangs"] as? Int == 0 && object["pin_sent_at_or_below_floor"] as? Int == 0 && object["puk_locks"] as? Int == 0)
        #expect((object["connected"] as? Int ?? 0) > 0)
    }
}
