#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemCalls

/// Records what a modem answered, in the corpus's transcript format
/// (hardware/modems/transcripts/README.md), so `satchel-sim modem replay` plays it back and a
/// misbehaving modem in the field becomes a CI case. Nothing secret reaches the text: PIN and PUK
/// entries are left out (the replayer answers them from the SIM it declares), and IMSIs, ICCIDs
/// and the serial part of IMEIs are masked wherever they appear.
public final class TranscriptRecorder {
    private var exchanges: [(command: String, answers: [[String]])] = []
    private var command: String?
    private var answer: [String] = []
    private var echoSeen = false

    public init() {}

    /// Feeds one line of the channel's transcript (`> command` or `< line`, PINs already redacted).
    public func observe(_ line: String) {
        if line.hasPrefix("> ") {
            finish()
            command = String(line.dropFirst(2))
            answer = []
        } else if line.hasPrefix("< "), let command {
            let text = String(line.dropFirst(2))
            if text.utf8.count == command.utf8.count && text.uppercased() == command.uppercased() {
                echoSeen = true
                return
            }
            answer.append(text)
        }
    }

    private func finish() {
        guard let command else { return }
        defer { self.command = nil }
        // PIN and PUK entries are the replayer's to answer; their text is never kept.
        if Self.isSecretEntry(command) { return }
        let masked = answer.map { Self.mask($0, answering: command) }
        if let index = exchanges.firstIndex(where: { $0.command == command }) {
            if exchanges[index].answers.last != masked { exchanges[index].answers.append(masked) }
        } else {
            exchanges.append((command, [masked]))
        }
    }

    static func isSecretEntry(_ command: String) -> Bool {
        let upper = command.uppercased()
        return upper.hasPrefix("AT+CPIN=") || upper.hasPrefix("AT+CPIN2=") || upper.hasPrefix("AT^CPIN=") || upper.hasPrefix("AT+CLCK=")
            || upper.hasPrefix("AT+CPWD=") || (upper.hasPrefix("AT+CSIM=") && Redaction.redact(command) != command)
    }

    /// The transcript text. `report` (when the probe got that far) gives the SIM state and what
    /// the replay must conclude again.
    public func text(report: ProbeReport?, note: String) -> String {
        finish()
        var out = "# Recorded in the field by `satchel modem probe --record`: \(Self.plain(note)).\n"
        out += "# source: field recording; PIN and PUK entries left out, IMSI, ICCID and the IMEI's serial digits masked\n"
        if let report {
            let name = [report.identity.manufacturer, report.identity.model].compactMap { $0 }.joined(separator: " ")
            out += "model = \(Self.plain(name.isEmpty ? "unidentified modem" : name))\n"
            if let sim = report.sim {
                switch sim.state {
                case .ready: out += "sim = ready\n"
                case .pukRequired: out += "sim = puk" + (sim.pukAttempts.map { " puk \($0)" } ?? "") + "\n"
                default: out += "sim = pin" + (sim.pinAttempts.map { " pin \($0)" } ?? "") + (sim.pukAttempts.map { " puk \($0)" } ?? "") + "\n"
                }
                if sim.state == .pinRequired { out += "expect_counters = \(sim.pinAttempts == nil ? "no" : "yes")\n" }
            }
            out += "expect_profile = \(report.profile)\n"
            if let choice = report.choice, choice.basis != .requested { out += "expect_choice = \(choice.kind)\n" }
        }
        if echoSeen { out += "echo = on\n" }
        out += "\n[any]\n"
        for exchange in exchanges {
            for answer in exchange.answers {
                out += "> \(Self.plain(exchange.command))\n"
                for line in answer { out += "< \(Self.plain(Self.template(line)))\n" }
            }
        }
        return out
    }

    /// Writes the transcript to a new file (never over an existing one), whole or not at all
    /// (`SystemCalls.replaceFile`: its temporary file is never opened through a planted link).
    public func write(to path: String, report: ProbeReport?, note: String) throws(ModemError) {
        do {
            try SystemCalls.replaceFile(path, with: Array(text(report: report, note: note).utf8), overwrite: false)
        } catch {
            throw ModemError.system("cannot write the recording \(path): \(error.step) \(error.path)", errno: error.errno.rawValue)
        }
    }

    /// `+CPIN: SIM PIN` -> `+CPIN: {cpin}`: the replayer fills in its SIM's state.
    static func template(_ line: String) -> String {
        guard line.hasPrefix("+CPIN:"), SIMState.parse(code: String(line.dropFirst(6))) != nil else { return line }
        return trimmed(Substring(line.dropFirst(6))).hasPrefix("\"") ? "+CPIN: \"{cpin}\"" : "+CPIN: {cpin}"
    }

    /// Non-ASCII and control characters as `\xHH` escapes, `\` as `\\`, so the file stays text and
    /// replays byte for byte (Latin-1 answers included).
    static func plain(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar == "\\" { out += "\\\\" } else if scalar.value >= 0x20 && scalar.value < 0x7F { out.unicodeScalars.append(scalar) } else if scalar.value <= 0xFF {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            } else {
                for byte in String(scalar).utf8 {
                    let hex = String(byte, radix: 16, uppercase: true)
                    out += "\\x" + (hex.count == 1 ? "0" + hex : hex)
                }
            }
        }
        return out
    }

    /// Masks the secrets in one answer line.
    static func mask(_ line: String, answering command: String) -> String {
        let upper = command.uppercased()
        let text = line.uppercased()
        // ICCID, whatever the command (`+CCID:`, `+ICCID:`, `^ICCID:`, `+QCCID:`, or bare after AT+CCID).
        for prefix in ["+CCID:", "+ICCID:", "^ICCID:", "+QCCID:", "ICCID:", "+CRSM:"] where text.hasPrefix(prefix) {
            return String(line.prefix(prefix.count)) + " " + maskDigits(trimmed(line.dropFirst(prefix.count)), keep: prefix == "+CRSM:" ? 0 : 6)
        }
        if upper.hasPrefix("AT+CCID") || upper.hasPrefix("AT+ICCID") || upper.hasPrefix("AT^ICCID") || upper.hasPrefix("AT+QCCID")
            || (upper.hasPrefix("AT+CRSM=") && upper.contains("12258")) {
            return maskDigits(line, keep: upper.hasPrefix("AT+CRSM") ? 0 : 6)
        }
        // IMSI: MCC and MNC (5 digits) stay, the subscriber number goes.
        if upper == "AT+CIMI" || upper.hasPrefix("AT+CIMI") || text.hasPrefix("+CIMI:") { return maskDigits(line, keep: 5) }
        // IMEI: the type allocation code (8 digits) stays, the serial and check digit become 0.
        if upper == "AT+CGSN" || upper == "AT+GSN" || upper.hasPrefix("AT+CGSN=") || text.hasPrefix("+CGSN:") || text.hasPrefix("+GSN:") || text.hasPrefix("IMEI:") {
            return zeroSerial(line)
        }
        // Anything else that carries a run of 14 or more digits may be one of them: masked too.
        return maskLongDigitRuns(line)
    }

    /// Every digit (and hex digit, for ICCIDs' `F` filler and CRSM's swapped nibbles) after the
    /// first `keep` digits becomes `*`.
    static func maskDigits(_ text: String, keep: Int) -> String {
        var seen = 0
        var out = ""
        for character in text {
            if character.isHexDigit && !(seen == 0 && !character.isNumber) {
                seen += 1
                out.append(seen <= keep ? character : "*")
            } else {
                out.append(character)
            }
        }
        return out
    }

    static func zeroSerial(_ text: String) -> String {
        var seen = 0
        var out = ""
        for character in text {
            if character.isNumber {
                seen += 1
                out.append(seen <= 8 ? character : "0")
            } else {
                out.append(character)
            }
        }
        return out
    }

    static func maskLongDigitRuns(_ text: String) -> String {
        var out = ""
        var run = ""
        func flush() {
            out += run.count >= 14 ? String(repeating: "*", count: run.count) : run
            run = ""
        }
        for character in text {
            if character.isNumber { run.append(character) } else {
                flush()
                out.append(character)
            }
        }
        flush()
        return out
    }
}
