import Modem
import Transport

/// A modem's port that says exactly the fuzzer's bytes, in reads of a size the input chooses,
/// then times out at once (the channel's deadlines are never waited for). Writes vanish.
final class ScriptedPort: ByteStream {
    private var bytes: ArraySlice<UInt8>
    private let readSize: Int
    private(set) var written = 0

    init(_ bytes: ArraySlice<UInt8>, readSize: Int) {
        self.bytes = bytes
        self.readSize = max(1, readSize)
    }

    func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) { written += bytes.count }

    func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        guard !bytes.isEmpty else { throw .timedOut(what: "scripted port is empty") }
        let chunk = Array(bytes.prefix(min(maxCount, readSize)))
        bytes = bytes.dropFirst(chunk.count)
        return chunk
    }

    func close() {}
}

enum ModemHarness {
    /// The commands the probe, unlock, registration and data-session steps send, with what
    /// ends each (the parsers then read whatever answer came).
    static let commands: [(String, Expectation)] = [
        ("AT+CPIN?", .final), ("AT+CPINR=\"SIM PIN\"", .final), ("AT^CPIN?", .final), ("AT+CGMI", .final),
        ("AT+CREG?", .final), ("AT+COPS?", .final), ("AT+CIFSR", .ipAddress), ("ATD*99#", .connect),
    ]

    /// Input: read size (1 byte, 1...64 bytes per read) | what the modem says.
    static func channel(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        var control = ControlBytes(input)
        let readSize = Int(control.byte() % 64) + 1
        let port = ScriptedPort(control.rest, readSize: readSize)
        let channel = ATChannel(port: port, maxLineBytes: 128, transcriptCapacity: 32)
        channel.extraURCPrefixes = ["+QIURC:", "^RSSI:", "^MODE:"]
        var unsolicited = 0
        channel.subscribe { _ in unsolicited += 1 }
        let outcome = try refusing(.atChannel, documented: { $0 is ModemError }) {
            _ = channel.sync(attempts: 1, timeout: 1)
            var state = SIMState.ready
            for (command, expectation) in commands {
                let response: ATResponse
                do { response = try channel.send(command, timeout: 1, expect: expectation) } catch { continue }
                try require(response.lines.count <= 64, .atChannel, "\(response.lines.count) lines in one answer")
                parseEverything(response.lines, state: &state)
                if channel.inDataMode { break }
            }
        }
        try require(channel.transcript.lines.count <= 32, .atChannel, "transcript of \(channel.transcript.lines.count) lines over its capacity")
        try require(channel.recentURCs.count <= 32, .atChannel, "\(channel.recentURCs.count) recent URCs kept")
        return outcome
    }

    /// Every parser the probe and registration apply, on every answer: none may trap, whatever the lines.
    static func parseEverything(_ lines: [String], state: inout SIMState) {
        if let parsed = ATParse.cpin(lines) { state = parsed }
        for query in PINCounterQuery.allCases { _ = query.parse(lines, state: state) }
        _ = ATParse.cpinr(lines)
        _ = ATParse.qpinc(lines)
        _ = ATParse.spic(lines)
        _ = ATParse.huaweiCPIN(lines)
        _ = ATParse.upincnt(lines)
        _ = ATParse.telitPCT(lines, state: state)
        _ = ATParse.cpinc(lines)
        _ = ATParse.zpinpuk(lines)
        _ = ATParse.csim(lines)
        _ = ATParse.ati(lines)
        _ = ATParse.csqDBm(lines)
        if let network = ATParse.cops(lines) { _ = network.technology }
        _ = ATParse.identity(lines, prefixes: ["+CGMI:", "+GMI:", "Manufacturer:"])
        _ = ATParse.imei(lines)
        for line in lines {
            _ = FinalResult.parse(line)
            _ = Redaction.redact(line)
            _ = ATParse.isIPv4(line)
            for prefix in ["+CREG:", "+CGREG:", "+CEREG:"] {
                if let registration = ATParse.registration(line, prefix: prefix, unsolicited: false) { _ = registration.status.name }
                _ = ATParse.registration(line, prefix: prefix, unsolicited: true)
            }
            if let code = line.split(separator: ":").last { _ = SIMState.parse(code: String(code)) }
        }
    }

    /// Input: markers choice (1 byte) | the data stream, cut into reads at each 0xFE byte.
    static func carrierMarker(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        var control = ControlBytes(input)
        let markers = control.byte() & 1 == 0 ? ["NO CARRIER"] : ["NO CARRIER", "CLOSED"]
        var scanner = CarrierMarkerScanner(markers: markers)
        var delivered: [UInt8] = []
        var ended = false
        let reads = control.rest.split(separator: 0xFE, omittingEmptySubsequences: false)
        for read in reads where !ended {
            switch scanner.feed(Array(read)) {
            case .data(let data): delivered += data
            case .ended(let before): delivered += before; ended = true
            }
            try require(!scanner.isHolding || !ended, .carrierMarker, "still holding bytes after the session ended")
        }
        if !ended { delivered += scanner.flush() }
        // Nothing is invented or lost: what came out is a prefix of what went in, and without an
        // end marker it is all of it.
        let sent = reads.joined()
        try require(sent.starts(with: delivered), .carrierMarker, "delivered bytes are not what the modem sent")
        if !ended { try require(delivered.count == sent.count, .carrierMarker, "\(sent.count - delivered.count) bytes lost without an end marker") }
        return .accepted
    }

    static func channelSeeds() -> [(name: String, bytes: [UInt8])] {
        // Answers as real modems give them, in the order the commands go out (SIMCom SIM800,
        // Quectel EC25, Huawei E173, u-blox, Telit; quirks from issue 11: no final OK, quoted
        // states, blank lines, URCs inside answers, echo on, Latin-1).
        let dialogues: [(String, [String])] = [
            ("simcom-pin-ready", ["OK", "OK", "+CPIN: READY", "OK", "+CPINR: \"SIM PIN\",3,3", "+CPINR: \"SIM PUK\",10,10", "OK",
                                  "ERROR", "+SPIC: 3,10,0,10", "OK", "ERROR", "ERROR", "ERROR", "+CSIM: 4,\"63C3\"", "OK", "OK",
                                  "SIMCOM_Ltd", "OK", "SIMCOM_Ltd", "SIM800 R14.18", "OK", "866262037890123", "OK",
                                  "+CREG: 0,1", "OK", "+CGREG: 0,1", "OK", "+CSQ: 15,99", "OK", "+COPS: 0,0,\"Orange PL\"", "OK",
                                  "10.145.33.7", "OK", "CONNECT 115200", "\u{7E}\u{FF}\u{7D}"]),
            ("quectel-sim-pin", ["OK", "OK", "+CPIN: SIM PIN", "OK", "+CME ERROR: 11", "+QPINC: \"SC\",3,10", "+QPINC: \"P2\",3,10", "OK",
                                 "+CME ERROR: 58", "+CME ERROR: 58", "+CME ERROR: 58", "+CME ERROR: 58", "+CME ERROR: 11", "OK",
                                 "Quectel", "OK", "Quectel", "EC25", "Revision: EC25EFAR06A06M4G", "OK", "+CME ERROR: 11",
                                 "+CREG: 0,0", "OK", "+CGREG: 0,2", "OK", "+CSQ: 99,99", "OK", "+COPS: 0", "OK", "ERROR", "NO CARRIER"]),
            ("huawei-unsupported", ["OK", "OK", "+CPIN: \"SIM PIN\"", "", "OK", "COMMAND NOT SUPPORT", "COMMAND NOT SUPPORT",
                                    "COMMAND NOT SUPPORT", "^CPIN: SIM PIN,3,10,3,10,3", "OK", "TOO MANY PARAMETERS",
                                    "^RSSI: 17", "ERROR", "ERROR", "OK", "huawei", "OK", "Manufacturer: huawei", "Model: E173", "OK",
                                    "+CGSN: \"866262037890123\"", "OK", "+CREG: 2,5,\"00C3\",\"1A2B\",2", "OK", "^MODE: 3,3",
                                    "+CGREG: 0,5", "OK", "+CSQ: 31,0", "OK", "+COPS: 1,2,\"26003\",7", "OK", "ERROR", "BUSY"]),
            ("old-no-final-ok", ["ATE0", "OK", "+CPIN: READY", "+CREG: 1", "ERROR", "ERROR", "ERROR", "ERROR", "+UPINCNT: 3,3,10,10", "OK",
                                 "#PCT: 3", "OK", "ERROR", "OK", "WAVECOM MODEM", "OK", "Telit", "OK", "+CME ERROR: SIM busy",
                                 "+CREG: 0,5", "+CREG: 1,\"00C3\",\"1A2B\"", "OK", "+CEREG: 0,4", "OK", "+CSQ: 150,99", "OK",
                                 "+COPS: 0,0,\"unterminated", "OK", "0", "CONNECT"]),
            ("echo-latin1-glued", ["AT+CPIN?\r+CPIN: READY\rOK", "AT+CSQ", "+CSQ: ,", "OK", "Vodafone D\u{FC}sseldorf", "OK",
                                   "RING", "+CMS ERROR: 500", "NO DIALTONE", "NO ANSWER", "CONNECT FAIL", "+CME ERROR: 16",
                                   "Call Ready", "SMS Ready", "RDY", "+CFUN: 1", "SHUT OK", "4"]),
        ]
        var seeds = dialogues.map { name, lines in
            (name: name, bytes: [UInt8(31)] + Array(lines.map { $0 + "\r\n" }.joined().utf8))
        }
        // Latin-1 bytes, NUL noise and an overlong line, as a raw port delivers them.
        seeds.append((name: "noise-latin1-overlong", bytes: [4] + Array("\r\nOK\r\n+COPS: 0,0,\"".utf8) + [0xE9, 0xF3, 0x00, 0x00, 0x22]
                      + Array("\r\n".utf8) + [UInt8](repeating: 0x41, count: 200) + Array("\r\nOK\r\n\r\n+CPIN: READY\r\nOK\r\n".utf8)))
        return seeds
    }

    static func carrierMarkerSeeds() -> [(name: String, bytes: [UInt8])] {
        let ppp: [UInt8] = [0x7E, 0xFF, 0x03, 0xC0, 0x21, 0x01, 0x01, 0x00, 0x0A, 0x7D, 0x23, 0x7E]
        return [
            (name: "no-carrier-split", bytes: [0] + ppp + [0xFE] + Array("\r\nNO CA".utf8) + [0xFE] + Array("RRIER\r\n".utf8)),
            (name: "closed-simcom", bytes: [1] + ppp + Array("\r\nCLOSED\r\n".utf8)),
            (name: "marker-lookalike-data", bytes: [1] + Array("\r\nNO CARRIE".utf8) + [0xFE] + ppp + [0xFE] + Array("\r\nCL".utf8)),
        ]
    }
}
