import Backup
import Journal
import Seal

/// The keys of this handheld as its lifecycle sees them: which one the hub escrows, and which
/// files a wipe destroys. Key escrow, provisioning and the wipe go through this one type, so
/// when the device data key of the app password (issue 14) takes over they change here only:
/// `escrowKey` becomes the data key (which opens the database, the card key and the card), and
/// `keyFiles` its wrapped copy.
public struct DeviceKeys: Sendable {
    public let home: String
    public init(home: String) { self.home = home }

    /// The key the hub escrows: today the card's backup key (it opens the card journal and
    /// snapshots, the card's copy of the identity included). nil while the device has none yet
    /// (no `satchel card init`): nothing to escrow.
    public func escrowKey() throws -> BackupKey? {
        guard let bytes = try IdentityFiles.readKey(cardKeyFile, advice: DeviceAgent.cardKeyAdvice) else { return nil }
        return BackupKey(SecretBytes(bytes))
    }

    var cardKeyFile: String { Paths.join(home, IdentityFiles.cardKeyName) }

    /// Every file on internal storage that holds key material: what a wipe destroys first.
    public var keyFiles: [String] {
        [IdentityFiles.deviceKeyPath(home: home), cardKeyFile]
    }

    /// Files readable without any key while the internal database is plain SQLite: the wipe
    /// removes them too. (Once the database is encrypted under the data key, destroying the key
    /// is enough; removing them stays harmless.)
    public var plainDataFiles: [String] {
        let database = Paths.join(home, "satchel.db")
        return [database, database + "-wal", database + "-shm", database + "-journal"]
    }

    /// The escrow deposit: the key sealed to the hub's escrow key, and its check value.
    public func deposit(sealedTo escrowKey: [UInt8]) throws -> EscrowDepositParts? {
        guard let key = try self.escrowKey() else { return nil }
        return EscrowDepositParts(sealedKey: try SealedBox.seal(key.bytes, to: escrowKey), keyCheck: key.check)
    }
}

/// `Sync.EscrowDeposit`'s fields, without Agent's public API depending on the message type.
public struct EscrowDepositParts: Sendable {
    public var sealedKey: [UInt8]
    public var keyCheck: String
}
