import Foundation
import Modem
import ModemSimulator
import SatchelTesting
import Testing
import Transport

@Suite("SIM PIN safety against the simulated modem")
struct PINSafetyTests {
    func unlock(_ dialect: SimDialect, attempts: Int, pin: String, faults: Set<SimFault> = [], profile: String? = nil,
                adjust: (inout ModemConfig) -> Void = { _ in }) throws -> (Result<UnlockOutcome, ModemError>, SimulatedModemStats) {
        let simulator = try RunningSimulator {
            $0.dialect = dialect
            $0.pinAttempts = attempts
            $0.faults = faults
        }
        var config = fastConfig()
        adjust(&config)
        let modem = try openModem(simulator, profile: profile ?? [SimDialect.simcom: "simcom-sim800", .quectel: "quectel-ec21", .huawei: "huawei-e173", .generic: "generic"][dialect]!, config: config)
        defer { modem.close() }
        try modem.start()
        let result: Result<UnlockOutcome, ModemError>
        do { result = .success(try modem.unlock(pin: SIMPIN(pin))) } catch { result = .failure(error) }
        return (result, simulator.modem.stats)
    }

    @Test("the right PIN is sent once and unlocks, on every dialect", arguments: SimDialect.allCases)
    func unlocks(dialect: SimDialect) throws {
        let (result, stats) = try unlock(dialect, attempts: 3, pin: "1234")
        #expect(try result.get() == .unlocked(attemptsBefore: 3))
        #expect(stats.pinCommands == 1)
    }

    @Test("a wrong PIN is sent once and never again; the error names the attempts left")
    func rejectedNotResent() throws {
        let (result, stats) = try unlock(.quectel, attempts: 3, pin: "9999")
        #expect(throws: ModemError.pinRejected(attemptsLeft: 2)) { try result.get() }
        #expect(stats.pinCommands == 1 && stats.wrongPins == 1 && stats.pukLocks == 0)
    }

    @Test("with attempts at the floor nothing is sent, and the message names the attempts left", arguments: SimDialect.allCases)
    func refusedAtFloor(dialect: SimDialect) throws {
        let (result, stats) = try unlock(dialect, attempts: 1, pin: "1234")
        #expect(throws: ModemError.pinRefused(attemptsLeft: 1, floor: 1)) { try result.get() }
        #expect(stats.pinCommands == 0)
        #expect(ModemError.pinRefused(attemptsLeft: 1, floor: 1).description.contains("1 attempt left"))
    }

    @Test("a higher floor refuses earlier")
    func higherFloor() throws {
        let (result, stats) = try unlock(.simcom, attempts: 2, pin: "1234") { $0.pinFloor = 2 }
        #expect(throws: ModemError.pinRefused(attemptsLeft: 2, floor: 2)) { try result.get() }
        #expect(stats.pinCommands == 0)
    }

    @Test("unknown attempts: refused by default, sent only when configured")
    func unknownAttempts() throws {
        let (refused, none) = try unlock(.generic, attempts: 3, pin: "1234", faults: [.nocounter])
        #expect(throws: ModemError.pinRefused(attemptsLeft: nil, floor: 1)) { try refused.get() }
        #expect(none.pinCommands == 0)
        let (allowed, one) = try unlock(.generic, attempts: 3, pin: "1234", faults: [.nocounter]) { $0.allowUnknownAttempts = true }
        #expect(try allowed.get() == .unlocked(attemptsBefore: nil))
        #expect(one.pinCommands == 1)
    }

    @Test("the generic dialect falls back to the AT+CSIM VERIFY probe for the attempts")
    func csimFallback() throws {
        let simulator = try RunningSimulator { $0.dialect = .huawei; $0.pinAttempts = 2 }
        let modem = try openModem(simulator, profile: "generic")
        defer { modem.close() }
        try modem.start()
        let status = try modem.simStatus()
        #expect(status.state == .pinRequired && status.pinAttempts == 2 && status.counterSource == "csim")
    }

    @Test("SIM PUK stops and asks for a technician; no PIN or PUK is sent")
    func puk() throws {
        let (result, stats) = try unlock(.simcom, attempts: 3, pin: "1234", faults: [.puk])
        #expect(throws: ModemError.pukRequired(pukAttemptsLeft: 10)) { try result.get() }
        #expect(stats.pinCommands == 0)
    }

    @Test("+CME ERROR: 14 (SIM busy) is waited out by re-reading, then the PIN goes once")
    func simBusy() throws {
        let (result, stats) = try unlock(.simcom, attempts: 3, pin: "1234", faults: [.busy])
        #expect(try result.get() == .unlocked(attemptsBefore: 3))
        #expect(stats.pinCommands == 1)
    }

    @Test("no SIM is reported as such")
    func noSIM() throws {
        let (result, stats) = try unlock(.quectel, attempts: 3, pin: "1234", faults: [.nosim])
        #expect(throws: ModemError.simNotInserted) { try result.get() }
        #expect(stats.pinCommands == 0)
    }

    @Test("a PIN must be 4 to 8 digits and never prints")
    func pinFormat() throws {
        #expect(throws: ModemError.invalidPIN) { try SIMPIN("12a4") }
        #expect(throws: ModemError.invalidPIN) { try SIMPIN("123") }
        #expect("\(try SIMPIN("1234\n"))" == "****")
    }
}

@Suite("Registration, data sessions and recovery against the simulated modem")
struct SessionTests {
    @Test("probe reports identity, SIM, attempts, registration, dBm and technology; a V0 modem with echo and URCs is handled")
    func probe() throws {
        let simulator = try RunningSimulator { $0.dialect = .quectel; $0.pin = nil; $0.link = .edge; $0.faults = [.v0, .urc, .noise] }
        let modem = try openModem(simulator, profile: "quectel-ec21")
        defer { modem.close() }
        try modem.start()
        _ = try modem.waitForRegistration()
        let report = try modem.probe()
        #expect(report.identity.manufacturer == "Quectel" && report.identity.model == "EC21", "\(report.identity) \(report.unknown)")
        #expect(report.identity.imei?.count == 15)
        #expect(report.sim?.state == .ready && report.sim?.pinAttempts == 3)
        #expect(report.network.overall?.isRegistered == true)
        #expect(report.network.technology == "EDGE")
        let dbm = try #require(report.network.rssiDBm)
        #expect((-113)...(-51) ~= dbm)
    }

    @Test("registration denied is reported, not waited out")
    func denied() throws {
        let simulator = try RunningSimulator { $0.pin = nil; $0.faults = [.denied] }
        let modem = try openModem(simulator, profile: "simcom-sim800")
        defer { modem.close() }
        try modem.start()
        #expect(throws: ModemError.registrationDenied) { try modem.waitForRegistration() }
    }

    @Test("transparent sessions carry bytes both ways and hang up with +++, on SIMCom and Quectel; PPP dial on Huawei",
          arguments: [(SimDialect.simcom, "simcom-sim800"), (.quectel, "quectel-ec21"), (.huawei, "huawei-e173")])
    func session(dialect: SimDialect, profile: String) throws {
        let echo = try LoopbackServer(mode: .echo)
        defer { echo.stop() }
        let simulator = try RunningSimulator { $0.dialect = dialect; $0.pin = nil; $0.link = .umts; $0.connectTo = echo.address }
        let modem = try openModem(simulator, profile: profile)
        defer { modem.close() }
        try modem.start()
        _ = try modem.waitForRegistration()
        let (host, port) = try SessionRequest.address(echo.address)
        let session = try modem.openSession(SessionRequest(apn: "internet", user: "rep", password: "s3cret", host: host, port: port))
        let payload = Array("Zamówienie WAW07-000123: 3 × Łódź — заказ\r\nOK\r\n+++ not an escape".utf8) + (0..<3000).map { UInt8($0 % 251) }
        try session.write(payload, deadline: .after(seconds: 30))
        #expect(try session.read(exactly: payload.count, deadline: .after(seconds: 30)) == payload)
        #expect(session.hangUp())
        // Back in command mode: the modem answers again.
        #expect(try modem.channel.send("AT", timeout: 30).final == .ok)
        #expect(modem.channel.transcript.lines.allSatisfy { !$0.contains("s3cret") })
        #expect(simulator.modem.stats.bytesUp == payload.count)
    }

    @Test("a transparent session carries every byte value unchanged, in volume, read in pieces as small as a frame's length prefix",
          arguments: [UInt64(1), 2, 3])
    func transparency(seed: UInt64) throws {
        let echo = try LoopbackServer(mode: .echo)
        defer { echo.stop() }
        let simulator = try RunningSimulator { $0.pin = nil; $0.link = .umts; $0.connectTo = echo.address }
        let modem = try openModem(simulator, profile: "simcom-sim800")
        defer { modem.close() }
        try modem.start()
        _ = try modem.waitForRegistration()
        let (host, port) = try SessionRequest.address(echo.address)
        let session = try modem.openSession(SessionRequest(apn: "internet", host: host, port: port))
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 33
        }
        // Random bytes with the starts of the end-of-session line sprinkled in: the scanner
        // holds those back, then releases them with the next chunk.
        var payload: [UInt8] = []
        while payload.count < 60_000 {
            payload += next() % 8 == 0 ? Array(["\r", "\r\n", "\r\nCL", "\r\nNO CARR"][Int(next() % 4)].utf8) : [UInt8(truncatingIfNeeded: next())]
        }
        var received: [UInt8] = []
        for start in stride(from: 0, to: payload.count, by: 4_000) {
            let piece = Array(payload[start..<min(payload.count, start + 4_000)])
            try session.write(piece, deadline: .after(seconds: 30))
            var got = 0
            while got < piece.count {
                let asked = Int(next() % 6) + 1  // 2 is what a frame's length prefix asks for
                let chunk = try session.read(maxCount: asked, deadline: .after(seconds: 30))
                #expect(chunk.count <= asked)
                if chunk.isEmpty { break }
                got += chunk.count
                received += chunk
            }
        }
        let firstDifference = zip(received, payload).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        #expect(firstDifference == nil, "first difference at byte \(firstDifference ?? -1)")
        #expect(received.count == payload.count)
        session.hangUp()
    }

    /// A registered Huawei (PPP profile) whose data goes to an echo server: no PPP peer answers.
    final class PPPBench {
        let echo: LoopbackServer
        let simulator: RunningSimulator
        let modem: Modem
        let directory = TemporaryDirectory("ppp")
        init() throws {
            echo = try LoopbackServer(mode: .echo)
            let address = echo.address
            simulator = try RunningSimulator { $0.dialect = .huawei; $0.pin = nil; $0.link = .umts; $0.connectTo = address }
            modem = try openModem(simulator, profile: "huawei-e173")
            try modem.start()
            _ = try modem.waitForRegistration()
        }
        deinit {
            modem.close()
            echo.stop()
        }
    }

    @Test("PPP profiles: without pppd, a clear error naming the package; the modem is hung up and answers again")
    func pppdMissing() throws {
        let bench = try PPPBench()
        let (modem, directory) = (bench.modem, bench.directory)
        #expect(throws: ModemError.pppdMissing(path: directory.path + "/no-pppd")) {
            try modem.openStream(SessionRequest(apn: "internet", host: "127.0.0.1", port: 9), pppd: directory.path + "/no-pppd",
                                 optionsParent: directory.path)
        }
        #expect(try modem.channel.send("AT", timeout: 30).final == .ok)
    }

    @Test("PPP profiles: the real pppd runs on the options satchel wrote; a link that does not come up ends in a clear error within the deadline, pppd stopped, the modem hung up")
    func pppdRunsAndFailsCleanly() throws {
        let pppd = PPPLink.defaultPPPD
        try #require(access(pppd, X_OK) == 0, "this test runs the real pppd: apt-get install ppp (.ci/run does)")
        let bench = try PPPBench()
        let (modem, directory, simulator) = (bench.modem, bench.directory, bench.simulator)
        let started = Deadline.now
        var failure: ModemError?
        do {
            // The simulated modem pipes the PPP bytes to an echo server: no PPP peer answers.
            // Without kernel PPP support pppd stops at once; with it, it sees its own packets
            // looped back or waits out the deadline. No outcome may be an IP address.
            _ = try modem.openStream(SessionRequest(apn: "internet", host: "127.0.0.1", port: 9), pppd: pppd,
                                     optionsParent: directory.path, pppTimeout: 8)
        } catch {
            failure = error
        }
        let elapsed = Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9
        guard case .pppFailed(let reason, let said) = failure else {
            Issue.record("expected pppFailed, got \(String(describing: failure))")
            return
        }
        #expect(!reason.isEmpty && !said.isEmpty, "pppd's own words are in the error: \(reason) / \(said)")
        #expect(elapsed < 8 + 5)
        // The options went into a private directory of their own, removed once pppd stopped.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("satchel-pppd-") } == [])
        _ = simulator
        #expect(try modem.channel.send("AT", timeout: 2).final == .ok)
    }

    /// A stand-in pppd that records what it was given: its options file, and the modes of the
    /// file and of its directory; then reports an address and, with `ignoreTerm`, ignores SIGTERM.
    func fakePPPD(in directory: TemporaryDirectory, ignoreTerm: Bool) throws -> String {
        let script = directory.file("fake-pppd")
        let text = """
        #!/bin/sh
        \(ignoreTerm ? "trap '' TERM" : "")
        cp "$2" "\(directory.file("seen-options"))"
        echo "$(stat -c %a "$(dirname "$2")") $(stat -c '%a %n' "$2")" > "\(directory.file("seen-modes"))"
        echo "local  IP address 10.64.3.7"
        exec sleep 60
        """
        try text.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        return script
    }

    @Test("PPP profiles: the pppd options are written 0600 in a fresh private 0700 directory (not a predictable /tmp name), hold no password, and are gone when the link stops")
    func pppdOptionsArePrivate() throws {
        let bench = try PPPBench()
        let (modem, directory, simulator) = (bench.modem, bench.directory, bench.simulator)
        let pppd = try fakePPPD(in: directory, ignoreTerm: false)
        // The fake link comes up; TCP to port 9 through it is refused, so openStream stops pppd and throws.
        let failure = #expect(throws: ModemError.self) {
            try modem.openStream(SessionRequest(apn: "internet", user: "klient", password: "tajne-haslo-7", host: "127.0.0.1", port: 9),
                                 pppd: pppd, optionsParent: directory.path, pppTimeout: 8)
        }
        #expect(failure?.description.contains("TCP to 127.0.0.1:9") == true, Comment(rawValue: String(describing: failure)))
        let options = try String(contentsOfFile: directory.file("seen-options"), encoding: .utf8)
        #expect(options.hasPrefix(simulator.path + "\n") && options.contains("nodetach") && !options.contains("tajne-haslo-7"))
        let modes = try String(contentsOfFile: directory.file("seen-modes"), encoding: .utf8).split(separator: " ")
        #expect(modes.count == 3 && modes[0] == "700" && modes[1] == "600", "\(modes)")
        let name = String(modes[2]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(name.hasPrefix(directory.path + "/satchel-pppd-") && name.hasSuffix("/options") && !name.contains("XXXXXX"))
        #expect(!FileManager.default.fileExists(atPath: name))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("satchel-pppd-") } == [])
    }

    @Test("a pppd that ignores SIGTERM is killed within the stop's deadlines, and stop never waits without one")
    func pppdIgnoringTermIsKilled() throws {
        let directory = TemporaryDirectory("ppp")
        let pppd = try fakePPPD(in: directory, ignoreTerm: true)
        let link = try PPPLink.start(options: "/dev/ttyFAKE\n115200\nnodetach\n", parentDirectory: directory.path, pppd: pppd, timeout: 5)
        #expect(link.localAddress == "10.64.3.7")
        let started = Deadline.now
        link.stop(grace: 0.3, killGrace: 2)
        let elapsed = Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9
        #expect(link.hasExited && elapsed < 2.5, "stopped in \(elapsed) s")
        #expect(kill(link.pid, 0) != 0, "pppd is gone")
        #expect(!FileManager.default.fileExists(atPath: link.optionsPath))
    }

    @Test("a dropped carrier ends the session stream instead of hanging it")
    func carrierDrop() throws {
        let echo = try LoopbackServer(mode: .echo)
        defer { echo.stop() }
        let simulator = try RunningSimulator { $0.pin = nil; $0.faults = [.drop]; $0.link = .umts }
        let modem = try openModem(simulator, profile: "simcom-sim800")
        defer { modem.close() }
        try modem.start()
        _ = try modem.waitForRegistration()
        let (host, port) = try SessionRequest.address(echo.address)
        let session = try modem.openSession(SessionRequest(apn: "internet", host: host, port: port))
        let payload = [UInt8](repeating: 0x41, count: 8_000)
        try session.write(payload, deadline: .after(seconds: 30))
        var received = 0
        while true {
            let chunk = try session.read(maxCount: 4096, deadline: .after(seconds: 30))
            if chunk.isEmpty { break }
            received += chunk.count
        }
        #expect(session.carrierLost)
        #expect(received < payload.count)
        session.hangUp()
        #expect(try modem.channel.send("AT", timeout: 30).final == .ok)
    }

    @Test("a far end that closes as the hang-up begins is seen during the guard time: no +++ reaches the modem in command mode, and the close script is answered, not timed out")
    func farEndClosesDuringGuardTime() throws {
        let source = try LoopbackServer(mode: .source(300))
        defer { source.stop() }
        let simulator = try RunningSimulator { $0.pin = nil; $0.link = .umts; $0.connectTo = source.address }
        let modem = try openModem(simulator, profile: "simcom-sim800")
        defer { modem.close() }
        try modem.start()
        _ = try modem.waitForRegistration()
        let (host, port) = try SessionRequest.address(source.address)
        let session = try modem.openSession(SessionRequest(apn: "internet", host: host, port: port))
        #expect(try session.read(exactly: 300, deadline: .after(seconds: 30)).count == 300)
        // The last word of the session (a sync's closing ACK): the far end closes on it, and the
        // modem reports CLOSED while the hang-up waits out its guard time.
        try session.write([0x06], deadline: .after(seconds: 30))
        #expect(session.hangUp())
        #expect(session.carrierLost, "the far end's CLOSED was read during the guard time")
        let lines = modem.channel.transcript.lines
        let close = try #require(lines.firstIndex(of: "> AT+CIPCLOSE"))
        // Answered at once (ERROR: nothing left to close), not swallowed by a stray +++ and re-synced.
        #expect(lines.indices.contains(close + 1) && lines[close + 1].hasPrefix("< "), "\(lines.suffix(from: close))")
        #expect(!modem.channel.needsResync)
        #expect(try modem.channel.send("AT", timeout: 30).final == .ok)
    }

    @Test("a session refused by the network fails with the step named")
    func sessionRefused() throws {
        let simulator = try RunningSimulator { $0.pin = nil }
        let modem = try openModem(simulator, profile: "simcom-sim800")
        defer { modem.close() }
        try modem.start()
        _ = try modem.waitForRegistration()
        // Nothing listens on port 1: the simulated network says CONNECT FAIL.
        let error = #expect(throws: ModemError.self) { try modem.openSession(SessionRequest(apn: "internet", host: "127.0.0.1", port: 1)) }
        #expect(error == .sessionFailed(step: "AT+CIPSTART=\"TCP\",\"{host}\",{port}", result: .failed("CONNECT FAIL")))
    }

    @Test("recovery ladder: a wedged modem comes back with AT+CFUN=1,1")
    func wedged() throws {
        let simulator = try RunningSimulator { $0.pin = nil; $0.faults = [.wedged] }
        let modem = try openModem(simulator, profile: "simcom-sim800")
        defer { modem.close() }
        try modem.start()
        while (try? modem.channel.send("AT+CSQ", timeout: 0.3))?.final == .ok {}
        let report = try modem.recover()
        #expect(report.steps.map(\.name) == ["re-sync", "re-init", "AT+CFUN=1,1"])
        #expect(report.recovered && simulator.modem.stats.reboots == 1)
        #expect(try modem.channel.send("AT", timeout: 30).final == .ok)
    }

    @Test("recovery ladder: a dead modem comes back with the board's power key; without one the ladder reports, in bounded time")
    func dead() throws {
        let directory = TemporaryDirectory("modem")
        let key = directory.file("gpio-value")
        let simulator = try RunningSimulator { $0.pin = nil; $0.faults = [.dead]; $0.powerKeyPath = key }
        var config = fastConfig()
        config.commandTimeout = 0.2
        config.powerKey = PowerKey(gpioValuePath: key, pulseSeconds: 0.03)
        let modem = try openModem(simulator, profile: "simcom-sim800", config: config)
        defer { modem.close() }
        try modem.start()
        while (try? modem.channel.send("AT+CSQ", timeout: 0.2))?.final == .ok {}
        let report = try modem.recover()
        #expect(report.steps.map(\.name).last == "power key" && report.recovered)
        #expect(simulator.modem.stats.powerKeyPulses >= 1)

        let silent = try RunningSimulator { $0.pin = nil; $0.faults = [.dead] }
        var bare = fastConfig()
        bare.commandTimeout = 0.2
        let lost = try openModem(silent, profile: "simcom-sim800", config: bare)
        defer { lost.close() }
        try lost.start()
        while (try? lost.channel.send("AT+CSQ", timeout: 0.2))?.final == .ok {}
        let started = Deadline.now
        let error = #expect(throws: ModemError.self) { try lost.recover() }
        #expect(error == .notResponding(port: silent.path, tried: ["re-sync", "re-init", "AT+CFUN=1,1"]))
        #expect(Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9 < 5)
    }
}
