#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemCalls

/// One command of a profile's script: `open = ?AT+CIICR -> ok @85`.
public struct ScriptStep: Equatable, Sendable {
    public var template: String
    public var expect: Expectation
    public var timeout: Double
    /// `?`: an error answer does not stop the script (e.g. `AT+CIPSHUT` when nothing is open).
    public var optional: Bool
    /// `auth:`: only when the APN has a user name.
    public var onlyWithUser: Bool

    /// Parses `[?][auth:]COMMAND [-> ok|ip|connect] [@seconds]`.
    public static func parse(_ text: String, defaultTimeout: Double) -> ScriptStep? {
        var rest = trimmed(Substring(text))
        var step = ScriptStep(template: "", expect: .final, timeout: defaultTimeout, optional: false, onlyWithUser: false)
        if rest.hasPrefix("?") { step.optional = true; rest = trimmed(rest.dropFirst()) }
        if rest.hasPrefix("auth:") { step.onlyWithUser = true; rest = trimmed(rest.dropFirst(5)) }
        if let at = find(rest, " @") {
            guard let seconds = Double(trimmed(rest[at.upperBound...])), seconds > 0, seconds <= 600 else { return nil }
            step.timeout = seconds
            rest = trimmed(rest[..<at.lowerBound])
        }
        if let arrow = find(rest, " -> ") {
            switch trimmed(rest[arrow.upperBound...]) {
            case "ok": step.expect = .final
            case "ip": step.expect = .ipAddress
            case "connect": step.expect = .connect
            default: return nil
            }
            rest = trimmed(rest[..<arrow.lowerBound])
        }
        guard rest.uppercased().hasPrefix("AT") || rest.uppercased().hasPrefix("ATD") else { return nil }
        step.template = rest
        return step
    }

    /// The command with `{apn}`, `{user}`, `{password}`, `{host}`, `{port}` filled in.
    public func command(_ values: [String: String]) -> String {
        var text = template
        for (key, value) in values { text = replacingAll(text, "{\(key)}", with: value) }
        return text
    }
}

/// A modem family's dialect, read from `hardware/modems/<name>.modem`. Vendor differences
/// live here as data; the code only knows the standard and the named counter queries.
public struct ModemProfile: Equatable, Sendable {
    public var name: String
    public var description = ""
    /// Vendors this profile belongs to, as hardware/modems/vendors.conf normalises `AT+CGMI`.
    public var vendors: [String] = []
    /// Model patterns (`*` and `?`, case-insensitive) over `AT+CGMM` without its vendor prefix.
    public var models: [String] = []
    /// The profile for a model of one of `vendors` that no profile lists (chosen as a fallback).
    public var vendorDefault = false
    /// Vendor final result codes: a line equal to one ends the answer as a failure.
    public var finals: [String] = []
    /// Prefixes of lines that end their command's answer when the modem sends no final after them.
    public var terminators: [String] = []
    public var serial = SerialSettings()
    public var initCommands: [ScriptStep] = []
    public var pinCounters: [PINCounterQuery] = [.cpinr, .csim]
    public var registrationPrefixes: [String] = ["+CREG", "+CGREG"]
    public var extraURCs: [String] = []
    public var guardSeconds = 1.0
    public var bootSeconds = 20.0
    public var openScript: [ScriptStep] = []
    public var closeScript: [ScriptStep] = []
    /// Lines that end a transparent session from the modem's side.
    public var carrierLost: [String] = ["NO CARRIER"]
    /// "transparent" (the modem's TCP stack) or "ppp" (pppd runs over the serial line).
    public var session = "ppp"

    public init(name: String) { self.name = name }

    public static func parse(_ text: String, name: String) throws(ModemError) -> ModemProfile {
        var profile = ModemProfile(name: name)
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = trimmed(raw)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else { throw ModemError.profile("\(name) line \(lineNumber): expected key = value") }
            let key = trimmed(line[..<equals])
            let value = trimmed(line[line.index(after: equals)...])
            func bad() -> ModemError { ModemError.profile("\(name) line \(lineNumber): bad \(key) '\(value)'") }
            func step() throws(ModemError) -> ScriptStep {
                guard let step = ScriptStep.parse(value, defaultTimeout: 5) else { throw bad() }
                return step
            }
            switch key {
            case "name": profile.name = value
            case "description": profile.description = value
            case "vendor": profile.vendors.append(value.uppercased())
            case "model":
                guard !value.isEmpty else { throw bad() }
                profile.models.append(value.uppercased())
            case "vendor_default":
                guard value == "yes" || value == "no" else { throw bad() }
                profile.vendorDefault = value == "yes"
            case "final":
                guard !value.isEmpty, FinalResult.parse(value) == nil else { throw bad() }
                profile.finals.append(value)
            case "terminator":
                guard value.hasSuffix(":"), value.utf8.count >= 2 else { throw bad() }
                profile.terminators.append(value)
            case "baud":
                guard let baud = Int(value), SerialSettings.speed(baud) != nil else { throw bad() }
                profile.serial.baud = baud
            case "rts_cts":
                guard value == "yes" || value == "no" else { throw bad() }
                profile.serial.rtsCts = value == "yes"
            case "init": profile.initCommands.append(try step())
            case "pin_attempts":
                var queries: [PINCounterQuery] = []
                for word in value.split(separator: " ") {
                    guard let query = PINCounterQuery(rawValue: String(word)) else { throw bad() }
                    queries.append(query)
                }
                profile.pinCounters = queries
            case "registration":
                var prefixes: [String] = []
                for word in value.split(separator: " ") {
                    switch word {
                    case "creg": prefixes.append("+CREG")
                    case "cgreg": prefixes.append("+CGREG")
                    case "cereg": prefixes.append("+CEREG")
                    default: throw bad()
                    }
                }
                profile.registrationPrefixes = prefixes
            case "urc": profile.extraURCs += value.split(separator: " ").map(String.init)
            case "guard_ms":
                guard let ms = Int(value), (20...5_000).contains(ms) else { throw bad() }
                profile.guardSeconds = Double(ms) / 1000
            case "boot_ms":
                guard let ms = Int(value), (100...120_000).contains(ms) else { throw bad() }
                profile.bootSeconds = Double(ms) / 1000
            case "session":
                guard value == "transparent" || value == "ppp" else { throw bad() }
                profile.session = value
            case "open": profile.openScript.append(try step())
            case "close": profile.closeScript.append(try step())
            case "carrier_lost": profile.carrierLost = value.split(separator: "|").map { trimmed($0) }.filter { !$0.isEmpty }
            default: throw ModemError.profile("\(name) line \(lineNumber): unknown key \(key)")
            }
        }
        guard !profile.openScript.isEmpty else { throw ModemError.profile("\(name): no `open` script") }
        guard profile.openScript.last?.expect == .connect else { throw ModemError.profile("\(name): the last `open` step must be `-> connect`") }
        return profile
    }

    /// Used when no profile directory can be found: the same text as hardware/modems/generic.modem
    /// (a test keeps the two equal).
    public static let builtInGenericText = """
        # Generic 3GPP TS 27.007 modem: standard commands only, data over PPP.
        name = generic
        description = Any 3GPP TS 27.007 modem (fallback)
        baud = 115200
        rts_cts = no
        init = ATE0
        init = ATV1
        init = AT+CMEE=1
        init = ?ATX4
        init = ?AT&C1
        pin_attempts = cpinr csim
        registration = creg cgreg cereg
        guard_ms = 1000
        boot_ms = 20000
        session = ppp
        open = AT+CGDCONT=1,"IP","{apn}"
        open = ?auth:AT+CGAUTH=1,1,"{user}","{password}"
        open = ATD*99***1# -> connect @30
        close = ?ATH @5
        carrier_lost = NO CARRIER

        """

    public static var builtInGeneric: ModemProfile {
        // The text above is a constant checked by the tests; it always parses.
        (try? parse(builtInGenericText, name: "generic")) ?? ModemProfile(name: "generic")
    }
}

/// A handheld model: where its modem is, and how to press its power key.
public struct BoardProfile: Equatable, Sendable {
    public var name: String
    public var serialDevice = "/dev/satchel-modem"
    public var serial = SerialSettings()
    public var modemProfile: String?
    /// sysfs GPIO value file wired to the modem's PWRKEY (e.g. /sys/class/gpio/gpio23/value).
    public var powerKeyGPIO: String?
    public var powerKeyPulseSeconds = 1.2
    public var batteryCapacity: String?
    public var cardMount: String?

    public init(name: String) { self.name = name }

    public static func parse(_ text: String, name: String) throws(ModemError) -> BoardProfile {
        var board = BoardProfile(name: name)
        for raw in text.split(separator: "\n") {
            let line = trimmed(raw)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else { throw ModemError.profile("board \(name): expected key = value in '\(line)'") }
            let key = trimmed(line[..<equals])
            let value = trimmed(line[line.index(after: equals)...])
            switch key {
            case "name": board.name = value
            case "serial": board.serialDevice = value
            case "baud":
                guard let baud = Int(value), SerialSettings.speed(baud) != nil else { throw ModemError.profile("board \(name): bad baud \(value)") }
                board.serial.baud = baud
            case "rts_cts": board.serial.rtsCts = value == "yes"
            case "modem": board.modemProfile = value
            case "power_key_gpio": board.powerKeyGPIO = value
            case "power_key_pulse_ms":
                guard let ms = Int(value), (50...10_000).contains(ms) else { throw ModemError.profile("board \(name): bad power_key_pulse_ms \(value)") }
                board.powerKeyPulseSeconds = Double(ms) / 1000
            case "battery": board.batteryCapacity = value
            case "card_mount": board.cardMount = value
            default: throw ModemError.profile("board \(name): unknown key \(key)")
            }
        }
        return board
    }
}

/// Finds and reads profiles from a hardware directory (`<dir>/modems/*.modem`, `<dir>/boards/*.board`).
public struct HardwareDirectory: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// How the directory was found (`--hardware`, `$SATCHEL_HARDWARE`, installed, checkout): the
    /// probe says it, so a technician knows which profiles were read.
    public private(set) var foundBy = "given"

    /// The hardware directory, where a user expects it: `--hardware`, then `$SATCHEL_HARDWARE`,
    /// then installed (`<executable>/../share/satchel/hardware`, /usr/share/satchel/hardware,
    /// /etc/satchel/hardware), then the `hardware/` of the source checkout the executable was built
    /// in or the current directory is inside (a developer's or bench run). Nil when none has modems/.
    public static func locate(override: String?) -> HardwareDirectory? {
        if let override, !override.isEmpty { return HardwareDirectory(path: override, foundBy: "--hardware") }
        var candidates: [(String, String)] = []
        if let env = getenv("SATCHEL_HARDWARE"), env.pointee != 0 { candidates.append((String(cString: env), "$SATCHEL_HARDWARE")) }
        var executableDirectory: String?
        if let exe = try? SystemCalls.readLink("/proc/self/exe"), !exe.isEmpty {
            if let slash = exe.lastIndex(of: "/") {
                executableDirectory = String(exe[..<slash])
                candidates.append((String(exe[..<slash]) + "/../share/satchel/hardware", "installed next to the executable"))
            }
        }
        candidates += [("/usr/share/satchel/hardware", "installed"), ("/etc/satchel/hardware", "installed")]
        for start in [executableDirectory, currentDirectory()].compactMap({ $0 }) {
            if let checkout = checkoutHardware(above: start) { candidates.append((checkout, "the source checkout")) }
        }
        for (candidate, how) in candidates where (try? SystemCalls.access(candidate + "/modems", R_OK)) == true {
            return HardwareDirectory(path: candidate, foundBy: how)
        }
        return nil
    }

    init(path: String, foundBy: String) {
        self.path = path
        self.foundBy = foundBy
    }

    /// `<dir>/hardware` of the nearest directory at or above `start` that holds Package.swift and
    /// hardware/modems (a checkout of this repository), at most 8 levels up.
    static func checkoutHardware(above start: String) -> String? {
        var directory = start
        for _ in 0..<8 {
            if (try? SystemCalls.access(directory + "/Package.swift", R_OK)) == true && (try? SystemCalls.access(directory + "/hardware/modems", R_OK)) == true {
                return directory + "/hardware"
            }
            guard let slash = directory.lastIndex(of: "/"), directory != "/" else { return nil }
            directory = slash == directory.startIndex ? "/" : String(directory[..<slash])
        }
        return nil
    }

    static func currentDirectory() -> String? { try? SystemCalls.currentDirectory() }

    public func modemNames() -> [String] {
        let entries = (try? SystemCalls.listDirectory(path + "/modems")) ?? []
        return entries.filter { $0.hasSuffix(".modem") }.map { String($0.dropLast(6)) }.sorted()
    }

    public func modem(_ name: String) throws(ModemError) -> ModemProfile {
        guard !name.utf8.contains(0x2F) && !name.isEmpty else { throw ModemError.profile("bad profile name '\(name)'") }
        guard let text = readSmallFile(path + "/modems/\(name).modem") else { throw ModemError.profile("no profile \(path)/modems/\(name).modem") }
        return try ModemProfile.parse(text, name: name)
    }

    public func board(_ name: String) throws(ModemError) -> BoardProfile {
        let file = name.utf8.contains(0x2F) ? name : path + "/boards/\(name).board"
        guard let text = readSmallFile(file) else { throw ModemError.profile("no board profile \(file)") }
        return try BoardProfile.parse(text, name: name)
    }

    /// The profile chosen for this manufacturer and model by its model or vendor, else nil
    /// (see `choose` for the fallbacks and the reasons).
    public func detect(manufacturer: String?, model: String?) -> ModemProfile? {
        let (profile, choice) = choose(manufacturer: manufacturer, model: model, identifiedBy: "AT+CGMI/AT+CGMM")
        return choice.basis == .generic ? nil : profile
    }
}

/// Reads a file of at most 64 KiB (profiles, GPIO values); nil when it cannot.
func readSmallFile(_ path: String) -> String? {
    guard let fd = try? SystemCalls.open(path, O_RDONLY) else { return nil }
    defer { try? SystemCalls.close(fd) }  // read only: a failed close loses nothing
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while bytes.count < 65_536 {
        guard let count = try? buffer.withUnsafeMutableBytes({ raw in try SystemCalls.read(fd, into: raw) }), count > 0 else { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}
