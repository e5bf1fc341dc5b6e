// Replays a modem transcript (hardware/modems/transcripts/*.transcript) on a pty: the answers a
// real modem gave, command by command, with the SIM's PIN state and counters kept by the
// replayer so unlock cases can be played. Anything the transcript does not know is answered
// `ERROR`, as ModemManager's test-port-context does (src/plugins/tests/test-port-context.c).
// The format is described in hardware/modems/transcripts/README.md.
import Foundation

/// The SIM as a transcript declares it.
public enum TranscriptSIMState: String, Sendable {
    case ready, pin, puk
}

/// A parsed transcript: what the modem answers, in which SIM state, and what the agent should
/// conclude from it.
public struct ModemTranscript: Sendable {
    public enum Section: String, Sendable, CaseIterable { case any, locked, ready }

    /// What the modem sends for one command: framed lines (`< text`) or raw bytes (`<| bytes`).
    public enum Piece: Sendable, Equatable {
        case line(String)
        case raw([UInt8])
    }

    public var name: String
    public var sources: [String] = []
    public var model = ""
    public var sim = TranscriptSIMState.pin
    public var pinAttempts = 3
    public var pukAttempts = 10
    public var pinCode = "1234"
    public var echo = false
    /// The profile the probe must choose with the SIM as declared, and after the PIN.
    public var expectProfile: String?
    public var expectProfileReady: String?
    /// How the profile is chosen: model, vendor, ati, generic (the last three are fallbacks).
    public var expectChoice: String?
    /// Whether the modem can tell the PIN attempts left while the SIM asks for its PIN.
    public var expectCounters = true
    public var pinAccepted: [Piece] = [.line("OK")]
    public var pinRejected: [Piece] = [.line("+CME ERROR: 16")]
    public var pinWhenReady: [Piece] = [.line("+CME ERROR: 3")]
    /// Answers per section and upper-cased command; several answers to one command are given in
    /// turn, the last one repeating.
    public var answers: [Section: [String: [[Piece]]]] = [:]
    /// `> *`: the answer to any command the section does not list.
    public var fallback: [Section: [Piece]] = [:]

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    public static func load(path: String) throws -> ModemTranscript {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ParseError(description: "cannot read transcript \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), name: (path as NSString).lastPathComponent)
    }

    public static func parse(_ text: String, name: String) throws -> ModemTranscript {
        var transcript = ModemTranscript(name: name)
        var section = Section.any
        var command: String?
        var pieces: [Piece] = []
        var lineNumber = 0
        func fail(_ what: String) -> ParseError { ParseError(description: "\(name) line \(lineNumber): \(what)") }
        func finish() {
            guard let command else { return }
            if command == "*" { transcript.fallback[section] = pieces } else {
                transcript.answers[section, default: [:]][command, default: []].append(pieces)
            }
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = String(raw.hasSuffix("\r") ? raw.dropLast() : raw)
            if line.hasPrefix("#") {
                let comment = line.dropFirst().trimmingCharacters(in: .whitespaces)
                if comment.lowercased().hasPrefix("source:") {
                    transcript.sources.append(comment.dropFirst(7).trimmingCharacters(in: .whitespaces))
                }
                continue
            }
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if line.hasPrefix("[") {
                finish()
                command = nil
                guard line.hasSuffix("]"), let named = Section(rawValue: String(line.dropFirst().dropLast())) else {
                    throw fail("unknown section \(line) (any, locked, ready)")
                }
                section = named
                continue
            }
            if line.hasPrefix(">") {
                finish()
                let text = line.dropFirst().trimmingCharacters(in: .whitespaces)
                guard text == "*" || text.uppercased().hasPrefix("AT") else { throw fail("a command starts with AT (or is *)") }
                command = text.uppercased()
                pieces = []
                continue
            }
            if line.hasPrefix("<|") {
                guard command != nil else { throw fail("an answer before any > command") }
                pieces.append(.raw(try unescape(String(line.dropFirst(2).drop(while: { $0 == " " })), fail)))
                continue
            }
            if line.hasPrefix("<") {
                guard command != nil else { throw fail("an answer before any > command") }
                var text = String(line.dropFirst())
                if text.hasPrefix(" ") { text.removeFirst() }
                pieces.append(.line(String(decoding: try unescape(text, fail), as: UTF8.self)))
                continue
            }
            guard command == nil, let equals = line.firstIndex(of: "=") else { throw fail("expected key = value, [section], > command or < answer") }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            func answerLines() throws -> [Piece] {
                try value.split(separator: "|").map { .line(String(decoding: try unescape($0.trimmingCharacters(in: .whitespaces), fail), as: UTF8.self)) }
            }
            switch key {
            case "model": transcript.model = value
            case "sim":
                let words = value.split(separator: " ").map(String.init)
                guard let first = words.first, let state = TranscriptSIMState(rawValue: first) else { throw fail("sim = ready|pin|puk [pin N] [puk N]") }
                transcript.sim = state
                var index = 1
                while index + 1 < words.count {
                    guard let number = Int(words[index + 1]), (0...10).contains(number) else { throw fail("bad attempts \(words[index + 1])") }
                    switch words[index] {
                    case "pin": transcript.pinAttempts = number
                    case "puk": transcript.pukAttempts = number
                    default: throw fail("sim: unknown counter \(words[index])")
                    }
                    index += 2
                }
            case "pin_code": transcript.pinCode = value
            case "echo":
                guard value == "on" || value == "off" else { throw fail("echo = on|off") }
                transcript.echo = value == "on"
            case "expect_profile": transcript.expectProfile = value
            case "expect_profile_ready": transcript.expectProfileReady = value
            case "expect_choice":
                guard ["model", "vendor", "ati", "generic", "requested"].contains(value) else { throw fail("expect_choice = model|vendor|ati|generic") }
                transcript.expectChoice = value
            case "expect_counters":
                guard value == "yes" || value == "no" else { throw fail("expect_counters = yes|no") }
                transcript.expectCounters = value == "yes"
            case "pin_accepted": transcript.pinAccepted = try answerLines()
            case "pin_rejected": transcript.pinRejected = try answerLines()
            case "pin_when_ready": transcript.pinWhenReady = try answerLines()
            default: throw fail("unknown key \(key)")
            }
        }
        finish()
        return transcript
    }

    /// `\r`, `\n`, `\\` and `\xHH` escapes (for raw bytes, glued lines and Latin-1 text).
    static func unescape(_ text: String, _ fail: (String) -> ParseError) throws -> [UInt8] {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == 0x5C else { bytes.append(byte); continue }
            switch iterator.next() {
            case 0x72: bytes.append(0x0D)
            case 0x6E: bytes.append(0x0A)
            case 0x5C: bytes.append(0x5C)
            case 0x78:
                guard let high = iterator.next(), let low = iterator.next(),
                      let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) else { throw fail("bad \\x escape") }
                bytes.append(value)
            default: throw fail("unknown escape in \(text)")
            }
        }
        return bytes
    }
}

public struct TranscriptReplayConfig: Sendable {
    /// Overrides the transcript's declared PIN attempts (the last-attempt case sets 1).
    public var pinAttempts: Int?
    public var pukAttempts: Int?
    public var sim: TranscriptSIMState?
    /// The first this many `AT+CPIN?` reads and PIN entries answer `+CME ERROR: 14` (SIM busy).
    public var busyReads = 0
    /// PINs sent with this many attempts left or fewer are counted as unsafe.
    public var floor = 1
    public init() {}
}

public struct TranscriptReplayStats: Sendable {
    public var commands = 0
    /// Commands the transcript does not know (answered ERROR), in order.
    public var unknownCommands: [String] = []
    public var pinCommands = 0
    public var pinSentAtOrBelowFloor = 0
    public var wrongPins = 0
    public var pukLocks = 0
}

/// Serves a transcript on a pty until stopped.
public final class TranscriptModem: @unchecked Sendable {
    public let transcript: ModemTranscript
    public let config: TranscriptReplayConfig
    private let terminal: PseudoTerminal
    public var path: String { terminal.path }
    private let loop = SimulatorLoop(TranscriptReplayStats())
    // Touched only by the replay thread.
    private var echo: Bool
    private var sim: TranscriptSIMState
    private var pinLeft: Int
    private var pukLeft: Int
    private var busyLeft: Int
    private var turns: [String: Int] = [:]
    private var input: [UInt8] = []

    public init(transcript: ModemTranscript, config: TranscriptReplayConfig = TranscriptReplayConfig()) throws {
        self.transcript = transcript
        self.config = config
        terminal = try PseudoTerminal()
        echo = transcript.echo
        sim = config.sim ?? transcript.sim
        pinLeft = config.pinAttempts ?? transcript.pinAttempts
        pukLeft = config.pukAttempts ?? transcript.pukAttempts
        if sim == .puk { pinLeft = 0 }
        busyLeft = config.busyReads
    }

    public var stats: TranscriptReplayStats { loop.stats }

    private func count(_ update: (inout TranscriptReplayStats) -> Void) { loop.count(update) }

    private var isStopped: Bool { loop.isStopped }

    /// Runs on a background thread until `stop()`.
    public func start() { loop.start { [self] in run() } }

    /// Stops the loop and waits for it (at most 5 s).
    public func stop() { loop.stop() }

    public func run() {
        var buffer = [UInt8](repeating: 0, count: 512)
        while !isStopped {
            var fds = [pollfd(fd: terminal.master, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 1, 50) > 0, fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let count = read(terminal.master, &buffer, buffer.count)
            guard count > 0 else { continue }
            for byte in buffer[0..<count] { receive(byte) }
        }
    }

    private func receive(_ byte: UInt8) {
        if echo { send([byte]) }
        switch byte {
        case 0x0D:
            let line = String(decoding: input, as: UTF8.self).trimmingCharacters(in: .whitespaces)
            input.removeAll(keepingCapacity: true)
            if !line.isEmpty { command(line) }
        case 0x0A: break
        default: if input.count < 1_024 { input.append(byte) }
        }
    }

    private var section: ModemTranscript.Section { sim == .ready ? .ready : .locked }

    private func command(_ line: String) {
        let upper = line.uppercased()
        guard upper.hasPrefix("AT") else { return }
        count { $0.commands += 1 }
        if upper.hasPrefix("AT+CPIN=") { return enterPIN(String(line.dropFirst(8))) }
        if upper == "AT+CPIN?" && busyLeft > 0 {
            busyLeft -= 1
            return answer([.line("+CME ERROR: 14")])
        }
        guard let pieces = lookup(upper) else {
            count { $0.unknownCommands.append(upper) }
            return answer([.line("ERROR")])
        }
        answer(pieces)
        // ATE0 / ATE1 that the modem accepted switch its echo (the answer already went out in the old mode).
        if (upper == "ATE0" || upper == "ATE1"), pieces.last == .line("OK") { echo = upper == "ATE1" }
    }

    private func lookup(_ upper: String) -> [ModemTranscript.Piece]? {
        for where_ in [section, .any] {
            if let list = transcript.answers[where_]?[upper], !list.isEmpty {
                let key = where_.rawValue + " " + upper
                let turn = turns[key, default: 0]
                turns[key] = turn + 1
                return list[min(turn, list.count - 1)]
            }
        }
        return transcript.fallback[section] ?? transcript.fallback[.any]
    }

    private func enterPIN(_ argument: String) {
        if busyLeft > 0 {
            busyLeft -= 1
            return answer([.line("+CME ERROR: 14")])
        }
        let code = argument.split(separator: ",").first.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\" ")) } ?? ""
        switch sim {
        case .ready: answer(transcript.pinWhenReady)
        case .puk: answer([.line("+CME ERROR: 16")])
        case .pin:
            count {
                $0.pinCommands += 1
                if self.pinLeft <= self.config.floor { $0.pinSentAtOrBelowFloor += 1 }
            }
            if code == transcript.pinCode {
                sim = .ready
                pinLeft = config.pinAttempts ?? transcript.pinAttempts
                answer(transcript.pinAccepted)
            } else {
                pinLeft -= 1
                count { $0.wrongPins += 1 }
                if pinLeft <= 0 {
                    sim = .puk
                    count { $0.pukLocks += 1 }
                }
                answer(transcript.pinRejected)
            }
        }
    }

    private func answer(_ pieces: [ModemTranscript.Piece]) {
        var bytes: [UInt8] = []
        for piece in pieces {
            switch piece {
            case .line(let text): bytes += Array(("\r\n" + fill(text) + "\r\n").utf8)
            case .raw(let raw): bytes += raw
            }
        }
        send(bytes)
    }

    /// `{cpin}`, `{pin}`, `{puk}`, `{pinhex}`: the SIM state and counters as they are now.
    private func fill(_ text: String) -> String {
        guard text.contains("{") else { return text }
        let code = sim == .ready ? "READY" : sim == .pin ? "SIM PIN" : "SIM PUK"
        return text.replacingOccurrences(of: "{cpin}", with: code)
            .replacingOccurrences(of: "{pin}", with: String(pinLeft))
            .replacingOccurrences(of: "{puk}", with: String(pukLeft))
            .replacingOccurrences(of: "{pinhex}", with: String(pinLeft, radix: 16, uppercase: true))
    }

    private func send(_ bytes: [UInt8]) {
        var offset = 0
        let deadline = Date().addingTimeInterval(2)
        while offset < bytes.count && Date() < deadline {
            let written = bytes[offset...].withUnsafeBytes { write(terminal.master, $0.baseAddress, $0.count) }
            if written > 0 { offset += written } else { usleep(1_000) }
        }
    }
}

/// A pty pair: the master for the simulator, the slave's path for the agent. The simulator keeps
/// a handle on the slave in raw mode, so the line discipline neither echoes nor translates before
/// the agent opens it, and the master does not read EIO between agents.
public final class PseudoTerminal: @unchecked Sendable {
    public let master: Int32
    public let path: String
    private let slaveKeep: Int32

    public init() throws {
        let fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SimulatorError("cannot open /dev/ptmx: \(String(cString: strerror(errno)))") }
        // unlockpt() and ptsname() are TIOCSPTLCK and TIOCGPTN on Linux (not exported to Swift).
        var unlock: Int32 = 0
        var number: UInt32 = 0
        guard ioctl(fd, UInt(0x4004_5431), &unlock) == 0, ioctl(fd, UInt(0x8004_5430), &number) == 0 else {
            close(fd)
            throw SimulatorError("cannot unlock the pty: \(String(cString: strerror(errno)))")
        }
        let path = "/dev/pts/\(number)"
        let slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else { close(fd); throw SimulatorError("cannot open \(path): \(String(cString: strerror(errno)))") }
        var settings = termios()
        tcgetattr(slave, &settings)
        cfmakeraw(&settings)
        tcsetattr(slave, TCSANOW, &settings)
        master = fd
        slaveKeep = slave
        self.path = path
    }

    deinit {
        close(master)
        close(slaveKeep)
    }
}

/// The simulators' background loop: a thread running `body` until `stop()`, and statistics
/// that the loop updates and other threads read, behind one lock.
final class SimulatorLoop<Stats: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var current: Stats
    private let finished = DispatchSemaphore(value: 0)
    private var running = false

    init(_ stats: Stats) { current = stats }

    var stats: Stats {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    func count(_ update: (inout Stats) -> Void) {
        lock.lock()
        update(&current)
        lock.unlock()
    }

    var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    /// Runs `body` on its own thread; `body` returns when it sees `isStopped`.
    func start(_ body: @escaping @Sendable () -> Void) {
        running = true
        let thread = Thread { [self] in
            body()
            finished.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Stops the loop and waits for it (at most 5 s).
    func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
        if running { _ = finished.wait(timeout: .now() + 5) }
        running = false
    }
}
