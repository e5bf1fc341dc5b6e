import Backup
import Field
import Journal
import Seal
import Store
import Sync
import SystemCalls
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Crypto-erase: the handheld destroys its keys, so what it and its card hold can no longer be
/// read. Ordered by the hub (`satchel-hub device lost`, at the next contact) or by the offline
/// policy (`ContactPolicy`).
extension DeviceAgent {
    public static let wipedMarkerName = "device.wiped"
    var wipedMarker: String { Paths.join(configuration.home, Self.wipedMarkerName) }

    public struct WipeReport: Sendable, Encodable {
        public var reason: String
        /// Key files overwritten and removed.
        public var destroyedKeys: [String]
        /// Card key slots (`card.json`, the backup key wrapped under the passphrase) overwritten and removed.
        public var destroyedCardKeys: [String]
        /// Plain data files removed (the internal database while it is not encrypted).
        public var removed: [String]
        var keyFileCount: String {
            let count = destroyedKeys.count + destroyedCardKeys.count
            return "\(count) key file\(count == 1 ? "" : "s")"
        }
        enum CodingKeys: String, CodingKey {
            case reason, removed
            case destroyedKeys = "destroyed_keys"
            case destroyedCardKeys = "destroyed_card_keys"
        }
    }

    /// Why and when this handheld was wiped, when it was; nil otherwise.
    public func wipedReason() -> String? {
        guard let bytes = try? local.read(wipedMarker, max: FileSystemLimits.smallFile) else { return nil }
        return TerminalText.safe(String(decoding: bytes, as: UTF8.self))
    }

    /// Destroys the keys. The marker is written first, so a wipe a power cut interrupts is
    /// finished by the next command (`open` sees the marker and wipes again), and every command
    /// after it says what happened instead of "not initialised". Never throws: each step that can
    /// run, runs.
    @discardableResult
    public func wipe(reason: String) -> WipeReport {
        let at = CalendarDay.minute(fromMilliseconds: clock.nowMilliseconds())
        if !local.exists(wipedMarker) { try? local.writeDurably(wipedMarker, Array("\(reason), at \(at)".utf8)) }
        var report = WipeReport(reason: reason, destroyedKeys: [], destroyedCardKeys: [], removed: [])
        // The card's key slot first, while the local key still says which backup on the card is ours.
        if let root = configuration.cardRoot {
            // Ours: the backup whose key check is our key's, else the one named by our device id.
            let check = (try? escrowKey())??.check
            let ownID = try? DeviceDatabase.openReadOnly(home: configuration.home, clock: clock).deviceID()
            for device in CardLayout.devices(on: root, fileSystem: card) {
                let layout = CardLayout(root: root, device: device)
                guard let identity = try? readIdentity(layout) else { continue }
                guard check.map({ identity.keyCheck == $0 }) ?? (ownID.map { $0 == device } ?? true) else { continue }
                if Self.shred(layout.identityFile) { report.destroyedCardKeys.append(layout.identityFile) }
            }
        }
        for file in keyFiles where Self.shred(file) { report.destroyedKeys.append(file) }
        // The unlocked data key on tmpfs (`SessionKeyFile`) is a key file too: with it, the
        // sealed database and card would still open until the next reboot.
        if let session = deviceLock.sessionPath, Self.shred(session) { report.destroyedKeys.append(session) }
        SealedDeviceKey.unregister(home: configuration.home)
        PageEncryption.unregister(directory: configuration.home)
        for file in databaseFiles where Self.remove(file) { report.removed.append(file) }
        // Sealed with the destroyed device key, the configuration's seal can never check again;
        // the hub pin names a hub this handheld no longer has an identity for.
        for file in [DeviceSettings.sealPath(home: configuration.home), IdentityFiles.hubPinPath(home: configuration.home)] where Self.remove(file) {
            report.removed.append(file)
        }
        if let entries = try? local.listDirectory(configuration.home) {
            for name in entries where name.hasPrefix("satchel.db.replaced-") || name.hasPrefix("satchel.db.damaged-") {
                let path = Paths.join(configuration.home, name)
                if Self.remove(path) { report.removed.append(path) }
            }
        }
        return report
    }

    /// Overwrites a file with random bytes (fsynced), then removes it. True when it existed.
    /// (On flash the old blocks may survive the overwrite: that is why what matters is that
    /// everything else is encrypted under these keys.)
    /// Every call goes through the syscall seam (EINTR retried there). The overwrite is best
    /// effort: a failing open, write or fsync (EIO on a dying card) still removes the file, since a
    /// key that is gone from its directory is what the wipe must reach; only a failed unlink
    /// leaves it, and then the file is not reported as destroyed.
    static func shred(_ path: String) -> Bool {
        let size: Int
        do {
            guard let info = try SystemCalls.status(ofPath: path) else { return false }
            size = Int(clamping: info.st_size)
        } catch {
            size = 0  // could not stat it (EIO): still try to overwrite its first bytes and remove it
        }
        if let fd = try? SystemCalls.open(path, O_WRONLY) {
            try? SystemCalls.writeAll(fd, Random.bytes(max(1, size)))
            try? SystemCalls.fsync(fd)
            try? SystemCalls.close(fd)
        }
        return remove(path)
    }

    /// unlink(2) through the seam: true when the file was there and is gone.
    static func remove(_ path: String) -> Bool { (try? SystemCalls.unlink(path)) != nil }

    /// Refuses every command on a wiped handheld, finishing an interrupted wipe first.
    func refuseIfWiped() throws {
        guard let reason = wipedReason() else { return }
        wipe(reason: reason)
        throw LifecycleError.wiped(reason)
    }
}

extension DeviceAgent {
    /// Runs a session with the hub; a wipe order from it (WELCOME "lost", or ERROR 11 mid-session)
    /// destroys the keys here and throws `LifecycleError.reportedLost` with what happened.
    /// Whatever the hub acknowledged before the order stays acknowledged there.
    func obeyingWipeOrders<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch DeviceSync.Failure.sync(.refused(.lost)) {
            let report = wipe(reason: "reported lost by the office, wiped at its contact with the hub")
            throw LifecycleError.reportedLost("its keys are destroyed (\(report.keyFileCount)), its data can no longer be read; the hub refuses it from now on")
        } catch DeviceSync.Failure.sync(.hubError(code: .deviceLost, let message)) {
            let report = wipe(reason: "reported lost by the office during a sync, wiped")
            throw LifecycleError.reportedLost("\(TerminalText.safe(message)). Its keys are destroyed (\(report.keyFileCount)); the hub refuses it from now on")
        }
    }
}
