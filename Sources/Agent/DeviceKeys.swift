import Backup
public import Field
import Journal
public import Seal
public import Store

/// The device data key: 32 random bytes, the root of everything this handheld keeps at rest
/// (docs/architecture.md, "Security: a lost device leaks nothing"). Subkeys by purpose
/// (BLAKE2b keyed with it) seal the database pages; the card's backup key is the data key
/// itself, so `card.json` (wrapped under the technician's passphrase) still opens a card alone.
public final class DataKey: @unchecked Sendable {
    // Sendable: immutable after init.
    public static let bytes = 32
    let secret: SecretBytes

    init(_ secret: SecretBytes) { self.secret = secret }

    static func generate() -> DataKey { DataKey(SecretBytes.random(count: bytes)) }

    func subkey(_ purpose: String) -> SecretBytes {
        secret.withUnsafeBytes { key in SecretBytes(Blake2b.hash(Array(purpose.utf8), outputLength: 32, key: Array(key))) }
    }

    /// The page key of every database in the data directory.
    public func pageEncryption() throws -> PageEncryption { try PageEncryption(key: subkey("satchel database pages v1")) }

    /// The card's backup key (journal, snapshots, sealed records): the data key itself.
    var backupKey: BackupKey { BackupKey(SecretBytes(secret.withUnsafeBytes { Array($0) })) }
}

/// Why the device's keys refused; each says what to do next.
public enum DeviceLockError: Error, CustomStringConvertible, Equatable {
    /// A password is set and no unlocked session is there (never unlocked, locked, idle, rebooted).
    case locked(home: String)
    case wrongPassword(attemptsLeft: Int)
    /// Too many wrong passwords: the data key is gone; only a technician can bring the data back.
    case keysDestroyed(home: String, at: Int64)
    /// `data.key` is not what `satchel password set` writes (edited, cut, other parameters).
    case keyFileDamaged(path: String, reason: String)
    case noPassword(home: String)
    case passwordAlreadySet(home: String)
    case unacceptablePassword(reason: String)
    /// The session key would be kept somewhere unsafe (not a private tmpfs directory).
    case runtimeDirectoryUnsafe(path: String, reason: String)
    /// The plain database could not be sealed (it is left as it was).
    case sealingFailed(path: String, detail: String)
    /// A sealed database restored without an app password, whose key (kept in memory only)
    /// is gone: a reboot or the idle lock came before `satchel password set`.
    case restoredKeyGone(home: String)
    /// A passphrase restore on a locked device with an app password: the key it unwraps may be
    /// kept only under that password, which was not given.
    case restoreNeedsAppPassword(home: String)
    /// A restore onto a data directory whose keys were destroyed: it is restored into a fresh one.
    case restoreOverDestroyedKeys(home: String)
    /// The card's backup key is not this device's data key: keeping it would mean a second key,
    /// in plaintext, beside `data.key`.
    case restoreKeyNotDataKey(home: String, cardCheck: String, dataCheck: String)

    public var description: String {
        switch self {
        case .locked(let home):
            return "the device is locked (\(home)): unlock it with `satchel unlock` (the app password), then run the command again"
        case .wrongPassword(let left):
            return "wrong app password; \(left) attempt\(left == 1 ? "" : "s") left before the keys are destroyed and the device needs a technician"
        case .keysDestroyed(let home, let at):
            return "the keys of this device were destroyed after too many wrong app passwords (at \(at) ms since 1970, \(home)): its data cannot be read here. Hand the device to a technician: the card's backup (`satchel restore --passphrase-stdin`) or the hub brings it back"
        case .keyFileDamaged(let path, let reason):
            return "\(path) is damaged (\(reason)); it was left as it is. Hand the device to a technician: the card's backup (`satchel restore --passphrase-stdin`) brings the data back"
        case .noPassword(let home):
            return "no app password is set on this device (\(home)): `satchel password set`"
        case .passwordAlreadySet(let home):
            return "an app password is already set on this device (\(home)): `satchel password change`"
        case .unacceptablePassword(let reason):
            return "the app password was not accepted: \(reason)"
        case .runtimeDirectoryUnsafe(let path, let reason):
            return "will not keep the unlocked key in \(path): \(reason). Set SATCHEL_RUNTIME_DIR (or XDG_RUNTIME_DIR) to a private directory on tmpfs"
        case .sealingFailed(let path, let detail):
            return "could not encrypt \(path): \(detail); the database was left as it was"
        case .restoredKeyGone(let home):
            return "the database in \(home) was restored from the card without an app password, and its key was kept in memory only, which is gone now (a reboot, or the idle lock): restore again with the backup passphrase (`satchel restore --passphrase-stdin --app-password-stdin`)"
        case .restoreNeedsAppPassword(let home):
            return "this device has an app password and is locked (\(home)): nothing was restored. Give the app password on the line after the backup passphrase (`satchel restore --passphrase-stdin --app-password-stdin`), or `satchel unlock` first: the card's key is kept only under the app password, never in the data directory"
        case .restoreOverDestroyedKeys(let home):
            return "the keys of this device were destroyed (\(home)/keys-destroyed): nothing was restored. Move the data directory aside and restore into an empty one with the rep's new app password (`satchel restore --passphrase-stdin --app-password-stdin`), or replace the device with the key the hub holds in escrow (technician guide: Device replacement)"
        case .restoreKeyNotDataKey(let home, let cardCheck, let dataCheck):
            return "the card's backup (key check \(cardCheck)) is not under this device's data key (check \(dataCheck), \(home)): nothing was restored, since its key would have to sit beside data.key in plaintext. If it is another handheld's card, restore it there; to make this handheld that one, move the data directory aside and restore into an empty one (`satchel restore --passphrase-stdin --app-password-stdin`)"
        }
    }

    /// Satchel.swift's codes: 77 locked or refused, 69 the data cannot be read here, 78 damaged key file, 65 bad input.
    public var exitCode: Int32 {
        switch self {
        case .locked, .wrongPassword, .runtimeDirectoryUnsafe, .noPassword, .passwordAlreadySet, .restoredKeyGone, .restoreNeedsAppPassword, .restoreOverDestroyedKeys,
             .restoreKeyNotDataKey: return 77
        case .keysDestroyed: return 69
        case .keyFileDamaged: return 78
        case .unacceptablePassword: return 65
        case .sealingFailed: return 74
        }
    }
}

/// The data key sealed under the app password: `<home>/data.key`, a few strict text lines.
///
///     satchel-data-key 1
///     argon2id 3 8388608
///     salt <32 hex>
///     sealed <24-byte nonce, then XChaCha20-Poly1305 of the key, hex>
///
/// The Argon2id cost is read back bounded (`costLimits`): a file edited to ask for 4 GiB or
/// 10^9 passes is refused before any work, never obeyed. The first three lines are the
/// additional data of the seal, so a changed cost or salt fails like a wrong password.
struct SealedDataKey: Equatable {
    var cost: PasswordHash.Cost
    var salt: [UInt8]
    var sealed: [UInt8]

    static let opsLimits: ClosedRange<UInt64> = 1...10
    /// At most 16 MiB: what a handheld can pay beside SQLite (docs/benchmarks.md measures it).
    static let memoryLimits: ClosedRange<Int> = (8 << 10)...(16 << 20)

    var header: String { "satchel-data-key 1\nargon2id \(cost.opsLimit) \(cost.memLimit)\nsalt \(Hex.encode(salt))\n" }
    var text: String { header + "sealed \(Hex.encode(sealed))\n" }

    static func seal(_ key: DataKey, password: String, cost: PasswordHash.Cost) throws -> SealedDataKey {
        var record = SealedDataKey(cost: cost, salt: Random.bytes(PasswordHash.saltBytes), sealed: [])
        let wrapping = try PasswordHash.deriveKey(password: password, salt: record.salt, cost: cost)
        let nonce = AEAD.randomNonce()
        let plain = key.secret.withUnsafeBytes { Array($0) }
        record.sealed = nonce + (try AEAD.seal(plain, additionalData: Array(record.header.utf8), nonce: nonce, key: wrapping))
        return record
    }

    /// nil: wrong password (or a file changed within the bounds).
    func open(password: String) throws -> DataKey? {
        let wrapping = try PasswordHash.deriveKey(password: password, salt: salt, cost: cost)
        let nonce = Array(sealed.prefix(AEAD.nonceBytes)), body = Array(sealed.dropFirst(AEAD.nonceBytes))
        guard let plain = try? AEAD.open(body, additionalData: Array(header.utf8), nonce: nonce, key: wrapping),
              plain.count == DataKey.bytes else { return nil }
        return DataKey(SecretBytes(plain))
    }

    static func parse(_ bytes: [UInt8], path: String) throws -> SealedDataKey {
        func damaged(_ reason: String) -> DeviceLockError { .keyFileDamaged(path: path, reason: reason) }
        guard bytes.count <= 1024, let text = String(validating: bytes, as: UTF8.self) else { throw damaged("not the text `satchel password set` writes") }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count == 5, lines[4].isEmpty, lines[0] == "satchel-data-key 1" else { throw damaged("expected 4 lines starting with `satchel-data-key 1`") }
        let cost = lines[1].split(separator: " ")
        // The memory is read and bounded as UInt64, then made an Int: on a 32-bit handheld
        // `Int("4294967296")` is nil, and the file would read as malformed rather than as a cost
        // out of bounds.
        guard cost.count == 3, cost[0] == "argon2id", let ops = UInt64(cost[1]), let memoryBytes = UInt64(cost[2]) else { throw damaged("line 2: expected `argon2id <passes> <bytes>`") }
        guard opsLimits.contains(ops), memoryBytes >= UInt64(memoryLimits.lowerBound), memoryBytes <= UInt64(memoryLimits.upperBound), let memory = Int(exactly: memoryBytes) else {
            throw damaged("line 2: Argon2id cost \(ops) passes over \(memoryBytes) bytes is outside \(opsLimits) passes and \(memoryLimits) bytes")
        }
        guard lines[2].hasPrefix("salt "), let salt = try? Hex.decode(String(lines[2].dropFirst(5))), salt.count == PasswordHash.saltBytes else {
            throw damaged("line 3: expected `salt` and \(PasswordHash.saltBytes) bytes in hex")
        }
        guard lines[3].hasPrefix("sealed "), let sealed = try? Hex.decode(String(lines[3].dropFirst(7))),
              sealed.count == AEAD.nonceBytes + DataKey.bytes + AEAD.tagBytes else {
            throw damaged("line 4: expected `sealed` and \(AEAD.nonceBytes + DataKey.bytes + AEAD.tagBytes) bytes in hex")
        }
        return SealedDataKey(cost: PasswordHash.Cost(opsLimit: ops, memLimit: memory), salt: salt, sealed: sealed)
    }
}
