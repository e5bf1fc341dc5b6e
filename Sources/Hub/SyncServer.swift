import Field
import Foundation
import Seal
import Sync
public import Transport

/// The hub's side of sync. Each connection is one session on its own thread, with its own
/// storage connection; the protocol code is the same `Sync` module the device runs.
public final class SyncServer: @unchecked Sendable {
    let makeStorage: @Sendable () throws -> any HubStorage
    let sessionTimeout: Double
    public static let maxFailedLogins = 5
    public static let lockMilliseconds: Int64 = 15 * 60 * 1000
    private let lock = NSLock()
    private var active = 0
    /// The sockets of admitted sessions still open, by session number: what the drain deadline
    /// cuts. A session leaves before its socket is closed (`SessionStream.close`), so a cut never
    /// reaches a descriptor number the system has given to someone else.
    private var open: [Int: FileDescriptorStream] = [:]
    /// Sockets of devices being told the hub is busy (`refuseBusy`), cut at the stop too.
    private var refusing: [Int: FileDescriptorStream] = [:]
    private var nextSession = 0
    private var cutSessions: Set<Int> = []
    private var hubKeyForRefusals: X25519.KeyPair?
    public let maxSessions: Int
    public let policy: ScopePolicy
    /// What a device refused at the session cap is told to wait before it tries again.
    public let retryAfterSeconds: Int
    /// Counters for the metrics endpoint (`HubMetrics.prometheusText`).
    public let metrics: HubMetrics
    /// How many sync-password verifications (Argon2id, 64 MiB each) run at once; the others wait.
    public let passwords: PasswordGate
    /// The sync passwords this process verified, so a rep's next session skips Argon2id (nil: every
    /// session verifies with Argon2id).
    public let verifiedPasswords: VerifiedPasswords?
    /// Refusing costs a handshake on a thread of its own: this many at most at once.
    public var refusalCap: Int { max(4, maxSessions / 4) }
    /// One line per session end and per refusal, for the technician (the serve command prints them).
    let log: @Sendable (String) -> Void
    /// Unix milliseconds. The simulator moves it to run weeks of days in minutes.
    let clock: @Sendable () -> Int64

    public init(maxSessions: Int = 64, sessionTimeout: Double = 120, policy: ScopePolicy = ScopePolicy(), retryAfterSeconds: Int = 30,
                passwords: PasswordGate = PasswordGate(memoryBudget: PasswordGate.defaultMemoryBudget),
                verifiedPasswords: VerifiedPasswords? = VerifiedPasswords(),
                clock: @escaping @Sendable () -> Int64 = SyncServer.systemNow,
                log: @escaping @Sendable (String) -> Void = { _ in },
                makeStorage: @escaping @Sendable () throws -> any HubStorage) {
        self.makeStorage = makeStorage
        self.sessionTimeout = sessionTimeout
        self.maxSessions = maxSessions
        self.policy = policy
        self.retryAfterSeconds = retryAfterSeconds
        self.passwords = passwords
        self.verifiedPasswords = verifiedPasswords
        self.metrics = HubMetrics(passwords: passwords, verifiedPasswords: verifiedPasswords)
        self.clock = clock
        self.log = log
    }

    /// Accepts connections until `shouldStop` says so (checked every second). Sessions under way
    /// go on after it returns; `run` drains them.
    public func serve(_ listener: TCPListener, shouldStop: @escaping @Sendable () -> Bool = { false }) {
        _ = acceptUntilStopped(listener, wake: nil) { shouldStop() ? "stop" : nil }
    }

    /// The serve command: accepts until `stop` names a reason (a signal, say; `wake`, when given,
    /// is a descriptor that becomes readable when it may, so the stop is seen at once), then stops
    /// accepting (the port refuses connections from then on), lets the open sessions finish
    /// within `drainSeconds`, cuts the rest, and says what happened. A cut session stores nothing
    /// it had not committed: each batch is one transaction, and a device that got no RECEIPT
    /// sends the same batch again, which the hub recognises.
    public func run(_ listener: TCPListener, drainSeconds: Double, wake: Int32? = nil, stop: @escaping () -> String?) -> DrainReport {
        let reason = acceptUntilStopped(listener, wake: wake, stop: stop)
        // Linux takes a listening socket out of LISTEN on shutdown: connections waiting in the
        // backlog are reset and new ones refused, while the descriptor stays ours until deinit.
        shutdown(listener.fd, Int32(SHUT_RDWR))
        lock.lock()
        let openAtStop = active
        for stream in refusing.values { shutdown(stream.fd, Int32(SHUT_RDWR)) }
        lock.unlock()
        log("satchel-hub: \(reason): no new sessions; \(openAtStop) open, waiting up to \(Self.seconds(drainSeconds)) s for them to finish")
        let started = Deadline.monotonicNanoseconds()
        let deadline = Deadline.after(seconds: drainSeconds)
        while activeSessions > 0 && !deadline.hasPassed { usleep(20_000) }
        lock.lock()
        for (number, stream) in open {
            cutSessions.insert(number)
            shutdown(stream.fd, Int32(SHUT_RDWR))
        }
        let cut = cutSessions.count
        lock.unlock()
        // A cut session sees its link end at once; one inside a commit finishes that transaction
        // first. Bounded, so a storage that hangs cannot keep the hub from stopping.
        let grace = Deadline.after(seconds: 10)
        while activeSessions > 0 && !grace.hasPassed { usleep(20_000) }
        let report = DrainReport(reason: reason, openAtStop: openAtStop, finished: openAtStop - cut, cut: cut, stillRunning: activeSessions,
                                 drainSeconds: drainSeconds, seconds: Double(Deadline.monotonicNanoseconds() - started) / 1e9)
        log(report.description)
        return report
    }

    /// Sessions admitted and not yet ended.
    public var activeSessions: Int {
        lock.lock()
        defer { lock.unlock() }
        return active
    }

    /// True when the next connection can be given a session or a hub-busy answer.
    private var canAnswer: Bool {
        lock.lock()
        defer { lock.unlock() }
        return active < maxSessions || refusing.count < refusalCap
    }

    private func acceptUntilStopped(_ listener: TCPListener, wake: Int32?, stop: () -> String?) -> String {
        var queueing = false
        while true {
            if let reason = stop() { return reason }
            // Full, and refusing as many as it can: new connections wait in the listen backlog
            // (the kernel's bounded queue, `serve --backlog`) until a session or a refusal ends,
            // then get one or the other. Never accepted and closed without a word: to a device
            // that looks like a dead hub.
            guard canAnswer else {
                if !queueing {
                    queueing = true
                    log("satchel-hub: full (\(activeSessions) sessions open, \(refusalCap) being told to retry): new connections wait in the listen backlog")
                }
                if let wake {
                    var watched = [pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
                    _ = poll(&watched, 1, 20)
                } else {
                    usleep(20_000)
                }
                continue
            }
            queueing = false
            var watched = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)]
            if let wake { watched.append(pollfd(fd: wake, events: Int16(POLLIN), revents: 0)) }
            guard poll(&watched, nfds_t(watched.count), 1000) > 0, watched[0].revents & Int16(POLLIN) != 0 else { continue }
            // A connection and the stop together: the stop wins, the connection is refused.
            if let reason = stop() { return reason }
            guard let connection = try? listener.accept(deadline: .after(seconds: 0)) else { continue }
            admit(connection)
        }
    }

    /// A session of its own thread, or, at the cap, a clear refusal with a time to come back.
    private func admit(_ connection: FileDescriptorStream) {
        let box = ConnectionBox(connection)
        lock.lock()
        let number = nextSession
        nextSession += 1
        let admitted = active < maxSessions
        let openNow = active
        if admitted {
            active += 1
            open[number] = connection
        }
        // Refusing costs a handshake: a thread each, a bounded number of them (the accept loop
        // takes no connection it could neither admit nor refuse).
        let refuses = !admitted && refusing.count < refusalCap
        if refuses { refusing[number] = connection }
        lock.unlock()
        metrics.accepted(admitted: admitted)
        if admitted {
            Thread.detachNewThread { [self] in
                handle(SessionStream(box.stream, number: number, server: self))
                lock.lock()
                active -= 1
                lock.unlock()
            }
        } else if refuses {
            Thread.detachNewThread { [self] in
                refuseBusy(box.stream, openSessions: openNow)
                lock.lock()
                refusing[number] = nil
                lock.unlock()
                box.stream.close()
            }
        } else {
            connection.close()
            // Only when the server is driven from outside `acceptUntilStopped` (the accept loop
            // checks `canAnswer` first).
            log("session refused: the hub is full (\(openNow) sessions open) and already refusing \(refusalCap) more; closed without a word")
        }
    }

    /// Leaves the open sessions (under the lock, before the socket closes).
    func forget(_ number: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        open[number] = nil
        return cutSessions.contains(number)
    }

    func wasCut(_ number: Int) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return cutSessions.contains(number)
    }

    /// At the cap: the handshake (so the device hears it over its authenticated channel, not as a
    /// dropped link), WELCOME ok, then ERROR 13 (hub busy) saying when to come back, before the
    /// device's AUTH is even read: nothing it sends is looked at or stored. Docs: protocol.md §9.
    func refuseBusy(_ connection: FileDescriptorStream, openSessions: Int) {
        let deadline = Deadline.after(seconds: min(sessionTimeout, 15))
        var device = "?", mode = "?"
        let startedAt = now()
        let message = HubBusy.message(open: openSessions, retryAfter: retryAfterSeconds)
        // In the audit like every refusal (docs/protocol.md §9), on a connection of its own.
        defer {
            let entry = AuditEntry(device: device == "?" ? nil : device, rep: nil, mode: mode == "?" ? nil : mode, startedAt: startedAt, endedAt: now(),
                                   bytesUp: 0, bytesDown: 0, recordsUp: 0, recordsDown: 0, result: "refused", error: message)
            do { try makeStorage().audit(entry) } catch {
                log("satchel-hub: the refusal of device \(TerminalText.safe(device)) is not in the audit log: \(TerminalText.safe("\(error)"))")
            }
        }
        do {
            let key = try refusalKey()
            let channel = try SyncChannel.accept(connection, hubKey: key, dictionary: SyncDictionary.v3, deadline: deadline) { [self] _, helloBytes in
                let hello = try Hello.decode(helloBytes)
                device = hello.device
                mode = hello.mode.name
                return Welcome(status: .ok, session: Random.bytes(16), hubTime: now()).encode()
            }
            try channel.send(.init(type: MessageType.error.rawValue, body: HubBusy.errorBody(open: openSessions, retryAfter: retryAfterSeconds)), deadline: deadline)
            shutdown(connection.fd, Int32(SHUT_WR))
            // What the device sent in its first flight (AUTH, its batches) is read and dropped until
            // it hangs up: closing over unread bytes would reset the link, and a reset can take the
            // ERROR with it before the device reads it.
            var drained = 0
            while drained < 16 << 20, let chunk = try? connection.read(maxCount: 65_536, deadline: deadline), !chunk.isEmpty { drained += chunk.count }
            log("session refused: device \(TerminalText.safe(device)), mode \(mode): the hub is full (\(openSessions) sessions open), told to retry after \(retryAfterSeconds) s")
        } catch {
            metrics.sessionFailed()
            log("session refused: device \(TerminalText.safe(device)), mode \(mode): the hub is full (\(openSessions) sessions open); the refusal did not reach it: \(TerminalText.safe("\(error)"))")
        }
    }

    private func refusalKey() throws -> X25519.KeyPair {
        lock.lock()
        let cached = hubKeyForRefusals
        lock.unlock()
        if let cached { return cached }
        let key = try makeStorage().hubKey()
        lock.lock()
        hubKeyForRefusals = key
        lock.unlock()
        return key
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }

    final class ConnectionBox: @unchecked Sendable {
        let stream: FileDescriptorStream
        init(_ stream: FileDescriptorStream) { self.stream = stream }
    }

    @Sendable public static func systemNow() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
    func now() -> Int64 { clock() }

    /// One session, start to audit entry. Never throws: every failure ends in the audit log.
    public func handle(_ stream: any ByteStream) {
        defer { stream.close() }
        var entry = AuditEntry(device: nil, rep: nil, mode: nil, startedAt: now(), endedAt: 0, bytesUp: 0, bytesDown: 0,
                               recordsUp: 0, recordsDown: 0, result: "failed", error: nil)
        let started = Deadline.monotonicNanoseconds()
        metrics.sessionStarted()
        let storage: any HubStorage
        do { storage = try makeStorage() } catch {
            entry.error = "the hub's storage would not open: \(error)"
            sessionEnded(entry, stream: stream, started: started)
            return
        }
        defer {
            entry.endedAt = now()
            if let session = stream as? SessionStream, session.wasCut {
                entry.result = "failed"
                entry.error = "cut: the hub was stopping and the drain deadline passed; nothing it had not acknowledged was kept, the device sends it again"
                    + (entry.error.map { " (\($0))" } ?? "")
            }
            // A session whose audit entry cannot be written is said on the hub's log, as a
            // refusal's is: the office's `missed-syncs` and `audit` read that table.
            do { try storage.audit(entry) } catch {
                log("satchel-hub: the session of device \(TerminalText.safe(entry.device ?? "?")) is not in the audit log: \(TerminalText.safe("\(error)"))")
            }
            sessionEnded(entry, stream: stream, started: started)
        }
        let deadline = Deadline.after(seconds: sessionTimeout)
        var openChannel: SyncChannel?
        // Devices' lifecycle (lost, provisioning, assignments): every backend that keeps it.
        let lifecycle = storage as? any DeviceLifecycleStore
        do {
            var device: HubDevice?
            var provisioningKey: [UInt8]?
            var epoch: Int64 = 1
            let channel = try SyncChannel.accept(stream, hubKey: try storage.hubKey(), dictionary: SyncDictionary.v3, deadline: deadline) { key, helloBytes in
                let hello = try Hello.decode(helloBytes)
                entry.device = hello.device
                entry.mode = hello.mode.name
                epoch = hello.epoch
                let status: Welcome.Status
                if hello.version != Hello.version {
                    status = .unsupportedVersion
                } else if hello.mode == .provision {
                    // A technician registers the device: its credential, not a sync password, decides.
                    provisioningKey = key
                    status = .ok
                } else if let known = try storage.device(publicKey: key), known.id == hello.device {
                    device = known
                    entry.rep = known.rep
                    if try lifecycle?.lifecycleState(device: known.id) == .lost {
                        status = .lost
                        try lifecycle?.recordWipeOrder(device: known.id, during: "at HELLO", now: now())
                    } else {
                        status = known.revoked ? .revoked : .ok
                    }
                } else {
                    status = .unknownDevice
                }
                if status != .ok { entry.result = "refused"; entry.error = "\(status)" }
                if status == .lost { entry.error = "device reported lost (satchel-hub device lost): refused, told to destroy its keys" }
                return Welcome(status: status, session: Random.bytes(16), hubTime: now()).encode()
            }
            openChannel = channel
            defer {
                // Whatever the session queued goes out before it ends (a fast sync's AUTH_RESULT
                // and RECEIPT after the device's BYE).
                try? channel.flush(deadline: deadline)
                entry.bytesUp = channel.bytesReceived
                entry.bytesDown = channel.bytesSent
            }
            if let provisioningKey {
                try provision(channel, device: entry.device ?? "", publicKey: provisioningKey, lifecycle: lifecycle, deadline: deadline, entry: &entry)
                return
            }
            guard let device, !device.revoked, entry.result != "refused" else { return }
            /// The office may report the device lost while this session runs: what the hub
            /// acknowledged so far stays acknowledged, and nothing more is taken.
            func stillActive() throws {
                if try lifecycle?.lifecycleState(device: device.id) == .lost { throw SessionRefusal.deviceLost(device.id) }
            }
            guard try authenticate(channel, device: device, epoch: epoch, storage: storage, deadline: deadline, entry: &entry) else { return }
            let mode = SyncMode(name: entry.mode ?? "") ?? .fast
            // Upload and duplicate act for the device this one replaced.
            func replaced() throws -> String {
                guard let replaced = device.replaces else { throw SessionRefusal.notAReplacement(device.id) }
                return replaced
            }
            var pulled = false
            while true {
                let message = try channel.receive(deadline: deadline)
                switch MessageType(rawValue: message.type) {
                case .batch:
                    try stillActive()
                    let batch = try Batch.decode(message.body)
                    // Upload mode: a replacement device hands in the changes recovered from the
                    // device it replaced, stored under that device's identity (and de-duplicated
                    // against what that device uploaded itself).
                    let owner = mode == .upload ? try replaced() : device.id
                    let receipt: Receipt
                    do {
                        receipt = try storage.commit(batch, device: owner, now: now())
                    } catch HubError.invalid(let why) {
                        // Nothing of the batch was stored; the device hears why (a card from the
                        // wrong device, a change that is not its own).
                        throw SessionRefusal.batchRefused(batch.id, why)
                    } catch let conflict as BatchConflict {
                        // Never the stored receipt: the device would mark changes as sent that
                        // the hub does not hold.
                        throw SessionRefusal.batchConflict(conflict)
                    }
                    entry.recordsUp += batch.changes.count
                    metrics.batchCommitted()
                    try channel.queue(.init(type: MessageType.receipt.rawValue, body: receipt.encode()), deadline: deadline)
                case .pull where [.full, .initialise, .duplicate].contains(mode) && !pulled:
                    pulled = true
                    try stillActive()
                    var request = try Pull.decode(message.body)
                    var documents: [SyncChange] = []
                    if mode == .duplicate {
                        documents = try storage.documentsForDuplicate(of: try replaced(), to: device.id, now: now())
                    }
                    if mode != .full { request.reset = true }
                    let download = try storage.startDownload(device: device, request: request, now: now(), policy: policy)
                    if !download.heldBack.isEmpty {
                        entry.error = "held back \(download.heldBack.count) row\(download.heldBack.count == 1 ? "" : "s") the device's schema would refuse "
                            + "(fix at the ERP, import again): " + download.heldBack.prefix(10).joined(separator: "; ")
                            + (download.heldBack.count > 10 ? "; ..." : "")
                    }
                    do {
                        // One flight: small messages share frames (SyncChannel.queue), DONE sends them all.
                        try channel.queue(.init(type: MessageType.download.rawValue, body: download.header.encode()), deadline: deadline)
                        for frame in download.frames {
                            try channel.queue(.init(type: MessageType.table.rawValue, body: try frame.encode(catalogue: download.catalogue)), deadline: deadline)
                        }
                        // The replaced device's documents after the working set they refer to.
                        for batch in Batch.chunks(documents, idPrefix: "\(device.id)-copy") {
                            try channel.queue(.init(type: MessageType.batch.rawValue, body: batch.encode()), deadline: deadline)
                        }
                        try channel.send(.init(type: MessageType.done.rawValue, body: download.done.encode()), deadline: deadline)
                    } catch let failure as SyncChannel.Failure {
                        guard case .stream = failure else { throw failure }
                        // A device that could not apply a frame says why in an ERROR and hangs up
                        // while the rest of the download is still on its way: its reason, not
                        // "peer closed", goes into the audit.
                        if let said = try? channel.receive(deadline: .after(seconds: 2)), said.type == MessageType.error.rawValue {
                            throw DeviceReport(message: said)
                        }
                        throw failure
                    }
                    entry.recordsDown += download.rows + documents.count
                case .ack where pulled:
                    try storage.acknowledgeDownload(device: device.id, ack: try DownloadAck.decode(message.body))
                    // ACK is the device's last word since protocol 5 (it sends no BYE after it);
                    // one in a session that pulled nothing is out of order (below).
                    entry.result = "ok"
                    return
                case .bye:
                    entry.result = "ok"
                    return
                case .error:
                    throw DeviceReport(message: message)
                default:
                    try? sendError(.malformed, "unexpected message \(message.type)", on: channel, deadline: deadline)
                    entry.error = "unexpected message \(message.type)"
                    return
                }
            }
        } catch let report as DeviceReport {
            entry.result = "failed"
            entry.error = report.description + (entry.error.map { " (\($0))" } ?? "")
        } catch let refusal as SessionRefusal {
            entry.result = "refused"
            entry.error = refusal.description
            if case .deviceLost(let id) = refusal { try? lifecycle?.recordWipeOrder(device: id, during: "mid-session", now: now()) }
            try? sendError(refusal.code, refusal.description, on: openChannel, deadline: deadline)
        } catch {
            entry.error = "\(error)" + (entry.error.map { " (\($0))" } ?? "")
        }
    }

    /// The technician's line for a session that ended, and its count in the metrics.
    private func sessionEnded(_ entry: AuditEntry, stream: any ByteStream, started: UInt64) {
        let seconds = Double(Deadline.monotonicNanoseconds() - started) / 1e9
        metrics.sessionEnded(entry, seconds: seconds, cut: (stream as? SessionStream)?.wasCut ?? false)
        log(Self.logLine(entry, seconds: seconds))
    }

    /// `session end: device SIM1 (rep R01), mode fast, up 2113 B (6 records), down 388 B (0 records), 2.41 s, ok`,
    /// then the error when there is one. Device ids and errors come from outside: made safe for a terminal.
    public static func logLine(_ entry: AuditEntry, seconds: Double) -> String {
        var line = "session end: device \(TerminalText.safe(entry.device ?? "?"))"
        if let rep = entry.rep { line += " (rep \(TerminalText.safe(rep)))" }
        line += ", mode \(TerminalText.safe(entry.mode ?? "?")), up \(entry.bytesUp) B (\(entry.recordsUp) records), down \(entry.bytesDown) B (\(entry.recordsDown) records)"
        line += ", \(String(format: "%.2f", seconds)) s, \(entry.result)"
        if let error = entry.error { line += ": \(TerminalText.safe(error))" }
        return line
    }

    /// The device ended the session with an ERROR (a row its schema refused, say): its words,
    /// made safe for a terminal, are the session's error in the audit log.
    struct DeviceReport: Error, CustomStringConvertible {
        let code: SyncErrorCode?
        let text: String
        init(message: SyncChannel.Message) {
            let decoded = try? ErrorMessage.decode(message.body)
            code = decoded?.code
            text = decoded.map { Displayed.text($0.message) } ?? "an ERROR the hub could not read"
        }
        var description: String { "the device stopped the session: \(text)" }
    }

    /// A session the hub ends on purpose, with an ERROR the device shows.
    enum SessionRefusal: Error, CustomStringConvertible {
        case notAReplacement(String)
        case batchRefused(String, String)
        case batchConflict(BatchConflict)
        case deviceLost(String)
        case registrationRefused(String)
        var code: SyncErrorCode {
            switch self {
            case .batchConflict: return .batchConflict
            case .deviceLost: return .deviceLost
            case .registrationRefused: return .registrationRefused
            default: return .batchRefused
            }
        }
        var description: String {
            switch self {
            case .batchConflict(let conflict): return conflict.description
            case .batchRefused(let batch, let why): return "batch \(batch) refused, nothing of it stored: \(why)"
            case .deviceLost(let device):
                return "device \(device) was reported lost while this session ran (satchel-hub device lost): what the hub acknowledged stays; it takes nothing more, and the device destroys its keys"
            case .registrationRefused(let why): return why
            case .notAReplacement(let device):
                return "device \(device) replaces no other device: register it with `satchel-hub device add --replaces OLD` first"
            }
        }
    }

    func sendError(_ code: SyncErrorCode, _ message: String, on channel: SyncChannel?, deadline: Deadline) throws {
        try channel?.send(.init(type: MessageType.error.rawValue, body: ErrorMessage(code: code, message: message).encode()), deadline: deadline)
    }

    /// How long a session waits for a password check: until 5 s before its deadline, early
    /// enough to tell the device to come back.
    func passwordWait(_ deadline: Deadline) -> Deadline {
        Deadline(nanoseconds: deadline.nanoseconds &- min(deadline.nanoseconds, 5_000_000_000))
    }

    /// Every password check stayed in use: the device hears hub busy with the wait to honour.
    func refuseBusy(_ busy: PasswordGate.Busy, on channel: SyncChannel, deadline: Deadline, entry: inout AuditEntry) {
        let message = "hub busy: all \(busy.limit) password checks are in use; retry after \(retryAfterSeconds) s"
        try? sendError(.hubBusy, message, on: channel, deadline: deadline)
        entry.result = "refused"
        entry.error = message
    }

    private func authenticate(_ channel: SyncChannel, device: HubDevice, epoch: Int64, storage: any HubStorage, deadline: Deadline,
                              entry: inout AuditEntry) throws -> Bool {
        let message = try channel.receive(deadline: deadline)
        guard message.type == MessageType.auth.rawValue else {
            entry.error = "expected AUTH"
            return false
        }
        guard let rep = try storage.rep(id: device.rep) else {
            entry.error = "rep \(device.rep) missing"
            return false
        }
        let now = now()
        if let until = rep.lockedUntil, until > now {
            try channel.send(.init(type: MessageType.authResult.rawValue, body: AuthResult(status: .locked, attemptsLeft: 0).encode()), deadline: deadline)
            entry.result = "refused"
            entry.error = "sync password locked"
            return false
        }
        let password = String(decoding: message.body, as: UTF8.self)
        // A few at once (`passwords`): the wait ends early enough to tell the device to come back.
        let verified: Bool
        do {
            if verifiedPasswords?.matches(rep: rep.id, storedHash: rep.passwordHash, password: password) == true {
                verified = true
            } else {
                verified = try passwords.verify(rep.passwordHash, password: password, until: passwordWait(deadline))
                if verified { verifiedPasswords?.remember(rep: rep.id, storedHash: rep.passwordHash, password: password) }
            }
        } catch let busy as PasswordGate.Busy {
            refuseBusy(busy, on: channel, deadline: deadline, entry: &entry)
            return false
        }
        guard verified else {
            let attempts = rep.failedAttempts + 1
            let locks = attempts >= Self.maxFailedLogins
            try storage.recordFailedLogin(rep: rep.id, lockUntil: locks ? now + Self.lockMilliseconds : nil)
            let result = AuthResult(status: locks ? .locked : .wrongPassword, attemptsLeft: max(0, Self.maxFailedLogins - attempts))
            try channel.send(.init(type: MessageType.authResult.rawValue, body: result.encode()), deadline: deadline)
            entry.result = "refused"
            entry.error = "wrong sync password"
            return false
        }
        if rep.failedAttempts > 0 { try storage.resetFailedLogins(rep: rep.id) }
        // With the hub's high-water mark for the device, so a restored device learns what the hub holds of it.
        let held = try storage.holding(device: device.id, epoch: epoch)
        // The role and the offline policy the device obeys, signed, with the hub's time now.
        let lifecycle = storage as? any DeviceLifecycleStore
        let assignment = try lifecycle.map { SignedAssignment.sign(try $0.assignment(device: device.id, now: now), with: try $0.lifecycleKeys().signing) }
        // Queued: it goes out with the flight's RECEIPTs and download in one frame (protocol 5).
        try channel.queue(.init(type: MessageType.authResult.rawValue,
                                body: AuthResult(status: .ok, attemptsLeft: Self.maxFailedLogins, held: held, assignment: assignment).encode()),
                          deadline: deadline)
        return true
    }
}
