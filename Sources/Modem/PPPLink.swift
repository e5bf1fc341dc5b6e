#if canImport(Glibc)
public import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemCalls
public import Transport

/// The PPP half of a data session on modems whose profile says `session = ppp`: after `CONNECT`
/// the serial line carries PPP, and pppd (Debian's `ppp` package) turns it into a network
/// interface with a default route. `start` writes the options, runs pppd in the foreground
/// (`nodetach`), and waits, within a deadline, for pppd to report the link's IP address; sync
/// then reaches the hub over ordinary TCP. `stop` ends pppd (SIGTERM, then SIGKILL) within its
/// own deadline, and never waits for it without one (a pppd stuck in the kernel on a dead USB
/// modem is left to init rather than hanging the agent). The options file is made in a private
/// 0700 directory of its own (mkdtemp) with O_EXCL|O_NOFOLLOW, so no other user can read it,
/// plant a symlink for it or swap it before pppd reads it; both go when the link stops. The APN password is never on pppd's command line or in the options file: it
/// belongs in /etc/ppp/pap-secrets and chap-secrets, which the technician's image provides.
public final class PPPLink {
    public let pid: pid_t
    /// The options file, in its own private directory.
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

    /// Writes `options` into a new private directory under `parentDirectory` (0700, the file
    /// 0600), starts pppd on them and waits until the link has an IP address. On any failure pppd
    /// is stopped and the options removed before this throws.
    public static func start(options: String, parentDirectory: String, pppd: String = defaultPPPD, timeout: Double) throws(ModemError) -> PPPLink {
        guard (try? SystemCalls.access(pppd, X_OK)) == true else { throw ModemError.pppdMissing(path: pppd) }
        let optionsPath = try writeOptions(options, parentDirectory: parentDirectory)
        let pipeEnds: (read: Int32, write: Int32)
        do { pipeEnds = try SystemCalls.pipe() } catch {
            removeOptions(optionsPath)
            throw ModemError.system("pipe for pppd", errno: error.rawValue)
        }
        // pppd's output comes back through the pipe; SIGTERM and the rest are pppd's own again.
        let spawned = Result { () throws(Errno) in
            try SystemCalls.spawn(pppd, arguments: [pppd, "file", optionsPath], output: pipeEnds.write, closing: [pipeEnds.read, pipeEnds.write],
                                  defaultSignals: [SIGTERM, SIGINT, SIGPIPE, SIGHUP])
        }
        try? SystemCalls.close(pipeEnds.write)  // the parent never writes: nothing to lose
        let pid: pid_t
        switch spawned {
        case .success(let child): pid = child
        case .failure(let error):
            try? SystemCalls.close(pipeEnds.read)
            removeOptions(optionsPath)
            throw ModemError.system("starting \(pppd)", errno: error.rawValue)
        }
        let link = PPPLink(pid: pid, output: pipeEnds.read, optionsPath: optionsPath)
        do {
            try link.waitUntilUp(deadline: .after(seconds: timeout))
        } catch {
            link.stop()
            throw error
        }
        return link
    }

    /// The options file, written whole into a private directory made for it: mkdtemp makes the
    /// directory 0700 with a name no one can guess ahead, and the file is created there with
    /// O_EXCL|O_NOFOLLOW, so it is ours and not a link planted to make us write elsewhere.
    static func writeOptions(_ options: String, parentDirectory: String) throws(ModemError) -> String {
        let directory: String
        do { directory = try SystemCalls.makePrivateDirectory((parentDirectory.hasSuffix("/") ? parentDirectory : parentDirectory + "/") + "satchel-pppd-XXXXXX") } catch {
            throw ModemError.system("making a private directory for the pppd options in \(parentDirectory)", errno: error.rawValue)
        }
        let path = directory + "/" + optionsName
        do throws(Errno) {
            let file = try SystemCalls.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
            var failure: Errno?
            let bytes = Array(options.utf8)
            var done = 0
            while done < bytes.count && failure == nil {
                do {
                    let put = try bytes.withUnsafeBytes { buffer in
                        Result { () throws(Errno) in try SystemCalls.write(file, UnsafeRawBufferPointer(rebasing: buffer[done...])) }
                    }.get()
                    if put == 0 { failure = .noSpace } else { done += put }
                } catch {
                    failure = error
                }
            }
            do { try SystemCalls.close(file) } catch { failure = failure ?? error }
            if let failure { throw failure }
        } catch {
            removeOptions(path)
            throw ModemError.system("writing pppd options \(path)", errno: error.rawValue)
        }
        return path
    }

    /// Removes the options file and its private directory.
    static let optionsName = "options"

    static func removeOptions(_ path: String) {
        try? SystemCalls.unlink(path)
        if path.hasSuffix("/" + optionsName) { try? SystemCalls.rmdir(String(path.dropLast(optionsName.count + 1))) }
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
            let ready: Int16
            do {
                ready = try SystemCalls.poll(output, events: Int16(POLLIN), milliseconds: min(deadline.remainingMilliseconds, 200))
            } catch where error == .interrupted {
                continue
            } catch {
                throw ModemError.system("waiting for pppd", errno: error.rawValue)
            }
            guard ready != 0 else { continue }
            let count: Int
            do {
                count = try buffer.withUnsafeMutableBytes { raw in Result { () throws(Errno) in try SystemCalls.read(output, into: raw) } }.get()
            } catch {
                throw ModemError.system("reading pppd's output", errno: error.rawValue)
            }
            if count > 0 {
                transcript.append(contentsOf: buffer[0..<count])
                if transcript.count > 64 * 1024 { transcript.removeFirst(transcript.count - 64 * 1024) }
            } else {
                // pppd closed its output: it is exiting. Its status, within a deadline.
                let status = reap(within: 2).map { "status \($0)" } ?? "its output closed, still running after 2 s"
                throw ModemError.pppFailed(reason: "pppd exited with \(status)", pppdSaid: lastWords())
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

    /// pppd's exit status (128 + the signal when a signal ended it) once it has exited, waiting
    /// at most `seconds`; nil when it still runs then.
    @discardableResult
    func reap(within seconds: Double) -> Int32? {
        guard !exited else { return 0 }
        let raw: Int32?
        do {
            raw = try SystemCalls.reap(pid, deadlineNanoseconds: Deadline.after(seconds: seconds).nanoseconds)
        } catch {
            // ECHILD: someone else reaped it (or it was never ours): it is gone either way.
            exited = true
            return -1
        }
        guard let status = raw else { return nil }
        exited = true
        return (status & 0x7f) != 0 ? 128 + (status & 0x7f) : (status >> 8) & 0xff
    }

    /// Whether pppd has been reaped (false only when it outlived SIGKILL's deadline too).
    public var hasExited: Bool { exited }

    /// Ends pppd: SIGTERM, up to `grace` seconds for it to take the link down, then SIGKILL and
    /// up to `killGrace` seconds more. A pppd still there after that (stuck in the kernel) is not
    /// waited for. The options and their directory are removed either way.
    public func stop(grace: Double = 3, killGrace: Double = 2) {
        defer {
            if output >= 0 { try? SystemCalls.close(output); output = -1 }
            Self.removeOptions(optionsPath)
        }
        guard !exited else { return }
        try? SystemCalls.signal(pid, SIGTERM)  // ESRCH: it ended already, and reap says so
        if reap(within: grace) != nil { return }
        try? SystemCalls.signal(pid, SIGKILL)
        reap(within: killGrace)
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
    /// the request's host and port through the new link. The pppd options go into a private
    /// directory made under `optionsParent` (the caller's data directory, or /tmp). Every step has its deadline; on failure the modem is
    /// hung up before this throws. `reached` hears `.contextUp` (transparent: every open step
    /// before the connect answered; PPP: pppd's link up) and `.tcpConnected` (the hub's TCP open).
    public func openStream(_ request: SessionRequest, pppd: String = PPPLink.defaultPPPD, optionsParent: String,
                           pppTimeout: Double = 45, reached: (SyncPhase) -> Void = { _ in }) throws(ModemError) -> ModemStream {
        let session = try openSession(request, reached: reached)
        guard profile.session == "ppp" else {
            reached(.tcpConnected)
            return ModemStream(session: session, ppp: nil, stream: session)
        }
        let link: PPPLink
        do {
            link = try PPPLink.start(options: pppOptions(user: request.user), parentDirectory: optionsParent, pppd: pppd, timeout: pppTimeout)
        } catch {
            session.hangUp()
            throw error
        }
        reached(.contextUp)
        do {
            let tcp = try TCP.connect("\(request.host):\(request.port)", deadline: .after(seconds: 60))
            reached(.tcpConnected)
            return ModemStream(session: session, ppp: link, stream: tcp)
        } catch {
            link.stop()
            session.hangUp()
            throw ModemError.sessionFailed(step: "TCP to \(request.host):\(request.port) over PPP (\(error))", result: nil)
        }
    }
}
