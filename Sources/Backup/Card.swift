import FoundationEssentials
public import Journal
public import Seal

/// The flash card as Satchel lays it out: one directory per device, so a card moved to the
/// wrong handheld is recognised as someone else's instead of being written into.
///
///     <card>/satchel/<device>/card.json      identity and the wrapped backup key
///     <card>/satchel/<device>/journal/       encrypted change journal (Journal segments)
///     <card>/satchel/<device>/snapshots/     encrypted database snapshots
///     <card>/satchel/<device>/pointer-a|b    the two alternating snapshot pointer slots
public struct CardLayout: Sendable {
    public let root: String
    public let device: String

    public init(root: String, device: String) {
        self.root = root
        self.device = device
    }

    public var satchelDirectory: String { Paths.join(root, "satchel") }
    public var deviceDirectory: String { Paths.join(satchelDirectory, device) }
    public var identityFile: String { Paths.join(deviceDirectory, "card.json") }
    public var journalDirectory: String { Paths.join(deviceDirectory, "journal") }
    public var snapshotDirectory: String { Paths.join(deviceDirectory, "snapshots") }
    public func pointerSlot(_ index: Int) -> String { Paths.join(deviceDirectory, index == 0 ? "pointer-a" : "pointer-b") }

    /// Devices that have a directory on this card (to find the backup of a wiped handheld).
    public static func devices(on root: String, fileSystem: any FileSystem) -> [String] {
        (try? fileSystem.listDirectory(Paths.join(root, "satchel"))) ?? []
    }
}

/// `card.json`: whose card this is and the backup key, wrapped with a key derived from the
/// backup passphrase (Argon2id), so a wiped handheld can restore from the card with the
/// passphrase alone, and a lost card leaks nothing.
public struct CardIdentity: Codable, Sendable, Equatable {
    public var format: Int
    public var device: String
    public var rep: String
    public var createdAt: Int64
    public var keySalt: String
    public var keyOpsLimit: UInt64
    public var keyMemLimit: Int
    public var keyNonce: String
    public var wrappedKey: String
    /// BLAKE2b of a constant under the backup key: tells a wrong key from a damaged record.
    public var keyCheck: String

    enum CodingKeys: String, CodingKey {
        case format, device, rep
        case createdAt = "created_at"
        case keySalt = "key_salt"
        case keyOpsLimit = "key_ops_limit"
        case keyMemLimit = "key_mem_limit"
        case keyNonce = "key_nonce"
        case wrappedKey = "wrapped_key"
        case keyCheck = "key_check"
    }
}

public enum BackupError: Error, CustomStringConvertible, Equatable {
    case cardMissing(path: String)
    case cardNotInitialised(path: String)
    case cardOfAnotherDevice(path: String, device: String, expected: String)
    case cardIdentityDamaged(path: String, detail: String)
    case wrongKey(path: String)
    case passphraseTooShort
    /// `card init` asked for an Argon2id cost a restore would refuse to read back.
    case keyCostOutOfBounds(opsLimit: UInt64, memLimit: Int)
    case fileSystem(FileSystemError)
    case journal(String)
    case snapshotInvalid(path: String, detail: String)
    case noBackup(path: String)
    case restoreFailed(String)
    case database(String)
    /// An identity or configuration file in the data directory that is there but not whole.
    case identityFileDamaged(path: String, detail: String, advice: String)
    /// An identity file sealed under the data key, read while the device is locked.
    case identityLocked(path: String)
    /// The card's record of the id-space epoch is there but does not open.
    case epochUnreadable(path: String, detail: String)
    /// A restore could not record the new epoch on the card, so it did not replace anything.
    case epochNotRecorded(path: String, detail: String)
    /// `satchel restore` on a database that opens: it would drop what the card lacks.
    case restoreWouldDrop(database: String, drop: RestorePreview)

    public var description: String {
        switch self {
        case .cardMissing(let path): return "no card at \(path) (not inserted or not mounted)"
        case .cardNotInitialised(let path): return "the card at \(path) has no Satchel backup for this device yet: run `satchel card init` (a technician chooses the backup passphrase)"
        case .cardOfAnotherDevice(let path, let device, let expected): return "the card at \(path) holds the backup of device \(device), not \(expected); it was left untouched"
        case .cardIdentityDamaged(let path, let detail): return "the card's identity file \(path) is damaged (\(detail)); it was left untouched"
        case .wrongKey(let path): return "the backup key does not open \(path): wrong passphrase, or another device's card"
        case .passphraseTooShort: return "the backup passphrase must be at least 8 characters"
        case .keyCostOutOfBounds(let ops, let mem):
            let limits = BackupKey.keyCostLimits
            return "the backup key cost of \(ops) passes over \(mem) bytes is outside what a restore accepts (\(limits.opsLimit.lowerBound)-\(limits.opsLimit.upperBound) passes over \(limits.memLimit.lowerBound)-\(limits.memLimit.upperBound) bytes); nothing was written to the card"
        case .fileSystem(let error): return "card: \(error)"
        case .journal(let detail): return "card journal: \(detail)"
        case .snapshotInvalid(let path, let detail): return "snapshot \(path) is not usable (\(detail))"
        case .noBackup(let path): return "no usable backup on the card at \(path)"
        case .restoreFailed(let detail): return "restore failed, nothing was replaced: \(detail)"
        case .database(let detail): return "database: \(detail)"
        case .identityFileDamaged(let path, let detail, let advice): return "\(path) is damaged (\(detail)); \(advice)"
        case .identityLocked(let path): return "\(path) is sealed under the device data key and the device is locked: unlock it with `satchel unlock` (the app password), then run the command again"
        case .epochUnreadable(let path, let detail):
            return "the card's record of this device's id epoch in \(path) does not open (\(detail)): without it a restore could hand out ids again; nothing was replaced. Check the card, or call support"
        case .epochNotRecorded(let path, let detail):
            return "the restore must first record on the card that this device's ids move on (so no id is ever issued twice), and the card refused (\(detail)) at \(path). Nothing was replaced: make the card writable (write-protect switch, free space) and run `satchel restore` again"
        case .restoreWouldDrop(let database, let drop): return drop.refusal(database: database)
        }
    }
}

/// The backup key and the subkeys derived from it, one per use, so a journal record can never be
/// confused with a snapshot chunk.
public struct BackupKey: Sendable {
    public let key: SecretBytes
    public init(_ key: SecretBytes) { self.key = key }

    public static func generate() -> BackupKey { BackupKey(SecretBytes.random(count: 32)) }

    func subkey(_ purpose: String) -> SecretBytes {
        key.withUnsafeBytes { bytes in SecretBytes(Blake2b.hash(Array(purpose.utf8), outputLength: 32, key: Array(bytes))) }
    }

    var journalKey: SecretBytes { subkey("satchel journal v1") }
    var snapshotKey: SecretBytes { subkey("satchel snapshot v1") }
    public var check: String { Hex.encode(key.withUnsafeBytes { Blake2b.hash(Array("satchel key check v1".utf8), outputLength: 16, key: Array($0)) }) }

    public var bytes: [UInt8] { key.withUnsafeBytes { Array($0) } }

    /// Wraps the key for `card.json` under a passphrase-derived key.
    public func identity(device: String, rep: String, passphrase: String, cost: PasswordHash.Cost, now: Int64) throws -> CardIdentity {
        guard passphrase.count >= 8 else { throw BackupError.passphraseTooShort }
        // The same bounds `unwrap` applies on read: a card written with more could never be restored.
        guard Self.keyCostLimits.opsLimit.contains(cost.opsLimit), Self.keyCostLimits.memLimit.contains(cost.memLimit) else {
            throw BackupError.keyCostOutOfBounds(opsLimit: cost.opsLimit, memLimit: cost.memLimit)
        }
        let salt = Random.bytes(PasswordHash.saltBytes)
        let wrapping = try PasswordHash.deriveKey(password: passphrase, salt: salt, length: 32, cost: cost)
        let nonce = AEAD.randomNonce()
        let wrapped = try AEAD.seal(bytes, additionalData: Array("satchel card key \(device)".utf8), nonce: nonce, key: wrapping)
        return CardIdentity(format: 2, device: device, rep: rep, createdAt: now, keySalt: Hex.encode(salt), keyOpsLimit: cost.opsLimit,
                            keyMemLimit: cost.memLimit, keyNonce: Hex.encode(nonce), wrappedKey: Hex.encode(wrapped), keyCheck: check)
    }

    /// The most Argon2id work a card.json may ask for: 8 passes over 64 MiB (libsodium's
    /// interactive preset is 2 over 64 MiB, the handheld's 3 over 8 MiB). The cost comes from the
    /// card, so without a bound a damaged or foreign card.json could make a restore run for hours
    /// or allocate gigabytes; the least is Argon2id's own minimum.
    static let keyCostLimits = (opsLimit: UInt64(1)...8, memLimit: 8 * 1024...(64 << 20))

    /// Unwraps the key of `identity` with the passphrase. Anything in the key slot that cannot be
    /// what `identity(...)` wrote (not hex, wrong lengths, a cost out of bounds) is a damaged
    /// identity file, refused before any key derivation.
    public static func unwrap(_ identity: CardIdentity, passphrase: String, path: String) throws -> BackupKey {
        guard keyCostLimits.opsLimit.contains(identity.keyOpsLimit), keyCostLimits.memLimit.contains(identity.keyMemLimit) else {
            throw BackupError.cardIdentityDamaged(path: path, detail: "key cost of \(identity.keyOpsLimit) passes over \(identity.keyMemLimit) bytes is out of bounds")
        }
        do {
            let cost = PasswordHash.Cost(opsLimit: identity.keyOpsLimit, memLimit: identity.keyMemLimit)
            let wrapping = try PasswordHash.deriveKey(password: passphrase, salt: try Hex.decode(identity.keySalt), length: 32, cost: cost)
            let key = try AEAD.open(try Hex.decode(identity.wrappedKey), additionalData: Array("satchel card key \(identity.device)".utf8),
                                    nonce: try Hex.decode(identity.keyNonce), key: wrapping)
            let unwrapped = BackupKey(SecretBytes(key))
            guard unwrapped.check == identity.keyCheck else { throw BackupError.wrongKey(path: path) }
            return unwrapped
        } catch SealError.authenticationFailed {
            throw BackupError.wrongKey(path: path)
        } catch let error as SealError {
            throw BackupError.cardIdentityDamaged(path: path, detail: "key slot: \(error)")
        }
    }
}

/// `card.json` as bytes: pretty, sorted keys, so a technician can read who the card belongs to.
public enum CardJSON {
    /// The most a card.json can hold (it is about 600 bytes); a longer one is not read.
    public static let maxBytes = 16 * 1024

    public static func encode(_ identity: CardIdentity) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array(try encoder.encode(identity))
    }

    public static func decode(_ bytes: [UInt8], path: String) throws -> CardIdentity {
        do {
            return try JSONDecoder().decode(CardIdentity.self, from: Data(bytes))
        } catch {
            throw BackupError.cardIdentityDamaged(path: path, detail: "\(error)")
        }
    }
}

extension BackupError {
    /// Exit codes in the same sysexits(3) family as `FieldError`'s (docs/rep-guide.md#exit-codes).
    public var exitCode: Int32 {
        switch self {
        case .cardMissing, .cardNotInitialised, .noBackup: return 66
        case .wrongKey, .passphraseTooShort, .cardOfAnotherDevice, .keyCostOutOfBounds: return 65
        case .cardIdentityDamaged, .snapshotInvalid, .identityFileDamaged, .epochUnreadable: return 69
        case .fileSystem, .journal, .epochNotRecorded: return 74
        case .restoreFailed, .database: return 70
        case .restoreWouldDrop: return 73
        case .identityLocked: return 77  // as DeviceLockError.locked
        }
    }
}
