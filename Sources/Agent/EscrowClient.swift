import Backup
import Field
import Journal
import Seal

/// The device side of key escrow: a replacement handheld opens the old handheld's card with the
/// key the hub released to it (`satchel-hub device release-key --device OLD --to NEW`), sealed
/// to this handheld's own key, instead of the backup passphrase.
extension DeviceSync {
    public func recover(fromCard cardRoot: String, oldDevice: String?, releasedKey hex: String) throws -> RecoveredChanges {
        let sealed: [UInt8]
        do { sealed = try Hex.decode(hex) } catch {
            throw FieldError.invalidInput(what: "released key", value: String(hex.prefix(16)), reason: "expected the hex line `satchel-hub device release-key` printed")
        }
        let key: BackupKey
        do {
            key = BackupKey(try SealedBox.open(sealed, with: try keyPair()))
        } catch let error as SealError {
            _ = error
            throw FieldError.invalidInput(what: "released key", value: String(hex.prefix(16)) + "…",
                                          reason: "it does not open with this handheld's key: the hub released it to another device (release it with --to \(try agent.openUnchecked().deviceID()))")
        }
        let devices = CardLayout.devices(on: cardRoot, fileSystem: agent.card)
        guard let old = oldDevice ?? (devices.count == 1 ? devices[0] : nil), devices.contains(old) else {
            throw BackupError.noBackup(path: devices.isEmpty ? cardRoot : "\(cardRoot) (devices on it: \(devices.joined(separator: ", ")); name one with --old-device)")
        }
        let identity = try agent.readIdentity(CardLayout(root: cardRoot, device: old))
        guard identity.keyCheck == key.check else {
            throw FieldError.invalidInput(what: "released key", value: "check \(key.check)",
                                          reason: "it is not the key of the card's backup of \(old) (check \(identity.keyCheck)): release the key of the device this card belongs to")
        }
        // Where `recover` rebuilds the old device: with its key there, the restore needs no passphrase.
        let recoveredHome = Paths.join(Paths.join(agent.configuration.home, "recovered"), oldDevice ?? "card")
        do {
            try local.createDirectory(Paths.join(agent.configuration.home, "recovered"))
            try local.createDirectory(recoveredHome)
        } catch { throw Failure.storage("\(error)") }
        try IdentityFiles.writeAtomically(Paths.join(recoveredHome, IdentityFiles.cardKeyName), key.bytes)
        return try recover(fromCard: cardRoot, oldDevice: oldDevice, passphrase: "")
    }
}
