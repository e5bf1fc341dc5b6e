import Backup
import Field
import Journal
import Seal

/// The keys of this handheld as its lifecycle sees them: which one the hub escrows, and which
/// files a wipe destroys. Escrow, provisioning and the wipe ask only these, so they follow the
/// device's key hierarchy (docs/architecture.md, Security) in one place: the key escrowed is
/// the backup key `localKey()` gives, which on a handheld with an app password is the device
/// data key itself (it seals the database pages and opens the card).
extension DeviceAgent {
    /// The key the hub escrows; nil while the device has none yet (no card, no app password).
    func escrowKey() throws -> BackupKey? { try localKey() }

    /// Every file on internal storage that holds key material, or the data key sealed under the
    /// app password (`data.key`): what a wipe destroys first.
    var keyFiles: [String] {
        [IdentityFiles.deviceKeyPath(home: configuration.home), configuration.keyFile, Paths.join(configuration.home, "data.key")]
    }

    /// The database files: sealed under the data key on a handheld with an app password (then
    /// destroying the key is what makes them unreadable), plain SQLite on one without, which is
    /// why a wipe removes them too.
    var databaseFiles: [String] {
        let database = Paths.join(configuration.home, DeviceDatabase.fileName)
        return [database, database + "-wal", database + "-shm", database + "-journal"]
    }

    /// The escrow deposit: the key sealed to the hub's escrow key, and its check value.
    func escrowDeposit(sealedTo escrowKey: [UInt8]) throws -> (sealedKey: [UInt8], keyCheck: String)? {
        guard let key = try self.escrowKey() else { return nil }
        return (try SealedBox.seal(key.bytes, to: escrowKey), key.check)
    }
}
