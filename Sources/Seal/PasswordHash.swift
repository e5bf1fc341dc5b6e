import CSodium

/// Argon2id for the rep's sync password (verified by the hub) and for keys that encrypt backups.
///
/// Passwords given as `String` are hashed as their UTF-8 bytes, unnormalised: "ż" typed as one
/// code point and as "z" + combining dot are different passwords. The handheld's keyboard and
/// the hub's form both produce NFC, so store and verify through the same path.
public enum PasswordHash {
    /// How hard Argon2id works: passes over memory, and how much memory.
    public struct Cost: Sendable, Hashable {
        public var opsLimit: UInt64
        public var memLimit: Int

        public init(opsLimit: UInt64, memLimit: Int) {
            self.opsLimit = opsLimit
            self.memLimit = memLimit
        }

        /// libsodium's interactive preset: 2 passes over 64 MiB. For the hub.
        public static let interactive = Cost(
            opsLimit: UInt64(crypto_pwhash_argon2id_opslimit_interactive()),
            memLimit: crypto_pwhash_argon2id_memlimit_interactive())

        /// 3 passes over 8 MiB, for a 32-bit ARM handheld: 64 MiB could push the agent out of
        /// memory beside SQLite's cache, so extra passes buy back part of the lost hardness.
        public static let handheld = Cost(opsLimit: 3, memLimit: 8 << 20)
    }

    public static let saltBytes = Int(crypto_pwhash_saltbytes())
    public static let minKeyLength = Int(crypto_pwhash_bytes_min())

    /// An encoded hash ("$argon2id$v=19$m=...") that carries its own salt and cost.
    public static func hash(password: [UInt8], cost: Cost) throws(SealError) -> String {
        try Sodium.ensureInitialized()
        let length = Int(crypto_pwhash_strbytes())
        var encoded = [CChar](repeating: 0, count: length)
        let code = password.withUnsafeBytes { password in
            crypto_pwhash_str_alg(&encoded, cString(password), UInt64(password.count),
                                  cost.opsLimit, cost.memLimit, crypto_pwhash_alg_argon2id13())
        }
        guard code == 0 else {
            throw .operationFailed(function: "crypto_pwhash_str_alg (cost below Argon2id's minimum, or out of memory)", code: code)
        }
        return String(decoding: encoded.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func hash(password: String, cost: Cost) throws(SealError) -> String {
        try hash(password: Array(password.utf8), cost: cost)
    }

    /// False for a wrong password and for a hash that is not a valid encoded hash.
    public static func verify(_ hash: String, password: [UInt8]) -> Bool {
        Sodium.ready()
        return password.withUnsafeBytes { password in
            crypto_pwhash_str_verify(hash, cString(password), UInt64(password.count)) == 0
        }
    }

    public static func verify(_ hash: String, password: String) -> Bool {
        verify(hash, password: Array(password.utf8))
    }

    /// True when `hash` was made with another cost (or is not valid): rehash at the next login.
    public static func needsRehash(_ hash: String, cost: Cost) -> Bool {
        Sodium.ready()
        return crypto_pwhash_str_needs_rehash(hash, cost.opsLimit, cost.memLimit) != 0
    }

    /// A key derived from a password and a random 16-byte salt stored beside the ciphertext.
    public static func deriveKey(password: [UInt8], salt: [UInt8], length: Int = 32, cost: Cost) throws(SealError) -> SecretBytes {
        try Sodium.ensureInitialized()
        try checkLength("Argon2id salt", salt.count, saltBytes)
        guard length >= minKeyLength else {
            throw .invalidLength(what: "derived key", expected: minKeyLength...Int.max, actual: length)
        }
        return try SecretBytes(count: length) { (key) throws(SealError) in
            let code = password.withUnsafeBytes { password in
                crypto_pwhash(key.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(length),
                              cString(password), UInt64(password.count), salt,
                              cost.opsLimit, cost.memLimit, crypto_pwhash_alg_argon2id13())
            }
            guard code == 0 else {
                throw .operationFailed(function: "crypto_pwhash (cost below Argon2id's minimum, or out of memory)", code: code)
            }
        }
    }

    public static func deriveKey(password: String, salt: [UInt8], length: Int = 32, cost: Cost) throws(SealError) -> SecretBytes {
        try deriveKey(password: Array(password.utf8), salt: salt, length: length, cost: cost)
    }
}

/// libsodium takes passwords as `const char *` with an explicit length (no terminator needed)
/// and marks the pointer nonnull, so an empty password still needs a real address.
private func cString(_ bytes: UnsafeRawBufferPointer) -> UnsafePointer<CChar> {
    let base = bytes.baseAddress ?? UnsafeRawPointer(("" as StaticString).utf8Start)
    return base.assumingMemoryBound(to: CChar.self)
}
