// The Modem module: serial port, AT channel, SIM PIN safety, registration, data sessions,
// recovery. Plain synchronous code: every wait has a deadline (see docs/architecture.md).
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemCalls
public import Transport

/// The board's power key: a sysfs GPIO value file pulsed high then low.
public struct PowerKey: Sendable, Equatable {
    public var gpioValuePath: String
    public var pulseSeconds: Double
    public init(gpioValuePath: String, pulseSeconds: Double) {
        self.gpioValuePath = gpioValuePath
        self.pulseSeconds = pulseSeconds
    }
}

public struct ModemConfig: Sendable {
    /// Deadline of one ordinary command.
    public var commandTimeout = 3.0
    /// Never send a PIN when the attempts left are at or below this (the last belongs to a human).
    public var pinFloor = 1
    /// Send a PIN even when no command can tell the attempts left (off: refuse).
    public var allowUnknownAttempts = false
    /// How long to keep re-reading a busy SIM (`+CME ERROR: 14`) and how often.
    public var simBusyTimeout = 10.0
    public var simBusyPoll = 0.5
    public var registrationTimeout = 60.0
    /// A probe reports what it learned by then, and names what it had no time to ask.
    public var probeTimeout = 30.0
    /// Longest wait between registration polls (a URC ends it early).
    public var registrationPoll = 2.0
    /// Multiplies the timeouts written in profile scripts and the boot wait (tests shrink them).
    public var scriptTimeoutScale = 1.0
    /// Overrides the profile's guard time around `+++`.
    public var guardSeconds: Double?
    public var powerKey: PowerKey?

    public init() {}
}

/// A SIM PIN: 4 to 8 digits. It prints as `****` and is only ever written to the modem.
public struct SIMPIN: CustomStringConvertible, Sendable {
    fileprivate let digits: String

    public init(_ text: String) throws(ModemError) {
        var value = text
        while let last = value.last, last == "\n" || last == "\r" || last == " " { value.removeLast() }
        guard (4...8).contains(value.utf8.count), value.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw ModemError.invalidPIN }
        digits = value
    }

    public var description: String { "****" }
}

public struct Identity: Sendable, Equatable {
    public var manufacturer: String?
    public var model: String?
    public var revision: String?
    public var imei: String?
}

public struct SIMStatus: Sendable, Equatable {
    public var state: SIMState
    public var pinAttempts: Int?
    public var pukAttempts: Int?
    /// Which query told the attempts (`spic`, `cpinr`, ...), nil if none could.
    public var counterSource: String?
}

public struct NetworkStatus: Sendable, Equatable {
    public var registrations: [String: RegistrationStatus] = [:]
    public var rssiDBm: Int?
    public var technology: String?
    public var operatorName: String?

    public init(registrations: [String: RegistrationStatus] = [:]) { self.registrations = registrations }

    /// Registered if any domain is; denied if one is denied and none registered.
    public var overall: RegistrationStatus? {
        let values = Array(registrations.values)
        if let registered = values.first(where: { $0.isRegistered }) { return registered }
        if values.contains(.denied) { return .denied }
        if values.contains(.searching) { return .searching }
        return values.first
    }
}

public struct ProbeReport: Sendable, Equatable {
    public var identity: Identity
    public var profile: String
    /// Why this profile (and whether it is a fallback); nil when the caller set the profile itself.
    public var choice: ProfileChoice?
    /// What the probe could not learn, each with why (`model: AT+CGMM answered +CME ERROR: 11 ...`).
    public var unknown: [String] = []
    public var sim: SIMStatus?
    public var network: NetworkStatus
    public var recovery: RecoveryReport?
}

public struct RecoveryReport: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public var name: String
        public var succeeded: Bool
        public var seconds: Double
    }
    public var steps: [Step] = []
    public var recovered: Bool { steps.last?.succeeded == true }
}

public enum UnlockOutcome: Sendable, Equatable {
    case alreadyReady
    /// The PIN was sent once and accepted; `attemptsBefore` is what the SIM had left.
    case unlocked(attemptsBefore: Int?)
}

/// What to open a data session to.
public struct SessionRequest: Sendable {
    public var apn: String
    public var user: String
    public var password: String
    public var host: String
    public var port: UInt16

    public init(apn: String, user: String = "", password: String = "", host: String, port: UInt16) {
        self.apn = apn
        self.user = user
        self.password = password
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT` (host: IPv4 or a DNS name).
    public static func address(_ text: String) throws(ModemError) -> (String, UInt16) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else { throw ModemError.badAddress(text) }
        let host = String(text[..<colon])
        guard !host.isEmpty, host.utf8.count <= 253, host.utf8.allSatisfy({ isAlnum($0) || $0 == 0x2E || $0 == 0x2D }) else { throw ModemError.badAddress(text) }
        return (host, port)
    }

    func values() throws(ModemError) -> [String: String] {
        func check(_ value: String, _ what: String, allowEmpty: Bool) throws(ModemError) {
            guard allowEmpty || !value.isEmpty, value.utf8.count <= 64,
                  value.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C }) else {
                throw ModemError.sessionFailed(step: "\(what) must be 1-64 printable ASCII characters without quotes", result: nil)
            }
        }
        try check(apn, "APN", allowEmpty: false)
        try check(user, "user", allowEmpty: true)
        try check(password, "password", allowEmpty: true)
        return ["apn": apn, "user": user, "password": password, "host": host, "port": String(port)]
    }
}

func isAlnum(_ byte: UInt8) -> Bool { (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) }

/// Sleeps; only for guard times and the power-key pulse (every other wait reads the port).
func pause(_ seconds: Double) {
    guard seconds > 0 else { return }
    SystemCalls.sleep(nanoseconds: UInt64(seconds * 1e9))
}

/// One modem: the AT channel plus the rules (PIN safety, registration, sessions, recovery).
public final class Modem {
    public let channel: ATChannel
    public private(set) var profile: ModemProfile
    public var config: ModemConfig
    public let serial: SerialPort?
    public private(set) var identity = Identity()
    /// Where the identity came from: `AT+CGMI/AT+CGMM`, `ATI`, or nil when the modem said nothing.
    public private(set) var identifiedBy: String?
    /// Whether `identity` holds revision and IMEI as asked (`identify(full:)`).
    var identifiedFully = false
    public private(set) var choice: ProfileChoice?
    public private(set) var lastRecovery: RecoveryReport?
    /// The last answer to each command that did not succeed (why something is unknown).
    public private(set) var refusals: [String: String] = [:]
    /// Init commands the modem refused, with its answer (the modem still works without them).
    public private(set) var initRefusals: [String] = []

    public init(channel: ATChannel, profile: ModemProfile, config: ModemConfig = ModemConfig(), serial: SerialPort? = nil) {
        self.channel = channel
        self.profile = profile
        self.config = config
        self.serial = serial
        channel.extraURCPrefixes = profile.extraURCs
    }

    /// Opens the serial port with the profile's line settings.
    public static func open(port path: String, profile: ModemProfile, config: ModemConfig = ModemConfig(),
                            lockDirectory: String? = "/var/lock") throws(ModemError) -> Modem {
        let serial = try SerialPort(path: path, settings: profile.serial, lockDirectory: lockDirectory)
        return Modem(channel: ATChannel(port: serial), profile: profile, config: config, serial: serial)
    }

    public func use(profile: ModemProfile) {
        self.profile = profile
        channel.extraURCPrefixes = profile.extraURCs
    }

    /// Uses `profile` as named by the caller (`--profile`, the board profile).
    public func use(requested profile: ModemProfile, by whom: String) {
        use(profile: profile)
        choice = ProfileChoice(profile: profile.name, basis: .requested, identifiedBy: nil, reason: "named by \(whom)")
    }

    /// Takes the vendor final result codes and answer terminators of every profile in `directory`
    /// (before identification the vendor is unknown). Call before `start()`.
    public func adoptVendorCodes(from directory: HardwareDirectory) {
        let codes = directory.vendorCodes()
        channel.vendorFinals = codes.finals
        channel.terminators = codes.terminators
        channel.terminatorGrace = min(0.2, config.commandTimeout / 2)
    }

    /// Identifies the modem (ATI when AT+CGMI/AT+CGMM fail) and takes the profile `directory`
    /// chooses for it, or the built-in generic one without a directory.
    @discardableResult
    public func chooseProfile(in directory: HardwareDirectory?) throws(ModemError) -> ProfileChoice {
        // Vendor and model are all the choice reads: revision and IMEI (two more commands on
        // every sync) are asked by `probe`, which reports them.
        let identity = try identify(full: false)
        let chosen: (ModemProfile, ProfileChoice)
        if let directory {
            chosen = directory.choose(manufacturer: identity.manufacturer, model: identity.model, identifiedBy: identifiedBy)
        } else {
            chosen = (ModemProfile.builtInGeneric, ProfileChoice(profile: "generic", basis: .generic, identifiedBy: identifiedBy,
                                                                  reason: "no hardware directory found (give --hardware or install hardware/ to /usr/share/satchel/hardware); using generic 3GPP commands (fallback)"))
        }
        use(profile: chosen.0)
        choice = chosen.1
        return chosen.1
    }

    var guardSeconds: Double { config.guardSeconds ?? profile.guardSeconds }

    /// Sends a command that is safe to repeat, once more after a timeout (the channel re-syncs first).
    public func query(_ command: String, timeout: Double? = nil) throws(ModemError) -> ATResponse {
        do {
            return try channel.send(command, timeout: timeout ?? config.commandTimeout)
        } catch {
            guard case .noAnswer = error else { throw error }
            return try channel.send(command, timeout: timeout ?? config.commandTimeout)
        }
    }

    /// The lines of a query that succeeded, nil when the modem answered with an error (not
    /// supported, SIM busy...). A modem that does not answer at all still throws.
    public func answered(_ command: String) throws(ModemError) -> [String]? {
        let response: ATResponse
        do {
            response = try query(command)
        } catch {
            if case .noAnswer = error { refusals[command] = "no answer within \(config.commandTimeout) s" }
            throw error
        }
        if response.isOK {
            refusals[command] = nil
            return response.lines
        }
        refusals[command] = Self.explain(response.final)
        return nil
    }

    /// What a refusal means, for a technician.
    static func explain(_ final: FinalResult) -> String {
        switch final {
        case .cmeError(11): return "+CME ERROR: 11 (the SIM asks for its PIN first)"
        case .cmeError(12): return "+CME ERROR: 12 (the SIM asks for its PUK)"
        case .cmeError(10): return "+CME ERROR: 10 (no SIM)"
        case .cmeError(14): return "+CME ERROR: 14 (SIM busy)"
        case .error, .cmeError(4), .failed: return "\(final) (not supported by this modem)"
        default: return "\(final)"
        }
    }

    // MARK: start

    /// Syncs with the modem (climbing the recovery ladder if it does not answer) and sends the
    /// profile's init commands (`ATE0`, `ATV1`, `AT+CMEE=1`, `ATX4`, `AT&C1`).
    public func start() throws(ModemError) {
        if channel.sync(attempts: 3, timeout: min(1, config.commandTimeout)) {
            do throws(ModemError) {
                try initialize()
                return
            } catch {
                guard case .noAnswer = error else { throw error }
            }
        }
        _ = try recover()
    }

    /// Sends the profile's init commands. A refusal is noted, never fatal: real modems refuse
    /// `ATE0` or `AT+CMEE=1` until the PIN (`+CME ERROR: 11`) or answer with their own final
    /// codes, and every answer is still read without them (echo is skipped, V0 codes are parsed).
    func initialize() throws(ModemError) {
        initRefusals = []
        for step in profile.initCommands {
            let response = try query(step.command([:]))
            if !response.isOK && !step.optional { initRefusals.append("\(step.template): \(Self.explain(response.final))") }
        }
    }

    /// AT+CGMI, AT+CGMM, AT+CGMR, AT+CGSN; ATI fills what they did not say (some modems answer
    /// only ATI, or only before the PIN). `full: false` leaves out AT+CGMR and AT+CGSN (revision
    /// and IMEI): what choosing a profile needs, without two commands it does not.
    public func identify(full: Bool = true) throws(ModemError) -> Identity {
        var result = Identity()
        result.manufacturer = try answered("AT+CGMI").flatMap { ATParse.identity($0, prefixes: ["+CGMI:", "Manufacturer:"]) }
        result.model = try answered("AT+CGMM").flatMap { ATParse.identity($0, prefixes: ["+CGMM:", "Model:"]) }
        if full {
            result.revision = try answered("AT+CGMR").flatMap { ATParse.identity($0, prefixes: ["+CGMR:", "Revision:"]) }
            result.imei = try answered("AT+CGSN").flatMap { ATParse.imei($0) }
        }
        identifiedFully = full
        identifiedBy = result.manufacturer != nil || result.model != nil ? "AT+CGMI/AT+CGMM" : nil
        if result.manufacturer == nil || result.model == nil, let lines = try answered("ATI") {
            let ati = ATParse.ati(lines)
            if result.manufacturer == nil && result.model == nil && (ati.manufacturer != nil || ati.model != nil) { identifiedBy = "ATI" }
            result.manufacturer = result.manufacturer ?? ati.manufacturer
            result.model = result.model ?? ati.model
            result.revision = result.revision ?? ati.revision
            result.imei = result.imei ?? ati.imei
        }
        identity = result
        return result
    }

    // MARK: SIM

    /// `AT+CPIN?`, re-read while the SIM is busy (`+CME ERROR: 14`) up to `simBusyTimeout`.
    public func readSIMState() throws(ModemError) -> SIMState {
        let deadline = Deadline.after(seconds: config.simBusyTimeout)
        while true {
            let response = try query("AT+CPIN?")
            if response.isOK, let state = ATParse.cpin(response.lines) { return state }
            switch response.final {
            case .cmeError(10), .cmeError(13), .cmeError(15): return .notInserted
            case .cmeError(11): return .pinRequired
            case .cmeError(12): return .pukRequired
            default: break  // 14 busy, or an answer we cannot read: wait and re-read, never act on a guess
            }
            if deadline.hasPassed { throw ModemError.simBusy }
            let wake = min(deadline, Deadline.after(seconds: config.simBusyPoll))
            _ = try channel.waitForURC(until: wake) { $0.hasPrefix("+CPIN:") }
        }
    }

    /// Before a data session: the SIM must be unlocked already (a session never sends a PIN;
    /// `satchel modem unlock` does, once). Throws what stands in the way.
    public func requireReadySIM() throws(ModemError) {
        let state = try readSIMState()
        switch state {
        case .ready: return
        case .pukRequired: throw ModemError.pukRequired(pukAttemptsLeft: nil)
        case .notInserted: throw ModemError.simNotInserted
        default: throw ModemError.simLocked(state)
        }
    }

    /// Attempts left, from the first of the profile's queries that answers.
    public func readCounters(state: SIMState) throws(ModemError) -> (PINCounters, String)? {
        for counterQuery in profile.pinCounters {
            guard let lines = try answered(counterQuery.command), let counters = counterQuery.parse(lines, state: state) else { continue }
            switch state {
            case .pukRequired where counters.puk == nil: continue
            case .pinRequired where counters.pin == nil: continue
            default: return (counters, counterQuery.rawValue)
            }
        }
        return nil
    }

    public func simStatus() throws(ModemError) -> SIMStatus {
        let state = try readSIMState()
        var status = SIMStatus(state: state)
        if state == .pinRequired || state == .pukRequired || state == .ready, let (counters, source) = try readCounters(state: state) {
            status.pinAttempts = counters.pin
            status.pukAttempts = counters.puk
            status.counterSource = source
        }
        return status
    }

    /// Unlocks the SIM safely: reads the state and attempts first, sends the PIN at most once,
    /// and only when more attempts than the floor are left. Never re-sends, never sends a PUK.
    public func unlock(pin: SIMPIN) throws(ModemError) -> UnlockOutcome {
        let state = try readSIMState()
        switch state {
        case .ready: return .alreadyReady
        case .pinRequired: break
        case .pukRequired: throw ModemError.pukRequired(pukAttemptsLeft: try readCounters(state: .pukRequired)?.0.puk)
        case .notInserted: throw ModemError.simNotInserted
        default: throw ModemError.simLocked(state)
        }
        let attempts = try readCounters(state: .pinRequired)?.0.pin
        if let attempts {
            guard attempts > config.pinFloor else { throw ModemError.pinRefused(attemptsLeft: attempts, floor: config.pinFloor) }
        } else if !config.allowUnknownAttempts {
            throw ModemError.pinRefused(attemptsLeft: nil, floor: config.pinFloor)
        }
        let response: ATResponse
        do {
            response = try channel.send("AT+CPIN=\"\(pin.digits)\"", timeout: max(5, config.commandTimeout * 3))
        } catch {
            guard case .noAnswer = error else { throw error }
            // We do not know whether the SIM counted it. Look, never resend.
            if (try? readSIMState()) == .ready { return .unlocked(attemptsBefore: attempts) }
            throw ModemError.pinOutcomeUnknown
        }
        switch response.final {
        case .ok:
            let after = try readSIMState()
            if after == .ready { return .unlocked(attemptsBefore: attempts) }
            if after == .pukRequired { throw ModemError.pukRequired(pukAttemptsLeft: try readCounters(state: .pukRequired)?.0.puk) }
            throw ModemError.pinOutcomeUnknown
        case .cmeError(14):
            if (try? readSIMState()) == .ready { return .unlocked(attemptsBefore: attempts) }
            throw ModemError.simBusy
        default:
            let after = try readSIMState()
            if after == .ready { return .unlocked(attemptsBefore: attempts) }
            if after == .pukRequired { throw ModemError.pukRequired(pukAttemptsLeft: try readCounters(state: .pukRequired)?.0.puk) }
            throw ModemError.pinRejected(attemptsLeft: try readCounters(state: after)?.0.pin)
        }
    }

    // MARK: network

    /// `untilRegistered`: stops at the first registration that is home or roaming (what
    /// `NetworkStatus.overall` would take anyway), one query fewer on a registered modem.
    public func registration(untilRegistered: Bool = false) throws(ModemError) -> [String: RegistrationStatus] {
        var result: [String: RegistrationStatus] = [:]
        for prefix in profile.registrationPrefixes {
            guard let lines = try answered("AT\(prefix)?") else { continue }
            for line in lines {
                if let parsed = ATParse.registration(line, prefix: prefix + ":", unsolicited: false) {
                    result[String(prefix.dropFirst())] = parsed.status
                    break
                }
            }
            if untilRegistered, result.values.contains(where: { $0.isRegistered }) { break }
        }
        return result
    }

    /// The signal now in dBm (AT+CSQ), nil while the modem says it is not known (99).
    public func signal() throws(ModemError) -> Int? {
        try answered("AT+CSQ").flatMap { ATParse.csqDBm($0) }
    }

    public func network() throws(ModemError) -> NetworkStatus {
        var status = NetworkStatus()
        status.registrations = try registration()
        status.rssiDBm = try signal()
        if let lines = try answered("AT+COPS?"), let op = ATParse.cops(lines) {
            status.operatorName = op.name
            status.technology = op.technology
        }
        return status
    }

    /// Waits until registered (home or roaming): polls, and enables registration URCs so a
    /// change wakes the wait at once instead of at the next poll.
    public func waitForRegistration(timeout: Double? = nil) throws(ModemError) -> [String: RegistrationStatus] {
        let deadline = Deadline.after(seconds: timeout ?? config.registrationTimeout)
        var urcsEnabled = false
        var deniedPolls = 0
        var last: RegistrationStatus = .unknown
        while true {
            let current = try registration(untilRegistered: true)
            let overall = NetworkStatus(registrations: current).overall ?? .unknown
            if overall.isRegistered { return current }
            last = overall
            deniedPolls = overall == .denied ? deniedPolls + 1 : 0
            if deniedPolls >= 3 { throw ModemError.registrationDenied }
            if deadline.hasPassed { throw overall == .denied ? ModemError.registrationDenied : ModemError.notRegistered(last) }
            if !urcsEnabled {
                urcsEnabled = true
                for prefix in profile.registrationPrefixes { _ = try? channel.send("AT\(prefix)=1", timeout: config.commandTimeout) }
                continue
            }
            let prefixes = profile.registrationPrefixes.map { $0 + ":" }
            _ = try channel.waitForURC(until: min(deadline, Deadline.after(seconds: config.registrationPoll))) { line in
                prefixes.contains { line.hasPrefix($0) }
            }
        }
    }

    // MARK: probe

    /// What the modem, its SIM and the network say, within `config.probeTimeout`. The SIM comes
    /// first: a locked SIM makes many modems refuse identification (`+CME ERROR: 11`), which is
    /// information, not a failed probe. Whatever cannot be learned is named in `unknown` with why.
    public func probe() throws(ModemError) -> ProbeReport {
        let deadline = Deadline.after(seconds: config.probeTimeout)
        var unknown: [String] = []
        func ask<T>(_ what: String, _ body: () throws(ModemError) -> T?) -> T? {
            guard !deadline.hasPassed else {
                unknown.append("\(what): not asked, the probe's deadline of \(config.probeTimeout) s passed")
                return nil
            }
            do { return try body() } catch {
                unknown.append("\(what): \(error)")
                return nil
            }
        }
        func why(_ command: String) -> String { refusals[command].map { "\(command) answered \($0)" } ?? "\(command) gave nothing we can read" }
        let sim = ask("SIM state") { () throws(ModemError) -> SIMStatus? in try simStatus() }
        if !identifiedFully || identity.manufacturer == nil && identity.model == nil { _ = ask("identity") { () throws(ModemError) -> Identity? in try identify() } }
        if identity.manufacturer == nil { unknown.append("manufacturer: \(why("AT+CGMI")); \(why("ATI"))") }
        if identity.model == nil { unknown.append("model: \(why("AT+CGMM")); \(why("ATI"))") }
        if identity.imei == nil { unknown.append("IMEI: \(why("AT+CGSN"))") }
        if let sim, sim.state == .pinRequired || sim.state == .pukRequired, sim.pinAttempts == nil && sim.state == .pinRequired || sim.pukAttempts == nil && sim.state == .pukRequired {
            let tried = profile.pinCounters.map { why($0.command) }.joined(separator: "; ")
            unknown.append("attempts left: no counter command of profile \(profile.name) told them (\(tried)); a PIN will not be sent")
        }
        var network = NetworkStatus()
        network.registrations = ask("registration") { () throws(ModemError) -> [String: RegistrationStatus]? in try registration() } ?? [:]
        func noted(_ what: String) -> Bool { unknown.contains { $0.hasPrefix(what + ":") } }
        if network.registrations.isEmpty && !noted("registration") { unknown.append("registration: " + profile.registrationPrefixes.map { why("AT\($0)?") }.joined(separator: "; ")) }
        network.rssiDBm = ask("signal") { () throws(ModemError) -> Int? in try signal() }
        if let op = ask("operator", { () throws(ModemError) -> Operator? in try answered("AT+COPS?").flatMap { ATParse.cops($0) } }) {
            network.operatorName = op.name
            network.technology = op.technology
        }
        if network.rssiDBm == nil && !noted("signal") { unknown.append("signal: " + (refusals["AT+CSQ"].map { "AT+CSQ answered \($0)" } ?? "AT+CSQ says not known (99) yet")) }
        if network.operatorName == nil && !noted("operator") { unknown.append("operator: " + (refusals["AT+COPS?"].map { "AT+COPS? answered \($0)" } ?? "AT+COPS? names none (not registered)")) }
        unknown += initRefusals.map { "init \($0)" }
        return ProbeReport(identity: identity, profile: profile.name, choice: choice, unknown: unknown, sim: sim, network: network, recovery: lastRecovery)
    }

    // MARK: data session

    /// Runs the profile's `open` script; on `CONNECT` the port is a data stream. `reached` hears
    /// `.contextUp` as the script's last step (the connect or dial) is sent, every step before
    /// it (the context's activation among them) answered: what `satchel sync --json` times.
    public func openSession(_ request: SessionRequest, reached: (SyncPhase) -> Void = { _ in }) throws(ModemError) -> DataSession {
        let values = try request.values()
        for (index, step) in profile.openScript.enumerated() {
            if step.onlyWithUser && request.user.isEmpty { continue }
            if index == profile.openScript.count - 1, profile.session != "ppp" { reached(.contextUp) }
            let command = step.command(values)
            let response = try channel.send(command, timeout: step.timeout * config.scriptTimeoutScale, expect: step.expect)
            if case .connect = response.final { return DataSession(modem: self) }
            if !response.isOK && !step.optional {
                throw ModemError.sessionFailed(step: Redaction.redact(step.template), result: response.final)
            }
        }
        throw ModemError.sessionFailed(step: "end of the open script (no CONNECT)", result: nil)
    }

    /// pppd options for a PPP session on this port (pppd itself is started by the caller;
    /// the password goes to /etc/ppp/pap-secrets and chap-secrets, never into options).
    public func pppOptions(user: String) -> String {
        var lines = [serial?.path ?? "/dev/satchel-modem", String(serial?.settings.baud ?? profile.serial.baud)]
        lines.append((serial?.settings.rtsCts ?? profile.serial.rtsCts) ? "crtscts" : "nocrtscts")
        lines += ["local", "noauth", "defaultroute", "usepeerdns", "noipdefault", "novj", "nodetach",
                  "lcp-echo-interval 30", "lcp-echo-failure 4", "maxfail 1"]
        if !user.isEmpty { lines.append("user \"\(user)\"") }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: recovery

    /// The ladder: AT re-sync -> escape data mode and re-init -> `AT+CFUN=1,1` -> power key
    /// -> report. Each step is bounded; throws `.notResponding` when none brings the modem back.
    @discardableResult
    public func recover() throws(ModemError) -> RecoveryReport {
        var report = RecoveryReport()
        let syncTimeout = min(1, config.commandTimeout)
        let boot = profile.bootSeconds * config.scriptTimeoutScale
        func attempt(_ name: String, _ body: () -> Bool) -> Bool {
            let started = Deadline.now
            var ok = body()
            if ok { ok = (try? initialize()) != nil }
            report.steps.append(.init(name: name, succeeded: ok, seconds: Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9))
            return ok
        }
        func waitForBoot() -> Bool {
            let deadline = Deadline.after(seconds: boot)
            while !deadline.hasPassed {
                let attempt = Deadline.now
                if channel.sync(attempts: 1, timeout: syncTimeout) { return true }
                // A modem answering ERROR at once must not make this loop spin.
                let spent = Double(Deadline.now.nanoseconds - attempt.nanoseconds) / 1e9
                if spent < 0.05 { pause(0.05 - spent) }
            }
            return false
        }
        defer { lastRecovery = report }
        if attempt("re-sync", { channel.sync(attempts: 3, timeout: syncTimeout) }) { return report }
        if attempt("re-init", {
            // A modem left in data mode answers nothing: drop DTR, or escape with +++.
            if let serial, serial.setDTR(false) { pause(0.2); serial.setDTR(true) }
            pause(guardSeconds)
            try? channel.port.write(Array("+++".utf8), deadline: .after(seconds: 1))
            channel.needsResync = false
            pause(guardSeconds)
            return channel.sync(attempts: 2, timeout: syncTimeout)
        }) { return report }
        if attempt("AT+CFUN=1,1", {
            channel.needsResync = false  // send it even to a modem that fails AT
            _ = try? channel.send("AT+CFUN=1,1", timeout: syncTimeout)
            channel.needsResync = false
            return waitForBoot()
        }) { return report }
        if let key = config.powerKey {
            if attempt("power key", {
                for _ in 0..<2 {
                    guard writeGPIO(key.gpioValuePath, "1") else { return false }
                    pause(key.pulseSeconds)
                    guard writeGPIO(key.gpioValuePath, "0") else { return false }
                    if waitForBoot() { return true }
                }
                return false
            }) { return report }
        }
        throw ModemError.notResponding(port: serial?.path ?? "the modem", tried: report.steps.map(\.name))
    }

    public func close() {
        serial?.close()
        channel.port.close()
    }
}

func writeGPIO(_ path: String, _ value: String) -> Bool {
    guard let fd = try? SystemCalls.open(path, O_WRONLY) else { return false }
    do throws(Errno) {
        do { try SystemCalls.writeAll(fd, Array(value.utf8)) } catch { try? SystemCalls.close(fd); throw error }
        try SystemCalls.close(fd)  // sysfs reports a refused value at write or close
        return true
    } catch {
        return false
    }
}

