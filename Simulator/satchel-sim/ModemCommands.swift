import ArgumentParser
import Foundation
import Modem
import ModemSimulator
import Transport

/// `hardware/` of the source tree, for runs from the build directory.
let sourceHardwareDirectory: String = {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()  // satchel-sim
    url.deleteLastPathComponent()  // Simulator
    return url.deletingLastPathComponent().appendingPathComponent("hardware").path
}()

func hardwareDirectory(_ override: String?) -> HardwareDirectory {
    if let override { return HardwareDirectory(path: override) }
    if FileManager.default.fileExists(atPath: sourceHardwareDirectory + "/modems") { return HardwareDirectory(path: sourceHardwareDirectory) }
    return HardwareDirectory.locate(override: nil) ?? HardwareDirectory(path: sourceHardwareDirectory)
}

func printJSONObject(_ object: [String: Any]) {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    print(String(decoding: data, as: UTF8.self))
}

nonisolated(unsafe) var simulatorStopRequested: sig_atomic_t = 0

/// SIGINT and SIGTERM ask a simulator to stop and report. A parent that blocks them (a test
/// runner's threads do) passes the mask on: they are unblocked, or the simulator could only be
/// stopped with SIGKILL and never report.
func installStopHandlers() {
    signal(SIGINT) { _ in simulatorStopRequested = 1 }
    signal(SIGTERM) { _ in simulatorStopRequested = 1 }
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGINT)
    sigaddset(&signals, SIGTERM)
    sigprocmask(SIG_UNBLOCK, &signals, nil)
}

/// Returns at a stop request, or after `seconds` when given.
func waitForStopRequest(seconds: Double?) {
    let end = seconds.map { Date().addingTimeInterval($0) }
    while simulatorStopRequested == 0 {
        if let end, Date() >= end { break }
        usleep(50_000)
    }
}

struct ModemSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modem", abstract: "A simulated modem on a pty, its parser fuzzer and its benchmark.",
        subcommands: [Run.self, Replay.self, Corpus.self, Fuzz.self, ModemBench.self], defaultSubcommand: Run.self)

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a pty, print its path, and behave like a modem of the dialect until SIGINT/SIGTERM.")
        @Option(help: "simcom, quectel, huawei or generic.") var dialect: String = "simcom"
        @Option(help: "The SIM's PIN, or 'none' for a SIM without PIN lock.") var pin: String = "1234"
        @Option(help: "PIN attempts left on the SIM.") var attempts: Int = 3
        @Option(help: "Link profile: gprs, edge or umts.") var link: String = "gprs"
        @Option(help: "Send data sessions to this loopback HOST:PORT (needed for PPP dials).") var connectTo: String?
        @Option(help: "Comma-separated faults: \(SimFault.allCases.map(\.rawValue).joined(separator: ",")).") var faults: String = ""
        @Option(help: "Seed for the faults' dice.") var seed: UInt64 = 1
        @Option(help: "Multiply every simulated delay by this.") var timeScale: Double = 1
        @Option(help: "Escape guard time in milliseconds.") var guardMs: Int = 1000
        @Option(help: "Watch this file as the power key GPIO value.") var powerKey: String?
        @Option(help: "Stop after this many seconds.") var seconds: Double?
        @Flag(help: "Print the path and the final statistics as JSON.") var json = false

        func run() throws {
            var config = SimulatedModemConfig()
            guard let dialect = SimDialect(rawValue: dialect) else { throw ValidationError("--dialect: simcom, quectel, huawei or generic") }
            guard let link = LinkProfile.named(link) else { throw ValidationError("--link: gprs, edge or umts") }
            guard (0...10).contains(attempts) else { throw ValidationError("--attempts must be 0...10") }
            config.dialect = dialect
            config.pin = pin == "none" ? nil : pin
            config.pinAttempts = attempts
            config.link = link
            config.connectTo = connectTo
            config.faults = try SimFault.parse(faults)
            config.seed = seed
            config.timeScale = timeScale
            config.guardSeconds = Double(guardMs) / 1000
            config.powerKeyPath = powerKey
            let modem = try SimulatedModem(config: config)
            if json { printJSONObject(["path": modem.path, "dialect": dialect.rawValue, "link": link.name]) } else { print(modem.path) }
            fflush(nil)
            installStopHandlers()
            modem.start()
            waitForStopRequest(seconds: seconds)
            modem.stop()
            let stats = modem.stats
            let summary: [String: Any] = [
                "commands": stats.commands, "pin_commands": stats.pinCommands, "pin_sent_at_or_below_floor": stats.pinSentAtOrBelowFloor,
                "wrong_pins": stats.wrongPins, "puk_locks": stats.pukLocks, "sessions": stats.sessions, "bytes_up": stats.bytesUp,
                "bytes_down": stats.bytesDown, "reboots": stats.reboots, "hangs": stats.hangs,
            ]
            if json { printJSONObject(summary) } else { FileHandle.standardError.write(Data("satchel-sim modem: \(summary)\n".utf8)) }
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve a modem transcript (hardware/modems/transcripts/*.transcript) on a pty until SIGINT/SIGTERM.",
            discussion: """
                Prints the pty's path, then answers each command as the transcript says, in the SIM state the transcript
                declares; the replayer keeps the PIN attempts, so right, wrong and last-attempt unlocks can be played.
                Commands the transcript does not know are answered ERROR. On stop, prints what was sent (PIN entries,
                unsafe ones, unknown commands).
                """)
        @Argument(help: "The transcript file.") var file: String
        @Option(help: "PIN attempts left on the SIM (default: the transcript's).") var attempts: Int?
        @Option(help: "SIM state: ready, pin or puk (default: the transcript's).") var sim: String?
        @Option(help: "The first N AT+CPIN? reads and PIN entries answer +CME ERROR: 14 (SIM busy).") var busy: Int = 0
        @Option(help: "PINs sent with this many attempts left or fewer count as unsafe.") var floor: Int = 1
        @Option(help: "Stop after this many seconds.") var seconds: Double?
        @Flag(help: "Print the path and the final statistics as JSON.") var json = false

        func run() throws {
            let transcript: ModemTranscript
            do { transcript = try ModemTranscript.load(path: file) } catch { throw ValidationError("\(error)") }
            var config = TranscriptReplayConfig()
            if let attempts {
                guard (0...10).contains(attempts) else { throw ValidationError("--attempts must be 0...10") }
                config.pinAttempts = attempts
            }
            if let sim {
                guard let state = TranscriptSIMState(rawValue: sim) else { throw ValidationError("--sim: ready, pin or puk") }
                config.sim = state
            }
            guard (0...100).contains(busy) else { throw ValidationError("--busy must be 0...100") }
            config.busyReads = busy
            config.floor = floor
            let modem = try TranscriptModem(transcript: transcript, config: config)
            if json { printJSONObject(["path": modem.path, "transcript": transcript.name, "model": transcript.model]) } else { print(modem.path) }
            fflush(nil)
            installStopHandlers()
            modem.start()
            waitForStopRequest(seconds: seconds)
            modem.stop()
            let stats = modem.stats
            let summary: [String: Any] = [
                "commands": stats.commands, "pin_commands": stats.pinCommands, "pin_sent_at_or_below_floor": stats.pinSentAtOrBelowFloor,
                "wrong_pins": stats.wrongPins, "puk_locks": stats.pukLocks, "unknown_commands": stats.unknownCommands,
            ]
            if json { printJSONObject(summary) } else { FileHandle.standardError.write(Data("satchel-sim modem replay: \(summary)\n".utf8)) }
        }
    }

    struct Corpus: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the real Modem module against every transcript of the corpus: probe, right PIN and registration, wrong PIN, last attempt, busy SIM; count the outcomes.")
        @Option(help: "Hardware directory (default: the source tree's hardware/); transcripts are in its modems/transcripts.") var hardware: String?
        @Option(help: "An operation that takes longer than this many seconds counts as a hang.") var hangSeconds: Double = 15
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let directory = hardwareDirectory(hardware)
            let folder = directory.path + "/modems/transcripts"
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".transcript") }.sorted()
            guard !files.isEmpty else { throw ValidationError("no transcripts in \(folder)") }
            var probed = 0, unlocked = 0, registered = 0, safeRefusals = 0, wrongOnce = 0, busyUnlocked = 0, hangs = 0
            var pinsAtFloor = 0, pukLocks = 0, failures: [String] = []
            for file in files {
                let transcript = try ModemTranscript.load(path: folder + "/" + file)
                func session(_ adjust: (inout TranscriptReplayConfig) -> Void, allowUnknown: Bool = false,
                             _ body: (Modem) throws -> Bool) -> Bool {
                    var replayConfig = TranscriptReplayConfig()
                    adjust(&replayConfig)
                    let started = Date()
                    var ok = false
                    do {
                        let replay = try TranscriptModem(transcript: transcript, config: replayConfig)
                        replay.start()
                        defer {
                            replay.stop()
                            pinsAtFloor += replay.stats.pinSentAtOrBelowFloor
                            pukLocks += replay.stats.pukLocks
                        }
                        var config = ModemConfig()
                        config.commandTimeout = 1
                        config.simBusyTimeout = 3
                        config.simBusyPoll = 0.1
                        config.registrationTimeout = 5
                        config.registrationPoll = 0.2
                        config.allowUnknownAttempts = allowUnknown
                        let modem = try Modem.open(port: replay.path, profile: (try? directory.modem("generic")) ?? .builtInGeneric, config: config, lockDirectory: nil)
                        defer { modem.close() }
                        modem.adoptVendorCodes(from: directory)
                        try modem.start()
                        try modem.chooseProfile(in: directory)
                        ok = try body(modem)
                    } catch {
                        if case ModemError.noAnswer = error { hangs += 1 }
                        failures.append("\(file): \(error)")
                    }
                    if Date().timeIntervalSince(started) > hangSeconds { hangs += 1 }
                    return ok
                }
                let counters = transcript.expectCounters
                if session({ _ in }, { modem in
                    let report = try modem.probe()
                    return report.profile == transcript.expectProfile && report.choice?.kind == transcript.expectChoice
                        && report.sim?.pinAttempts == (counters ? transcript.pinAttempts : nil)
                }) { probed += 1 } else { failures.append("\(file): probe") }
                var didUnlock = false
                if session({ _ in }, allowUnknown: !counters, { modem in
                    didUnlock = try modem.unlock(pin: try SIMPIN(transcript.pinCode)) != .alreadyReady
                    try modem.chooseProfile(in: directory)
                    return NetworkStatus(registrations: try modem.waitForRegistration()).overall?.isRegistered == true
                }) { registered += 1 } else { failures.append("\(file): unlock and register") }
                if didUnlock { unlocked += 1 }
                if session({ _ in }, { modem in
                    do { _ = try modem.unlock(pin: try SIMPIN("9876")) } catch ModemError.pinRejected(let left) { return left == transcript.pinAttempts - 1 } catch ModemError.pinRefused(nil, _) { return !counters }
                    return false
                }) { wrongOnce += 1 } else { failures.append("\(file): wrong PIN") }
                if session({ $0.pinAttempts = 1 }, { modem in
                    do { _ = try modem.unlock(pin: try SIMPIN(transcript.pinCode)) } catch ModemError.pinRefused { return true }
                    return false
                }) { safeRefusals += 1 } else { failures.append("\(file): last attempt") }
                if session({ $0.busyReads = 2 }, allowUnknown: !counters, { modem in
                    try modem.unlock(pin: try SIMPIN(transcript.pinCode)) != .alreadyReady
                }) { busyUnlocked += 1 } else { failures.append("\(file): busy SIM") }
            }
            let result: [String: Any] = [
                "transcripts": files.count, "probed_as_expected": probed, "unlocked": unlocked, "registered": registered,
                "wrong_pin_safe": wrongOnce, "refused_at_the_floor": safeRefusals, "busy_sim_unlocked": busyUnlocked,
                "pins_sent_at_or_below_floor": pinsAtFloor, "puk_locks": pukLocks, "hangs": hangs, "failures": failures,
            ]
            if json { printJSONObject(result) } else {
                print("modem corpus: \(files.count) transcripts; probed as expected \(probed), unlocked \(unlocked), registered \(registered), wrong PIN sent once or, without counters, refused \(wrongOnce), refused at the floor \(safeRefusals), busy SIM unlocked \(busyUnlocked); PINs at or below the floor \(pinsAtFloor), PUK locks \(pukLocks), hangs \(hangs)")
                for failure in failures { print("  \(failure)") }
            }
            let all = files.count
            if probed < all || registered < all || wrongOnce < all || safeRefusals < all || busyUnlocked < all || pinsAtFloor > 0 || pukLocks > 0 || hangs > 0 { throw ExitCode(1) }
        }
    }

    struct Fuzz: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Feed random and mutated modem output through the agent's line splitter and parsers; report inputs per second.")
        @Option(help: "How many inputs.") var inputs: Int = 1_000_000
        @Option(help: "Seed.") var seed: UInt64 = 1
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let started = Date()
            var generator = FuzzInputs(seed: seed)
            var splitter = LineSplitter(maxLineBytes: 512)
            var lines = 0, finals = 0, parsed = 0, maxBuffered = 0, bytes = 0
            for _ in 0..<inputs {
                let input = generator.next()
                bytes += input.count
                for byte in input {
                    if let line = splitter.push(byte) {
                        lines += 1
                        let result = parseEverything(line)
                        finals += result.0
                        parsed += result.1
                    }
                    maxBuffered = max(maxBuffered, splitter.bufferedBytes)
                }
            }
            let elapsed = Date().timeIntervalSince(started)
            let bounded = maxBuffered <= splitter.maxLineBytes
            let result: [String: Any] = [
                "inputs": inputs, "bytes": bytes, "lines": lines, "finals": finals, "parsed_fields": parsed,
                "overlong_lines": splitter.overlongLines, "noise_bytes": splitter.noiseBytes, "max_buffered": maxBuffered,
                "buffer_bounded": bounded, "seconds": (elapsed * 1000).rounded() / 1000, "inputs_per_second": Int(Double(inputs) / max(elapsed, 1e-9)),
            ]
            if json { printJSONObject(result) } else {
                print("modem fuzz: \(inputs) inputs (\(bytes) bytes, \(lines) lines) in \(String(format: "%.2f", elapsed)) s, \(result["inputs_per_second"]!) inputs/s; max buffered \(maxBuffered) of \(splitter.maxLineBytes); no crash")
            }
            if !bounded { throw ExitCode(1) }
        }
    }
}

/// Every parser on one line; returns (final results, successful parses) and traps on an
/// out-of-range value (a fuzz failure).
func parseEverything(_ line: String) -> (Int, Int) {
    var finals = 0, parsed = 0
    if FinalResult.parse(line) != nil { finals += 1 }
    _ = UnsolicitedCodes.matches(line, extra: ["^RSSI:"])
    let lines = [line]
    if ATParse.cpin(lines) != nil { parsed += 1 }
    for query in PINCounterQuery.allCases {
        if let counters = query.parse(lines, state: .pinRequired) {
            precondition((counters.pin ?? 0) >= 0 && (counters.puk ?? 0) >= 0, "negative counter from \(line)")
            parsed += 1
        }
    }
    for prefix in ["+CREG:", "+CGREG:", "+CEREG:"] {
        if ATParse.registration(line, prefix: prefix, unsolicited: false) != nil { parsed += 1 }
        if ATParse.registration(line, prefix: prefix, unsolicited: true) != nil { parsed += 1 }
    }
    if let dbm = ATParse.csqDBm(lines) {
        precondition((-113)...(-51) ~= dbm, "dBm out of range from \(line)")
        parsed += 1
    }
    if ATParse.cops(lines) != nil { parsed += 1 }
    if ATParse.imei(lines) != nil { parsed += 1 }
    let redacted = Redaction.redact(line)
    precondition(!(line.uppercased().hasPrefix("AT+CPIN=") && redacted.contains("1234")), "PIN leaked by redaction: \(line)")
    return (finals, parsed)
}

// MARK: - sessions against the simulator (bench, chaos)

/// One agent session (probe, unlock, connect, transfer) against a simulated modem.
struct AgentSession {
    enum Outcome: String { case connected, refusedAtFloor, refusedUnknown, pinRejected, pukRequired, noSIM, denied, notRegistered, notResponding, sessionFailed, transferFailed, other }

    var hardware: HardwareDirectory
    var port: String
    var lockDirectory: String?
    var config: ModemConfig
    var pin: String
    var target: String
    var payload: Int

    struct Result {
        var outcome: Outcome = .other
        var recovered = false
        var detail = ""
        var connectSeconds = 0.0
    }

    func run() -> Result {
        var result = Result()
        let modem: Modem
        do {
            modem = try Modem.open(port: port, profile: ModemProfile.builtInGeneric, config: config, lockDirectory: lockDirectory)
        } catch {
            result.detail = error.description
            return result
        }
        defer { modem.close() }
        var attempt = 0
        while true {
            attempt += 1
            do {
                try attemptSession(modem, &result)
                result.outcome = .connected
            } catch {
                result.detail = error.description
                switch error {
                case .noAnswer, .notResponding, .system:
                    // The modem went away mid-session: climb the ladder once and start over.
                    if attempt == 1, (try? modem.recover()) != nil { result.recovered = true; continue }
                    result.outcome = .notResponding
                case .pinRefused(let left, _): result.outcome = left == nil ? .refusedUnknown : .refusedAtFloor
                case .pinRejected: result.outcome = .pinRejected
                case .pukRequired: result.outcome = .pukRequired
                case .simNotInserted: result.outcome = .noSIM
                case .registrationDenied: result.outcome = .denied
                case .notRegistered: result.outcome = .notRegistered
                case .sessionFailed: result.outcome = .sessionFailed
                case .simBusy, .pinOutcomeUnknown, .simLocked: result.outcome = .other
                default: result.outcome = .other
                }
            }
            if modem.lastRecovery?.recovered == true { result.recovered = true }
            return result
        }
    }

    private func attemptSession(_ modem: Modem, _ result: inout Result) throws(ModemError) {
        let started = Deadline.now
        try modem.start()
        let identity = try modem.identify()
        if let profile = hardware.detect(manufacturer: identity.manufacturer, model: identity.model) {
            modem.use(profile: profile)
        } else if let generic = try? hardware.modem("generic") {
            modem.use(profile: generic)
        }
        _ = try modem.probe()
        _ = try modem.unlock(pin: SIMPIN(pin))
        _ = try modem.waitForRegistration()
        let (host, port) = try SessionRequest.address(target)
        let session = try modem.openSession(SessionRequest(apn: "internet", user: "rep", password: "s3cret", host: host, port: port))
        result.connectSeconds = Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9
        defer { session.hangUp() }
        let bytes = (0..<payload).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        do {
            try session.write(bytes, deadline: .after(seconds: 5))
            var echoed: [UInt8] = []
            while echoed.count < bytes.count {
                let chunk = try session.read(maxCount: bytes.count - echoed.count, deadline: .after(seconds: 5))
                if chunk.isEmpty { break }
                echoed += chunk
            }
            guard echoed == bytes else { throw ModemError.sessionFailed(step: "transfer (\(echoed.count) of \(bytes.count) bytes back)", result: session.carrierLost ? .noCarrier : nil) }
        } catch let error as StreamError {
            throw ModemError.sessionFailed(step: "transfer: \(error)", result: nil)
        } catch let error as ModemError {
            throw error
        } catch {
            throw ModemError.sessionFailed(step: "transfer: \(error)", result: nil)
        }
    }
}

/// Runs `body` on its own thread; nil when it does not finish within `seconds` (a hang).
final class WatchdogBox: @unchecked Sendable {
    var value: AgentSession.Result?
    let done = DispatchSemaphore(value: 0)
}

func withWatchdog(seconds: Double, _ body: @escaping @Sendable () -> AgentSession.Result) -> AgentSession.Result? {
    let box = WatchdogBox()
    let thread = Thread {
        box.value = body()
        box.done.signal()
    }
    thread.stackSize = 4 << 20
    thread.start()
    guard box.done.wait(timeout: .now() + seconds) == .success else { return nil }
    return box.value
}

extension AgentSession.Result: @unchecked Sendable {}
extension AgentSession: @unchecked Sendable {}

struct ModemChaos: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modem-chaos",
        abstract: "Sessions of probe + unlock + connect + transfer against randomly faulty simulated modems; fails on any hang or unsafe PIN.")
    @Option(help: "How many sessions.") var sessions: Int = 100
    @Option(help: "Seed: the same seed replays the same modems and faults.") var seed: UInt64 = 1
    @Option(help: "Sessions run side by side.") var jobs: Int = 2
    @Option(help: "Multiply the simulated modem's delays by this.") var timeScale: Double = 0.01
    @Option(help: "Hardware directory (default: the source tree's hardware/).") var hardware: String?
    @Option(help: "A session that takes longer than this many seconds counts as a hang.") var hangSeconds: Double = 20
    @Flag(help: "Print the result as JSON.") var json = false
    @Flag(help: "Print one line per session.") var verbose = false

    func validate() throws {
        guard sessions >= 1 && sessions <= 100_000 else { throw ValidationError("--sessions must be 1...100000") }
        guard jobs >= 1 && jobs <= 16 else { throw ValidationError("--jobs must be 1...16") }
    }

    func run() throws {
        let started = Date()
        let echo = try LoopbackServer(mode: .echo)
        let scratch = NSTemporaryDirectory() + "satchel-chaos-\(getpid())"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let hardware = hardwareDirectory(self.hardware)
        final class Totals: @unchecked Sendable {
            let lock = NSLock()
            var hangs = 0, unsafePINs = 0, pukLocks = 0, connected = 0, recovered = 0
            var outcomes: [String: Int] = [:]
            var faultsSeen: [String: Int] = [:]
            var next = 0
        }
        let totals = Totals()
        let sessions = self.sessions, seed = self.seed, timeScale = self.timeScale, hangSeconds = self.hangSeconds, verbose = self.verbose
        let address = echo.address
        let group = DispatchGroup()
        for _ in 0..<jobs {
            DispatchQueue.global().async(group: group) {
                while true {
                    totals.lock.lock()
                    let index = totals.next
                    totals.next += 1
                    totals.lock.unlock()
                    if index >= sessions { return }
                    let line = ModemChaos.session(index: index, seed: seed, timeScale: timeScale, hangSeconds: hangSeconds,
                                                  scratch: scratch, hardware: hardware, target: address) { update in
                        totals.lock.lock()
                        update(&totals.hangs, &totals.unsafePINs, &totals.pukLocks, &totals.connected, &totals.recovered, &totals.outcomes, &totals.faultsSeen)
                        totals.lock.unlock()
                    }
                    if verbose { FileHandle.standardError.write(Data((line + "\n").utf8)) }
                }
            }
        }
        group.wait()
        echo.stop()
        let elapsed = Date().timeIntervalSince(started)
        let result: [String: Any] = [
            "sessions": sessions, "hangs": totals.hangs, "pin_sent_at_or_below_floor": totals.unsafePINs, "puk_locks": totals.pukLocks,
            "connected": totals.connected, "recovered": totals.recovered, "outcomes": totals.outcomes, "faults": totals.faultsSeen,
            "seed": Int(seed), "seconds": (elapsed * 10).rounded() / 10,
        ]
        if json { printJSONObject(result) } else {
            print("modem-chaos: \(sessions) sessions in \(String(format: "%.1f", elapsed)) s: \(totals.connected) connected, \(totals.recovered) recovered, hangs \(totals.hangs), PINs at/below floor \(totals.unsafePINs), PUK locks \(totals.pukLocks)")
            print("  outcomes: \(totals.outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
        }
        if totals.hangs > 0 || totals.unsafePINs > 0 || totals.pukLocks > 0 { throw ExitCode(1) }
    }

    typealias Update = (inout Int, inout Int, inout Int, inout Int, inout Int, inout [String: Int], inout [String: Int]) -> Void

    static func session(index: Int, seed: UInt64, timeScale: Double, hangSeconds: Double, scratch: String,
                        hardware: HardwareDirectory, target: String, totals: (Update) -> Void) -> String {
        var dice = SimRandom(seed: seed &* 1_000_003 &+ UInt64(index))
        var config = SimulatedModemConfig()
        config.dialect = SimDialect.allCases[Int.random(in: 0..<SimDialect.allCases.count, using: &dice)]
        config.seed = dice.next()
        config.pinAttempts = dice.chance(0.1) ? 1 : Int.random(in: 2...3, using: &dice)
        config.link = [LinkProfile.gprs, .edge, .umts][Int.random(in: 0..<3, using: &dice)]
        config.timeScale = timeScale
        config.guardSeconds = 0.03
        let odds: [(SimFault, Double)] = [(.urc, 0.3), (.noise, 0.25), (.garble, 0.1), (.busy, 0.15), (.hang, 0.08), (.dead, 0.05),
                                          (.wedged, 0.05), (.drop, 0.1), (.stall, 0.1), (.cme, 0.15), (.slowreg, 0.05), (.denied, 0.03),
                                          (.nocounter, 0.08), (.puk, 0.03), (.nosim, 0.02), (.v0, 0.1)]
        for (fault, p) in odds where dice.chance(p) { config.faults.insert(fault) }
        let directory = scratch + "/\(index)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        config.powerKeyPath = directory + "/power-key"
        // The rep types the right PIN most of the time.
        let pin = dice.chance(0.85) ? "1234" : "9999"
        config.pin = "1234"
        config.connectTo = target  // PPP dials name no address; transparent ones go here too
        guard let simulator = try? SimulatedModem(config: config) else { return "session \(index): cannot create a pty" }
        simulator.start()
        var agent = ModemConfig()
        agent.commandTimeout = 0.3
        agent.simBusyTimeout = 1
        agent.simBusyPoll = 0.05
        agent.registrationTimeout = 1.5
        agent.registrationPoll = 0.2
        agent.scriptTimeoutScale = 0.02
        agent.guardSeconds = 0.03
        agent.powerKey = PowerKey(gpioValuePath: directory + "/power-key", pulseSeconds: 0.02)
        let session = AgentSession(hardware: hardware, port: simulator.path, lockDirectory: directory, config: agent, pin: pin,
                                   target: target, payload: Int.random(in: 256...4_096, using: &dice))
        let sessionStart = Date()
        let result = withWatchdog(seconds: hangSeconds) { session.run() }
        let took = Date().timeIntervalSince(sessionStart)
        simulator.stop()
        let stats = simulator.stats
        let faults = config.faults.map(\.rawValue).sorted()
        totals { hangs, unsafe, puk, connected, recovered, outcomes, faultsSeen in
            if result == nil { hangs += 1 }
            unsafe += stats.pinSentAtOrBelowFloor
            puk += stats.pukLocks
            if result?.outcome == .connected { connected += 1 }
            if result?.recovered == true && result?.outcome == .connected { recovered += 1 }
            outcomes[result.map { $0.outcome.rawValue } ?? "hang", default: 0] += 1
            for fault in faults { faultsSeen[fault, default: 0] += 1 }
        }
        return "session \(index) (\(String(format: "%.2f", took)) s): \(config.dialect.rawValue) \(config.link.name) attempts \(config.pinAttempts) pin \(pin == "1234" ? "right" : "wrong") faults [\(faults.joined(separator: ","))] -> \(result.map { "\($0.outcome.rawValue)\($0.recovered ? " (recovered)" : "") \($0.detail)" } ?? "HANG")"
    }
}

struct ModemBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Time from AT to an open session on simulated SIMCom/GPRS, and throughput on simulated EDGE.")
    @Option(help: "Bytes to pull through the EDGE session.") var bytes: Int = 120_000
    @Option(help: "Hardware directory (default: the source tree's hardware/).") var hardware: String?
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        let hardware = hardwareDirectory(self.hardware)
        let lockDirectory = NSTemporaryDirectory() + "satchel-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: lockDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: lockDirectory) }

        // 1. AT -> open session, SIMCom with GPRS delays (real time, scale 1), PIN unlocked on the way.
        let echo = try LoopbackServer(mode: .echo)
        var config = SimulatedModemConfig()
        config.dialect = .simcom
        config.link = .gprs
        let simulator = try SimulatedModem(config: config)
        simulator.start()
        var agent = ModemConfig()
        agent.registrationTimeout = 30
        let modem = try Modem.open(port: simulator.path, profile: try hardware.modem("simcom-sim800"), config: agent, lockDirectory: lockDirectory)
        let started = Deadline.now
        try modem.start()
        _ = try modem.probe()
        _ = try modem.unlock(pin: SIMPIN("1234"))
        _ = try modem.waitForRegistration()
        let (host, port) = try SessionRequest.address(echo.address)
        let session = try modem.openSession(SessionRequest(apn: "internet", host: host, port: port))
        let opened = Deadline.now
        let agentSeconds = Double(opened.nanoseconds - started.nanoseconds) / 1e9
        let own = simulator.ownDelaySeconds(until: Double(opened.nanoseconds) / 1e9)
        session.hangUp()
        modem.close()
        simulator.stop()
        echo.stop()

        // 2. Throughput of a transparent session on EDGE: the server sends `bytes`, we read them all.
        let source = try LoopbackServer(mode: .source(bytes))
        var edge = SimulatedModemConfig()
        edge.dialect = .simcom
        edge.link = .edge
        edge.pin = nil
        edge.delays.registration = 0.2
        let edgeSimulator = try SimulatedModem(config: edge)
        edgeSimulator.start()
        let edgeModem = try Modem.open(port: edgeSimulator.path, profile: try hardware.modem("simcom-sim800"), config: agent, lockDirectory: lockDirectory)
        try edgeModem.start()
        _ = try edgeModem.waitForRegistration()
        let (sourceHost, sourcePort) = try SessionRequest.address(source.address)
        let edgeSession = try edgeModem.openSession(SessionRequest(apn: "internet", host: sourceHost, port: sourcePort))
        var received = 0
        var first: Deadline?
        var firstChunk = 0
        let deadline = Deadline.after(seconds: 30 + Double(bytes) / edge.link.bytesPerSecond * 2)
        while received < bytes {
            let chunk = try edgeSession.read(maxCount: 4096, deadline: deadline)
            if chunk.isEmpty { break }
            if first == nil { first = .now; firstChunk = chunk.count }
            received += chunk.count
        }
        let last = Deadline.now
        let span = Double(last.nanoseconds - (first ?? last).nanoseconds) / 1e9
        let throughput = span > 0 ? Double(received - firstChunk) / span : 0
        edgeSession.hangUp()
        edgeModem.close()
        edgeSimulator.stop()
        source.stop()

        let ratio = own > 0 ? agentSeconds / own : 0
        let result: [String: Any] = [
            "at_to_session_seconds": (agentSeconds * 1000).rounded() / 1000, "modem_own_delay_seconds": (own * 1000).rounded() / 1000,
            "session_ratio": (ratio * 1000).rounded() / 1000, "edge_link_bytes_per_second": Int(edge.link.bytesPerSecond),
            "edge_bytes": received, "edge_throughput_bytes_per_second": Int(throughput),
            "throughput_ratio": ((throughput / edge.link.bytesPerSecond) * 1000).rounded() / 1000,
        ]
        if json { printJSONObject(result) } else {
            print(String(format: "AT -> open session (SIMCom, GPRS delays): %.3f s; the modem's own delays %.3f s; ratio %.3f (goal <= 1.2)", agentSeconds, own, ratio))
            print(String(format: "EDGE transparent session: %d bytes at %.0f B/s of %.0f B/s; ratio %.3f (goal >= 0.9)", received, throughput, edge.link.bytesPerSecond, throughput / edge.link.bytesPerSecond))
        }
        if ratio > 1.2 || throughput < 0.9 * edge.link.bytesPerSecond { throw ExitCode(1) }
    }
}
