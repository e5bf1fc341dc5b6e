#if canImport(Glibc)
public import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import Transport

/// The PPP half of a data session on modems whose profile says `session = ppp`: after `CONNECT`
/// the serial line carries PPP, and pppd (Debian's `ppp` package) turns it into a network
/// interface with a default route. `start` writes the options, runs pppd in the foreground
/// (`nodetach`), and waits, within a deadline, for pppd to report the link's IP address; sync
/// then reaches the hub over ordinary TCP. `stop` ends pppd (SIGTERM, then SIGKILL) within its
/// own deadline. The APN password is never on pppd's command line or in the options file: it
/// belongs in /etc/ppp/pap-secrets and chap-secrets, which the technician's image provides.
public final class PPPLink {
    public let pid: pid_t
    public let optionsPath: String
    /// The address pppd reported for this end of the link ("local  IP address 10.64.3.7").
    public private(set) var localAddress: String?
    private var output: Int32
    private var transcript: [UInt8] = []
    private var exited = false

    public static let defaultPPPD = "/usr/sbin/pppd"

    init(pid: pid_t, output: Int32, optionsPath: String) {
        self.pid = pid
        self.output = output
        self.optionsPath = optionsPath
    }

    /// Writes `options` to `optionsPath` (0600), starts pppd on them and waits until the link has
    /// an IP address. On any failure pppd is stopped before this throws.
    public static func start(options: String, optionsPath: String, pppd: String = defaultPPPD, timeout: Double) throws(ModemError) -> PPPLink {
        guard access(pppd, X_OK) == 0 else { throw ModemError.pppdMissing(path: pppd) }
        let file = open(optionsPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw ModemError.system("writing pppd options \(optionsPath)", errno: errno) }
        var bytes = Array(options.utf8)
        let written = bytes.withUnsafeMutableBytes { write(file, $0.baseAddress, $0.count) }
        let writeError = errno
        close(file)
        guard written == bytes.count else { throw ModemError.system("writing pppd options \(optionsPath)", errno: writeError) }

        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw ModemError.system("pipe for pppd", errno: errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(pppd), strdup("file"), strdup(optionsPath), nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, pppd, &actions, &attributes, argv, environ)
        close(pipeEnds[1])
        guard spawned == 0 else {
            close(pipeEnds[0])
            throw ModemError.system("starting \(pppd)", errno: spawned)
        }
        let link = PPPLink(pid: pid, output: pipeEnds[0], optionsPath: optionsPath)
        do {
            try link.waitUntilUp(deadline: .after(seconds: timeout))
        } catch {
            link.stop()
            throw error
        }
        return link
    }

    /// Reads pppd's output until it reports the local IP address, exits, or the deadline passes.
    func waitUntilUp(deadline: Deadline) throws(ModemError) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let address = Self.localAddress(in: transcript) {
                localAddress = address
                return
            }
            if deadline.hasPassed {
                throw ModemError.pppFailed(reason: "no IP address before the deadline", pppdSaid: lastWords())
            }
            var entry = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, min(deadline.remainingMilliseconds, 200))
            if ready < 0 && errno != EINTR { throw ModemError.system("waiting for pppd", errno: errno) }
            guard ready > 0 else { continue }
            let count = read(output, &buffer, buffer.count)
            if count > 0 {
                transcript.append(contentsOf: buffer[0..<count])
                if transcript.count > 64 * 1024 { transcript.removeFirst(transcript.count - 64 * 1024) }
            } else if count == 0 {
                let status = reap(blocking: true)
                throw ModemError.pppFailed(reason: "pppd exited with status \(status)", pppdSaid: lastWords())
            }
        }
    }

    /// pppd prints `local  IP address 10.64.3.7` once IPCP is up.
    static func localAddress(in transcript: [UInt8]) -> String? {
        let text = String(decoding: transcript, as: UTF8.self)
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) where line.hasPrefix("local") && line.contains("IP address") {
            if let address = line.split(separator: " ").last { return String(address) }
        }
        return nil
    }

    /// The last lines pppd printed, for the error a technician reads.
    func lastWords() -> String {
        let lines = String(decoding: transcript, as: UTF8.self).split(whereSeparator: { $0 == "\n" }).map { $0.trimmingCharacters() }
        return lines.filter { !$0.isEmpty }.suffix(3).joined(separator: " / ")
    }

    /// Exit status once pppd is gone (-1 while it runs and `blocking` is false).
    @discardableResult
    private func reap(blocking: Bool) -> Int32 {
        guard !exited else { return 0 }
        var status: Int32 = 0
        var result: pid_t
        repeat { result = waitpid(pid, &status, blocking ? 0 : WNOHANG) } while result < 0 && errno == EINTR
        guard result == pid else { return -1 }
        exited = true
        return (status & 0x7f) != 0 ? 128 + (status & 0x7f) : (status >> 8) & 0xff
    }

    /// Ends pppd: SIGTERM, up to `grace` seconds for it to take the link down, then SIGKILL.
    public func stop(grace: Double = 3) {
        defer {
            if output >= 0 { close(output); output = -1 }
        }
        guard !exited else { return }
        kill(pid, SIGTERM)
        let deadline = Deadline.after(seconds: grace)
        while !deadline.hasPassed {
            if reap(blocking: false) != -1 { return }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        reap(blocking: true)
    }

    deinit { stop(grace: 0.5) }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

/// A byte stream to the far end over the modem, whichever way the profile gets there: the
/// modem's own TCP stack (transparent session) or PPP plus a TCP connection through it.
public final class ModemStream {
    public let session: DataSession
    public let ppp: PPPLink?
    public let stream: any ByteStream

    init(session: DataSession, ppp: PPPLink?, stream: any ByteStream) {
        self.session = session; self.ppp = ppp; self.stream = stream
    }

    /// Closes the TCP connection (PPP), ends pppd, leaves data mode and hangs up. False when the
    /// modem did not confirm (the next command re-syncs it).
    @discardableResult
    public func close() -> Bool {
        if ppp != nil { stream.close() }
        ppp?.stop()
        return session.hangUp()
    }
}

extension Modem {
    /// Opens the data session and, on `session = ppp` profiles, runs pppd over it and connects to
    /// the request's host and port through the new link. `optionsPath` is where the pppd options
    /// go (the caller's data directory). Every step has its deadline; on failure the modem is
    /// hung up before this throws.
    public func openStream(_ request: SessionRequest, pppd: String = PPPLink.defaultPPPD, optionsPath: String,
                           pppTimeout: Double = 45) throws(ModemError) -> ModemStream {
        let session = try openSession(request)
        guard profile.session == "ppp" else { return ModemStream(session: session, ppp: nil, stream: session) }
        let link: PPPLink
        do {
            link = try PPPLink.start(options: pppOptions(user: request.user), optionsPath: optionsPath, pppd: pppd, timeout: pppTimeout)
        } catch {
            session.hangUp()
            throw error
        }
        do {
            let tcp = try TCP.connect("\(request.host):\(request.port)", deadline: .after(seconds: 60))
            return ModemStream(session: session, ppp: link, stream: tcp)
        } catch {
            link.stop()
            session.hangUp()
            throw ModemError.sessionFailed(step: "TCP to \(request.host):\(request.port) over PPP (\(error))", result: nil)
        }
    }
}
