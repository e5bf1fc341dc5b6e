import CSodium

/// X25519 Diffie-Hellman, the key agreement of the Noise sync channel.
public enum X25519 {
    public static let keyBytes = Int(crypto_scalarmult_curve25519_bytes())

    public struct KeyPair: Sendable {
        public let secretKey: SecretBytes
        public let publicKey: [UInt8]

        public static func generate() -> KeyPair {
            let secretKey = SecretBytes.random(count: X25519.keyBytes)
            do {
                return try KeyPair(secretKey: secretKey)
            } catch {
                preconditionFailure("a fresh 32-byte X25519 secret was refused: \(error)")
            }
        }

        /// Rebuilds a pair from a stored secret, such as the device identity provisioned at setup.
        public init(secretKey: SecretBytes) throws(SealError) {
            self.publicKey = try X25519.publicKey(fromSecret: secretKey)
            self.secretKey = secretKey
        }
    }

    public static func publicKey(fromSecret secret: SecretBytes) throws(SealError) -> [UInt8] {
        try Sodium.ensureInitialized()
        try checkLength("X25519 secret key", secret.count, keyBytes)
        let publicKey = secret.withPointer { secret in
            producing(keyBytes) { crypto_scalarmult_curve25519_base($0, secret) }
        }
        guard let publicKey else {
            throw .operationFailed(function: "crypto_scalarmult_curve25519_base", code: -1)
        }
        return publicKey
    }

    /// Throws `.weakPublicKey` when the peer sent a low-order point: the result would be all
    /// zeros, a "shared" secret an attacker knows without any private key.
    public static func sharedSecret(secret: SecretBytes, public peer: [UInt8]) throws(SealError) -> SecretBytes {
        try Sodium.ensureInitialized()
        try checkLength("X25519 secret key", secret.count, keyBytes)
        try checkLength("X25519 public key", peer.count, keyBytes)
        return try SecretBytes(count: keyBytes) { (shared) throws(SealError) in
            let code = secret.withPointer { secret in
                crypto_scalarmult_curve25519(shared.baseAddress!.assumingMemoryBound(to: UInt8.self), secret, peer)
            }
            guard code == 0 else { throw .weakPublicKey }
        }
    }
}
