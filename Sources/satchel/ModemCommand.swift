import Agent
import ArgumentParser
import Field
import Modem
import Transport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct ModemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "modem", abstract: "Talk to the GSM modem: probe it, unlock the SIM safely, open a data session.",
        discussion: """
            The PIN is read from standard input, never from the command line. A PIN is sent at most once, and
            never when the SIM has the safety floor of attempts left (default 1) or cannot tell.
            Exit codes: 0 ok, 64 usage, 65 bad input, 66 no such port, 69 modem does not answer, 74 port I/O error,
            75 port in use, 77 no permission, 78 profile error, 80 SIM locked, 81 PIN not sent (attempts at the floor
            or unknown), 82 PIN rejected, 83 SIM blocked (PUK), 84 no SIM, 85 not registered, 86 registration denied,
            87 data session failed, 88 SIM busy or PIN outcome unknown. See docs/technician-guide.md.
            """,
        subcommands: [Probe.self, Unlock.self, Connect.self])

    struct Probe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Identify the modem and report SIM, PIN attempts, registration and signal, which profile was chosen and why, and what could not be learned.")
        @OptionGroup var modem: ModemOptions
        @OptionGroup var output: OutputOptions
        @OptionGroup var home: HomeOptions
        @Option(help: "Write what the modem answered to this new file as a transcript (PINs, PUKs, IMSI, ICCID and the IMEI's serial masked) that `satchel-sim modem replay` plays back.")
        var record: String?

        func run() throws {
            try modemReportingErrors {
                let recorder = try record.map { path throws(ModemError) -> TranscriptRecorder in
                    // Refuse an existing file before touching the modem: a recording never overwrites.
                    if access(path, F_OK) == 0 { throw ModemError.system("\(path) already exists; give --record a new file name", errno: EEXIST) }
                    return TranscriptRecorder()
                }
                var report: ProbeReport?
                defer {
                    if let recorder, let record {
                        do { try recorder.write(to: record, report: report, note: report == nil ? "the probe did not finish" : "probe of \(modem.port ?? "the modem")") } catch {
                            printError(error.description)
                        }
                    }
                }
                let (device, port) = try modem.open(recorder: recorder)
                defer { device.close() }
                report = try device.probe()
                guard let report else { return }
                let network = report.network
                // Kept for `satchel status` when this is a device (its data directory initialised).
                (try? home.agent())?.recordSignal(network.rssiDBm)
                let fields: [(String, JSONValue)] = [
                    ("port", .string(port)), ("profile", .string(report.profile)),
                    ("profile_basis", .optionalString(report.choice?.kind)), ("profile_fallback", .bool(report.choice?.isFallback ?? false)),
                    ("profile_reason", .optionalString(report.choice?.reason)),
                    ("hardware", .optionalString(modem.hardwareDirectory.map { "\($0.path) (\($0.foundBy))" })),
                    ("manufacturer", .optionalString(report.identity.manufacturer)), ("model", .optionalString(report.identity.model)),
                    ("revision", .optionalString(report.identity.revision)), ("imei", .optionalString(report.identity.imei)),
                    ("sim", .optionalString(report.sim?.state.name)), ("pin_attempts", .optionalInt(report.sim?.pinAttempts)),
                    ("puk_attempts", .optionalInt(report.sim?.pukAttempts)), ("pin_attempts_source", .optionalString(report.sim?.counterSource)),
                    ("registration", .optionalString(network.overall?.name)),
                    ("registrations", .object(network.registrations.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value.name)) })),
                    ("rssi_dbm", .optionalInt(network.rssiDBm)), ("technology", .optionalString(network.technology)),
                    ("operator", .optionalString(network.operatorName)), ("recovered", .bool(report.recovery?.recovered ?? false)),
                    ("unknown", .array(report.unknown.map { .string($0) })),
                ]
                if output.json { return print(JSONValue.object(fields).text) }
                for (key, value) in fields where key != "unknown" { print("\(key): \(TerminalText.safe(value.plain))") }
                for item in report.unknown { print("unknown: \(TerminalText.safe(item))") }
            }
        }
    }

    struct Unlock: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unlock the SIM with the PIN read from standard input (sent at most once, never at the floor).")
        @OptionGroup var modem: ModemOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Never send a PIN with this many attempts left or fewer (technicians only go below 1).") var floor: Int = 1
        @Flag(help: "Send the PIN even when the modem cannot tell the attempts left (risks blocking the SIM).")
        var allowUnknownAttempts = false

        func validate() throws {
            guard floor >= 0 && floor <= 10 else { throw ValidationError("--floor must be between 0 and 10") }
        }

        func run() throws {
            try modemReportingErrors {
                let pin = try SIMPIN(readSecretLine(prompt: "SIM PIN: "))
                let (device, _) = try modem.open { config in
                    config.pinFloor = floor
                    config.allowUnknownAttempts = allowUnknownAttempts
                }
                defer { device.close() }
                let outcome = try device.unlock(pin: pin)
                switch outcome {
                case .alreadyReady:
                    if output.json { return print(JSONValue.object([("sim", .string("ready")), ("pin_sent", .bool(false))]).text) }
                    print("The SIM is already unlocked; no PIN sent.")
                case .unlocked(let before):
                    if output.json {
                        return print(JSONValue.object([("sim", .string("ready")), ("pin_sent", .bool(true)), ("attempts_before", .optionalInt(before))]).text)
                    }
                    print("SIM unlocked\(before.map { " (\($0) attempts were left)" } ?? "").")
                }
            }
        }
    }

    struct Connect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait for registration, open a data session to HOST:PORT, optionally send a test payload, hang up and report.")
        @OptionGroup var modem: ModemOptions
        @OptionGroup var output: OutputOptions
        @OptionGroup var home: HomeOptions
        @Option(help: "Access point name.") var apn: String
        @Option(help: "APN user name (private APNs).") var user: String = ""
        @Flag(help: "Read the APN password from standard input.") var passwordStdin = false
        @Option(help: "Where to connect, HOST:PORT.") var to: String
        @Option(help: "Send this text through the session and expect it echoed back.") var send: String?
        @Option(help: "Send this many test bytes and expect them echoed back.") var payloadBytes: Int?
        @Option(help: "Seconds to wait for network registration.") var registrationTimeout: Double = 60
        @Option(help: "The directory in which a private 0700 directory holds the pppd options on PPP profiles, removed after (default: /tmp).") var pppdOptionsDirectory: String = "/tmp"

        func run() throws {
            try modemReportingErrors {
                let (host, port) = try SessionRequest.address(to)
                let password = passwordStdin ? try readSecretLine(prompt: "APN password: ") : ""
                var payload: [UInt8] = []
                if let send { payload = Array(send.utf8) }
                if let payloadBytes {
                    guard payloadBytes > 0 && payloadBytes <= 10_000_000 else { throw ModemError.badAddress("--payload-bytes \(payloadBytes)") }
                    payload += (0..<payloadBytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
                }
                let (device, _) = try modem.open { $0.registrationTimeout = registrationTimeout }
                defer { device.close() }
                try device.requireReadySIM()
                let started = Deadline.now
                _ = try device.waitForRegistration()
                let network = (try? device.network()) ?? NetworkStatus()
                (try? home.agent())?.recordSignal(network.rssiDBm)
                let opened = try device.openStream(SessionRequest(apn: apn, user: user, password: password, host: host, port: port),
                                                   pppd: modem.pppd, optionsParent: pppdOptionsDirectory, pppTimeout: modem.pppTimeout)
                let session = opened.stream
                let connectSeconds = seconds(since: started)
                var echoed: [UInt8] = []
                var transferSeconds = 0.0
                var transferError: String?
                if !payload.isEmpty {
                    let transferStart = Deadline.now
                    let deadline = Deadline.after(seconds: 30 + Double(payload.count) / 1_000)
                    do {
                        try session.write(payload, deadline: deadline)
                        while echoed.count < payload.count {
                            let chunk = try session.read(maxCount: payload.count - echoed.count, deadline: deadline)
                            if chunk.isEmpty { break }
                            echoed += chunk
                        }
                    } catch {
                        transferError = "\(error)"
                    }
                    transferSeconds = seconds(since: transferStart)
                }
                let carrierLost = opened.session.carrierLost
                let hungUp = opened.close()
                let echoOK = payload.isEmpty ? nil : echoed == payload
                let fields: [(String, JSONValue)] = [
                    ("connected", .bool(true)), ("profile", .string(device.profile.name)), ("session", .string(device.profile.session)),
                    ("technology", .optionalString(network.technology)), ("rssi_dbm", .optionalInt(network.rssiDBm)),
                    ("connect_seconds", .number(connectSeconds)), ("bytes_sent", .int(opened.ppp == nil ? opened.session.bytesOut : payload.count)),
                    ("ppp_address", .optionalString(opened.ppp?.localAddress)),
                    ("bytes_received", .int(echoed.count)), ("echo_ok", echoOK.map { .bool($0) } ?? .null),
                    ("transfer_seconds", .number(transferSeconds)), ("carrier_lost", .bool(carrierLost)),
                    ("hung_up_cleanly", .bool(hungUp)), ("error", .optionalString(transferError)),
                ]
                if output.json { print(JSONValue.object(fields).text) } else { for (key, value) in fields { print("\(key): \(TerminalText.safe(value.plain))") } }
                if echoOK == false || transferError != nil {
                    throw ModemError.sessionFailed(step: "test payload", result: carrierLost ? .noCarrier : nil)
                }
            }
        }
    }
}

/// What every modem command takes.
struct ModemOptions: ParsableArguments {
    @Option(help: "The modem's serial port (default: the board profile's, else /dev/satchel-modem).") var port: String?
    @Option(help: "Modem profile (hardware/modems/NAME.modem; default: chosen from AT+CGMI/AT+CGMM or ATI by the profiles' vendor and model lines).") var profile: String?
    @Option(help: "Board profile: a name in hardware/boards or a file (port, power key GPIO).") var board: String?
    @Option(help: "Hardware directory holding modems/ and boards/ (default: $SATCHEL_HARDWARE, then installed: <bin>/../share/satchel/hardware, /usr/share/satchel/hardware, /etc/satchel/hardware, then the source checkout's hardware/; probe says which).")
    var hardware: String?
    @Option(help: "Directory of the UUCP lock file.") var lockDir: String = "/var/lock"
    @Option(help: "Seconds to wait for one command.") var timeout: Double = 3
    @Option(help: "Multiply the profile's long timeouts and boot wait by this (bench and tests).") var timeoutScale: Double = 1
    @Option(help: "Power key GPIO value file (overrides the board profile).") var powerKey: String?
    @Option(help: "Guard time around +++ in milliseconds (default: the profile's).") var guardMs: Int?
    @Option(help: "Append the AT transcript (PINs, PUKs and passwords redacted) to this file.") var transcript: String?
    @Option(help: "pppd, for modems whose profile runs data over PPP.") var pppd: String = PPPLink.defaultPPPD
    @Option(help: "Seconds for pppd to bring the PPP link up.") var pppTimeout: Double = 45

    func validate() throws {
        guard timeout > 0 && timeout <= 120 else { throw ValidationError("--timeout must be between 0 and 120 seconds") }
        guard timeoutScale > 0 && timeoutScale <= 10 else { throw ValidationError("--timeout-scale must be between 0 and 10") }
    }

    /// The hardware directory this run reads profiles from (see `HardwareDirectory.locate`).
    var hardwareDirectory: HardwareDirectory? { HardwareDirectory.locate(override: hardware) }

    /// Opens, syncs (recovering if needed) and initialises the modem, then picks its profile.
    func open(recorder: TranscriptRecorder? = nil, _ adjust: (inout ModemConfig) -> Void = { _ in }) throws(ModemError) -> (Modem, String) {
        let directory = hardwareDirectory
        var boardProfile: BoardProfile?
        if let board {
            guard let directory = directory ?? (board.utf8.contains(0x2F) ? HardwareDirectory(path: "/") : nil) else {
                throw ModemError.profile("no hardware directory for board \(board) (use --hardware)")
            }
            boardProfile = try directory.board(board)
        }
        var chosen: ModemProfile?
        if let name = profile ?? boardProfile?.modemProfile {
            if let directory { chosen = try directory.modem(name) } else if name == "generic" { chosen = ModemProfile.builtInGeneric } else {
                throw ModemError.profile("no hardware directory to find profile \(name) in (use --hardware)")
            }
        }
        var config = ModemConfig()
        config.commandTimeout = timeout
        config.scriptTimeoutScale = timeoutScale
        config.guardSeconds = guardMs.map { Double($0) / 1000 }
        if let path = powerKey ?? boardProfile?.powerKeyGPIO {
            config.powerKey = PowerKey(gpioValuePath: path, pulseSeconds: boardProfile?.powerKeyPulseSeconds ?? 1.2)
        }
        adjust(&config)
        let path = port ?? boardProfile?.serialDevice ?? "/dev/satchel-modem"
        var opening = chosen ?? ModemProfile.builtInGeneric
        if let boardProfile, chosen == nil { opening.serial = boardProfile.serial }
        let device = try Modem.open(port: path, profile: opening, config: config, lockDirectory: lockDir.isEmpty ? nil : lockDir)
        var logFD: Int32 = -1
        if let transcript { logFD = Glibc.open(transcript, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600) }
        if logFD >= 0 || recorder != nil {
            let fd = logFD
            device.channel.transcriptSink = { line in
                recorder?.observe(line)
                guard fd >= 0 else { return }
                var text = line + "\n"
                text.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
            }
        }
        if let directory { device.adoptVendorCodes(from: directory) }
        try device.start()
        if let chosen {
            device.use(requested: chosen, by: profile != nil ? "--profile" : "board profile \(board ?? "")")
        } else {
            try device.chooseProfile(in: directory)
        }
        return (device, path)
    }
}

func modemExitCode(_ error: ModemError) -> Int32 {
    switch error {
    case .badAddress, .invalidPIN: return 65
    case .portNotFound: return 66
    case .notResponding, .noAnswer, .notASerialDevice: return 69
    case .system, .commandFailed: return 74
    case .portInUse: return 75
    case .lockFailed(_, let code): return code == EACCES || code == EPERM || code == EROFS ? 77 : 74
    case .permissionDenied: return 77
    case .profile: return 78
    case .simLocked: return 80
    case .pinRefused: return 81
    case .pinRejected: return 82
    case .pukRequired: return 83
    case .simNotInserted: return 84
    case .notRegistered: return 85
    case .registrationDenied: return 86
    case .sessionFailed: return 87
    case .simBusy, .pinOutcomeUnknown: return 88
    case .pppFailed: return 89
    case .pppdMissing: return 72
    }
}

func modemReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ModemError {
        printError(error.description)
        throw ExitCode(modemExitCode(error))
    }
}

func seconds(since start: Deadline) -> Double {
    Double(Deadline.now.nanoseconds - start.nanoseconds) / 1e9
}

/// One line from standard input; with echo off when it is a terminal. Never from argv.
func readSecretLine(prompt: String) throws(ModemError) -> String {
    guard let line = readSecretInput(prompt: prompt) else { throw ModemError.invalidPIN }
    return line
}

/// A modem report's values, in the order the plain output lists them. `--json` goes through the
/// CLI's one JSON writer (FieldJSON's encoder and TerminalText's escaping, as `printJSON`): this
/// is only the shape of the values, with no serialiser of its own.
indirect enum JSONValue: Encodable {
    case string(String), int(Int), number(Double), bool(Bool), null, object([(String, JSONValue)]), array([JSONValue])

    static func optionalString(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
    static func optionalInt(_ value: Int?) -> JSONValue { value.map { .int($0) } ?? .null }

    /// The report as one line of JSON (keys sorted), escaped for a terminal.
    var text: String {
        (try? FieldJSON.payload(self)).map(TerminalText.escapingJSON) ?? "null"
    }

    var plain: String {
        switch self {
        case .string(let value): return value
        case .null: return "-"
        case .int(let value): return String(value)
        case .number(let value): return String(Self.milli(value))
        case .bool(let value): return value ? "true" : "false"
        case .object, .array: return text
        }
    }

    /// Seconds to the millisecond: more digits only say how fast the clock ticks.
    static func milli(_ value: Double) -> Double { Double(Int((value * 1000).rounded())) / 1000 }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .object(let fields):
            var container = encoder.container(keyedBy: Key.self)
            for (key, value) in fields { try container.encode(value, forKey: Key(stringValue: key)) }
        case .array(let values):
            var container = encoder.unkeyedContainer()
            for value in values { try container.encode(value) }
        default:
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .int(let value): try container.encode(value)
            case .number(let value): try container.encode(Self.milli(value))
            case .bool(let value): try container.encode(value)
            default: try container.encodeNil()
            }
        }
    }
}
