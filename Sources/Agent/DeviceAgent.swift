public import Backup
public import Field
import FoundationEssentials
public import Journal
import Modem
public import Seal
import Store
import Transport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the device keeps things and how often it backs up: the device's configuration file
/// (`<home>/device.conf`, `DeviceSettings`), with the command line and the environment over it.
public struct AgentConfiguration: Sendable {
    public var home: String
    /// Mount point of the flash card; nil when the device has none configured.
    public var cardRoot: String?
    /// The card path must be a mounted file system: an empty mount point is `absent`, and
    /// `card init` refuses it (the backup would land on internal flash).
    public var cardMustBeMounted = false
    /// Acknowledged changes between snapshots.
    public var snapshotEvery: Int64 = 25
    /// The sysfs `power_supply` directory of the battery (`capacity`, `status`).
    public var batteryDirectory: String?
    public var lowBatteryPercent = 15
    public var criticalBatteryPercent = 5
    /// Argon2id cost for the key slot on the card; the default suits a 32-bit ARM handheld.
    public var keyCost = PasswordHash.Cost.handheld
    /// What `<home>/device.conf` holds (empty when the device has none).
    public var settings = DeviceSettings()

    public init(home: String, cardRoot: String? = nil) {
        self.home = home
        self.cardRoot = cardRoot
    }

    /// The configuration of the device in `home`: its `device.conf`, then what the board profile
    /// it names says (card mount point, battery), with `card` and `battery` given for this one
    /// command over both. A damaged `device.conf` is refused, never replaced.
    public static func load(home: String, card: String? = nil, battery: String? = nil, hardware: String? = nil) throws -> AgentConfiguration {
        let settings = try DeviceSettings.load(home: home)
        var configuration = AgentConfiguration(home: home)
        configuration.settings = settings
        var board: BoardProfile?
        if let name = settings.board {
            do { board = try HardwareDirectory.locate(override: hardware)?.board(name) } catch {
                throw AgentError.configurationDamaged(path: DeviceSettings.path(home: home), line: 0, reason: "board \(name): \(error)")
            }
        }
        configuration.cardRoot = card.map(DeviceSettings.absolute) ?? settings.card ?? board?.cardMount
        // A board's card mount point is a real mount point; so is one the technician marked so.
        configuration.cardMustBeMounted = settings.cardMustBeMounted || (card == nil && settings.card == nil && board?.cardMount != nil)
        configuration.batteryDirectory = battery.map(DeviceSettings.absolute) ?? settings.battery ?? board?.batteryCapacity.map { Paths.directory(of: $0) }
        return configuration
    }

    var keyFile: String { Paths.join(home, "card.key") }
    var cardLockFile: String { Paths.join(home, "card.lock") }
    var snapshotLockFile: String { Paths.join(home, "snapshot.lock") }
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
        /// The card is there and healthy, but acknowledged changes are not on it yet.
        case behind
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
    /// The card can be written (it may still be behind).
    public var isUsable: Bool { state == .ok || state == .behind }

    /// One line for people: state, path, how far the journal goes, the snapshot, why.
    public var summary: String {
        var text = state.rawValue
        if let path { text += " (\(path))" }
        if let through = journalThroughSeq { text += ", journal through change \(through)" }
        if let behind, behind > 0, state != .notConfigured { text += ", \(behind) change\(behind == 1 ? "" : "s") behind" }
        if let generation = snapshotGeneration { text += ", snapshot #\(generation) covers change \(snapshotCoversSeq ?? 0)" }
        if let message { text += ": \(message)" }
        return text
    }
}

public enum AgentError: Error, CustomStringConvertible, Equatable {
    case writesStopped(reason: String)
    case cardUnavailable(CardReport)
    case restoreNeeded(problem: String, card: String, device: String)
    case configurationDamaged(path: String, line: Int, reason: String)
    case configurationInvalid(key: String, value: String, reason: String)
    case storage(path: String, detail: String)
    case upgradeNeeded(path: String)
    case cardNotMounted(path: String)
    case cardTooSmall(path: String, needed: Int64, free: Int64?)
    /// The handheld's workplace (the rep's role, set by the hub) does not include the function;
    /// `function` nil: the role itself is one this satchel does not know.
    case workplaceRefused(function: WorkplaceFunction?, workplace: String)

    public var description: String {
        switch self {
        case .writesStopped(let reason): return "writing is stopped: \(reason); nothing was saved. Plug in the charger; the next command resumes writing once the battery charges"
        case .cardUnavailable(let report) where report.state == .notConfigured:
            return "no card configured: pass --card DIR once (`satchel card init` records it), or `satchel config set card DIR`"
        case .cardUnavailable(let report): return "card \(report.path ?? ""): \(report.state.rawValue)\(report.message.map { " — \($0)" } ?? "")"
        case .restoreNeeded(let problem, let card, let device):
            return "\(problem)\nThe card at \(card) holds the backup of device \(device): nothing was rebuilt; restore it with `satchel restore` (add --passphrase-stdin when this device lost its backup key; the technician has the passphrase)"
        case .configurationDamaged(let path, let line, let reason):
            return "the device configuration \(path) is damaged\(line > 0 ? " at line \(line)" : "") (\(reason)); it was left as it is: correct it (`satchel config show` lists the keys) or move it away and provision again"
        case .configurationInvalid(let key, let value, let reason):
            return "configuration \(key) = '\(value)': \(reason); nothing was changed"
        case .storage(let path, let detail): return "cannot write \(path) (\(detail)); nothing was changed"
        case .upgradeNeeded(let path):
            return "\(path) was written by an older satchel: the next command that writes (a capture, `satchel backup`, a sync) brings it up to date; read-only commands never change it"
        case .cardNotMounted(let path):
            return "nothing is mounted at \(path) (it is a directory of the file system around it, not a card): insert the card and mount it; nothing was written"
        case .cardTooSmall(let path, let needed, let free):
            let room = free.map { "has \($0 / 1024) KiB free" } ?? "ran out of space"
            return "the card at \(path) \(room), the backup needs about \(needed / 1024) KiB: use a larger card or free space on it; nothing was left on it"
        case .workplaceRefused(let function?, let workplace):
            let plural = Workplace(rawValue: workplace)?.plural ?? workplace
            return "\(plural) do not \(function.doing); this handheld's workplace is \(workplace.split(separator: "_").joined(separator: " ")) (set by the hub); nothing was saved. If the role is wrong, the office changes it (satchel-hub rep scope --role) and the next sync brings it"
        case .workplaceRefused(nil, let workplace):
            return "this handheld's workplace '\(workplace)' is not one this satchel knows (rep, merchandiser, technician, supervisor, van_seller); nothing was saved: update satchel, or have the office correct the role"
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .writesStopped: return 75
        case .cardUnavailable, .restoreNeeded, .cardNotMounted: return 66
        case .configurationDamaged: return 78  // EX_CONFIG
        case .configurationInvalid: return 65
        case .storage, .cardTooSmall: return 74
        case .upgradeNeeded: return 69
        case .workplaceRefused: return 77  // EX_NOPERM: not this workplace's function
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
    /// When the sync reached each `SyncPhase` (CLOCK_MONOTONIC nanoseconds, 0 while not reached),
    /// indexed by its raw value: `satchel sync --json`'s `phases`. One passed more than once (a
    /// frame applied, a busy hub's retry) keeps its last time.
    public internal(set) var phaseTimes = [UInt64](repeating: 0, count: SyncPhase.count)

    public init(_ configuration: AgentConfiguration, cardFileSystem: any FileSystem = PosixFileSystem(), clock: any WallClock = SystemClock()) {
        self.configuration = configuration
        self.card = cardFileSystem
        self.clock = clock
    }

    // MARK: Opening

    /// Opens the device database for a command that writes. When it is missing or damaged and
    /// the card holds a backup this device can open (its key is on internal storage), restores it
    /// first and says so loudly on `notice`: the rep must know the device was rebuilt.
    public func open(notice: (String) -> Void = { _ in }) throws -> DeviceDatabase {
        let device = try openUnchecked(notice: notice)
        try enforceContactPolicy(device, writing: true)
        return device
    }

    /// `open` without the offline policy (`ContactPolicy`): for sync, which is how a locked
    /// handheld unlocks. A wiped one is still refused.
    func openUnchecked(notice: (String) -> Void = { _ in }) throws -> DeviceDatabase {
        try refuseIfWiped()
        try activateDataKey()
        do {
            return try DeviceDatabase.open(home: configuration.home, clock: clock)
        } catch let error as FieldError {
            switch error {
            case .notInitialised, .damagedDatabase:
                guard let restored = try? automaticRestore(after: error) else {
                    throw restoreAdvice(for: error) ?? error
                }
                try activateDataKey()  // a sealed database restored onto a device without a password
                notice("WARNING: \(error.description)\nTHE DATABASE WAS REBUILT FROM THE CARD: snapshot generation \(restored.snapshotGeneration.map(String.init) ?? "none"), \(restored.replayed) journal entries replayed, through change \(restored.lastSequence).")
                return try DeviceDatabase.open(home: configuration.home, clock: clock)
            default:
                throw error
            }
        }
    }

    /// Opens the device database for a command that only reads (`status`, `doctor`, `keys`,
    /// lists and shows): nothing is migrated, restored or rewritten, no file is created. A
    /// missing or damaged database is reported, with `satchel restore` when the card holds a
    /// backup, and left as it is.
    /// `whileLocked`: the commands a locked handheld still runs (status, keys, doctor).
    public func openForReading(whileLocked: Bool = false) throws -> DeviceDatabase {
        try refuseIfWiped()
        try activateDataKey()
        let device: DeviceDatabase
        do {
            device = try DeviceDatabase.openReadOnly(home: configuration.home, clock: clock)
        } catch let error as FieldError {
            switch error {
            case .notInitialised, .damagedDatabase: throw restoreAdvice(for: error) ?? error
            default: throw error
            }
        }
        guard try device.schemaIsCurrent() else { throw AgentError.upgradeNeeded(path: device.path) }
        try enforceContactPolicy(device, writing: false, whileLocked: whileLocked)
        return device
    }

    /// When the card holds a backup (this device's, when its key tells which), the advice to
    /// restore it, instead of the bare error.
    private func restoreAdvice(for error: FieldError) -> AgentError? {
        guard let root = configuration.cardRoot else { return nil }
        let backups = CardLayout.devices(on: root, fileSystem: card)
        let key = try? localKey()
        let ours = backups.first { device in
            guard let key, let identity = try? readIdentity(CardLayout(root: root, device: device)) else { return false }
            return identity.keyCheck == keyCheck(key)
        }
        guard let device = ours ?? backups.first else { return nil }
        return AgentError.restoreNeeded(problem: error.description, card: root, device: device)
    }

    /// As `open`, for commands that write: refuses while writing is stopped (critical battery),
    /// unless the battery, read again now, is charging or above the critical level: then writing
    /// resumes at once, without waiting for the daemon.
    public func openForWriting(notice: (String) -> Void = { _ in }) throws -> DeviceDatabase {
        try ensureWritable(notice: notice)
        return try open(notice: notice)
    }

    /// Throws `writesStopped` while writing is stopped and the battery does not allow it yet;
    /// resumes writing (and says so) once it does.
    public func ensureWritable(notice: (String) -> Void = { _ in }) throws {
        guard let reason = writesStoppedReason() else { return }
        guard let battery = readBattery(), battery.charging || battery.percent > configuration.criticalBatteryPercent else {
            throw AgentError.writesStopped(reason: reason)
        }
        resumeWrites()
        notice("writing resumed: battery \(battery.percent)%\(battery.charging ? ", charging" : "")")
    }

    // MARK: Capture: what "saved" means

    /// A change this device acknowledged, and whether the card has it.
    public struct Saved<Value> {
        public let value: Value
        /// The change journal's last sequence once the capture committed: ours is at or below it.
        public let sequence: Int64
        /// The card as the capture left it (`notConfigured` when the device has no card).
        public let card: CardReport

        /// The change is on the card: appended and fsynced to this device's card journal.
        public var onCard: Bool { card.isUsable && (card.journalThroughSeq ?? 0) >= sequence }

        /// Why the change is on this device only, or nil when the card has it or there is no card.
        public var warning: String? {
            guard card.state != .notConfigured, !onCard else { return nil }
            return "WARNING: saved on this device only, not yet on the card: \(card.summary)"
        }
    }

    /// The one way a change is saved on this device, for every capture command, the console and
    /// anything else that writes documents: open for writing (restoring loudly if the database
    /// was lost), run `body` (one durable transaction: committed with `synchronous=FULL` when it
    /// returns), then append what the card lacks to the card journal and fsync it. `acknowledge`
    /// then gets the result (the command prints it and flushes); only after that is a snapshot
    /// taken when one is due, so a dying battery never holds up the acknowledgement.
    /// "Saved" means: committed, and on the card when the device has one; when the card does not
    /// have it, `Saved.warning` says why.
    /// `function` is what the capture does: refused, before anything is written, when this
    /// handheld's workplace does not include it (`Workplace`).
    @discardableResult
    public func capture<Value>(_ function: WorkplaceFunction, notice: (String) -> Void = { _ in }, _ body: (DeviceDatabase) throws -> Value,
                               acknowledge: (Saved<Value>) throws -> Void = { _ in }) throws -> Saved<Value> {
        let device = try openForWriting(notice: notice)
        return try capture(function, in: device, notice: notice, body, acknowledge: acknowledge)
    }

    /// As `capture`, on a database a long-running caller (the console, a benchmark) keeps open.
    @discardableResult
    public func capture<Value>(_ function: WorkplaceFunction, in device: DeviceDatabase, notice: (String) -> Void = { _ in }, _ body: (DeviceDatabase) throws -> Value,
                               acknowledge: (Saved<Value>) throws -> Void = { _ in }) throws -> Saved<Value> {
        try ensureWritable(notice: notice)
        try checkWorkplace(function, on: device)
        let value = try body(device)
        // Our change is committed: it is at or below the journal's last sequence now. Other
        // satchel processes may commit more meanwhile; what this capture owes the rep is that its
        // own change reached the card.
        let saved = Saved(value: value, sequence: try device.lastChangeSeq(), card: mirror(device))
        try acknowledge(saved)
        _ = snapshotIfDue(device, report: saved.card)
        return saved
    }

    private func automaticRestore(after error: FieldError) throws -> RestoreReport? {
        guard let root = configuration.cardRoot, let key = try localKey() else { return nil }
        let devices = CardLayout.devices(on: root, fileSystem: card)
        guard devices.count == 1 else { return nil }
        let layout = CardLayout(root: root, device: devices[0])
        let identity = try readIdentity(layout)
        guard identity.keyCheck == keyCheck(key) else { return nil }
        return try withPageKey(from: key) {
            try Restore.run(home: configuration.home, layout: layout, key: key, identity: identity, card: card, clock: clock)
        }
    }

    // MARK: The card

    struct Attached {
        var layout: CardLayout
        var key: BackupKey
        var identity: CardIdentity
    }

    /// Finds this device's backup on the card, or says why it cannot be used.
    func attach(device: String) -> Result<Attached, CardReport> {
        guard let root = configuration.cardRoot else {
            // A device with a backup key backs up to a card: not knowing where it is must be loud.
            guard hasLocalKey else { return .failure(CardReport(state: .notConfigured)) }
            return .failure(CardReport(state: .absent, message: "this device backs up to a card (its key is \(configuration.keyFile)) but no card mount point is configured: `satchel config set card /media/card` (the card's mount point)"))
        }
        let layout = CardLayout(root: root, device: device)
        // The card this process attached last, while its card.json and the device's card.key are
        // the very files read then (one stat each instead of listing the mount point and reading
        // and decoding both): a card pulled, swapped or re-initialised, or a key replaced, fails
        // the comparison and is attached again from scratch below.
        let identityPrint = card.fingerprint(layout.identityFile), keyPrint = local.fingerprint(configuration.keyFile)
        if let lastAttached, lastAttached.attached.layout.root == root, lastAttached.attached.layout.device == device, let identityPrint, let keyPrint,
           lastAttached.identity == identityPrint, lastAttached.key == keyPrint {
            return .success(lastAttached.attached)
        }
        lastAttached = nil
        guard (try? card.listDirectory(root)) != nil else {
            return .failure(CardReport(state: .absent, path: root, message: "no card mounted at \(root)"))
        }
        guard card.exists(layout.identityFile) else {
            let others = CardLayout.devices(on: root, fileSystem: card).filter { $0 != device }
            if !others.isEmpty {
                return .failure(CardReport(state: .foreign, path: root, message: "the card holds the backup of \(others.joined(separator: ", ")), not \(device); it is left untouched"))
            }
            // This device has backed up to a card before: a mount point without its backup is an
            // empty mount point (the card is out or not mounted) or another, blank card. Never
            // advise `card init` there: it would write the backup to internal flash.
            if hasLocalKey {
                return .failure(CardReport(state: .absent, path: root, message: "this device's card is not at \(root) (the mount point holds no backup of \(device)): insert and mount the card (for a replacement card see \"The flash card\" in the technician guide)"))
            }
            if configuration.cardMustBeMounted && !MountPoint.isMounted(root) {
                return .failure(CardReport(state: .absent, path: root, message: "nothing is mounted at \(root): insert the card"))
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
        let key: BackupKey
        do {
            guard let found = try localKey() else {
                return .failure(CardReport(state: .keyMissing, path: root, message: "the backup key is not on this device: `satchel card init` again, or `satchel restore` with the passphrase"))
            }
            key = found
        } catch {
            return .failure(CardReport(state: .keyMissing, path: root, message: "\(error)"))
        }
        guard keyCheck(key) == identity.keyCheck else {
            return .failure(CardReport(state: .foreign, path: root, message: "this device's backup key does not open the card's backup"))
        }
        let attached = Attached(layout: layout, key: key, identity: identity)
        // The fingerprints were taken before the reads: a file changed since differs next time.
        if let identityPrint, let keyPrint { lastAttached = (attached, identityPrint, keyPrint) }
        return .success(attached)
    }

    /// The card `attach` found last and the fingerprints of the two files it read to find it
    /// (nil until then, after a failed attach, and on a file system that gives no fingerprints).
    private var lastAttached: (attached: Attached, identity: FileFingerprint, key: FileFingerprint)?

    func readIdentity(_ layout: CardLayout) throws -> CardIdentity {
        let bytes: [UInt8]
        do { bytes = try card.read(layout.identityFile, max: CardJSON.maxBytes) } catch { throw BackupError.fileSystem(error) }
        return try CardJSON.decode(bytes, path: layout.identityFile)
    }

    func localKey() throws -> BackupKey? {
        if let key = try dataBackupKey() { return key }
        guard let bytes = try IdentityFiles.readKey(configuration.keyFile, advice: Self.cardKeyAdvice) else { return nil }
        return BackupKey(SecretBytes(bytes))
    }

    func keyCheck(_ key: BackupKey) -> String { key.check }

    /// The device has a backup key: it has been set up to back up to a card.
    var hasLocalKey: Bool { local.exists(configuration.keyFile) }

    /// Sets up this device's backup on the card: key slot, journal, first snapshot, and records
    /// the card's mount point in the device configuration. It refuses a mount point with nothing
    /// mounted when the card must be mounted, and a card without room for the backup, before
    /// writing anything; if it fails half-way, what it wrote is removed again (the card and the
    /// device's backup key are as they were), so a failed `card init` never looks like a backup.
    public func initCard(_ device: DeviceDatabase, passphrase: String) throws -> CardReport {
        guard let root = configuration.cardRoot else { throw AgentError.cardUnavailable(CardReport(state: .notConfigured)) }
        guard (try? card.listDirectory(root)) != nil else { throw BackupError.cardMissing(path: root) }
        if configuration.cardMustBeMounted && !MountPoint.isMounted(root) { throw AgentError.cardNotMounted(path: root) }
        let deviceID = try device.deviceID()
        let layout = CardLayout(root: root, device: deviceID)
        if card.exists(layout.identityFile) {
            let existing = try readIdentity(layout)
            throw BackupError.cardOfAnotherDevice(path: root, device: existing.device == deviceID ? "\(deviceID) (already initialised)" : existing.device, expected: deviceID)
        }
        let others = CardLayout.devices(on: root, fileSystem: card).filter { $0 != deviceID }
        if let other = others.first { throw BackupError.cardOfAnotherDevice(path: root, device: other, expected: deviceID) }
        let needed = try backupBytesNeeded(device)
        if let free = card.freeBytes(root), free < needed { throw AgentError.cardTooSmall(path: root, needed: needed, free: free) }
        // With an app password the data key is the backup key (docs/architecture.md, Security).
        let dataKey = try activateDataKey()
        let key = dataKey?.backupKey ?? BackupKey.generate()
        let identity = try key.identity(device: deviceID, rep: try device.repID(), passphrase: passphrase,
                                                   cost: configuration.keyCost, now: clock.nowMilliseconds())
        let previousKey = try? local.read(configuration.keyFile, max: 4096)
        let satchelDirectoryExisted = (try? card.listDirectory(layout.satchelDirectory)) != nil
        do {
            for directory in [layout.satchelDirectory, layout.deviceDirectory, layout.journalDirectory, layout.snapshotDirectory] {
                try card.createDirectory(directory)
                try card.syncDirectory(Paths.directory(of: directory))
            }
            try IdentityFiles.writeAtomically(configuration.keyFile, dataKey == nil ? key.bytes : Self.cardKeyMarker)
            try card.writeDurably(layout.identityFile, try CardJSON.encode(identity))
            try sealOnCard(device, Attached(layout: layout, key: key, identity: identity))
            let mirrored = mirror(device)
            guard mirrored.isHealthy else { throw AgentError.cardUnavailable(mirrored) }
            _ = try snapshot(device)
        } catch {
            removeBackup(layout, removingSatchelDirectory: !satchelDirectoryExisted)
            if let previousKey { try? IdentityFiles.writeAtomically(configuration.keyFile, previousKey) } else {
                try? local.remove(configuration.keyFile)
                try? local.syncDirectory(configuration.home)
            }
            let full: Bool
            switch error {
            case BackupError.fileSystem(let failure), let failure as FileSystemError: full = failure.kind == .noSpace
            case AgentError.cardUnavailable(let report): full = report.state == .full
            default: full = false
            }
            if full {
                throw AgentError.cardTooSmall(path: root, needed: needed, free: card.freeBytes(root))
            }
            if let failure = error as? FileSystemError { throw BackupError.fileSystem(failure) }
            throw error
        }
        if configuration.settings.card != root {
            var settings = configuration.settings
            settings["card"] = root
            try settings.write(home: configuration.home)
        }
        return cardReport(device)
    }

    /// About what the first backup takes on the card: the database as a snapshot (sealed in
    /// 64 KiB chunks) and every change in the card journal, with room to spare.
    func backupBytesNeeded(_ device: DeviceDatabase) throws -> Int64 {
        try device.guarded {
            let database = try device.database.fileSize()
            let journal = try device.database.int64("SELECT COALESCE(sum(length(CAST(payload AS BLOB)) + 128), 0) FROM changes")
            return database + database / 64 + journal + 256 * 1024
        }
    }

    /// Removes a directory and everything below it, files first, each directory fsynced before
    /// it goes; what cannot be removed is left (best effort: callers report what matters).
    static func removeTree(_ path: String, on fileSystem: any FileSystem) {
        for name in (try? fileSystem.listDirectory(path)) ?? [] {
            let child = Paths.join(path, name)
            if (try? fileSystem.listDirectory(child)) != nil { removeTree(child, on: fileSystem) } else { try? fileSystem.remove(child) }
        }
        try? fileSystem.syncDirectory(path)
        try? fileSystem.removeDirectory(path)
    }

    /// Removes this device's backup directory from the card, files first (after a failed init).
    func removeBackup(_ layout: CardLayout, removingSatchelDirectory: Bool) {
        Self.removeTree(layout.deviceDirectory, on: card)
        if removingSatchelDirectory { try? card.removeDirectory(layout.satchelDirectory) }
        try? card.syncDirectory(layout.root)
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
    /// One snapshot at a time (the daemon's and `satchel backup`'s): held through a whole snapshot,
    /// while the card lock is held only for the journal catch-up and the commit.
    var snapshotLock: CardLock { CardLock(path: configuration.snapshotLockFile) }

    /// The card journal this agent last appended to, kept between captures (the console, the
    /// daemon and the benchmarks capture many times in one process) so an append does not read
    /// and check the whole journal again: `CardJournal.reopen` reads the card again only when
    /// something else changed the journal since. Used only with the card lock held.
    private var held: (root: String, device: String, keyCheck: String, journal: CardJournal)?

    private func heldJournal(_ attached: Attached) -> CardJournal {
        if let held, held.root == attached.layout.root, held.device == attached.layout.device, held.keyCheck == attached.identity.keyCheck {
            return held.journal
        }
        let journal = CardJournal(layout: attached.layout, key: attached.key, fileSystem: card)
        held = (attached.layout.root, attached.layout.device, attached.identity.keyCheck, journal)
        return journal
    }

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
        let journal = writing ? heldJournal(attached) : CardJournal(layout: attached.layout, key: attached.key, fileSystem: card)
        let writable = card.isWritable(attached.layout.journalDirectory)
        var report = CardReport(state: writable ? .ok : .readOnly, path: attached.layout.root)
        do {
            if writing && writable { try journal.reopen() } else { try journal.open(repair: false) }
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
        if report.state == .ok, let behind = report.behind, behind > 0 {
            report.state = .behind
            report.message = report.message ?? "\(behind) acknowledged change\(behind == 1 ? " is" : "s are") not on the card yet: the next capture or `satchel backup` copies \(behind == 1 ? "it" : "them")"
        }
        let pointer = newestPointer(attached)
        report.snapshotGeneration = pointer?.generation
        report.snapshotCoversSeq = pointer?.coversSequence
        return report
    }

    /// The newest snapshot pointer on the card, read again only when either pointer slot is not
    /// the file read last time (a snapshot by this or another process rewrites one), or a slot
    /// that was missing then is there now (the second snapshot writes the second slot).
    private func newestPointer(_ attached: Attached) -> SnapshotPointer? {
        let slots = (0..<2).map { pointerSlotState(attached.layout.pointerSlot($0)) }
        if let lastPointer, lastPointer.root == attached.layout.root, lastPointer.device == attached.layout.device,
           !slots.contains(nil), lastPointer.slots == slots {
            return lastPointer.pointer
        }
        lastPointer = nil
        guard let pointers = try? Snapshots(layout: attached.layout, key: attached.key, card: card).pointers() else { return nil }
        // States taken before the read, so a slot written meanwhile differs next time.
        if !slots.contains(nil) { lastPointer = (attached.layout.root, attached.layout.device, slots, pointers.first) }
        return pointers.first
    }

    /// What a pointer slot was when `newestPointer` last looked: the file it read, or no file.
    enum PointerSlotState: Equatable {
        case file(FileFingerprint)
        case absent
    }

    /// A slot's state, or nil when it cannot be told (a file the file system gives no fingerprint
    /// of, or a failure to look): then the pointer is read again each time, never kept. A card
    /// with one snapshot so far has one slot absent; caching that (one `stat` that finds no file)
    /// spares every capture reading the other slot again.
    private func pointerSlotState(_ path: String) -> PointerSlotState? {
        if let print = card.fingerprint(path) { return .file(print) }
        do { return try card.fileSize(path) == nil ? .absent : nil } catch { return nil }
    }

    private var lastPointer: (root: String, device: String, slots: [PointerSlotState?], pointer: SnapshotPointer?)?

    static func report(for error: BackupError, path: String) -> CardReport {
        if case .fileSystem(let failure) = error {
            switch failure.kind {
            // The failure itself goes into the message: the technician needs the path and errno.
            case .noSpace: return CardReport(state: .full, path: path, message: "the card is full (\(failure)); capturing to internal storage only")
            case .readOnly, .permission: return CardReport(state: .readOnly, path: path, message: "the card is read-only (\(failure)); capturing to internal storage only")
            case .notFound, .io: return CardReport(state: .failing, path: path, message: "the card failed or was removed (\(failure)); capturing to internal storage only")
            default: break
            }
        }
        return CardReport(state: .failing, path: path, message: "\(error)")
    }

    /// Takes a snapshot now (after bringing the journal up to date). Captures go on meanwhile:
    /// the card lock (one writer to the card journal) is held only to bring the journal up to date
    /// before the copy and to commit the snapshot's pointer and trim the journal after it, never
    /// while the database is copied, encrypted and read back (SQLite's online backup reads one
    /// consistent view by itself). The snapshot covers what it copied; changes committed after
    /// the catch-up are appended by their own captures and replayed on restore.
    @discardableResult
    public func snapshot(_ device: DeviceDatabase) throws -> SnapshotPointer {
        try snapshotLock.withLock {
            try device.checkForDamage()  // never back up damage; found, it stops writes (DamageMarker)
            let deviceID = try device.deviceID()
            let attached: Attached
            switch attach(device: deviceID) {
            case .failure(let report): throw AgentError.cardUnavailable(report)
            case .success(let found): attached = found
            }
            try cardLock.withLock {
                // Checks every segment (captures trust what they appended): damage on the card is
                // found and cut here, at the latest, and the records re-appended from the device.
                let journal = heldJournal(attached)
                try journal.open()
                try journal.append(try device.changes(after: journal.lastSequence))
                try sealOnCard(device, attached)  // identity and epoch travel with every snapshot
            }
            let snapshots = Snapshots(layout: attached.layout, key: attached.key, card: card, local: local)
            let pointer = try snapshots.write(from: device.database, workDirectory: configuration.home)
            try cardLock.withLock {
                let journal = heldJournal(attached)
                try journal.reopen()
                try snapshots.commit(pointer, journal: journal)
            }
            return pointer
        }
    }

    /// Takes a snapshot if `snapshotEvery` changes have been acknowledged since the newest one.
    public func snapshotIfDue(_ device: DeviceDatabase, report: CardReport) -> SnapshotPointer? {
        guard report.isHealthy, let last = try? device.lastChangeSeq() else { return nil }
        guard last - (report.snapshotCoversSeq ?? 0) >= configuration.snapshotEvery else { return nil }
        return try? snapshot(device)
    }

    /// Rebuilds the database from the card. The key comes from internal storage or, after a
    /// wipe, from the passphrase.
    /// `force`: replace a database that opens too (refused otherwise, listing what it would drop).
    /// `advancingEpoch`: false only for a read-only copy (upload mode's recovered card).
    /// `appPassword`: on a handheld without one, the key unwrapped from the passphrase is
    /// sealed under it at once (`keepRestoredKey`), so it never sits in the data directory; on a
    /// handheld with one, its current password (it unlocks). There a passphrase restore is
    /// refused when the device is locked, its keys were destroyed, or the card's key is not the
    /// data key: no second key is ever kept in plaintext beside `data.key`.
    public func restore(passphrase: String?, device requested: String? = nil, force: Bool = false,
                        advancingEpoch: Bool = true, appPassword: String? = nil) throws -> RestoreReport {
        guard let root = configuration.cardRoot else { throw AgentError.cardUnavailable(CardReport(state: .notConfigured)) }
        guard (try? card.listDirectory(root)) != nil else { throw BackupError.cardMissing(path: root) }
        let devices = CardLayout.devices(on: root, fileSystem: card)
        guard let deviceID = requested ?? (devices.count == 1 ? devices[0] : nil), devices.contains(deviceID) else {
            throw BackupError.noBackup(path: devices.isEmpty ? root : "\(root) (devices on it: \(devices.joined(separator: ", ")); name one with --device)")
        }
        let layout = CardLayout(root: root, device: deviceID)
        let identity = try readIdentity(layout)
        // On a device that has (or had) an app password, a key from the passphrase may be kept
        // only as the data key under that password (issue 14: nothing usable in the data
        // directory without it); whatever cannot be is refused here, before anything changes.
        if deviceLock.hasPassword {
            if deviceLock.state == .destroyed { throw DeviceLockError.restoreOverDestroyedKeys(home: configuration.home) }
            // --app-password-stdin is the device's current password then: it unlocks (a wrong
            // one counts as at `satchel unlock`).
            if let appPassword { try unlock(password: appPassword) }
            if passphrase != nil && deviceLock.state == .locked { throw DeviceLockError.restoreNeedsAppPassword(home: configuration.home) }
        }
        let key: BackupKey
        var unwrapped = false
        if let local = try localKeyForRestore(passphraseGiven: passphrase != nil), keyCheck(local) == identity.keyCheck {
            key = local
        } else if let passphrase {
            key = try BackupKey.unwrap(identity, passphrase: passphrase, path: layout.identityFile)
            unwrapped = true
            if deviceLock.hasPassword {
                guard let dataKey = try deviceLock.unlockedKey() else { throw DeviceLockError.restoreNeedsAppPassword(home: configuration.home) }
                guard dataKey.backupKey.check == key.check else {
                    throw DeviceLockError.restoreKeyNotDataKey(home: configuration.home, cardCheck: key.check, dataCheck: dataKey.backupKey.check)
                }
            } else if let appPassword {
                try DeviceLock.checkAcceptable(appPassword)
            }
        } else {
            throw BackupError.wrongKey(path: layout.identityFile + " (no backup key on this device: give the passphrase)")
        }
        try? local.createDirectory(configuration.home)
        // A snapshot of a device with an app password holds sealed pages: the backup key is the
        // data key, so its page key opens them, and the rebuilt database lands sealed.
        var report = try withPageKey(from: key) {
            try cardLock.withLock {
                try Restore.run(home: configuration.home, layout: layout, key: key, identity: identity, card: card, clock: clock,
                                force: force, advancingEpoch: advancingEpoch)
            }
        }
        if unwrapped, let line = try keepRestoredKey(key, appPassword: appPassword) { report.identity.append(line) }
        return report
    }

    /// Where the key a restore unwrapped from the passphrase is kept, never in plaintext on
    /// internal storage when the restored data is sealed:
    /// - an app password set: it is the data key (`restore` checked), sealed in `data.key` already;
    /// - an app password given: `data.key` sealed under it, the session started (unlocked);
    /// - a sealed database and no app password: the tmpfs session only (`SessionKeyFile`), until
    ///   `satchel password set` seals it; a reboot (or the idle lock) before then means
    ///   restoring again with the passphrase, the card still has everything;
    /// - a plain database on a handheld without an app password: `card.key`, as before app
    ///   passwords (that handheld keeps nothing sealed).
    /// Returns the line for the restore report, if any.
    func keepRestoredKey(_ key: BackupKey, appPassword: String?) throws -> String? {
        let dataKey = DataKey(SecretBytes(key.bytes))
        if deviceLock.hasPassword {
            // `restore` let only the data key itself through: card.key says so and holds no key.
            try IdentityFiles.writeAtomically(configuration.keyFile, Self.cardKeyMarker)
            return nil
        }
        if let appPassword {
            _ = try deviceLock.setPassword(appPassword, key: dataKey)
            try IdentityFiles.writeAtomically(configuration.keyFile, Self.cardKeyMarker)
            try sealDatabaseIfPlain(with: dataKey)
            try sealIdentity(with: dataKey)
            return "the data key is sealed under the app password given; the device is unlocked"
        }
        guard PageEncryption.looksSealed(Paths.join(configuration.home, DeviceDatabase.fileName)) else {
            try IdentityFiles.writeAtomically(configuration.keyFile, key.bytes)
            return nil
        }
        try deviceLock.session.write(dataKey)
        try IdentityFiles.writeAtomically(configuration.keyFile, Self.cardKeyMarker)
        try sealIdentity(with: dataKey)
        return "the data key is held in memory only (not in the data directory): set the app password now (`satchel password set`); after a reboot before that, restore again with the passphrase"
    }

    // MARK: Writes stopped (critical battery)

    public func writesStoppedReason() -> String? {
        guard let bytes = try? local.read(configuration.writesStoppedFile, max: 4096) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func stopWrites(reason: String) throws {
        do { try local.writeDurably(configuration.writesStoppedFile, Array(reason.utf8)) } catch { throw BackupError.fileSystem(error) }
    }

    /// The battery now, when the device has one configured.
    public func readBattery() -> BatteryReading? {
        guard let directory = configuration.batteryDirectory else { return nil }
        return BatteryReading.read(directory: directory, lowPercent: configuration.lowBatteryPercent,
                                   criticalPercent: configuration.criticalBatteryPercent)
    }

    /// Whether this device may write, as `satchel status` shows it.
    public struct Writing: Codable, Sendable, Equatable {
        public var stopped: Bool
        public var reason: String?
        public var battery: BatteryReading?
        /// Stopped, but the battery now allows writing: the next command that writes resumes.
        public var resumesOnNextWrite: Bool

        enum CodingKeys: String, CodingKey {
            case stopped, reason, battery
            case resumesOnNextWrite = "resumes_on_next_write"
        }
    }

    public func writing() -> Writing {
        let reason = writesStoppedReason()
        let battery = readBattery()
        let allows = battery.map { $0.charging || $0.percent > configuration.criticalBatteryPercent } ?? false
        return Writing(stopped: reason != nil, reason: reason, battery: battery, resumesOnNextWrite: reason != nil && allows)
    }

    public func resumeWrites() {
        try? local.remove(configuration.writesStoppedFile)
        try? local.syncDirectory(configuration.home)
    }
}
