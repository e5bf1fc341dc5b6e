// Pure parsing: bytes -> lines -> typed results. No I/O here, so every function is table-tested
// with real modems' responses (and malformed ones) and fuzzed (`satchel-sim modem fuzz`).

/// How a command ended (3GPP TS 27.007 / ITU-T V.250 final result codes).
public enum FinalResult: Equatable, Sendable, CustomStringConvertible {
    case ok
    case error
    case cmeError(Int)
    case cmsError(Int)
    /// `CONNECT` with its optional rate text (`CONNECT 115200`).
    case connect(String)
    case noCarrier
    case busy
    case noDialtone
    case noAnswer
    /// A vendor's failure final, e.g. SIMCom `CONNECT FAIL`.
    case failed(String)

    public var description: String {
        switch self {
        case .ok: return "OK"
        case .error: return "ERROR"
        case .cmeError(let code): return "+CME ERROR: \(code)"
        case .cmsError(let code): return "+CMS ERROR: \(code)"
        case .connect(let rate): return rate.isEmpty ? "CONNECT" : "CONNECT \(rate)"
        case .noCarrier: return "NO CARRIER"
        case .busy: return "BUSY"
        case .noDialtone: return "NO DIALTONE"
        case .noAnswer: return "NO ANSWER"
        case .failed(let text): return text
        }
    }

    /// Parses a line as a final result code, verbose (V1) or numeric (V0); nil when it is not one.
    public static func parse(_ line: String) -> FinalResult? {
        switch line {
        case "OK", "SHUT OK", "CLOSE OK": return .ok
        case "ERROR": return .error
        case "CONNECT": return .connect("")
        case "NO CARRIER": return .noCarrier
        case "BUSY": return .busy
        case "NO DIALTONE", "NO DIAL TONE": return .noDialtone
        case "NO ANSWER": return .noAnswer
        case "CONNECT FAIL", "ALREADY CONNECT", "SEND FAIL": return .failed(line)
        // V0 numeric codes (V.250 table 1); 2 (RING) is unsolicited, 5 is unused.
        case "0": return .ok
        case "1": return .connect("")
        case "3": return .noCarrier
        case "4": return .error
        case "6": return .noDialtone
        case "7": return .busy
        case "8": return .noAnswer
        default: break
        }
        if line.hasPrefix("+CME ERROR:") { return .cmeError(errorCode(line.dropFirst(11), verbose: cmeTexts)) }
        if line.hasPrefix("+CMS ERROR:") { return .cmsError(errorCode(line.dropFirst(11), verbose: [:])) }
        if line.hasPrefix("CONNECT ") {
            let rate = trimmed(line.dropFirst(8))
            guard let first = rate.utf8.first, first >= 0x30 && first <= 0x39 else { return .failed(line) }
            return .connect(rate)
        }
        return nil
    }

    /// Verbose `+CME ERROR` texts (AT+CMEE=2) that matter to us, mapped to their 27.007 numbers.
    static let cmeTexts: [String: Int] = [
        "operation not allowed": 3, "operation not supported": 4, "SIM not inserted": 10,
        "SIM PIN required": 11, "SIM PUK required": 12, "SIM failure": 13, "SIM busy": 14,
        "SIM wrong": 15, "incorrect password": 16, "SIM PIN2 required": 17, "SIM PUK2 required": 18,
        "no network service": 30, "network timeout": 31, "unknown": 100,
    ]

    static func errorCode(_ text: Substring, verbose: [String: Int]) -> Int {
        let value = trimmed(text)
        if let number = Int(value) { return number }
        for (key, code) in verbose where key.lowercased() == value.lowercased() { return code }
        return -1
    }
}

/// A SIM's state from `+CPIN:` (27.007 section 8.3).
public enum SIMState: Equatable, Sendable {
    case ready
    case pinRequired
    case pukRequired
    case pin2Required
    case puk2Required
    case phoneLocked(String)
    case notInserted
    case other(String)

    public var name: String {
        switch self {
        case .ready: return "ready"
        case .pinRequired: return "pin_required"
        case .pukRequired: return "puk_required"
        case .pin2Required: return "pin2_required"
        case .puk2Required: return "puk2_required"
        case .phoneLocked: return "phone_locked"
        case .notInserted: return "not_inserted"
        case .other: return "unknown"
        }
    }

    /// Parses the code text (`READY`, `SIM PIN`, ...); nil when it is not a known code.
    public static func parse(code text: String) -> SIMState? {
        var code = trimmed(Substring(text)).uppercased()
        // `+CPIN: "SIM PIN"`: some modems quote the code (ModemManager's test-modem-helpers.c has one).
        if code.count >= 2, code.hasPrefix("\""), code.hasSuffix("\"") { code = trimmed(Substring(code.dropFirst().dropLast())) }
        switch code {
        case "READY": return .ready
        case "SIM PIN": return .pinRequired
        case "SIM PUK": return .pukRequired
        case "SIM PIN2": return .pin2Required
        case "SIM PUK2": return .puk2Required
        case "NOT INSERTED", "SIM NOT INSERTED", "NOT READY": return .notInserted
        default:
            if code.hasPrefix("PH-") || code.hasPrefix("PH ") { return .phoneLocked(code) }
            return nil
        }
    }
}

/// Remaining attempts for the SIM's PIN and PUK, as a vendor command reported them.
public struct PINCounters: Equatable, Sendable {
    public var pin: Int?
    public var puk: Int?
    public init(pin: Int?, puk: Int?) { self.pin = pin; self.puk = puk }
}

/// How a modem tells the attempts left. Which ones a modem speaks is data (profile
/// `pin_attempts = ...`); the command and its parser stay together here.
public enum PINCounterQuery: String, Sendable, CaseIterable {
    case cpinr, qpinc, spic, huawei, upincnt, telit, cpinc, zpinpuk, csim

    public var command: String {
        switch self {
        case .cpinr: return "AT+CPINR=\"SIM*\""
        case .qpinc: return "AT+QPINC?"
        case .spic: return "AT+SPIC"
        case .huawei: return "AT^CPIN?"
        case .upincnt: return "AT+UPINCNT"
        case .telit: return "AT#PCT"
        case .cpinc: return "AT+CPINC?"
        case .zpinpuk: return "AT+ZPINPUK=?"
        // VERIFY (INS 20) of PIN1 (P2 01) with no data: the card answers 63Cx, x tries left,
        // and counts nothing (ETSI TS 102 221 section 11.1.9).
        case .csim: return "AT+CSIM=10,\"0020000100\""
        }
    }

    /// Parses the response lines; `state` is needed for Telit, whose answer is for "the code asked now".
    public func parse(_ lines: [String], state: SIMState) -> PINCounters? {
        switch self {
        case .cpinr: return ATParse.cpinr(lines)
        case .qpinc: return ATParse.qpinc(lines)
        case .spic: return ATParse.spic(lines)
        case .huawei: return ATParse.huaweiCPIN(lines)
        case .upincnt: return ATParse.upincnt(lines)
        case .telit: return ATParse.telitPCT(lines, state: state)
        case .cpinc: return ATParse.cpinc(lines)
        case .zpinpuk: return ATParse.zpinpuk(lines)
        case .csim: return ATParse.csim(lines).map { PINCounters(pin: $0, puk: nil) }
        }
    }
}

/// Network registration status (27.007 `+CREG`/`+CGREG`/`+CEREG` <stat>).
public enum RegistrationStatus: Int, Sendable {
    case notRegistered = 0, home = 1, searching = 2, denied = 3, unknown = 4, roaming = 5
    case smsOnlyHome = 6, smsOnlyRoaming = 7, emergencyOnly = 8, csfbNotPreferredHome = 9, csfbNotPreferredRoaming = 10

    public var isRegistered: Bool { self == .home || self == .roaming || self == .csfbNotPreferredHome || self == .csfbNotPreferredRoaming }

    public var name: String {
        switch self {
        case .notRegistered: return "not_registered"
        case .home: return "home"
        case .searching: return "searching"
        case .denied: return "denied"
        case .unknown: return "unknown"
        case .roaming: return "roaming"
        case .smsOnlyHome, .smsOnlyRoaming: return "sms_only"
        case .emergencyOnly: return "emergency_only"
        case .csfbNotPreferredHome: return "home"
        case .csfbNotPreferredRoaming: return "roaming"
        }
    }
}

public struct Registration: Equatable, Sendable {
    public var status: RegistrationStatus
    public var lac: String?
    public var cellID: String?
    public var accessTechnology: Int?
}

public struct Operator: Equatable, Sendable {
    public var name: String?
    public var accessTechnology: Int?
    public var technology: String? { accessTechnology.flatMap(ATParse.technologyName) }
}

/// The pure parsers. Each takes the response lines (or one line) and returns nil for anything
/// malformed rather than guessing.
public enum ATParse {
    /// Splits `+X: a,"b,c",d` after the prefix into fields, unquoting and trimming each.
    /// Returns nil when the line does not start with `prefix` or a quote is unbalanced.
    public static func fields(_ line: String, prefix: String) -> [String]? {
        guard line.hasPrefix(prefix) else { return nil }
        var result: [String] = []
        var current: [UInt8] = []
        var inside: [UInt8] = []
        var quoted = false
        var wasQuoted = false
        for byte in line.utf8.dropFirst(prefix.utf8.count) {
            if byte == 0x22 {
                quoted.toggle()
                wasQuoted = true
            } else if byte == 0x2C && !quoted {
                result.append(field(wasQuoted ? inside : current, wasQuoted))
                current = []
                inside = []
                wasQuoted = false
            } else {
                current.append(byte)
                if quoted { inside.append(byte) }
            }
        }
        if quoted { return nil }
        result.append(field(wasQuoted ? inside : current, wasQuoted))
        return result
    }

    private static func field(_ bytes: [UInt8], _ wasQuoted: Bool) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        return wasQuoted ? text : trimmed(Substring(text))
    }

    static func number(_ text: String) -> Int? { Int(trimmed(Substring(text))) }

    /// `+CPIN: READY`, `+CPIN: SIM PIN`, ... (the first matching line).
    public static func cpin(_ lines: [String]) -> SIMState? {
        for line in lines where line.hasPrefix("+CPIN:") {
            if let state = SIMState.parse(code: String(line.dropFirst(6))) { return state }
        }
        return nil
    }

    /// 27.007 `+CPINR: <code>,<retries>[,<default>]`, code quoted or not.
    public static func cpinr(_ lines: [String]) -> PINCounters? {
        var counters = PINCounters(pin: nil, puk: nil)
        for line in lines {
            guard let parts = fields(line, prefix: "+CPINR:"), parts.count >= 2, let retries = number(parts[1]), retries >= 0 else { continue }
            switch parts[0].uppercased() {
            case "SIM PIN": counters.pin = retries
            case "SIM PUK": counters.puk = retries
            default: break
            }
        }
        return counters.pin == nil && counters.puk == nil ? nil : counters
    }

    /// Quectel `+QPINC: "SC",<pin>,<puk>` (and `"P2"` for PIN2, ignored).
    public static func qpinc(_ lines: [String]) -> PINCounters? {
        pinCounters(lines, prefix: "+QPINC:", pin: 1, puk: 2, first: "SC")
    }

    /// SIMCom `+SPIC: <pin1>,<puk1>,<pin2>,<puk2>`.
    public static func spic(_ lines: [String]) -> PINCounters? {
        pinCounters(lines, prefix: "+SPIC:", pin: 0, puk: 1)
    }

    /// Huawei `^CPIN: <code>,[<times>],<puk_times>,<pin_times>,<puk2_times>,<pin2_times>`.
    public static func huaweiCPIN(_ lines: [String]) -> PINCounters? {
        pinCounters(lines, prefix: "^CPIN:", pin: 3, puk: 2)
    }

    /// u-blox `+UPINCNT: <PIN1>,<PIN2>,<PUK1>,<PUK2>`.
    public static func upincnt(_ lines: [String]) -> PINCounters? {
        pinCounters(lines, prefix: "+UPINCNT:", pin: 0, puk: 2)
    }

    /// The vendors' counter answers differ only in their prefix, where the two counts stand and
    /// how strictly they are read: the first line under `prefix` whose fields `pin` and `puk`
    /// (from 0) are whole numbers in `plausible`, whose first field is `first` when one is given
    /// (`"SC"`: the SIM PIN, not PIN2), and which has exactly `fieldCount` fields when given.
    static func pinCounters(_ lines: [String], prefix: String, pin pinField: Int, puk pukField: Int, first: String? = nil,
                            fieldCount: Int? = nil, plausible: ClosedRange<Int> = 0...Int.max) -> PINCounters? {
        for line in lines {
            guard let parts = fields(line, prefix: prefix), parts.count > max(pinField, pukField),
                  fieldCount.map({ parts.count == $0 }) ?? true, first.map({ parts[0] == $0 }) ?? true,
                  let pin = number(parts[pinField]), let puk = number(parts[pukField]), plausible.contains(pin), plausible.contains(puk) else { continue }
            return PINCounters(pin: pin, puk: puk)
        }
        return nil
    }

    /// Telit `#PCT: <n>`: attempts left for the code the SIM asks for now.
    public static func telitPCT(_ lines: [String], state: SIMState) -> PINCounters? {
        for line in lines {
            guard let parts = fields(line, prefix: "#PCT:"), parts.count == 1, let count = number(parts[0]), count >= 0 else { continue }
            switch state {
            case .pinRequired: return PINCounters(pin: count, puk: nil)
            case .pukRequired: return PINCounters(pin: 0, puk: count)
            default: return nil
            }
        }
        return nil
    }

    /// Sierra and Wavecom `+CPINC: <pin1>,<pin2>,<puk1>,<puk2>` (ModemManager's sierra plugin).
    public static func cpinc(_ lines: [String]) -> PINCounters? {
        pinCounters(lines, prefix: "+CPINC:", pin: 0, puk: 2, fieldCount: 4, plausible: 0...10)
    }

    /// ZTE `+ZPINPUK: <pin>,<puk>` (ModemManager's zte plugin).
    public static func zpinpuk(_ lines: [String]) -> PINCounters? {
        pinCounters(lines, prefix: "+ZPINPUK:", pin: 0, puk: 1, fieldCount: 2, plausible: 0...10)
    }

    /// `+CSIM: 4,"63C3"` -> 3 tries left; `6983` (blocked) -> 0. Anything else (9000 when no
    /// PIN is needed, 6Axx, 6Dxx for cards without the check) says nothing about the counter.
    public static func csim(_ lines: [String]) -> Int? {
        for line in lines {
            // The response is a string: unquoted, it is malformed (ModemManager refuses it too).
            guard let parts = fields(line, prefix: "+CSIM:"), parts.count == 2, line.utf8.contains(0x22) else { continue }
            var status = parts[1].uppercased()
            // Some modems answer the whole response APDU (`+CSIM: 8,"000063C1"`, as in ModemManager's
            // test-modem-helpers.c): the status word is its last four characters.
            if status.utf8.count > 4, status.utf8.count % 2 == 0, status.utf8.allSatisfy(isHexDigit) { status = String(status.suffix(4)) }
            if status == "6983" { return 0 }
            let bytes = Array(status.utf8)
            guard bytes.count == 4, status.hasPrefix("63C"), let tries = Int(String(decoding: bytes[3...], as: UTF8.self), radix: 16) else { continue }
            return tries
        }
        return nil
    }

    /// A registration line, either the response to `AT+CREG?` (`<n>,<stat>[,<lac>,<ci>[,<AcT>]]`)
    /// or the unsolicited form (`<stat>[,<lac>,<ci>[,<AcT>]]`).
    public static func registration(_ line: String, prefix: String, unsolicited: Bool) -> Registration? {
        guard var parts = fields(line, prefix: prefix), !parts.isEmpty else { return nil }
        if !unsolicited {
            guard parts.count >= 2, let mode = number(parts[0]), (0...5).contains(mode) else { return nil }
            parts.removeFirst()
        }
        guard let stat = number(parts[0]), let status = RegistrationStatus(rawValue: stat) else { return nil }
        var result = Registration(status: status)
        if parts.count >= 3 {
            result.lac = parts[1].isEmpty ? nil : parts[1]
            result.cellID = parts[2].isEmpty ? nil : parts[2]
        }
        if parts.count >= 4 { result.accessTechnology = number(parts[3]) }
        return result
    }

    /// True when a `+CREG:`-style line has the shape of a query response (mode first, stat
    /// second, unquoted) rather than of an unsolicited report (stat first, then quoted LAC).
    public static func looksLikeRegistrationResponse(_ line: String, prefix: String) -> Bool {
        guard let colon = line.firstIndex(of: ":") else { return false }
        let rest = line[line.index(after: colon)...]
        let parts = rest.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count >= 2, Int(trimmed(parts[0])) != nil, Int(trimmed(parts[1])) != nil else { return false }
        return fields(line, prefix: prefix) != nil
    }

    /// `+CSQ: <rssi>,<ber>` -> dBm (27.007 8.5: 0 is -113 or less, 31 is -51 or more, 99 unknown).
    public static func csqDBm(_ lines: [String]) -> Int? {
        for line in lines {
            guard let parts = fields(line, prefix: "+CSQ:"), parts.count == 2, let rssi = number(parts[0]) else { continue }
            guard (0...31).contains(rssi) else { return nil }
            return -113 + 2 * rssi
        }
        return nil
    }

    /// `+COPS: <mode>[,<format>,<oper>[,<AcT>]]`.
    public static func cops(_ lines: [String]) -> Operator? {
        for line in lines {
            guard let parts = fields(line, prefix: "+COPS:"), !parts.isEmpty, let mode = number(parts[0]), (0...4).contains(mode) else { continue }
            var result = Operator(name: nil, accessTechnology: nil)
            if parts.count >= 3, !parts[2].isEmpty { result.name = parts[2] }
            if parts.count >= 4 {
                guard let act = number(parts[3]), (0...13).contains(act) else { continue }
                result.accessTechnology = act
            }
            return result
        }
        return nil
    }

    /// 27.007 <AcT> -> the link family we shape and report.
    public static func technologyName(_ act: Int) -> String? {
        switch act {
        case 0, 1, 8: return "GPRS"
        case 3: return "EDGE"
        case 2, 4, 5, 6: return "UMTS"
        case 7, 9, 10, 11, 12, 13: return "LTE"
        default: return nil
        }
    }

    /// The answer of an identity command (`AT+CGMI`, `+CGMM`, `+CGMR`, `+CGSN`), with the echo
    /// of its own name stripped when a modem adds it (`+CGMI: "Quectel"`, `Revision: ...`).
    ///
    /// Line noise on the port can put a whole junk line among the answer's lines (`#$%junk`, a
    /// burst of bytes before a CR LF). A line made only of the characters real modems use in
    /// names is taken first; only when no line is, the first with a letter or digit is.
    public static func identity(_ lines: [String], prefixes: [String]) -> String? {
        var fallback: String?
        for line in lines {
            var text = Substring(line)
            for prefix in prefixes where text.hasPrefix(prefix) { text = text.dropFirst(prefix.count) }
            var value = trimmed(text)
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            // A line of line noise (no letter or digit: a stray 0xFE byte) is not a name.
            guard value.utf8.contains(where: isAlnum) else { continue }
            if looksLikeName(value) { return value }
            fallback = fallback ?? value
        }
        return fallback
    }

    /// True when every byte is one real modems use in a manufacturer, model or revision
    /// (`Sierra Wireless, Incorporated`, `SIMCOM_SIM800L`, `LE910-EU V2`, `11.126.16.00.00`,
    /// `Option N.V.`, `MS2131i-8 (Rev. B)`, `AT&T`): letters, digits, space and `_-.,/()+:&'`.
    static func looksLikeName(_ value: String) -> Bool {
        value.utf8.allSatisfy { byte in
            isAlnum(byte) || byte == 0x20 || "_-.,/()+:&'".utf8.contains(byte)
        }
    }

    /// ATI's answer: `Manufacturer:`/`Model:`/`Revision:`/`IMEI:` lines (ModemManager's table of
    /// real ATI answers in test-modem-helpers.c), or unlabelled lines, Quectel-style: manufacturer,
    /// model, then `Revision:`. A single unlabelled line (`SARA-G450-00C-00`) is the model.
    public static func ati(_ lines: [String]) -> Identity {
        var result = Identity()
        var plain: [String] = []
        for line in lines {
            let text = trimmed(Substring(line))
            func value(_ label: String) -> String? {
                guard text.uppercased().hasPrefix(label.uppercased()) else { return nil }
                let rest = trimmed(text.dropFirst(label.count))
                return rest.isEmpty ? nil : rest
            }
            if let v = value("Manufacturer:") { result.manufacturer = result.manufacturer ?? v }
            else if let v = value("Model:") { result.model = result.model ?? v }
            else if let v = value("Revision:") { result.revision = result.revision ?? v }
            else if let v = value("IMEI:") { result.imei = result.imei ?? imei([v]) }
            // An unlabelled line is a name only when it looks like one: line noise is not.
            else if !text.hasPrefix("+") && !text.contains(":") && text.utf8.contains(where: isAlnum) && looksLikeName(text) { plain.append(text) }
        }
        if result.manufacturer == nil && result.model == nil {
            if plain.count >= 2 { result.manufacturer = plain[0]; result.model = plain[1] } else if plain.count == 1 { result.model = plain[0] }
        }
        return result
    }

    /// An IMEI is 15 digits (14 + Luhn check digit); some modems answer 14 or add a prefix.
    public static func imei(_ lines: [String]) -> String? {
        guard let value = identity(lines, prefixes: ["+CGSN:", "+GSN:", "IMEI:"]) else { return nil }
        let digits = value.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        return digits && (14...17).contains(value.utf8.count) ? value : nil
    }

    /// A dotted IPv4 address line (SIMCom `AT+CIFSR` answers with only that).
    public static func isIPv4(_ line: String) -> Bool {
        let parts = line.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in UInt8(part) != nil }
    }
}

func isHexDigit(_ byte: UInt8) -> Bool { (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66) }

/// Unsolicited result codes: a line starting with one of these is routed to subscribers,
/// unless the command in flight owns the prefix.
public enum UnsolicitedCodes {
    public static let standard: [String] = [
        "+CREG:", "+CGREG:", "+CEREG:", "RING", "+CRING:", "+CPIN:", "+QIURC:", "+CIPRXGET:", "+CMTI:", "+CMT:",
        "+CDS:", "+CBM:", "+CLIP:", "+CUSD:", "+CGEV:", "+CTZV:", "+CTZE:", "+CIEV:", "+CFUN:", "RDY",
        "Call Ready", "SMS Ready", "+QIND:", "+QUSIM:", "^RSSI:", "^MODE:", "^BOOT:", "^HCSQ:", "^SRVST:",
        "^SIMST:", "*PSUTTZ:", "DST:", "+PDP: DEACT", "+UUSORD:", "+UUPSDD:", "#SKTRING:", "NORMAL POWER DOWN",
        "UNDER-VOLTAGE", "OVER-VOLTAGE", "SMS DONE", "PB DONE", "*ATREADY:", "+WIND:", "+UUPSDA:",
    ]

    public static func matches(_ line: String, extra: [String]) -> String? {
        for prefix in standard where line.hasPrefix(prefix) { return prefix }
        for prefix in extra where line.hasPrefix(prefix) { return prefix }
        return nil
    }
}

/// Splits the modem's byte stream into lines: `\r` or `\n` ends a line, empty lines vanish,
/// NUL and other control bytes are dropped as noise, and a line longer than the cap is
/// dropped whole (counted) so no input can grow the buffer past `maxLineBytes`.
public struct LineSplitter: Sendable {
    public let maxLineBytes: Int
    public private(set) var overlongLines = 0
    public private(set) var noiseBytes = 0
    /// Bytes currently held (never more than `maxLineBytes`).
    public var bufferedBytes: Int { buffer.count }
    /// True when the last line ended with `\r` (a following `\n` belongs to the same ending).
    public private(set) var lastEndedWithCR = false
    private var buffer: [UInt8] = []
    private var discarding = false

    public init(maxLineBytes: Int = 512) {
        self.maxLineBytes = max(16, maxLineBytes)
        buffer.reserveCapacity(self.maxLineBytes)
    }

    /// Feeds one byte; returns a complete, non-empty line when this byte ends one.
    public mutating func push(_ byte: UInt8) -> String? {
        if byte == 0x0D || byte == 0x0A {
            lastEndedWithCR = byte == 0x0D
            defer { buffer.removeAll(keepingCapacity: true) }
            if discarding { discarding = false; return nil }
            guard !buffer.isEmpty else { return nil }
            guard !buffer.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else { return nil }
            return modemText(buffer)
        }
        if byte < 0x20 && byte != 0x09 || byte == 0x7F {
            noiseBytes += 1
            return nil
        }
        if discarding { return nil }
        if buffer.count >= maxLineBytes {
            overlongLines += 1
            discarding = true
            buffer.removeAll(keepingCapacity: true)
            return nil
        }
        buffer.append(byte)
        return nil
    }

    /// Forgets a partial line (when the channel switches to data mode or resyncs).
    public mutating func reset() {
        buffer.removeAll(keepingCapacity: true)
        discarding = false
    }
}

/// A line's bytes as text: UTF-8 when they are valid UTF-8, else ISO 8859-1 (modems left in
/// `AT+CSCS="8859-1"` send operator names so). C1 control characters (U+0080...U+009F, which a
/// terminal may act on) become `?`: text from the modem never reaches a terminal raw.
func modemText(_ bytes: [UInt8]) -> String {
    var scalars = String.UnicodeScalarView()
    var utf8 = UTF8()
    var iterator = bytes.makeIterator()
    var valid = true
    decoding: while true {
        switch utf8.decode(&iterator) {
        case .scalarValue(let scalar): scalars.append(scalar)
        case .emptyInput: break decoding
        case .error: valid = false; break decoding
        }
    }
    if !valid {
        scalars = String.UnicodeScalarView()
        for byte in bytes { scalars.append(Unicode.Scalar(byte)) }
    }
    var clean = String.UnicodeScalarView()
    for scalar in scalars { clean.append((0x80...0x9F).contains(scalar.value) ? "?" : scalar) }
    return String(clean)
}

/// Removes PINs, PUKs and passwords from a command line (or its echo) before it is logged.
public enum Redaction {
    /// Command name -> index of the first argument to hide (that one and all after it).
    static let secretArguments: [(String, Int)] = [
        ("AT+CPIN=", 0), ("AT+CPIN2=", 0), ("AT^CPIN=", 0), ("AT+CLCK=", 2), ("AT+CPWD=", 1),
        ("AT+CSTT=", 1), ("AT+QICSGP=", 2), ("AT+CGAUTH=", 2), ("AT#SGACT=", 2), ("AT+UPSD=", 2),
        ("AT^AUTHDATA=", 2), ("AT+CSOCKAUTH=", 2), ("AT+QIREGAPP=", 1), ("AT$QCPDPP=", 2),
    ]

    public static func redact(_ line: String) -> String {
        let upper = line.uppercased()
        if upper.hasPrefix("AT+CSIM=") {
            // A VERIFY/UNBLOCK APDU (INS 20/2C) with data carries the PIN or PUK in hex.
            if find(upper, "\"0020") != nil || find(upper, "\"002C") != nil || find(upper, "\"0024") != nil {
                return find(upper, "\"0020000100\"") != nil ? line : "AT+CSIM=****"
            }
            return line
        }
        for (name, first) in secretArguments where upper.hasPrefix(name) {
            // The secret arguments start after `first` commas outside quotes; from there every
            // run of characters other than quotes and commas becomes ****, so whatever the
            // quoting (the fuzzer tries everything), nothing of a secret survives.
            var cut = line.index(line.startIndex, offsetBy: name.count)
            var commas = 0
            var quoted = false
            var index = cut
            while commas < first && index < line.endIndex {
                if line[index] == "\"" { quoted.toggle() }
                if line[index] == "," && !quoted { commas += 1; cut = line.index(after: index) }
                index = line.index(after: index)
            }
            var output = String(line[..<cut])
            var masking = false
            for character in line[cut...] {
                if character == "\"" || character == "," {
                    output.append(character)
                    masking = false
                } else if !masking {
                    output += "****"
                    masking = true
                }
            }
            return output
        }
        return line
    }
}

/// The first occurrence of `needle` in `text` (by UTF-8 bytes). Ours, so the agent does not
/// link the string-processing library (~450 KB) for three substring searches.
func find<Text: StringProtocol>(_ text: Text, _ needle: String) -> Range<String.Index>? {
    let haystack = Array(text.utf8)
    let pattern = Array(needle.utf8)
    guard !pattern.isEmpty, haystack.count >= pattern.count else { return nil }
    for start in 0...(haystack.count - pattern.count) where haystack[start] == pattern[0] {
        if haystack[start..<(start + pattern.count)].elementsEqual(pattern) {
            let lower = text.utf8.index(text.utf8.startIndex, offsetBy: start)
            let upper = text.utf8.index(lower, offsetBy: pattern.count)
            return lower..<upper
        }
    }
    return nil
}

func replacingAll(_ text: String, _ needle: String, with replacement: String) -> String {
    var result = ""
    var rest = Substring(text)
    while let range = find(rest, needle) {
        result += rest[..<range.lowerBound]
        result += replacement
        rest = rest[range.upperBound...]
    }
    return result + rest
}

func trimmed(_ text: Substring) -> String {
    var view = text.utf8[...]
    while let first = view.first, first == 0x20 || first == 0x09 { view = view.dropFirst() }
    while let last = view.last, last == 0x20 || last == 0x09 { view = view.dropLast() }
    return String(decoding: view, as: UTF8.self)
}
