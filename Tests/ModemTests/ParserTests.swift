import Modem
import ModemSimulator
import Testing

/// Table-driven tests of the pure parsers with real modems' answers, and malformed ones that must not match.
@Suite("AT response parsers")
struct ParserTests {
    @Test("final result codes, verbose and numeric", arguments: [
        ("OK", FinalResult.ok), ("ERROR", .error), ("+CME ERROR: 16", .cmeError(16)), ("+CME ERROR: SIM busy", .cmeError(14)),
        ("+CME ERROR: incorrect password", .cmeError(16)), ("+CMS ERROR: 500", .cmsError(500)), ("CONNECT", .connect("")),
        ("CONNECT 115200", .connect("115200")), ("CONNECT FAIL", .failed("CONNECT FAIL")), ("NO CARRIER", .noCarrier),
        ("BUSY", .busy), ("NO DIALTONE", .noDialtone), ("NO ANSWER", .noAnswer), ("SHUT OK", .ok), ("0", .ok), ("1", .connect("")),
        ("3", .noCarrier), ("4", .error), ("7", .busy), ("+CME ERROR: gibberish", .cmeError(-1)),
    ] as [(String, FinalResult)])
    func finals(line: String, expected: FinalResult) {
        #expect(FinalResult.parse(line) == expected)
    }

    @Test("lines that are not final results", arguments: ["OKAY", "OK OK", "2", "RING", "+CPIN: READY", "CONNECTED", "10.1.2.3", "", "ERRORS", "5"])
    func notFinals(line: String) {
        #expect(FinalResult.parse(line) == nil)
    }

    @Test("+CPIN states", arguments: [
        (["+CPIN: READY"], SIMState?.some(.ready)), (["+CPIN: SIM PIN"], .pinRequired), (["+CPIN: SIM PUK"], .pukRequired),
        (["+CPIN: NOT INSERTED"], .notInserted), (["+CPIN: PH-NET PIN"], .phoneLocked("PH-NET PIN")), (["+CPIN:"], nil),
        (["+CPIN: MAYBE"], nil), (["CPIN: READY"], nil), (["junk", "+CPIN: SIM PIN"], .pinRequired),
    ] as [([String], SIMState?)])
    func cpin(lines: [String], expected: SIMState?) {
        #expect(ATParse.cpin(lines) == expected)
    }

    @Test("PIN counters from every vendor's command", arguments: [
        (PINCounterQuery.cpinr, ["+CPINR: \"SIM PIN\",3,3", "+CPINR: \"SIM PUK\",10,10"], PINCounters?.some(PINCounters(pin: 3, puk: 10))),
        (.cpinr, ["+CPINR: SIM PIN,2,3"], PINCounters(pin: 2, puk: nil)),
        (.cpinr, ["+CPINR: \"SIM PIN\",-1,3"], nil),
        (.cpinr, ["+CPINR: \"SIM PIN2\",3,3"], nil),
        (.qpinc, ["+QPINC: \"SC\",3,10", "+QPINC: \"P2\",3,10"], PINCounters(pin: 3, puk: 10)),
        (.qpinc, ["+QPINC: \"P2\",1,10"], nil),
        (.qpinc, ["+QPINC: \"SC\",x,10"], nil),
        (.spic, ["+SPIC: 2,10,0,10"], PINCounters(pin: 2, puk: 10)),
        (.spic, ["+SPIC: 2"], nil),
        (.huawei, ["^CPIN: SIM PIN,3,10,3,10,3"], PINCounters(pin: 3, puk: 10)),
        (.huawei, ["^CPIN: READY,,10,1,10,3"], PINCounters(pin: 1, puk: 10)),
        (.huawei, ["^CPIN: SIM PIN,3"], nil),
        (.upincnt, ["+UPINCNT: 3,3,10,10"], PINCounters(pin: 3, puk: 10)),
        (.telit, ["#PCT: 2"], PINCounters(pin: 2, puk: nil)),
        (.telit, ["#PCT: 2,3"], nil),
        (.csim, ["+CSIM: 4,\"63C3\""], PINCounters(pin: 3, puk: nil)),
        (.csim, ["+CSIM: 4,\"6983\""], PINCounters(pin: 0, puk: nil)),
        (.csim, ["+CSIM: 4,\"9000\""], nil),
        (.csim, ["+CSIM: 4,\"63CZ\""], nil),
        (.csim, ["+CSIM: 4,\"6A86\""], nil),
    ] as [(PINCounterQuery, [String], PINCounters?)])
    func counters(query: PINCounterQuery, lines: [String], expected: PINCounters?) {
        #expect(query.parse(lines, state: .pinRequired) == expected)
    }

    @Test("registration: query responses and unsolicited forms", arguments: [
        ("+CREG: 0,1", false, RegistrationStatus?.some(.home)), ("+CREG: 2,5,\"00C3\",\"1A2B\",3", false, .roaming),
        ("+CGREG: 0,2", false, .searching), ("+CREG: 0,3", false, .denied), ("+CEREG: 0,4", false, .unknown),
        ("+CREG: 1", true, .home), ("+CREG: 5,\"00C3\",\"1A2B\"", true, .roaming), ("+CREG: 1", false, nil),
        ("+CREG: 7,1", false, nil), ("+CREG: 0,11", false, nil), ("+CREG: ", true, nil), ("+CREG: 0,\"1\"", false, .home),
    ] as [(String, Bool, RegistrationStatus?)])
    func registration(line: String, unsolicited: Bool, expected: RegistrationStatus?) {
        let prefix = String(line.prefix { $0 != ":" }) + ":"
        #expect(ATParse.registration(line, prefix: prefix, unsolicited: unsolicited)?.status == expected)
    }

    @Test("registered means home or roaming; denied and searching do not")
    func registeredStates() {
        #expect(RegistrationStatus.home.isRegistered && RegistrationStatus.roaming.isRegistered)
        #expect(!RegistrationStatus.denied.isRegistered && !RegistrationStatus.searching.isRegistered && !RegistrationStatus.smsOnlyHome.isRegistered)
    }

    @Test("+CSQ in dBm", arguments: [
        ("+CSQ: 15,99", Int?.some(-83)), ("+CSQ: 0,0", -113), ("+CSQ: 31,0", -51), ("+CSQ: 99,99", nil), ("+CSQ: 32,99", nil),
        ("+CSQ: ,", nil), ("+CSQ: 15", nil), ("CSQ: 15,99", nil),
    ] as [(String, Int?)])
    func csq(line: String, expected: Int?) {
        #expect(ATParse.csqDBm([line]) == expected)
    }

    @Test("+COPS? access technology", arguments: [
        ("+COPS: 0,0,\"Orange PL\",0", String?.some("GPRS")), ("+COPS: 0,0,\"Orange PL\",3", "EDGE"), ("+COPS: 0,2,\"26003\",2", "UMTS"),
        ("+COPS: 0,0,\"Play\",7", "LTE"), ("+COPS: 0,0,\"Plus\",6", "UMTS"), ("+COPS: 0", nil), ("+COPS: 0,0,\"x\",99", nil),
    ] as [(String, String?)])
    func cops(line: String, expected: String?) {
        #expect(ATParse.cops([line])?.technology == expected)
    }

    @Test("a COPS line with an unterminated quote is refused")
    func copsMalformed() {
        #expect(ATParse.cops(["+COPS: 0,0,\"Orange"]) == nil)
        #expect(ATParse.cops(["+COPS: 0,0,\"Orange PL\",3"])?.name == "Orange PL")
    }

    @Test("identity strips the vendors' prefixes; IMEI must be digits")
    func identity() {
        #expect(ATParse.identity(["Revision:1418B05SIM800L24"], prefixes: ["Revision:"]) == "1418B05SIM800L24")
        #expect(ATParse.identity(["+CGMI: \"Quectel\""], prefixes: ["+CGMI:"]) == "Quectel")
        // Line noise can arrive as a whole line before or after the answer (the simulator's
        // `noise` fault sends `#$%junk`); the name is still the name. CI once read "#$%junk".
        #expect(ATParse.identity(["#$%junk", "Quectel"], prefixes: ["+CGMI:"]) == "Quectel")
        #expect(ATParse.identity(["Quectel", "#$%junk"], prefixes: ["+CGMI:"]) == "Quectel")
        #expect(ATParse.identity(["\u{1B}[2Jx", "SIMCOM_Ltd"], prefixes: []) == "SIMCOM_Ltd")
        // With no clean line the first with a letter or digit is still reported, not dropped.
        #expect(ATParse.identity(["Ünknown*Vendor"], prefixes: []) == "Ünknown*Vendor")
        #expect(ATParse.identity(["Sierra Wireless, Incorporated"], prefixes: []) == "Sierra Wireless, Incorporated")
        let noisy = ATParse.ati(["#$%junk", "Quectel", "EC25", "Revision: EC25EFAR06A03M4G"])
        #expect(noisy.manufacturer == "Quectel" && noisy.model == "EC25")
        #expect(ATParse.imei(["866262037890123"]) == "866262037890123")
        #expect(ATParse.imei(["+CGSN: \"866262037890123\""]) == "866262037890123")
        #expect(ATParse.imei(["86626203789012X"]) == nil)
        #expect(ATParse.imei(["1234"]) == nil)
    }

    @Test("secrets are redacted from commands and their echoes", arguments: [
        ("AT+CPIN=\"1234\"", "AT+CPIN=\"****\""), ("AT+CPIN=1234", "AT+CPIN=****"),
        ("AT+CPIN=\"12345678\",\"4321\"", "AT+CPIN=\"****\",\"****\""),
        ("AT+CSTT=\"internet\",\"rep\",\"s3cret\"", "AT+CSTT=\"internet\",\"****\",\"****\""),
        ("AT+QICSGP=1,1,\"apn\",\"user\",\"pass\",1", "AT+QICSGP=1,1,\"****\",\"****\",\"****\",****"),
        ("AT+CGAUTH=1,1,\"user\",\"pass\"", "AT+CGAUTH=1,1,\"****\",\"****\""),
        ("at+cpin=\"1234\"", "at+cpin=\"****\""), ("AT+CLCK=\"SC\",1,\"1234\"", "AT+CLCK=\"SC\",1,\"****\""),
        ("AT+CSIM=26,\"002000010831323334FFFFFFFF\"", "AT+CSIM=****"), ("AT+CSIM=10,\"0020000100\"", "AT+CSIM=10,\"0020000100\""),
        ("AT+CPIN=\u{FFFD}1234\"", "AT+CPIN=****\""), ("AT+CSTT=\"apn\",pass\"", "AT+CSTT=\"apn\",****\""),
        ("AT+CPIN?", "AT+CPIN?"), ("+CPIN: SIM PIN", "+CPIN: SIM PIN"),
    ] as [(String, String)])
    func redaction(line: String, expected: String) {
        #expect(Redaction.redact(line) == expected)
    }
}

@Suite("Line splitter")
struct LineSplitterTests {
    func split(_ bytes: [UInt8], cap: Int = 64) -> ([String], LineSplitter) {
        var splitter = LineSplitter(maxLineBytes: cap)
        var lines: [String] = []
        for byte in bytes { if let line = splitter.push(byte) { lines.append(line) } }
        return (lines, splitter)
    }

    @Test("CR, LF and CRLF end lines; empty lines vanish; NUL and control noise is dropped and counted")
    func framing() {
        let (lines, splitter) = split(Array("\r\n+CPIN: READY\r\n\r\nOK\r\n0\r".utf8) + [0, 0xFF, 0x1B, 0x0D] + Array("\n\nRING\n".utf8))
        // 0xFF alone is not UTF-8: the line is read as ISO 8859-1 (ÿ), never as a replacement character.
        #expect(lines == ["+CPIN: READY", "OK", "0", "ÿ", "RING"])
        #expect(splitter.noiseBytes == 2)
    }

    @Test("a line longer than the cap is dropped whole and counted; the buffer never grows past the cap")
    func overlong() {
        var bytes = [UInt8](repeating: 0x41, count: 10_000)
        bytes += Array("\r\nOK\r\n".utf8)
        var splitter = LineSplitter(maxLineBytes: 64)
        var lines: [String] = []
        var maxBuffered = 0
        for byte in bytes {
            if let line = splitter.push(byte) { lines.append(line) }
            maxBuffered = max(maxBuffered, splitter.bufferedBytes)
        }
        #expect(lines == ["OK"])
        #expect(splitter.overlongLines == 1)
        #expect(maxBuffered <= 64)
    }

    @Test("fuzz: 20,000 random and mutated inputs through splitter and every parser, bounded and without a crash")
    func fuzz() {
        var inputs = FuzzInputs(seed: 7)
        var splitter = LineSplitter(maxLineBytes: 512)
        var lines = 0
        var violations: [String] = []
        var maxBuffered = 0
        for _ in 0..<20_000 {
            for byte in inputs.next() {
                if let line = splitter.push(byte) {
                    lines += 1
                    _ = FinalResult.parse(line)
                    _ = ATParse.cpin([line])
                    for query in PINCounterQuery.allCases {
                        if let counters = query.parse([line], state: .pinRequired), (counters.pin ?? 0) < 0 || (counters.puk ?? 0) < 0 {
                            violations.append(line)
                        }
                    }
                    if let dbm = ATParse.csqDBm([line]), !((-113)...(-51) ~= dbm) { violations.append(line) }
                    _ = ATParse.registration(line, prefix: "+CREG:", unsolicited: false)
                    _ = ATParse.registration(line, prefix: "+CREG:", unsolicited: true)
                    _ = ATParse.cops([line])
                    let redacted = Redaction.redact(line)
                    if line.uppercased().hasPrefix("AT+CPIN=") && redacted.contains("1234") { violations.append(line) }
                }
                maxBuffered = max(maxBuffered, splitter.bufferedBytes)
            }
        }
        #expect(violations.isEmpty, "\(violations.prefix(5))")
        #expect(maxBuffered <= 512)
        #expect(lines > 20_000)
        #expect(splitter.overlongLines > 0)
    }
}
