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
    public let maxSessions: Int
    public let policy: ScopePolicy
    /// Unix milliseconds. The simulator moves it to run weeks of days in minutes.
    let clock: @Sendable () -> Int64

    public init(maxSessions: Int = 64, sessionTimeout: Double = 120, policy: ScopePolicy = ScopePolicy(),
                clock: @escaping @Sendable () -> Int64 = SyncServer.systemNow,
                makeStorage: @escaping @Sendable () throws -> any HubStorage) {
        self.makeStorage = makeStorage
        self.sessionTimeout = sessionTimeout
        self.maxSessions = maxSessions
        self.policy = policy
        self.clock = clock
    }

    /// Accepts connections until `shouldStop` says so (checked every second).
    public func serve(_ listener: TCPListener, shouldStop: @escaping @Sendable () -> Bool = { false }) {
        while !shouldStop() {
            guard let connection = try? listener.accept(deadline: .after(seconds: 1)) else { continue }
            let box = ConnectionBox(connection)
            lock.lock()
            let admitted = active < maxSessions
            if admitted { active += 1 }
            lock.unlock()
            guard admitted else { connection.close(); continue }
            Thread.detachNewThread { [self] in
                handle(box.stream)
                lock.lock(); active -= 1; lock.unlock()
            }
        }
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
        let storage: any HubStorage
        do { storage = try makeStorage() } catch {
            return
        }
        defer {
            entry.endedAt = now()
            try? storage.audit(entry)
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
        guard PasswordHash.verify(rep.passwordHash, password: password) else {
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
