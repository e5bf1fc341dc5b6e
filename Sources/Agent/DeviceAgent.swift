import Backup
import Field
import FoundationEssentials
import Journal
import Seal
import Store
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the device keeps things and how often it backs up (from the command line, the
/// environment, or the board profile).
public struct AgentConfiguration: Sendable {
    public var home: String
    /// Mount point of the flash card; nil when the device has none configured.
    public var cardRoot: String?
    /// Acknowledged changes between snapshots.
    public var snapshotEvery: Int64 = 25
    /// The sysfs `power_supply` directory of the battery (`capacity`, `status`).
    public var batteryDirectory: String?
    public var lowBatteryPercent = 15
    public var criticalBatteryPercent = 5
    /// Argon2id cost for the key slot on the card; the default suits a 32-bit ARM handheld.
    public var keyCost = PasswordHash.Cost.handheld

    public init(home: String, cardRoot: String? = nil) {
        self.home = home
        self.cardRoot = cardRoot
    }

    var keyFile: String { Paths.join(home, "card.key") }
    var cardLockFile: String { Paths.join(home, "card.lock") }
    var writesStoppedFile: String { Paths.join(home, "writes-stopped") }
}

/// How the card looks from the device, as `satchel status --json` reports it (`"card"`).
public struct CardReport: Codable, Sendable, Equatable, Error {
    public enum State: String, Codable, Sendable {
        case notConfigured = "not_configured"
        case absent
        case notInitialised = "not_initialised"
        case foreign
        case keyMissing = "key_missing"
        case readOnly = "read_only"
        case full
        case failing
        case ok
    }

    public var state: State
    public var path: String?
    public var journalThroughSeq: Int64?
    /// Acknowledged changes not yet on the card.
    public var behind: Int64?
    public var snapshotGeneration: UInt64?
    public var snapshotCoversSeq: Int64?
    public var message: String?

    enum CodingKeys: String, CodingKey {
        case state, path, behind, message
        case journalThroughSeq = "journal_through_seq"
        case snapshotGeneration = "snapshot_generation"
        case snapshotCoversSeq = "snapshot_covers_seq"
    }

    public var isHealthy: Bool { state == .ok && (behind ?? 0) == 0 }
}

public enum AgentError: Error, CustomStringConvertible, Equatable {
    case writesStopped(reason: String)
    case cardUnavailable(CardReport)
    case restoreNeeded(problem: String, card: String, device: String)

    public var description: String {
        switch self {
        case .writesStopped(let reason): return "writing is stopped: \(reason); nothing was saved. Plug in the charger; writing resumes on its own"
        case .cardUnavailable(let report) where report.state == .notConfigured:
            return "no card configured: pass --card DIR or set SATCHEL_CARD (the board profile's card mount point)"
        case .cardUnavailable(let report): return "card \(report.path ?? ""): \(report.state.rawValue)\(report.message.map { " — \($0)" } ?? "")"
        case .restoreNeeded(let problem, let card, let device):
            return "\(problem)\nThe card at \(card) holds the backup of device \(device): restore it with `satchel restore --passphrase-stdin` (the technician has the backup passphrase)"
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .writesStopped: return 75
        case .cardUnavailable, .restoreNeeded: return 66
        }
    }
}

/// The device side of power-loss safety: mirrors every acknowledged change to the card journal,
/// takes snapshots when due, restores, and watches the battery. Card trouble never stops capture:
/// the internal database is durable on its own, the card catches up when it is healthy again,
/// and the state is reported loudly instead.
public final class DeviceAgent {
    public let configuration: AgentConfiguration
    let card: any FileSystem
    let local = PosixFileSystem()
    let clock: any WallClock

    public init(_ configuration: AgentConfiguration, cardFileSystem: any FileSystem = PosixFileSystem(), clock: any WallClock = SystemClock()) {
        self.configuration = configuration
        self.card = cardFileSystem
        self.clock = clock
    }

    // MARK: Opening

    /// Opens the device database; when it is missing or damaged and the card holds a backup this
    /// device can open (its key is on internal storage), restores it first and says so on `notice`.
    public func open(notice: (String) -> Void = { _ in }) throws -> DeviceDatabase {
        do {
            return try DeviceDatabase.open(home: configuration.home, clock: clock)
        } catch let error as FieldError {
            switch error {
            case .notInitialised, .damagedDatabase:
                guard let restored = try? automaticRestore(after: error) else {
                    if let root = configuration.cardRoot, let backup = CardLayout.devices(on: root, fileSystem: card).first {
                        throw AgentError.restoreNeeded(problem: error.description, card: root, device: backup)
                    }
                    throw error
                }
                notice("\(error.description)\nRestored from the card: snapshot generation \(restored.snapshotGeneration.map(String.init) ?? "none"), \(restored.replayed) journal entries replayed, through change \(restored.lastSequence).")
                return try DeviceDatabase.open(home: configuration.home, clock: clock)
            default:
                throw error
            }
        }
    }

    /// As `open`, for commands that write: refuses while writing is stopped (critical battery).
    public func openForWriting(notice: (String) -> Void = { _ in }) throws -> DeviceDatabase {
        if let reason = writesStoppedReason() { throw AgentError.writesStopped(reason: reason) }
        return try open(notice: notice)
    }

    private func automaticRestore(after error: FieldError) throws -> RestoreReport? {
        guard let root = configuration.cardRoot, let key = try localKey() else { return nil }
        let devices = CardLayout.devices(on: root, fileSystem: card)
        guard devices.count == 1 else { return nil }
        let layout = CardLayout(root: root, device: devices[0])
        let identity = try readIdentity(layout)
        guard identity.keyCheck == keyCheck(key) else { return nil }
        return try Restore.run(home: configuration.home, layout: layout, key: key, identity: identity, card: card, clock: clock)
    }

    // MARK: The card

    struct Attached {
        var layout: CardLayout
        var key: BackupKey
        var identity: CardIdentity
    }

    /// Finds this device's backup on the card, or says why it cannot be used.
    func attach(device: String) -> Result<Attached, CardReport> {
        guard let root = configuration.cardRoot else { return .failure(CardReport(state: .notConfigured)) }
        guard (try? card.listDirectory(root)) != nil else {
            return .failure(CardReport(state: .absent, path: root, message: "no card mounted at \(root)"))
        }
        let layout = CardLayout(root: root, device: device)
        guard card.exists(layout.identityFile) else {
            let others = CardLayout.devices(on: root, fileSystem: card).filter { $0 != device }
            if !others.isEmpty {
                return .failure(CardReport(state: .foreign, path: root, message: "the card holds the backup of \(others.joined(separator: ", ")), not \(device); it is left untouched"))
            }
            return .failure(CardReport(state: .notInitialised, path: root, message: "run `satchel card init` to start backing up to this card"))
        }
        let identity: CardIdentity
        do { identity = try readIdentity(layout) } catch {
            return .failure(CardReport(state: .failing, path: root, message: "\(error)"))
        }
        guard identity.device == device else {
            return .failure(CardReport(state: .foreign, path: root, message: "card.json names device \(identity.device), not \(device)"))
        }
        guard let key = try? localKey() else {
            return .failure(CardReport(state: .keyMissing, path: root, message: "the backup key is not on this device: `satchel card init` again, or `satchel restore` with the passphrase"))
        }
        guard keyCheck(key) == identity.keyCheck else {
            return .failure(CardReport(state: .foreign, path: root, message: "this device's backup key does not open the card's backup"))
        }
        return .success(Attached(layout: layout, key: key, identity: identity))
    }

    func readIdentity(_ layout: CardLayout) throws -> CardIdentity {
        let bytes: [UInt8]
        do { bytes = try card.readAll(layout.identityFile) } catch { throw BackupError.fileSystem(error) }
        return try CardJSON.decode(bytes, path: layout.identityFile)
    }

    func localKey() throws -> BackupKey? {
        guard let bytes = try? local.readAll(configuration.keyFile) else { return nil }
        guard bytes.count == 32 else { throw BackupError.cardIdentityDamaged(path: configuration.keyFile, detail: "the key file is \(bytes.count) bytes, not 32") }
        return BackupKey(SecretBytes(bytes))
    }

    func keyCheck(_ key: BackupKey) -> String { key.check }

    /// Sets up this device's backup on the card: key slot, journal, first snapshot.
    public func initCard(_ device: DeviceDatabase, passphrase: String) throws -> CardReport {
        guard let root = configuration.cardRoot else { throw AgentError.cardUnavailable(CardReport(state: .notConfigured)) }
        guard (try? card.listDirectory(root)) != nil else { throw BackupError.cardMissing(path: root) }
        let deviceID = try device.deviceID()
        let layout = CardLayout(root: root, device: deviceID)
        if card.exists(layout.identityFile) {
            let existing = try readIdentity(layout)
            throw BackupError.cardOfAnotherDevice(path: root, device: existing.device == deviceID ? "\(deviceID) (already initialised)" : existing.device, expected: deviceID)
        }
        let others = CardLayout.devices(on: root, fileSystem: card).filter { $0 != deviceID }
        if let other = others.first { throw BackupError.cardOfAnotherDevice(path: root, device: other, expected: deviceID) }
        let key = BackupKey.generate()
        let identity = try key.identity(device: deviceID, rep: try device.repID(), passphrase: passphrase,
                                                   cost: configuration.keyCost, now: clock.nowMilliseconds())
        do {
            for directory in [layout.satchelDirectory, layout.deviceDirectory, layout.journalDirectory, layout.snapshotDirectory] {
                try card.createDirectory(directory)
                try card.syncDirectory(Paths.directory(of: directory))
            }
            try local.writeDurably(configuration.keyFile, key.bytes)
            try card.writeDurably(layout.identityFile, try CardJSON.encode(identity))
        } catch let error as FileSystemError {
            throw BackupError.fileSystem(error)
        }
        mirror(device)
        do {
            _ = try snapshot(device)
            return cardReport(device)
        } catch {
            var report = cardReport(device)
            report.message = "first snapshot failed: \(error)"
            return report
        }
    }

    /// Appends every acknowledged change the card does not have yet. Never throws: a card that
    /// is missing, full or failing is reported, and the next capture tries again.
    @discardableResult
    public func mirror(_ device: DeviceDatabase) -> CardReport {
        do {
            return try cardLock.withLock { examine(device, writing: true) }
        } catch {
            return CardReport(state: .failing, path: configuration.cardRoot, message: "\(error)")
        }
    }

    var cardLock: CardLock { CardLock(path: configuration.cardLockFile) }

    /// What `satchel status` shows about the card, without writing to it.
    public func cardReport(_ device: DeviceDatabase) -> CardReport { examine(device, writing: false) }

    private func examine(_ device: DeviceDatabase, writing: Bool) -> CardReport {
        let deviceID: String
        do { deviceID = try device.deviceID() } catch { return CardReport(state: .failing, message: "\(error)") }
        let attached: Attached
        switch attach(device: deviceID) {
        case .failure(var report):
            report.behind = try? device.lastChangeSeq()
            return report
        case .success(let found):
            attached = found
        }
        let journal = CardJournal(layout: attached.layout, key: attached.key, fileSystem: card)
        let writable = card.isWritable(attached.layout.journalDirectory)
        var report = CardReport(state: writable ? .ok : .readOnly, path: attached.layout.root)
        do {
            try journal.open(repair: writing && writable)
            var pending = try device.changes(after: journal.lastSequence)
            if writing && !pending.isEmpty && !writable {
                report.message = "the card is read-only (write-protect switch?); capturing to internal storage only"
            }
            while writing && writable && !pending.isEmpty {
                try journal.append(pending)
                pending = try device.changes(after: journal.lastSequence)
            }
        } catch let error as BackupError {
            report = Self.report(for: error, path: attached.layout.root)
        } catch {
            report = CardReport(state: .failing, path: attached.layout.root, message: "\(error)")
        }
        report.journalThroughSeq = journal.lastSequence
        report.behind = max(0, ((try? device.lastChangeSeq()) ?? 0) - journal.lastSequence)
        let pointer = (try? Snapshots(layout: attached.layout, key: attached.key, card: card).pointers())?.first
        report.snapshotGeneration = pointer?.generation
        report.snapshotCoversSeq = pointer?.coversSequence
        return report
    }

    static func report(for error: BackupError, path: String) -> CardReport {
        if case .fileSystem(let failure) = error {
            switch failure.kind {
            case .noSpace: return CardReport(state: .full, path: path, message: "the card is full; capturing to internal storage only")
            case .readOnly, .permission: return CardReport(state: .readOnly, path: path, message: "the card is read-only; capturing to internal storage only")
            case .notFound, .io: return CardReport(state: .failing, path: path, message: "the card failed or was removed (\(failure)); capturing to internal storage only")
            default: break
            }
        }
        return CardReport(state: .failing, path: path, message: "\(error)")
    }

    /// Takes a snapshot now (after bringing the journal up to date).
    @discardableResult
    public func snapshot(_ device: DeviceDatabase) throws -> SnapshotPointer {
        try cardLock.withLock { try snapshotLocked(device) }
    }

    private func snapshotLocked(_ device: DeviceDatabase) throws -> SnapshotPointer {
        try device.checkForDamage()  // never back up damage; found, it stops writes (DamageMarker)
        let deviceID = try device.deviceID()
        let attached: Attached
        switch attach(device: deviceID) {
        case .failure(let report): throw AgentError.cardUnavailable(report)
        case .success(let found): attached = found
        }
        let journal = CardJournal(layout: attached.layout, key: attached.key, fileSystem: card)
        try journal.open()
        try journal.append(try device.changes(after: journal.lastSequence))
        return try Snapshots(layout: attached.layout, key: attached.key, card: card, local: local)
            .create(from: device.database, workDirectory: configuration.home, journal: journal)
    }

    /// Takes a snapshot if `snapshotEvery` changes have been acknowledged since the newest one.
    public func snapshotIfDue(_ device: DeviceDatabase, report: CardReport) -> SnapshotPointer? {
        guard report.state == .ok, let last = try? device.lastChangeSeq() else { return nil }
        guard last - (report.snapshotCoversSeq ?? 0) >= configuration.snapshotEvery else { return nil }
        return try? snapshot(device)
    }

    /// Rebuilds the database from the card. The key comes from internal storage or, after a
    /// wipe, from the passphrase.
    public func restore(passphrase: String?, device requested: String? = nil) throws -> RestoreReport {
        guard let root = configuration.cardRoot else { throw AgentError.cardUnavailable(CardReport(state: .notConfigured)) }
        guard (try? card.listDirectory(root)) != nil else { throw BackupError.cardMissing(path: root) }
        let devices = CardLayout.devices(on: root, fileSystem: card)
        guard let deviceID = requested ?? (devices.count == 1 ? devices[0] : nil), devices.contains(deviceID) else {
            throw BackupError.noBackup(path: devices.isEmpty ? root : "\(root) (devices on it: \(devices.joined(separator: ", ")); name one with --device)")
        }
        let layout = CardLayout(root: root, device: deviceID)
        let identity = try readIdentity(layout)
        let key: BackupKey
        if let local = try localKey(), keyCheck(local) == identity.keyCheck {
            key = local
        } else if let passphrase {
            key = try BackupKey.unwrap(identity, passphrase: passphrase, path: layout.identityFile)
            try? local.createDirectory(configuration.home)
            do { try local.writeDurably(configuration.keyFile, key.bytes) } catch { throw BackupError.fileSystem(error) }
        } else {
            throw BackupError.wrongKey(path: layout.identityFile + " (no backup key on this device: give the passphrase)")
        }
        try? local.createDirectory(configuration.home)
        return try cardLock.withLock {
            try Restore.run(home: configuration.home, layout: layout, key: key, identity: identity, card: card, clock: clock)
        }
    }

    // MARK: Writes stopped (critical battery)

    public func writesStoppedReason() -> String? {
        guard let bytes = try? local.readAll(configuration.writesStoppedFile) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func stopWrites(reason: String) throws {
        do { try local.writeDurably(configuration.writesStoppedFile, Array(reason.utf8)) } catch { throw BackupError.fileSystem(error) }
    }

    public func resumeWrites() {
        try? local.remove(configuration.writesStoppedFile)
        try? local.syncDirectory(configuration.home)
    }
}
