import Foundation
import Modem
import Testing
import Transport

/// A fake modem from a command -> raw answer table, on the far end of a stream pair; it answers
/// nothing to unknown commands (like ModemManager's test-port-context, but silent).
final class ScriptedModem: @unchecked Sendable {
    let channel: ATChannel
    private let far: FileDescriptorStream
    private let answers: [String: String]
    private let lock = NSLock()
    private var received: [String] = []
    private var stopped = false

    init(_ answers: [String: String]) throws {
        let (near, far) = try StreamPair.make()
        self.far = far
        self.answers = answers
        channel = ATChannel(port: near, maxLineBytes: 256)
        Thread { [self] in loop() }.start()
    }

    var commands: [String] { lock.withLock { received } }

    func stop() { lock.withLock { stopped = true } }

    private func loop() {
        var line: [UInt8] = []
        while !lock.withLock({ stopped }) {
            guard let bytes = try? far.read(maxCount: 256, deadline: .after(milliseconds: 50)), !bytes.isEmpty else { continue }
            for byte in bytes {
                guard byte == 0x0D else { line.append(byte); continue }
                let command = String(decoding: line, as: UTF8.self)
                line = []
                lock.withLock { received.append(command) }
                if let answer = answers[command] { try? far.write(Array(answer.utf8), deadline: .after(seconds: 1)) }
            }
        }
    }

    deinit { stop() }
}

@Suite("AT channel")
struct ChannelTests {
    @Test("a response with its echo, a URC mid-response and noise bytes: lines, final and the URC routed apart")
    func urcMidResponse() throws {
        let modem = try ScriptedModem(["AT+CSQ": "AT+CSQ\r\r\n+CSQ: 17,99\r\n\r\n+CREG: 1,\"00C3\",\"1A2B\"\r\n\u{0}\u{0}\r\nRING\r\n\r\nOK\r\n"])
        defer { modem.stop() }
        var urcs: [String] = []
        modem.channel.subscribe { urcs.append($0) }
        let response = try modem.channel.send("AT+CSQ", timeout: 1)
        #expect(response == ATResponse(lines: ["+CSQ: 17,99"], final: .ok))
        #expect(urcs == ["+CREG: 1,\"00C3\",\"1A2B\"", "RING"])
        #expect(modem.channel.noiseBytes == 2)
    }

    @Test("+CREG: as the answer to AT+CREG? versus +CREG: as a URC arriving during it")
    func registrationOwnership() throws {
        let modem = try ScriptedModem(["AT+CREG?": "\r\n+CREG: 1\r\n\r\n+CREG: 0,5\r\n\r\n+CREG: 5,\"00C3\",\"1A2B\"\r\n\r\nOK\r\n",
                                       "AT+CSQ": "\r\n+CREG: 1,5\r\n\r\n+CSQ: 9,99\r\n\r\nOK\r\n"])
        defer { modem.stop() }
        var urcs: [String] = []
        modem.channel.subscribe { urcs.append($0) }
        let response = try modem.channel.send("AT+CREG?", timeout: 1)
        #expect(response.lines == ["+CREG: 0,5"])
        #expect(urcs == ["+CREG: 1", "+CREG: 5,\"00C3\",\"1A2B\""])
        // The same text in the middle of another command's answer is a URC.
        #expect(try modem.channel.send("AT+CSQ", timeout: 1).lines == ["+CSQ: 9,99"])
        #expect(urcs.last == "+CREG: 1,5")
    }

    @Test("numeric V0 results and error finals end a command")
    func numericAndErrors() throws {
        let modem = try ScriptedModem(["ATE0": "ATE0\r0\r", "AT+CPIN?": "\r\n+CME ERROR: 14\r\n", "AT+X": "4\r", "ATD*99#": "\r\nNO CARRIER\r\n"])
        defer { modem.stop() }
        #expect(try modem.channel.send("ATE0", timeout: 1).final == .ok)
        #expect(try modem.channel.send("AT+CPIN?", timeout: 1).final == .cmeError(14))
        #expect(try modem.channel.send("AT+X", timeout: 1).final == .error)
        #expect(try modem.channel.send("ATD*99#", timeout: 1, expect: .connect).final == .noCarrier)
    }

    @Test("a command with no final result times out at its deadline, and the next command re-syncs first")
    func timeoutAndResync() throws {
        let modem = try ScriptedModem(["AT+SLOW": "\r\n+SLOW: 1\r\n", "AT": "\r\nOK\r\n", "AT+CGMI": "\r\nSIMCOM_Ltd\r\n\r\nOK\r\n"])
        defer { modem.stop() }
        let started = Deadline.now
        #expect(throws: ModemError.noAnswer(command: "AT+SLOW")) { try modem.channel.send("AT+SLOW", timeout: 0.2) }
        let waited = Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9
        #expect(waited >= 0.18 && waited < 1)
        #expect(modem.channel.needsResync)
        #expect(try modem.channel.send("AT+CGMI", timeout: 1).lines == ["SIMCOM_Ltd"])
        #expect(modem.commands == ["AT+SLOW", "AT", "AT+CGMI"])
    }

    @Test("SIMCom AT+CIFSR: the bare IP address line is the answer")
    func ipAddressAnswer() throws {
        let modem = try ScriptedModem(["AT+CIFSR": "\r\n+CGREG: 1\r\n\r\n10.145.33.7\r\n"])
        defer { modem.stop() }
        #expect(try modem.channel.send("AT+CIFSR", timeout: 1, expect: .ipAddress).lines == ["10.145.33.7"])
    }

    @Test("the transcript never holds the PIN, neither the command nor its echo")
    func transcriptRedacted() throws {
        let modem = try ScriptedModem(["AT+CPIN=\"4711\"": "AT+CPIN=\"4711\"\r\r\n+CME ERROR: 16\r\n"])
        defer { modem.stop() }
        var sink: [String] = []
        modem.channel.transcriptSink = { sink.append($0) }
        #expect(try modem.channel.send("AT+CPIN=\"4711\"", timeout: 1).final == .cmeError(16))
        let all = modem.channel.transcript.lines + sink
        #expect(!all.isEmpty && all.allSatisfy { !$0.contains("4711") }, "\(all)")
        #expect(all.contains("> AT+CPIN=\"****\""))
    }

    @Test("a flood of bytes without line ends stays bounded and the command still completes")
    func floodBounded() throws {
        let flood = String(repeating: "x", count: 100_000)
        let modem = try ScriptedModem(["AT+FLOOD": flood + "\r\nOK\r\n"])
        defer { modem.stop() }
        #expect(try modem.channel.send("AT+FLOOD", timeout: 3).final == .ok)
        #expect(modem.channel.overlongLines == 1)
    }

    // Line endings as real modems sent them, from public reports (the bytes as reported; the
    // fully glued form, two answers with no line break at all, is in no public record found:
    // hardware/modems/transcripts/README.md, "Glued lines").
    @Test("echo on: the command's echo, a lone CR and blank lines before OK (FactbirdHQ/atat issue #87, a u-blox log)")
    func echoAndBlankLinesAsLogged() throws {
        let modem = try ScriptedModem(["AT+CPIN?": "AT+CPIN?\r\r\n+CPIN: READY\r\n\r\nOK\r\n"])
        defer { modem.stop() }
        let response = try modem.channel.send("AT+CPIN?", timeout: 1)
        #expect(response == ATResponse(lines: ["+CPIN: READY"], final: .ok))
        #expect(ATParse.cpin(response.lines) == .ready)
    }

    @Test("lines parted by a bare LF, the CR missing: +CPIN: READY<LF>OK (hbjorgo/ATLib issue #63, a WebDyn EasyDot)")
    func bareLineFeedBeforeFinal() throws {
        let modem = try ScriptedModem(["AT+CPIN?": "\r\n+CPIN: READY\nOK\r\n"])
        defer { modem.stop() }
        let response = try modem.channel.send("AT+CPIN?", timeout: 1)
        #expect(response == ATResponse(lines: ["+CPIN: READY"], final: .ok))
    }

    @Test("two URCs parted by a bare LF are two URCs (Telit ME310G1/ME910G1 AT reference, 80617ST10991A §2.2.2.3)")
    func bareLineFeedBetweenURCs() throws {
        let modem = try ScriptedModem(["AT+CSQ": "\r\n#LWM2MMON: \"4\"\n#LWM2MMON: \"3\"\r\n\r\n+CSQ: 14,99\r\n\r\nOK\r\n"])
        defer { modem.stop() }
        modem.channel.extraURCPrefixes = ["#LWM2MMON:"]  // hardware/modems/telit.modem lists it
        var urcs: [String] = []
        modem.channel.subscribe { urcs.append($0) }
        let response = try modem.channel.send("AT+CSQ", timeout: 1)
        #expect(response.lines == ["+CSQ: 14,99"] && response.final == .ok)
        #expect(urcs == ["#LWM2MMON: \"4\"", "#LWM2MMON: \"3\""])
    }

    @Test("+CPIN:READY with no space after the colon (AI-Thinker A7, MaJerle/GSM_AT_commands_parser issue #7)")
    func cpinWithoutSpace() {
        #expect(ATParse.cpin(["+CPIN:READY"]) == .ready)
        #expect(ATParse.cpin(["+CPIN:SIM PIN"]) == .pinRequired)
    }
}
