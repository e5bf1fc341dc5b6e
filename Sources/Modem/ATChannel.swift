public import Transport

/// What ends a command besides a final result code.
public enum Expectation: Sendable, Equatable {
    /// A final result code (`OK`, `ERROR`, `+CME ERROR`, ...).
    case final
    /// A dotted IPv4 line counts as success (SIMCom `AT+CIFSR` answers with nothing else).
    case ipAddress
    /// `OK` is intermediate; wait on for `CONNECT` (or a failure).
    case connect
}

public struct ATResponse: Equatable, Sendable {
    public var lines: [String]
    public var final: FinalResult
    public init(lines: [String], final: FinalResult) { self.lines = lines; self.final = final }
    public var isOK: Bool { final == .ok }
}

/// The last lines sent and received, PINs/PUKs/passwords already redacted. Bounded.
public struct Transcript: Sendable {
    public let capacity: Int
    public private(set) var lines: [String] = []
    public private(set) var dropped = 0

    public init(capacity: Int = 256) { self.capacity = max(1, capacity) }

    mutating func add(_ line: String) {
        if lines.count >= capacity {
            lines.removeFirst(lines.count - capacity + 1)
            dropped += 1
        }
        lines.append(line)
    }
}

/// The AT command channel on a byte stream: one command in flight with its own deadline,
/// unsolicited codes routed to subscribers even mid-response, echo and noise tolerated,
/// bounded buffers throughout.
public final class ATChannel {
    public let port: any ByteStream
    /// Vendor URC prefixes beyond the standard ones (from the modem profile).
    public var extraURCPrefixes: [String] = []
    /// Vendor final result codes that end an answer as a failure (Huawei's `COMMAND NOT SUPPORT`),
    /// from the hardware directory's profiles: an unsupported command is an answer, not a timeout.
    public var vendorFinals: [String] = []
    /// Prefixes of lines that end their command's answer when no final result follows (old
    /// Wavecom firmware sends `+CPIN: READY` without `OK`; ofono's wavecom plugin does the same).
    public var terminators: [String] = []
    /// How long to wait for a final result after a terminator line before taking the line as the end.
    public var terminatorGrace = 0.2
    public private(set) var transcript: Transcript
    /// Called for each redacted transcript line as it happens (e.g. to write a log file).
    public var transcriptSink: ((String) -> Void)?
    /// Lines that were neither the answer to anything nor unsolicited (late answers, junk).
    public private(set) var strayLines = 0
    /// Unsolicited codes seen, newest last (bounded).
    public private(set) var recentURCs: [String] = []
    public private(set) var inDataMode = false
    /// Set after a command timed out: the next command first re-syncs.
    public var needsResync = false
    public private(set) var commandsSent = 0

    private var splitter: LineSplitter
    private var pending: [UInt8] = []
    private var pendingIndex = 0
    private var subscribers: [(String) -> Void] = []
    private var busy = false
    static let maxResponseLines = 64
    static let readChunk = 512

    public init(port: any ByteStream, maxLineBytes: Int = 512, transcriptCapacity: Int = 256) {
        self.port = port
        splitter = LineSplitter(maxLineBytes: maxLineBytes)
        transcript = Transcript(capacity: transcriptCapacity)
    }

    public var overlongLines: Int { splitter.overlongLines }
    public var noiseBytes: Int { splitter.noiseBytes }

    /// Adds a subscriber for unsolicited result codes (the whole line).
    public func subscribe(_ handler: @escaping (String) -> Void) { subscribers.append(handler) }

    func log(_ direction: String, _ line: String) {
        let clean = direction + Redaction.redact(line)
        transcript.add(clean)
        transcriptSink?(clean)
    }

    /// Sends one command and waits for its final result, at most `timeout` seconds.
    /// Never retries: a caller decides whether a command is safe to repeat.
    public func send(_ command: String, timeout: Double, expect: Expectation = .final) throws(ModemError) -> ATResponse {
        let redacted = Redaction.redact(command)
        guard !inDataMode else { throw ModemError.sessionFailed(step: redacted, result: nil) }
        guard !busy else { throw ModemError.system("\(redacted) sent while another command is in flight", errno: 16) }
        busy = true
        defer { busy = false }
        if needsResync {
            needsResync = false
            guard syncUnlocked(attempts: 3, timeout: min(timeout, 1)) else {
                needsResync = true
                throw ModemError.noAnswer(command: "AT (re-sync before \(redacted))")
            }
        }
        try drain(until: .now)
        log("> ", command)
        do {
            try port.write(Array((command + "\r").utf8), deadline: .after(seconds: timeout))
        } catch {
            needsResync = true
            if case .timedOut = error { throw ModemError.noAnswer(command: redacted) }
            throw ModemError.system("writing \(redacted)", errno: 5)
        }
        commandsSent += 1
        return try collect(command: command, redacted: redacted, deadline: .after(seconds: timeout), expect: expect)
    }

    private func collect(command: String, redacted: String, deadline: Deadline, expect: Expectation) throws(ModemError) -> ATResponse {
        let owner = Self.ownerPrefix(command)
        let registrationOwner = owner == "+CREG:" || owner == "+CGREG:" || owner == "+CEREG:"
        var lines: [String] = []
        var ownedSeen = false
        var graceDeadline: Deadline?
        while true {
            guard let line = try nextLine(deadline: graceDeadline ?? deadline) else {
                // The terminator line was the end: this modem sends no final after it.
                if graceDeadline != nil { return ATResponse(lines: lines, final: .ok) }
                needsResync = true
                throw ModemError.noAnswer(command: redacted)
            }
            log("< ", line)
            if Self.isEcho(line, of: command) { continue }
            if let final = FinalResult.parse(line) {
                if expect == .connect && final == .ok { continue }
                if case .connect = final { enterDataMode() }
                return ATResponse(lines: lines, final: final)
            }
            if vendorFinals.contains(line) { return ATResponse(lines: lines, final: .failed(line)) }
            if graceDeadline == nil, let owner, line.hasPrefix(owner), terminators.contains(owner) {
                graceDeadline = min(deadline, Deadline.after(seconds: terminatorGrace))
            }
            if let prefix = UnsolicitedCodes.matches(line, extra: extraURCPrefixes) {
                var owned = owner == prefix
                if owned && registrationOwner {
                    owned = !ownedSeen && ATParse.looksLikeRegistrationResponse(line, prefix: prefix)
                }
                if !owned {
                    dispatch(line)
                    continue
                }
                ownedSeen = true
            }
            if expect == .ipAddress && ATParse.isIPv4(line) { return ATResponse(lines: [line], final: .ok) }
            if lines.count < Self.maxResponseLines { lines.append(line) } else { strayLines += 1 }
        }
    }

    /// `AT+CREG?` -> `+CREG:`, `AT^CPIN?` -> `^CPIN:`, `AT#PCT` -> `#PCT:`; nil for basic commands.
    static func ownerPrefix(_ command: String) -> String? {
        let upper = command.uppercased()
        guard upper.hasPrefix("AT"), let first = upper.dropFirst(2).first, "+^#$%*".contains(first) else { return nil }
        var name = ""
        for character in upper.dropFirst(2) {
            if character == "=" || character == "?" || character == ";" { break }
            name.append(character)
        }
        return name + ":"
    }

    /// `+CME ERROR` 10...18: the SIM (absent, PIN, PUK, busy...) is why the command was refused.
    public static func isSIMRefusal(_ final: FinalResult) -> Bool {
        if case .cmeError(let code) = final { return (10...18).contains(code) }
        return false
    }

    static func isEcho(_ line: String, of command: String) -> Bool {
        line.utf8.count == command.utf8.count && line.uppercased() == command.uppercased()
    }

    private func dispatch(_ line: String) {
        if recentURCs.count >= 32 { recentURCs.removeFirst() }
        recentURCs.append(line)
        for subscriber in subscribers { subscriber(line) }
    }

    /// The next complete line, or nil when the deadline passes first.
    private func nextLine(deadline: Deadline) throws(ModemError) -> String? {
        while true {
            while pendingIndex < pending.count {
                let byte = pending[pendingIndex]
                pendingIndex += 1
                if let line = splitter.push(byte) { return line }
            }
            pending.removeAll(keepingCapacity: true)
            pendingIndex = 0
            let chunk: [UInt8]
            do {
                chunk = try port.read(maxCount: Self.readChunk, deadline: deadline)
            } catch {
                if case .timedOut = error { return nil }
                throw ModemError.system(error.description, errno: 5)
            }
            if chunk.isEmpty { throw ModemError.system("the modem's port closed", errno: 5) }
            pending = chunk
        }
    }

    /// Reads and routes whatever arrives until `deadline` (URCs to subscribers, anything else
    /// counted as stray). With `.now`, only what is already waiting.
    public func drain(until deadline: Deadline) throws(ModemError) {
        while let line = try nextLine(deadline: deadline) {
            log("< ", line)
            if UnsolicitedCodes.matches(line, extra: extraURCPrefixes) != nil { dispatch(line) } else { strayLines += 1 }
        }
    }

    /// Waits while idle for an unsolicited code accepted by `match`; nil at the deadline.
    public func waitForURC(until deadline: Deadline, _ match: (String) -> Bool) throws(ModemError) -> String? {
        guard !inDataMode, !busy else { return nil }
        while let line = try nextLine(deadline: deadline) {
            log("< ", line)
            guard UnsolicitedCodes.matches(line, extra: extraURCPrefixes) != nil else { strayLines += 1; continue }
            dispatch(line)
            if match(line) { return line }
        }
        return nil
    }

    /// `AT` until `OK`, up to `attempts` times; then a short quiet drain so a late second
    /// `OK` cannot be mistaken for the next command's answer.
    public func sync(attempts: Int, timeout: Double) -> Bool {
        guard !busy, !inDataMode else { return false }
        busy = true
        defer { busy = false }
        return syncUnlocked(attempts: attempts, timeout: timeout)
    }

    private func syncUnlocked(attempts: Int, timeout: Double) -> Bool {
        for _ in 0..<max(1, attempts) {
            do {
                try drain(until: .now)
                log("> ", "AT")
                try port.write(Array("AT\r".utf8), deadline: .after(seconds: timeout))
                commandsSent += 1
                let response = try collect(command: "AT", redacted: "AT", deadline: .after(seconds: timeout), expect: .final)
                // A modem that refuses everything until the PIN (`+CME ERROR: 11` even to `AT`, as
                // python-gsmmodem's ZTE K3565-Z does) is answering: it is in sync.
                if response.final == .ok || Self.isSIMRefusal(response.final) {
                    needsResync = false
                    try drain(until: .after(milliseconds: 20))
                    return true
                }
            } catch {
                continue
            }
        }
        return false
    }

    // MARK: data mode

    /// After `CONNECT`: bytes already read behind it belong to the data stream.
    private func enterDataMode() {
        inDataMode = true
        var start = pendingIndex
        // `CONNECT\r\n`: the `\n` after the `\r` that ended the line is not data.
        if splitter.lastEndedWithCR, start < pending.count, pending[start] == 0x0A { start += 1 }
        pending = start < pending.count ? Array(pending[start...]) : []
        pendingIndex = 0
        splitter.reset()
    }

    /// Bytes received in data mode (leftovers first).
    func dataRead(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        if pendingIndex < pending.count {
            let end = min(pending.count, pendingIndex + maxCount)
            let bytes = Array(pending[pendingIndex..<end])
            pendingIndex = end
            if pendingIndex == pending.count { pending.removeAll(keepingCapacity: true); pendingIndex = 0 }
            return bytes
        }
        return try port.read(maxCount: maxCount, deadline: deadline)
    }

    /// Back in command mode (after `+++`/`OK`, DTR drop, or `NO CARRIER`).
    func leaveDataMode(leftover: [UInt8] = []) {
        inDataMode = false
        splitter.reset()
        pending = leftover
        pendingIndex = 0
    }
}
