public import Backup
public import Field
import Journal
public import Seal
import Store
public import Sync
public import Transport

/// The device side of sync: its own key pair, the hub it is pinned to, and the fast mode
/// (docs/protocol.md §7). Uploaded changes are marked only after the hub's receipt, and the batch
/// id is written down before the batch is sent, so a retry after a dropped link sends the same
/// batch again and the hub answers with the receipt it already stored.
public struct DeviceSync {
    public let agent: DeviceAgent
    let local = PosixFileSystem()

    public init(_ agent: DeviceAgent) { self.agent = agent }

    var home: String { agent.configuration.home }

    public typealias Pin = IdentityFiles.Pin

    public enum Failure: Error, CustomStringConvertible {
        case notProvisioned(home: String)
        case noDeviceKey(home: String)
        /// The hub holds a batch under this id with other content: nothing was stored or marked sent.
        case batchConflict(String)
        /// The link to the hub failed; the cause is kept (LinkError), for the message and for tests.
        case link(LinkError)
        case sync(SyncFailure)
        case storage(String)
        /// The download held a row this handheld's schema refuses (DeviceDownload.RowRefused).
        case rowRefused(DeviceDownload.RowRefused)
        /// The hub is at its session cap (ERROR 13, docs/protocol.md §9) and said when to come
        /// back; nothing was sent or marked. `AgentSync.sync` waits that long and tries again.
        case hubBusy(retryAfterSeconds: Int, message: String)

        public var description: String {
            switch self {
            case .notProvisioned(let home): return "this device is not provisioned for sync (no hub pinned in \(home)): a technician runs `satchel provision --hub HOST:PORT --hub-key HEX`"
            case .noDeviceKey(let home):
                return "this device has no sync key yet (\(home)/device.key): a technician runs `satchel provision --hub HOST:PORT --hub-key HEX`, which makes it, and registers it on the hub"
            case .batchConflict(let why):
                return "the hub refused this device's changes: \(why). Nothing was marked as sent and nothing is lost here. "
                    + "This device's ids collide with ones the hub already holds (a card older than the lost database, or two handhelds with one identity): do not retry; call the office with `satchel status` and the hub's audit entry"
            case .link(let why): return "no connection to the hub: \(why); nothing was marked as sent, try again"
            case .sync(let failure): return failure.description
            case .storage(let why): return why
            case .rowRefused(let refusal):
                return "\(refusal.description). Nothing of its frame was applied; the hub has logged it (satchel-hub audit): "
                    + "the office fixes the row, then sync again"
            case .hubBusy(let seconds, let message):
                return "the hub is busy (\(message)); nothing was sent or marked as sent: sync again in \(seconds) s"
            }
        }

        public var exitCode: Int32 {
            switch self {
            case .notProvisioned, .noDeviceKey: return 66
            case .batchConflict: return 65
            case .link: return 69
            case .sync(.authentication): return 77
            case .sync: return 69
            case .storage: return 74
            case .rowRefused: return 65
            case .hubBusy: return 75
            }
        }
    }

    /// This device's X25519 key pair, from `device.key` (0600, internal storage). Read strictly and
    /// never made here: a missing key is made only by `makeKeyPair` (init and provision), and a
    /// damaged one is refused with what to do (`IdentityFiles`), so no read can turn the device
    /// into a new one the hub does not know.
    public func keyPair() throws -> X25519.KeyPair {
        try agent.activateDataKey()  // a sealed device.key opens only with the data key
        guard let bytes = try IdentityFiles.readDeviceKey(home: home) else { throw Failure.noDeviceKey(home: home) }
        return try X25519.KeyPair(secretKey: SecretBytes(bytes))
    }

    /// The key pair, made now if the device has none (never over a damaged one, which is refused).
    @discardableResult
    public func makeKeyPair() throws -> X25519.KeyPair {
        try agent.activateDataKey()
        if let bytes = try IdentityFiles.readDeviceKey(home: home) { return try X25519.KeyPair(secretKey: SecretBytes(bytes)) }
        let pair = X25519.KeyPair.generate()
        try IdentityFiles.writeDeviceKey(home: home, pair.secretKey.withUnsafeBytes { Array($0) })
        return pair
    }

    /// The pinned hub; nil before provisioning. A damaged pin file is refused.
    public func pin() throws -> Pin? { try IdentityFiles.readHubPin(home: home) }

    /// What `satchel provision` did: the key the hub must know, and whether the card has the
    /// identity now (a wiped handheld restores it from there).
    public struct Provisioned: Sendable {
        public var publicKey: [UInt8]
        /// Why the card did not get the identity; nil when it did or no card is configured.
        public var cardProblem: String?
    }

    /// Pins the hub (and makes the device key if there is none), then seals both onto the card.
    @discardableResult
    public func provision(address: String, hubKey: String) throws -> Provisioned {
        guard (try? Hex.decode(hubKey))?.count == 32 else {
            throw FieldError.invalidInput(what: "hub key", value: hubKey, reason: "expected 64 hex digits (`satchel-hub key` prints it)")
        }
        guard IdentityFiles.validAddress(address) else {
            throw FieldError.invalidInput(what: "hub address", value: address, reason: "expected HOST:PORT")
        }
        let pair = try makeKeyPair()
        try IdentityFiles.writeAtomically(IdentityFiles.hubPinPath(home: home), Pin(address: address, publicKey: hubKey).fileBytes)
        let problem = (try? DeviceDatabase.open(home: home)).map { agent.sealIdentityOnCard($0) } ?? nil
        return Provisioned(publicKey: pair.publicKey, cardProblem: problem)
    }

    public struct Report: Codable, Sendable, Equatable {
        public var mode: String
        public var hub: String
        public var uploaded: Int
        public var duplicates: Int
        public var throughSeq: Int64
        public var bytesUp: Int
        public var bytesDown: Int
        public var batchId: String?
        public var pull: String?
        public var downloaded: Int = 0
        /// Tables whose checksum did not match after the download: the next sync reloads them.
        public var mismatched: [String] = []
        /// Wall time of the session over the open link (handshake to the last byte), without
        /// the modem's set-up: what the link's physical limit is compared with.
        public var seconds: Double = 0
        /// Duplicate mode: documents of the replaced device stored here, and those skipped.
        public var documents: Int = 0
        public var skippedDocuments: Int = 0
        /// Upload mode: the device whose card the changes came from, and how many were recovered.
        public var recoveredFrom: String?
        public var recoveredChanges: Int = 0
        /// Housekeeping after the sync: documents and changes older than the retention period
        /// the hub holds, and working-set rows no document needs any more.
        public var prunedDocuments: Int = 0
        public var prunedChanges: Int = 0
        public var releasedRows: Int = 0
        /// Changes the hub had acknowledged and no longer holds (a hub restored from an older
        /// backup), learnt from its high-water mark in this session: the upload position moved
        /// back to what the hub holds, so they are still to be sent.
        public var hubLacked: Int = 0
        /// Of those, how many a second session of the same sync sent again (`DeviceAgent.sync`).
        public var resentToHub: Int = 0

        enum CodingKeys: String, CodingKey {
            case mode, hub, uploaded, duplicates, pull, downloaded, mismatched, seconds, documents
            case hubLacked = "hub_lacked"
            case resentToHub = "resent_to_hub"
            case skippedDocuments = "skipped_documents"
            case recoveredFrom = "recovered_from"
            case recoveredChanges = "recovered_changes"
            case prunedDocuments = "pruned_documents"
            case prunedChanges = "pruned_changes"
            case releasedRows = "released_rows"
            case throughSeq = "through_seq"
            case bytesUp = "bytes_up"
            case bytesDown = "bytes_down"
            case batchId = "batch_id"
        }
    }

    /// The hub's address: the one given, else the pinned one.
    public func hubAddress(_ override: String? = nil) throws -> String {
        guard let pin = try pin() else { throw Failure.notProvisioned(home: agent.configuration.home) }
        return override ?? pin.address
    }

    /// A sync over the network (or the operator's APN routed to it): connects to the hub.
    public func run(_ mode: SyncMode, _ device: DeviceDatabase, password: String, address: String? = nil, timeoutSeconds: Double = 120) throws -> Report {
        let hubAddress = try self.hubAddress(address)
        let stream: FileDescriptorStream
        do { stream = try TCP.connect(hubAddress, deadline: .after(seconds: timeoutSeconds)) } catch { throw Failure.link(LinkError(.connect, error)) }
        defer { stream.close() }
        return try run(mode, device, password: password, over: stream, hub: hubAddress, timeoutSeconds: timeoutSeconds)
    }

    public func fast(_ device: DeviceDatabase, password: String, address: String? = nil, timeoutSeconds: Double = 120) throws -> Report {
        try run(.fast, device, password: password, address: address, timeoutSeconds: timeoutSeconds)
    }

    public func fast(_ device: DeviceDatabase, password: String, over stream: any ByteStream, hub hubAddress: String,
                     timeoutSeconds: Double = 120) throws -> Report {
        try run(.fast, device, password: password, over: stream, hub: hubAddress, timeoutSeconds: timeoutSeconds)
    }

    /// One session over any open stream to the hub (a TCP socket, or the modem's transparent
    /// data session). fast: changes up. full: changes up, then the working set's changes down.
    /// init: changes up, then the working set from scratch. duplicate: changes up, then this
    /// replacement device gets the working set and the documents of the device it replaces.
    public func run(_ mode: SyncMode, _ device: DeviceDatabase, password: String, over stream: any ByteStream, hub hubAddress: String,
                    timeoutSeconds: Double = 120) throws -> Report {
        guard mode != .upload else {
            throw FieldError.invalidInput(what: "sync mode", value: mode.name, reason: "upload needs the old device's card: satchel sync --mode upload --from-card DIR")
        }
        guard mode != .provision else {
            throw FieldError.invalidInput(what: "sync mode", value: mode.name, reason: "a technician provisions a handheld with `satchel provision`")
        }
        let deviceID = try device.deviceID()
        let epoch = try device.epoch()
        let uploaded = try device.uploadedThroughSeq()
        // Duplicate mode too: a replacement that has worked since its first duplicate (a
        // technician repeating the step) sends its own changes first, so the hub knows which
        // copied documents are now this device's and copies them no more.
        let batches = Batch.chunks(try device.changes(after: uploaded, limit: Batch.maxChanges), idPrefix: ClientID.prefix(device: deviceID, epoch: epoch))
        if !batches.isEmpty {
            // Written down before they are sent (the ids also follow from the journal, so a
            // retry after a lost receipt sends batches the hub recognises).
            try device.write { try device.setSyncState("pending_batches", batches.map(\.id).joined(separator: " ")) }
        }
        let download = DeviceDownload(device)
        let pull = mode == .fast ? nil : try download.pullRequest(reset: mode == .initialise || mode == .duplicate)
        let (result, seconds) = try session(mode, device: deviceID, epoch: epoch, password: password, batches: batches, pull: pull, sink: download,
                                            over: stream, timeoutSeconds: timeoutSeconds)
        let now = device.clock.nowMilliseconds()
        let learnt = try HubMark.plan(result.held, device: device, epoch: epoch, uploadedBefore: uploaded)
        if let next = learnt.nextEpoch { try agent.moveEpoch(device, to: next) }
        try device.write {
            if let receipt = result.receipt {
                try device.database.execute("UPDATE sync_state SET value = CAST(max(CAST(value AS INTEGER), ?) AS TEXT) WHERE key = 'uploaded_through_seq'",
                                            [.integer(receipt.throughSeq)])
            }
            if let position = learnt.uploadPosition { try device.setSyncState("uploaded_through_seq", String(position)) }
            if let held = result.held {
                try device.setSyncState("hub_mark", "\(held.highestEpoch) \(held.sequenceInEpoch)")
            }
            try device.setSyncState("pending_batches", nil)
            try device.setSyncState("last_sync_at", String(now))
        }
        // What the hub lacks of what it had acknowledged: sent by the next session, which
        // `DeviceAgent.sync` opens at once rather than leaving it to the rep's next sync.
        let lacked = try learnt.uploadPosition.map { position in
            try device.guarded {
                try device.database.first("SELECT count(*) FROM changes WHERE seq > ? AND seq <= ?",
                                          [.integer(position), .integer(uploaded)]) { $0.int64(0) }
            } ?? 0
        } ?? 0
        // The hub's role and offline policy for this handheld, with its time now (unlocks it).
        if let signed = result.assignment { try ContactPolicy.record(signed, in: device) }
        // What the hub now holds the device may let go of, so the database stays bounded.
        let housekeeping = try Housekeeping(device).run()
        let released = try download.releaseRetained()
        agent.reached(.recorded)
        return Report(mode: mode.name, hub: hubAddress, uploaded: result.receipt?.stored ?? 0, duplicates: result.receipt?.duplicates ?? 0,
                      throughSeq: result.receipt?.throughSeq ?? uploaded, bytesUp: result.bytesSent, bytesDown: result.bytesReceived,
                      batchId: batches.last?.id, pull: result.pull, downloaded: result.downloaded, mismatched: result.mismatched,
                      seconds: seconds, documents: result.documents, skippedDocuments: download.skippedDocuments,
                      prunedDocuments: housekeeping.documents, prunedChanges: housekeeping.changes, releasedRows: released,
                      hubLacked: Int(lacked))
    }

    /// What upload mode sends: the replaced handheld's changes it had not yet seen acknowledged.
    public struct RecoveredChanges: Sendable {
        public let device: String
        public let sentByOld: Int64
        public let batches: [Batch]
        public var count: Int { batches.reduce(0) { $0 + $1.changes.count } }
    }

    /// Upload mode, first half, before any link is opened: rebuilds the handheld this one replaces
    /// from its card (snapshot + journal, as `satchel restore` does, into `<home>/recovered/<id>`)
    /// and takes the changes it had not yet seen acknowledged.
    public func recover(fromCard cardRoot: String, oldDevice: String?, passphrase: String) throws -> RecoveredChanges {
        let recoveredRoot = Paths.join(agent.configuration.home, "recovered")
        let recoveredHome = Paths.join(recoveredRoot, oldDevice ?? "card")
        do { try local.createDirectory(recoveredRoot) } catch { throw Failure.storage("\(error)") }
        // A copy to read from, made afresh each time and gone once its changes are read: it holds
        // the old device's key (`card.key`, in plaintext for an escrowed key or a plain card) and
        // its database, which must not stay in this handheld's data directory.
        defer {
            for name in [IdentityFiles.cardKeyName, "data.key"] { _ = DeviceAgent.shred(Paths.join(recoveredHome, name)) }
            DeviceAgent.removeTree(recoveredHome, on: local)
        }
        // Nobody issues ids from the copy, so its epoch stays.
        let recovered = DeviceAgent(AgentConfiguration(home: recoveredHome, cardRoot: cardRoot))
        _ = try recovered.restore(passphrase: passphrase, device: oldDevice, force: true, advancingEpoch: false)
        return try {
            // Through the agent: a sealed copy opens with the key the restore kept in memory.
            // (In a closure so the copy's database is closed before the defer removes it.)
            let old = try recovered.openUnchecked()
            let oldID = try old.deviceID()
            let sentByOld = try old.uploadedThroughSeq()
            let changes = try old.changes(after: sentByOld, limit: Batch.maxChanges)
            let prefix = ClientID.prefix(device: oldID, epoch: try old.epoch()) + "-recovered"
            return RecoveredChanges(device: oldID, sentByOld: sentByOld, batches: Batch.chunks(changes, idPrefix: prefix))
        }()
    }

    /// Upload mode, second half: the recovered changes go up under the old device's identity.
    /// The hub stores each change once, however many of them the old device had already sent.
    public func upload(_ recovered: RecoveredChanges, password: String, over stream: any ByteStream, hub hubAddress: String,
                       timeoutSeconds: Double = 120) throws -> Report {
        let own = try agent.openUnchecked()
        let (result, seconds) = try session(.upload, device: try own.deviceID(), epoch: try own.epoch(), password: password, batches: recovered.batches,
                                            pull: nil, sink: nil, over: stream, timeoutSeconds: timeoutSeconds)
        if let signed = result.assignment { try ContactPolicy.record(signed, in: own) }
        agent.reached(.recorded)
        return Report(mode: SyncMode.upload.name, hub: hubAddress, uploaded: result.receipt?.stored ?? 0, duplicates: result.receipt?.duplicates ?? 0,
                      throughSeq: result.receipt?.throughSeq ?? recovered.sentByOld, bytesUp: result.bytesSent, bytesDown: result.bytesReceived,
                      batchId: recovered.batches.last?.id, seconds: seconds, recoveredFrom: recovered.device, recoveredChanges: recovered.count)
    }

    private func session(_ mode: SyncMode, device deviceID: String, epoch: Int64, password: String, batches: [Batch], pull: Pull?, sink: (any DownloadSink)?,
                         over stream: any ByteStream, timeoutSeconds: Double) throws -> (SyncResult, Double) {
        guard let pin = try pin() else { throw Failure.notProvisioned(home: agent.configuration.home) }
        let deadline = Deadline.after(seconds: timeoutSeconds)
        let started = Deadline.monotonicNanoseconds()
        do {
            let result = try SyncClient.run(stream, deviceKey: try keyPair(), hubKey: try Hex.decode(pin.publicKey), device: deviceID,
                                            password: password, mode: mode, epoch: epoch, batches: batches, pull: pull, sink: sink, deadline: deadline,
                                            reached: { agent.reached($0) })
            let seconds = Double(Deadline.monotonicNanoseconds() - started) / 1e9
            return (result, (seconds * 1000).rounded() / 1000)
        } catch SyncFailure.hubError(code: .batchConflict, let message) {
            throw Failure.batchConflict(message)
        } catch SyncFailure.hubError(code: .hubBusy, let message) where Self.busyRetryAfter(message) != nil {
            throw Failure.hubBusy(retryAfterSeconds: Self.busyRetryAfter(message) ?? 0, message: message)
        } catch let failure as SyncFailure {
            throw Failure.sync(failure)
        } catch let refusal as DeviceDownload.RowRefused {
            throw Failure.rowRefused(refusal)
        } catch let error as FieldError {
            throw error
        } catch {
            throw Failure.link(LinkError(.session, error))
        }
    }
}

extension DeviceSync {
    /// The seconds a hub-busy ERROR (code 13, docs/protocol.md §9) asks the device to wait: its
    /// message starts `hub busy:` and ends `retry after N s` (ERROR carries a code and a text, no figures).
    /// nil for any other message, and for a wait outside 1 to 3,600 seconds (a hub's message is
    /// text from outside: a bogus figure is not obeyed).
    public static func busyRetryAfter(_ message: String) -> Int? {
        let words = message.split(separator: " ")
        guard message.hasPrefix("hub busy:"), words.count >= 5, words[words.count - 1] == "s",
              words[words.count - 3] == "after", words[words.count - 4] == "retry" else { return nil }
        let figure = words[words.count - 2]
        guard figure.count <= 4, figure.allSatisfy({ $0.isASCII && $0.isNumber }), let seconds = Int(figure), (1...3600).contains(seconds) else { return nil }
        return seconds
    }
}
