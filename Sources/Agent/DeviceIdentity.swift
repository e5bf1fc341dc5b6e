import Backup
public import Field
import Journal
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The device's identity on the card: the sync identity (device key, hub pin) and the epoch of
/// its id space travel sealed beside the backup, so a wiped handheld restored from its card syncs
/// as itself and never hands out an id its lost database already used.
extension DeviceAgent {
    static let cardKeyAdvice = "it was left as it is. Restore with the backup passphrase (`satchel restore --passphrase-stdin`): the key is unwrapped from the card again"

    /// Writes the current sync identity and epoch to the card when the card's copies differ.
    func sealOnCard(_ device: DeviceDatabase, _ attached: Attached) throws {
        try CardEpoch(layout: attached.layout, key: attached.key, card: card).record(try device.epoch())
        if let record = try CardSyncIdentity.current(home: configuration.home) {
            try CardSyncIdentity(layout: attached.layout, key: attached.key, card: card).write(record)
        }
    }

    /// After the identity changed (`satchel provision`): the card gets it now, if it can.
    /// Returns why not, for the technician's screen; nil when the card has it (or none is configured).
    public func sealIdentityOnCard(_ device: DeviceDatabase) -> String? {
        do {
            return try cardLock.withLock {
                switch attach(device: try device.deviceID()) {
                case .failure(let report) where report.state == .notConfigured: return nil
                case .failure(let report): return "card \(report.path ?? ""): \(report.state.rawValue)\(report.message.map { " — \($0)" } ?? "")"
                case .success(let attached):
                    try sealOnCard(device, attached)
                    return nil
                }
            }
        } catch {
            return "\(error)"
        }
    }

    /// The backup key on internal storage for a restore. A damaged key file is refused, unless
    /// the passphrase is given: then it is moved aside (kept, never deleted) and the key comes
    /// from the card again.
    func localKeyForRestore(passphraseGiven: Bool) throws -> BackupKey? {
        do {
            return try localKey()
        } catch let error as BackupError {
            guard case .identityFileDamaged = error, passphraseGiven else { throw error }
            let aside = configuration.keyFile + ".damaged-" + String(clock.nowMilliseconds())
            guard rename(configuration.keyFile, aside) == 0 else { throw error }
            return nil
        }
    }
}
