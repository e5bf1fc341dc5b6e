// A simulated GSM modem on a pty: SIMCom, Quectel, Huawei and generic 3GPP dialects, SIM
// PIN/PUK with real counters, registration delays, URCs mid-response, echo, V0, CME errors,
// noise, hangs, dropped carriers; after CONNECT a pipe to a TCP address shaped to a link
// profile. Written apart from the agent's Modem module on purpose: it checks the agent.
import Foundation
import Transport

public enum SimDialect: String, CaseIterable, Sendable {
    case simcom, quectel, huawei, generic
}

/// A radio link: bandwidth (each direction), round trip.
public struct LinkProfile: Sendable, Equatable {
    public var name: String
    /// Downlink (network to handheld).
    public var bytesPerSecond: Double
    /// Uplink (handheld to network); GPRS class 10 has half the downlink's slots.
    public var upBytesPerSecond: Double
    public var roundTripSeconds: Double
    /// 27.007 <AcT> reported in `+COPS?`.
    public var accessTechnology: Int

    public init(name: String, bytesPerSecond: Double, upBytesPerSecond: Double? = nil, roundTripSeconds: Double, accessTechnology: Int) {
        self.name = name
        self.bytesPerSecond = bytesPerSecond
        self.upBytesPerSecond = upBytesPerSecond ?? bytesPerSecond
        self.roundTripSeconds = roundTripSeconds
        self.accessTechnology = accessTechnology
    }

    // GPRS class 10 CS-2: 53.6 kbit/s down, 26.8 up (FIELD-NOTES); EDGE class 10 (~200 kbit/s),
    // UMTS R99 (384 kbit/s); round trips as measured on European networks of the era.
    public static let gprs = LinkProfile(name: "gprs", bytesPerSecond: 6_700, upBytesPerSecond: 3_350, roundTripSeconds: 0.6, accessTechnology: 0)
    public static let edge = LinkProfile(name: "edge", bytesPerSecond: 24_000, roundTripSeconds: 0.3, accessTechnology: 3)
    public static let umts = LinkProfile(name: "umts", bytesPerSecond: 48_000, roundTripSeconds: 0.15, accessTechnology: 2)

    public static func named(_ name: String) -> LinkProfile? {
        [gprs, edge, umts].first { $0.name == name }
    }
}

public enum SimFault: String, CaseIterable, Sendable {
    /// URCs injected between response lines and while idle.
    case urc
    /// NUL, 0xFF, escape bytes and junk lines between lines.
    case noise
    /// Rarely, a final result arrives corrupted (the agent sees no final and must re-sync).
    case garble
    /// The first `AT+CPIN?` reads answer `+CME ERROR: 14` (SIM busy).
    case busy
    /// After some commands the modem goes silent for a while, then answers again.
    case hang
    /// After some commands the modem goes silent until its power key is pulsed.
    case dead
    /// After some commands the modem answers ERROR to everything but `AT+CFUN=1,1`.
    case wedged
    /// The carrier drops during a data session (`NO CARRIER`).
    case drop
    /// The link stalls for a while during a data session.
    case stall
    /// Informational commands sometimes fail with `+CME ERROR: 100`.
    case cme
    /// Registration takes five times longer.
    case slowreg
    /// The network denies registration.
    case denied
    /// No command tells the PIN attempts left.
    case nocounter
    /// The SIM starts blocked (PUK).
    case puk
    /// No SIM inserted.
    case nosim
    /// Powers up in numeric mode (V0) with echo on.
    case v0

    public static func parse(_ text: String) throws -> Set<SimFault> {
        var faults = Set<SimFault>()
        for word in text.split(separator: ",") where !word.isEmpty {
            guard let fault = SimFault(rawValue: String(word)) else {
                throw SimulatorError("unknown fault '\(word)' (known: \(SimFault.allCases.map(\.rawValue).joined(separator: ",")))")
            }
            faults.insert(fault)
        }
        return faults
    }
}

public struct SimulatorError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Delays of the simulated modem, in seconds before `timeScale`.
public struct SimDelays: Sendable {
    public var command = 0.02
    public var registration = 3.0
    public var ciicr = 1.5
    public var cipstart = 1.2
    public var qiact = 1.0
    public var qiopen = 0.8
    public var dial = 1.0
    public var boot = 3.0
    public var hang = 4.0
    public var stall = 2.0
    public init() {}
}

public struct SimulatedModemConfig: Sendable {
    public var dialect: SimDialect = .simcom
    /// nil: the SIM has no PIN lock.
    public var pin: String? = "1234"
    public var puk = "12345678"
    public var pinAttempts = 3
    public var pukAttempts = 10
    public var link: LinkProfile = .gprs
    /// Where data sessions go (overrides the address the agent asks for; required for PPP dials).
    public var connectTo: String?
    public var faults: Set<SimFault> = []
    public var seed: UInt64 = 1
    /// Multiplies every delay (and the link's round trip); 0.01 makes a session take milliseconds.
    public var timeScale = 1.0
    public var delays = SimDelays()
    /// The escape guard time the simulated modem requires around `+++` (S12), unscaled.
    public var guardSeconds = 1.0
    /// A file the simulator watches as the power key GPIO: "1" then "0" is a pulse.
    public var powerKeyPath: String?
    /// PINs sent with this many attempts left or fewer are counted as unsafe.
    public var floor = 1
    public init() {}

    /// The handheld's usual modem with a SIM that asks no PIN: what the sync benchmarks and the
    /// simulated day dial through.
    public static func simcomWithoutPIN(link: LinkProfile, guardSeconds: Double, timeScale: Double = 1) -> SimulatedModemConfig {
        var config = SimulatedModemConfig()
        config.dialect = .simcom
        config.pin = nil
        config.link = link
        config.guardSeconds = guardSeconds
        config.timeScale = timeScale
        return config
    }
}

public struct SimulatedModemStats: Sendable {
    public var commands = 0
    public var pinCommands = 0
    public var pinSentAtOrBelowFloor = 0
    public var wrongPins = 0
    public var pukLocks = 0
    public var sessions = 0
    public var bytesUp = 0
    public var bytesDown = 0
    public var reboots = 0
    public var hangs = 0
    public var powerKeyPulses = 0
    public var carrierDrops = 0
    /// Seconds during which the modem itself was the bottleneck: working on a reply, or not
    /// yet registered (union of those intervals, from the first command on).
    public var ownDelaySeconds = 0.0
}

/// A tiny deterministic generator (SplitMix64), so a seed replays a chaos run.
public struct SimRandom: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
}

func monotonic() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

/// The simulated modem. `start()` runs it on its own thread (tests, chaos); `run()` blocks
/// (the `satchel-sim modem` command).
public final class SimulatedModem: @unchecked Sendable {
    public let path: String
    public let config: SimulatedModemConfig
    private let terminal: PseudoTerminal
    private let master: Int32
    private let loop = SimulatorLoop(SimulatedModemStats())

    // Modem state (touched only by the simulator's thread).
    private var rng: SimRandom
    private var echo = true
    private var verbose = true
    private enum SIM { case ready, pin, puk, absent }
    private var sim: SIM
    private var pinLeft: Int
    private var pukLeft: Int
    private var busyReads = 0
    private var urcMode: [String: Int] = ["+CREG": 0, "+CGREG": 0, "+CEREG": 0]
    private var registrationStart: Double?
    private var registrationAnnounced = false
    private let roaming: Bool
    private enum Hang { case none, until(Double), dead, wedged, booting(Double) }
    private var hang = Hang.none
    private var hangAfter: Int?
    private var lineBuffer: [UInt8] = []
    private var lineOverflow = false
    private struct Out { var at: Double; var bytes: [UInt8]; var action: (() -> Void)? }
    private var outQueue: [Out] = []
    private var lastOutAt = 0.0
    private var firstCommandAt: Double?
    private var busyIntervals: [(Double, Double)] = []
    // Data.
    private var tcp: FileDescriptorStream?
    private var dataMode = false
    private var upQueue: [(Double, [UInt8])] = []
    private var downQueue: [(Double, [UInt8])] = []
    private var upFree = 0.0
    private var downFree = 0.0
    private var remoteClosedAfterQueue = false
    /// Set once the far end closed: its socket stays readable at EOF, so polling it would spin.
    private var stopReadingTCP = false
    private var lastDataInput = 0.0
    private var plusCount = 0
    private var escapeAt: Double?
    private var dropAfter: Int?
    private var sessionBytes = 0
    private var nextStall: Int?
    private var lastPowerKey = "0"

    public init(config: SimulatedModemConfig) throws {
        self.config = config
        // The far end of a data session may close first: EPIPE, not a process-killing signal.
        signal(SIGPIPE, SIG_IGN)
        rng = SimRandom(seed: config.seed)
        terminal = try PseudoTerminal()
        path = terminal.path
        master = terminal.master
        pinLeft = config.pinAttempts
        pukLeft = config.pukAttempts
        if config.faults.contains(.nosim) { sim = .absent }
        else if config.faults.contains(.puk) { sim = .puk; pinLeft = 0 }
        else { sim = config.pin == nil ? .ready : .pin }
        if config.faults.contains(.v0) { verbose = false }
        if config.faults.contains(.busy) { busyReads = 2 }
        var generator = SimRandom(seed: config.seed ^ 0xA5A5)
        roaming = generator.chance(0.2)
        if !config.faults.isDisjoint(with: [.hang, .dead, .wedged]) { hangAfter = Int.random(in: 3...25, using: &rng) }
        if config.faults.contains(.drop) { dropAfter = Int.random(in: 200...6_000, using: &rng) }
        if config.faults.contains(.stall) { nextStall = Int.random(in: 500...4_000, using: &rng) }
        if let key = config.powerKeyPath { writeText(key, "0") }
    }

    public var stats: SimulatedModemStats { loop.stats }

    private func count(_ update: (inout SimulatedModemStats) -> Void) { loop.count(update) }

    private var isStopped: Bool { loop.isStopped }

    /// Runs on a background thread until `stop()`.
    public func start() { loop.start { [self] in run() } }

    /// Stops the loop and waits for it (at most 5 s).
    public func stop() { loop.stop() }

    private func scaled(_ seconds: Double) -> Double { seconds * config.timeScale }

    // MARK: loop

    public func run() {
        while !isStopped {
            let now = monotonic()
            flushOutput(now)
            timers(now)
            var deadline = now + 0.05
            if let first = outQueue.first { deadline = min(deadline, first.at) }
            if dataMode, let first = downQueue.first { deadline = min(deadline, first.0) }
            if let first = upQueue.first { deadline = min(deadline, first.0) }
            if let escapeAt { deadline = min(deadline, escapeAt) }
            if let start = registrationStart, !registrationAnnounced { deadline = min(deadline, start + registrationDelay) }
            if case .until(let end) = hang { deadline = min(deadline, end) }
            if case .booting(let end) = hang { deadline = min(deadline, end) }
            if config.powerKeyPath != nil { deadline = min(deadline, now + 0.01) }
            var fds = [pollfd(fd: master, events: Int16(POLLIN), revents: 0)]
            let upBacklog = upQueue.reduce(0) { $0 + $1.1.count }
            if upBacklog > 8_192 { fds[0].events = 0 }
            // Outside data mode the far end's bytes wait in the socket (the modem buffers them).
            if let tcp, dataMode, !stopReadingTCP, downQueue.reduce(0, { $0 + $1.1.count }) < max(2_048, Int(config.link.bytesPerSecond / 4)) {
                fds.append(pollfd(fd: tcp.fd, events: Int16(POLLIN), revents: 0))
            }
            if !outQueue.isEmpty && outQueue[0].at <= now { fds[0].events |= Int16(POLLOUT) }
            let wait = max(0, Int32((deadline - monotonic()) * 1000))
            let ready = poll(&fds, nfds_t(fds.count), min(wait, 50))
            if ready <= 0 { continue }
            if fds[0].revents & Int16(POLLIN) != 0 { readMaster() }
            if fds.count > 1 && fds[1].revents != 0 { readTCP() }
        }
    }

    private func readMaster() {
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = read(master, &buffer, buffer.count)
        guard count > 0 else { return }
        let now = monotonic()
        let bytes = buffer[0..<count]
        if dataMode {
            dataInput(Array(bytes), now)
            return
        }
        for byte in bytes { commandByte(byte, now) }
    }

    private func readTCP() {
        guard let tcp else { return }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = read(tcp.fd, &buffer, buffer.count)
        if count > 0 {
            let now = monotonic()
            guard dataMode else { return }  // in command mode the modem drops what arrives
            let bytes = Array(buffer[0..<count])
            let start = max(now + scaled(config.link.roundTripSeconds) / 2, downFree)
            downFree = start + scaled(Double(count) / config.link.bytesPerSecond)
            downQueue.append((downFree, bytes))
        } else if count == 0 {
            // The far end closed: what it sent is still on its way down the shaped link, and a
            // real modem delivers it before it reports the closed connection.
            if downQueue.isEmpty { carrierLost(remoteClosed: true) } else { remoteClosedAfterQueue = true; stopReadingTCP = true }
        } else if errno != EAGAIN && errno != EINTR {
            carrierLost(remoteClosed: true)
        }
    }

    private func flushOutput(_ now: Double) {
        while let first = outQueue.first, first.at <= now {
            if !first.bytes.isEmpty {
                let written = first.bytes.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
                if written < 0 { return }  // pty full: try again on the next turn
                if written < first.bytes.count {
                    outQueue[0].bytes.removeFirst(written)
                    return
                }
            }
            outQueue.removeFirst()
            first.action?()
        }
        if dataMode {
            while let first = downQueue.first, first.0 <= now {
                let written = first.1.withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
                if written < 0 { break }
                if written < first.1.count { downQueue[0].1.removeFirst(written); break }
                downQueue.removeFirst()
                count { $0.bytesDown += written }
                afterDataBytes(written)
                if !dataMode { break }
            }
            if remoteClosedAfterQueue && downQueue.isEmpty && dataMode {
                remoteClosedAfterQueue = false
                carrierLost(remoteClosed: true)
            }
        }
        while let first = upQueue.first, first.0 <= now, let tcp {
            do {
                try tcp.write(first.1, deadline: .after(seconds: 1))
            } catch {
                carrierLost(remoteClosed: true)
                return
            }
            upQueue.removeFirst()
            count { $0.bytesUp += first.1.count }
            afterDataBytes(first.1.count)
        }
    }

    private func afterDataBytes(_ count: Int) {
        sessionBytes += count
        if let dropAfter, sessionBytes >= dropAfter {
            self.dropAfter = nil
            self.count { $0.carrierDrops += 1 }
            carrierLost(remoteClosed: false)
        }
        if let stallAt = nextStall, sessionBytes >= stallAt {
            nextStall = sessionBytes + Int.random(in: 2_000...8_000, using: &rng)
            let until = monotonic() + scaled(config.delays.stall)
            downFree = max(downFree, until)
            upFree = max(upFree, until)
        }
    }

    private func timers(_ now: Double) {
        if let at = escapeAt, now >= at {
            escapeAt = nil
            if plusCount == 3 && now - lastDataInput >= config.guardSeconds * 0.9 {
                plusCount = 0
                dataMode = false
                downQueue.removeAll()
                emit([], final: "OK", delay: 0)
            }
        }
        switch hang {
        case .until(let end) where now >= end: hang = .none
        case .booting(let end) where now >= end:
            hang = .none
            emitURC("RDY")
            if sim == .pin { emitURC("+CPIN: SIM PIN") }
            if sim == .ready { emitURC("+CPIN: READY") }
        default: break
        }
        if let key = config.powerKeyPath, let value = readText(key) {
            if lastPowerKey == "1" && value == "0" {
                count { $0.powerKeyPulses += 1 }
                reboot()
            }
            lastPowerKey = value
        }
        if let start = registrationStart, !registrationAnnounced, now >= start + registrationDelay {
            registrationAnnounced = true
            let stat = registrationStatus(now)
            for prefix in ["+CREG", "+CGREG"] where (urcMode[prefix] ?? 0) > 0 { emitURC("\(prefix): \(stat)") }
        }
        if config.faults.contains(.urc), !dataMode, outQueue.isEmpty, rng.chance(0.002) { emitURC(randomURC()) }
    }

    // MARK: command mode

    private var isHung: Bool {
        switch hang {
        case .none: return false
        default: return true
        }
    }

    private func commandByte(_ byte: UInt8, _ now: Double) {
        switch hang {
        case .dead, .until, .booting: return
        default: break
        }
        if echo && !isHung { schedule([byte], at: now) }
        switch byte {
        case 0x0D:
            let line = lineOverflow ? nil : String(decoding: lineBuffer, as: UTF8.self)
            lineBuffer.removeAll(keepingCapacity: true)
            lineOverflow = false
            if let line { command(line, now) } else { emit([], final: "ERROR", delay: 0) }
        case 0x0A: break
        case 0x08, 0x7F: if !lineBuffer.isEmpty { lineBuffer.removeLast() }
        default:
            if lineBuffer.count >= 560 { lineOverflow = true } else { lineBuffer.append(byte) }
        }
    }

    private func command(_ raw: String, _ now: Double) {
        let line = raw.trimmingCharacters(in: .whitespaces)
        guard line.uppercased().hasPrefix("AT") else { return }
        if firstCommandAt == nil {
            firstCommandAt = now
            if sim == .ready && registrationStart == nil { registrationStart = now }
        }
        count { $0.commands += 1 }
        let upper = line.uppercased()
        if case .wedged = hang {
            if upper == "AT+CFUN=1,1" { emit([], final: "OK", delay: 0); reboot() } else { emit([], final: "ERROR", delay: 0) }
            return
        }
        if let after = hangAfter {
            if after <= 1 {
                hangAfter = nil
                count { $0.hangs += 1 }
                if config.faults.contains(.dead) { hang = .dead }
                else if config.faults.contains(.wedged) { hang = .wedged }
                else { hang = .until(now + scaled(config.delays.hang)) }
                return
            }
            hangAfter = after - 1
        }
        handle(line, upper: upper, now)
    }

    private var registrationDelay: Double {
        scaled(config.delays.registration * (config.faults.contains(.slowreg) ? 5 : 1))
    }

    private func registrationStatus(_ now: Double) -> Int {
        guard sim == .ready, let start = registrationStart else { return 0 }
        if now < start + registrationDelay { return 2 }
        if config.faults.contains(.denied) { return 3 }
        return roaming ? 5 : 1
    }

    private var registered: Bool {
        let stat = registrationStatus(monotonic())
        return stat == 1 || stat == 5
    }

    private var identity: (String, String, String) {
        switch config.dialect {
        case .simcom: return ("SIMCOM_Ltd", "SIMCOM_SIM800L", "Revision:1418B05SIM800L24")
        case .quectel: return ("Quectel", "EC21", "Revision: EC21EFAR06A01M4G")
        case .huawei: return ("huawei", "E173", "11.126.85.00.209")
        case .generic: return ("Generic", "GSM-3GPP", "1.0.0")
        }
    }

    private func handle(_ line: String, upper: String, _ now: Double) {
        let body = String(line.dropFirst(2))
        let bodyUpper = String(upper.dropFirst(2))
        var name = bodyUpper
        var argument = ""
        var isQuery = false
        if let index = bodyUpper.firstIndex(where: { $0 == "=" || $0 == "?" }) {
            name = String(bodyUpper[..<index])
            isQuery = bodyUpper[index] == "?"
            let offset = bodyUpper.distance(from: bodyUpper.startIndex, to: index)
            argument = String(body.dropFirst(offset + 1))
        }
        let fail = { self.emit([], final: "ERROR", delay: 0) }
        let cme = { (code: Int) in self.emit([], final: "+CME ERROR: \(code)", delay: 0) }
        let informational = ["+CSQ", "+COPS", "+CGMR", "+CGMM"]
        if config.faults.contains(.cme) && informational.contains(name) && rng.chance(0.15) { return cme(100) }

        switch name {
        case "":
            emit([], final: "OK", delay: 0)
        case "+CMEE", "+CGATT", "+CIPRXGET", "+CIPHEAD", "+QIMODE", "+QIFGCNT", "+CGAUTH", "+CSCLK", "+CGEREP":
            if isQuery { emit(["\(name): 1"], final: "OK", delay: 0) } else { emit([], final: "OK", delay: 0) }
        case "+CGMI", "+GMI": emit([identity.0], final: "OK", delay: 0)
        case "+CGMM", "+GMM": emit([identity.1], final: "OK", delay: 0)
        case "+CGMR", "+GMR": emit([identity.2], final: "OK", delay: 0)
        case "+CGSN", "+GSN": emit(["866262037890\(100 + Int(config.seed % 900))"], final: "OK", delay: 0)
        case "I": emit([identity.0, identity.1, identity.2], final: "OK", delay: 0)
        case "+CFUN":
            if isQuery { emit(["+CFUN: 1"], final: "OK", delay: 0) }
            else if argument.hasPrefix("1,1") { emit([], final: "OK", delay: 0, action: { [self] in reboot() }) }
            else { emit([], final: "OK", delay: 0) }
        case "+CPIN": cpin(argument, isQuery: isQuery)
        case "+CPINR":
            guard supportsCounter([.quectel, .generic]) else { return fail() }
            emit(["+CPINR: \"SIM PIN\",\(pinLeft),\(config.pinAttempts)", "+CPINR: \"SIM PUK\",\(pukLeft),\(config.pukAttempts)"], final: "OK", delay: 0)
        case "+QPINC":
            guard supportsCounter([.quectel]) else { return fail() }
            emit(["+QPINC: \"SC\",\(pinLeft),\(pukLeft)", "+QPINC: \"P2\",3,10"], final: "OK", delay: 0)
        case "+SPIC":
            guard supportsCounter([.simcom]) else { return fail() }
            emit(["+SPIC: \(pinLeft),\(pukLeft),3,10"], final: "OK", delay: 0)
        case "^CPIN":
            guard supportsCounter([.huawei]) else { return fail() }
            let code = sim == .puk ? "SIM PUK" : sim == .pin ? "SIM PIN" : "READY"
            let times = sim == .puk ? pukLeft : pinLeft
            emit(["^CPIN: \(code),\(times),\(pukLeft),\(pinLeft),10,3"], final: "OK", delay: 0)
        case "+CSIM":
            guard supportsCounter([.huawei, .generic]), argument.replacingOccurrences(of: " ", with: "") == "10,\"0020000100\"" else { return fail() }
            if sim == .absent { return cme(10) }
            emit(["+CSIM: 4,\"\(sim == .puk ? "6983" : sim == .ready ? "9000" : "63C\(pinLeft)")\""], final: "OK", delay: 0)
        case "+CREG", "+CGREG", "+CEREG":
            if isQuery {
                var stat = registrationStatus(now)
                if name == "+CEREG" && config.link.accessTechnology != 7 { stat = stat == 2 ? 2 : 0 }
                emit(["\(name): \(urcMode[name] ?? 0),\(stat)"], final: "OK", delay: 0)
            } else {
                urcMode[name] = Int(argument.prefix(1)) ?? 0
                emit([], final: "OK", delay: 0)
            }
        case "+CSQ": emit(["+CSQ: \(registered ? 14 + Int(config.seed % 10) : 99),99"], final: "OK", delay: 0)
        case "+COPS":
            guard isQuery else { return emit([], final: "OK", delay: 0) }
            emit([registered ? "+COPS: 0,0,\"Orange PL\",\(config.link.accessTechnology)" : "+COPS: 0"], final: "OK", delay: 0)
        // SIMCom's own TCP stack.
        case "+CIPSHUT" where config.dialect == .simcom:
            closeTCP()
            emit([], final: "SHUT OK", delay: 0)
        case "+CIPMODE" where config.dialect == .simcom, "+CSTT" where config.dialect == .simcom:
            guard sim == .ready else { return cme(sim == .absent ? 10 : 11) }
            emit([], final: "OK", delay: 0)
        case "+CIICR" where config.dialect == .simcom:
            guard registered else { return emit([], final: "ERROR", delay: scaled(config.delays.ciicr) / 3) }
            emit([], final: "OK", delay: scaled(config.delays.ciicr))
        case "+CIFSR" where config.dialect == .simcom:
            guard registered else { return fail() }
            emitLines(["10.145.\(config.seed % 200).7"], delay: 0)
        case "+CIPSTART" where config.dialect == .simcom:
            let parts = argument.replacingOccurrences(of: "\"", with: "").split(separator: ",").map(String.init)
            guard registered, parts.count == 3 else { return fail() }
            emit([], final: "OK", delay: 0)
            dial(host: parts[1], port: parts[2], delay: scaled(config.delays.cipstart), failure: "CONNECT FAIL")
        case "+CIPCLOSE" where config.dialect == .simcom:
            if tcp == nil { return fail() }
            closeTCP()
            emit([], final: "CLOSE OK", delay: 0)
        // Quectel's.
        case "+QICSGP" where config.dialect == .quectel, "+QIDEACT" where config.dialect == .quectel:
            emit([], final: "OK", delay: 0)
        case "+QIACT" where config.dialect == .quectel:
            guard !isQuery else { return emit(["+QIACT: 1,1,1,\"10.7.1.9\""], final: "OK", delay: 0) }
            guard registered else { return emit([], final: "ERROR", delay: scaled(config.delays.qiact) / 3) }
            emit([], final: "OK", delay: scaled(config.delays.qiact))
        case "+QIOPEN" where config.dialect == .quectel:
            let parts = argument.replacingOccurrences(of: "\"", with: "").split(separator: ",").map(String.init)
            guard registered, parts.count >= 7, parts[6] == "2" else { return fail() }
            dial(host: parts[3], port: parts[4], delay: scaled(config.delays.qiopen), failure: "ERROR")
        case "+QICLOSE" where config.dialect == .quectel:
            closeTCP()
            emit([], final: "OK", delay: 0)
        // PPP.
        case "+CGDCONT":
            emit([], final: "OK", delay: 0)
        case _ where name.hasPrefix("D"):
            guard name.hasPrefix("D*99"), registered, config.dialect == .huawei || config.dialect == .generic else {
                return emit([], final: "NO CARRIER", delay: scaled(config.delays.dial) / 2)
            }
            guard let target = config.connectTo else { return emit([], final: "NO CARRIER", delay: scaled(config.delays.dial)) }
            let parts = target.split(separator: ":").map(String.init)
            dial(host: parts.first ?? "", port: parts.last ?? "", delay: scaled(config.delays.dial), failure: "NO CARRIER")
        case "H", "H0":
            closeTCP()
            emit([], final: "OK", delay: 0)
        case "O", "O0":
            guard tcp != nil else { return emit([], final: "NO CARRIER", delay: 0) }
            emit([], final: "CONNECT", delay: 0, action: { [self] in enterData() })
        default:
            basic(bodyUpper)
        }
    }

    private func supportsCounter(_ dialects: [SimDialect]) -> Bool {
        !config.faults.contains(.nocounter) && dialects.contains(config.dialect)
    }

    /// Basic commands, possibly chained (`E0V1`, `&C1`, `X4`, `Z`).
    private func basic(_ text: String) {
        var rest = Substring(text)
        var newEcho = echo
        var newVerbose = verbose
        while let first = rest.first {
            var letter = String(first)
            rest = rest.dropFirst()
            if letter == "&", let next = rest.first { letter += String(next); rest = rest.dropFirst() }
            let digits = rest.prefix(while: { $0.isNumber })
            rest = rest.dropFirst(digits.count)
            let value = Int(digits) ?? 0
            switch letter {
            case "E": newEcho = value == 1
            case "V": newVerbose = value == 1
            case "Z", "&F": newEcho = true; newVerbose = true
            case "X", "Q", "&C", "&D", "&K", "&W", "S", "M", "L": break
            default: return emit([], final: "ERROR", delay: 0)
            }
        }
        // The result of ATE0/ATV1 is already sent in the new mode.
        echo = newEcho
        verbose = newVerbose
        emit([], final: "OK", delay: 0)
    }

    private func cpin(_ argument: String, isQuery: Bool) {
        if isQuery {
            if sim == .absent { return emit([], final: "+CME ERROR: 10", delay: 0) }
            if busyReads > 0 {
                busyReads -= 1
                return emit([], final: "+CME ERROR: 14", delay: 0)
            }
            let code = sim == .ready ? "READY" : sim == .pin ? "SIM PIN" : "SIM PUK"
            return emit(["+CPIN: \(code)"], final: "OK", delay: 0)
        }
        let values = argument.replacingOccurrences(of: "\"", with: "").split(separator: ",").map(String.init)
        switch sim {
        case .absent: emit([], final: "+CME ERROR: 10", delay: 0)
        case .ready: emit([], final: "+CME ERROR: 3", delay: 0)
        case .pin:
            count {
                $0.pinCommands += 1
                if self.pinLeft <= self.config.floor { $0.pinSentAtOrBelowFloor += 1 }
            }
            if values.first == config.pin {
                pinLeft = config.pinAttempts
                sim = .ready
                registrationStart = monotonic()
                registrationAnnounced = false
                emit([], final: "OK", delay: scaled(0.2))
                emitURC("+CPIN: READY")
            } else {
                pinLeft -= 1
                count { $0.wrongPins += 1 }
                if pinLeft <= 0 {
                    sim = .puk
                    count { $0.pukLocks += 1 }
                }
                emit([], final: "+CME ERROR: 16", delay: scaled(0.2))
            }
        case .puk:
            guard values.count == 2 else { return emit([], final: "+CME ERROR: 12", delay: 0) }
            if values[0] == config.puk {
                sim = .ready
                pinLeft = config.pinAttempts
                pukLeft = config.pukAttempts
                registrationStart = monotonic()
                emit([], final: "OK", delay: scaled(0.2))
            } else {
                pukLeft = max(0, pukLeft - 1)
                emit([], final: "+CME ERROR: 16", delay: scaled(0.2))
            }
        }
    }

    private func isLoopback(_ host: String) -> Bool { host == "localhost" || host.hasPrefix("127.") }

    /// Connects the data session (only to loopback: the simulator never reaches the network).
    private func dial(host requestedHost: String, port requestedPort: String, delay: Double, failure: String) {
        var host = requestedHost
        var port = requestedPort
        if let target = config.connectTo, let colon = target.lastIndex(of: ":") {
            host = String(target[..<colon])
            port = String(target[target.index(after: colon)...])
        }
        guard isLoopback(host), let stream = try? TCP.connect("\(host):\(port)", deadline: .after(seconds: 2)) else {
            return emitLines([failure], delay: delay)
        }
        closeTCP()
        tcp = stream
        count { $0.sessions += 1 }
        sessionBytes = 0
        emitLines(["CONNECT"], delay: delay, action: { [self] in enterData() })
    }

    private func enterData() {
        dataMode = true
        plusCount = 0
        lastDataInput = monotonic()
        downFree = monotonic()
        upFree = monotonic()
    }

    private func closeTCP() {
        tcp?.close()
        tcp = nil
        remoteClosedAfterQueue = false
        stopReadingTCP = false
        dataMode = false
        upQueue.removeAll()
        downQueue.removeAll()
    }

    private func carrierLost(remoteClosed: Bool) {
        let wasData = dataMode
        closeTCP()
        if wasData { emitLines([config.dialect == .simcom && remoteClosed ? "CLOSED" : "NO CARRIER"], delay: 0) }
    }

    private func dataInput(_ bytes: [UInt8], _ now: Double) {
        var data: [UInt8] = []
        for byte in bytes {
            if byte == 0x2B && plusCount < 3 && (plusCount > 0 || now - lastDataInput >= config.guardSeconds * 0.9) {
                plusCount += 1
                if plusCount == 3 { escapeAt = now + config.guardSeconds }
                continue
            }
            if plusCount > 0 {
                data += [UInt8](repeating: 0x2B, count: plusCount)
                plusCount = 0
                escapeAt = nil
            }
            data.append(byte)
        }
        lastDataInput = now
        guard !data.isEmpty else { return }
        let start = max(now + scaled(config.link.roundTripSeconds) / 2, upFree)
        upFree = start + scaled(Double(data.count) / config.link.upBytesPerSecond)
        upQueue.append((upFree, data))
    }

    private func reboot() {
        count { $0.reboots += 1 }
        closeTCP()
        echo = true
        verbose = true
        urcMode = ["+CREG": 0, "+CGREG": 0, "+CEREG": 0]
        if sim == .ready && config.pin != nil { sim = .pin }
        registrationStart = sim == .ready ? monotonic() : nil
        registrationAnnounced = false
        lineBuffer.removeAll()
        outQueue.removeAll()
        hang = .booting(monotonic() + scaled(config.delays.boot))
    }

    // MARK: output

    private func schedule(_ bytes: [UInt8], at: Double, action: (() -> Void)? = nil) {
        let when = max(at, lastOutAt)
        lastOutAt = when
        outQueue.append(Out(at: when, bytes: bytes, action: action))
    }

    private func record(busyFrom start: Double, to end: Double) {
        guard end > start, busyIntervals.count < 100_000 else { return }
        busyIntervals.append((start, end))
    }

    /// A response: info lines and a final result, in V1 or V0 form, after the command latency
    /// plus `delay`, with URCs and noise mixed in when those faults are on.
    private func emit(_ lines: [String], final: String, delay: Double, action: (() -> Void)? = nil) {
        let now = monotonic()
        let at = now + scaled(config.delays.command) + delay
        record(busyFrom: max(now, lastOutAt), to: at)
        var text: [UInt8] = []
        var pieces = lines
        if config.faults.contains(.urc) && rng.chance(0.3) {
            pieces.insert(randomURC(), at: Int.random(in: 0...pieces.count, using: &rng))
        }
        for piece in pieces {
            text += verbose ? Array("\r\n\(piece)\r\n".utf8) : Array("\(piece)\r\n".utf8)
            if config.faults.contains(.noise) && rng.chance(0.2) { text += noise() }
        }
        var finalText = final
        if config.faults.contains(.garble) && rng.chance(0.03) { finalText = "O\u{7F}J" }
        if verbose {
            text += Array("\r\n\(finalText)\r\n".utf8)
        } else {
            let codes = ["OK": "0", "CONNECT": "1", "NO CARRIER": "3", "ERROR": "4", "NO DIALTONE": "6", "BUSY": "7", "NO ANSWER": "8"]
            text += Array((codes[finalText].map { "\($0)\r" } ?? "\(finalText)\r\n").utf8)
        }
        schedule(text, at: at, action: action)
    }

    /// Lines with no final result (SIMCom's `AT+CIFSR`, `CONNECT` after `OK`).
    private func emitLines(_ lines: [String], delay: Double, action: (() -> Void)? = nil) {
        let now = monotonic()
        let at = now + scaled(config.delays.command) + delay
        record(busyFrom: max(now, lastOutAt), to: at)
        var text: [UInt8] = []
        for line in lines {
            if !verbose, line == "CONNECT" { text += Array("1\r".utf8); continue }
            text += Array("\r\n\(line)\r\n".utf8)
        }
        schedule(text, at: at, action: action)
    }

    private func emitURC(_ line: String) {
        guard !dataMode else { return }
        schedule(Array("\r\n\(line)\r\n".utf8), at: monotonic())
    }

    private func randomURC() -> String {
        let choices: [String]
        switch config.dialect {
        case .huawei: choices = ["^RSSI: 17", "^MODE: 3,3", "+CREG: 1", "^HCSQ: \"GSM\",40"]
        case .quectel: choices = ["+QIURC: \"pdpdeact\",1", "+CGREG: 1", "+CREG: 1,\"00C3\",\"1A2B\",0", "+QIND: \"csq\",15,99"]
        case .simcom: choices = ["+CREG: 1", "Call Ready", "SMS Ready", "+CIPRXGET: 1", "*PSUTTZ: 2024,5,1,10,0,0,\"+8\",0"]
        case .generic: choices = ["+CREG: 5", "RING", "+CGREG: 1", "+CMTI: \"SM\",3"]
        }
        return choices[Int.random(in: 0..<choices.count, using: &rng)]
    }

    private func noise() -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<Int.random(in: 1...6, using: &rng) {
            bytes.append([0x00, 0xFF, 0x1B, 0x11, 0x13, 0xFE][Int.random(in: 0..<6, using: &rng)])
        }
        if rng.chance(0.3) { bytes += Array("\r\n#$%junk\r\n".utf8) }
        return bytes
    }

    /// Seconds the modem itself was the bottleneck: the union of the intervals it spent on a
    /// reply or still registering, from the first command on. Call after `stop()`.
    public func ownDelaySeconds(until limit: Double? = nil) -> Double {
        let end = limit ?? monotonic()
        var intervals = busyIntervals
        if let start = registrationStart, let first = firstCommandAt {
            intervals.append((max(start, first), start + registrationDelay))
        }
        intervals = intervals.map { ($0.0, min($0.1, end)) }.filter { $0.1 > $0.0 }.sorted { $0.0 < $1.0 }
        var total = 0.0
        var current: (Double, Double)?
        for interval in intervals {
            if let open = current, interval.0 <= open.1 {
                current = (open.0, max(open.1, interval.1))
            } else {
                if let open = current { total += open.1 - open.0 }
                current = interval
            }
        }
        if let open = current { total += open.1 - open.0 }
        return total
    }
}

func writeText(_ path: String, _ text: String) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
}

func readText(_ path: String) -> String? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}
