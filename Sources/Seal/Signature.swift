import CSodium

/// Ed25519 signatures (libsodium's crypto_sign): the hub signs what a device must keep and obey
/// (its role, its offline lock and wipe policy), so a rep who can edit the device's files still
/// cannot forge or extend it.
public enum Signature {
    public static let publicKeyBytes = Int(crypto_sign_publickeybytes())
    public static let secretKeyBytes = Int(crypto_sign_secretkeybytes())
    public static let signatureBytes = Int(crypto_sign_bytes())

    public struct KeyPair: Sendable {
        public let secretKey: SecretBytes
        public let publicKey: [UInt8]

        public static func generate() throws(SealError) -> KeyPair {
            try Sodium.ensureInitialized()
            var publicKey = [UInt8](repeating: 0, count: Signature.publicKeyBytes)
            let secretKey = try SecretBytes(count: Signature.secretKeyBytes) { (secret) throws(SealError) in
                let code = crypto_sign_keypair(&publicKey, secret.baseAddress!.assumingMemoryBound(to: UInt8.self))
                guard code == 0 else { throw .operationFailed(function: "crypto_sign_keypair", code: code) }
            }
            return KeyPair(secretKey: secretKey, publicKey: publicKey)
        }

        /// Rebuilds a pair from a stored 64-byte secret key (its second half is the public key).
        public init(secretKey: SecretBytes) throws(SealError) {
            try checkLength("Ed25519 secret key", secretKey.count, Signature.secretKeyBytes)
            self.secretKey = secretKey
            self.publicKey = secretKey.withUnsafeBytes { Array($0[(Signature.secretKeyBytes - Signature.publicKeyBytes)...]) }
        }

        init(secretKey: SecretBytes, publicKey: [UInt8]) {
            self.secretKey = secretKey
            self.publicKey = publicKey
        }

        public func sign(_ message: [UInt8]) -> [UInt8] {
            let signature = secretKey.withPointer { secret in
                producing(Signature.signatureBytes) { crypto_sign_detached($0, nil, message, UInt64(message.count), secret) }
            }
            guard let signature else { preconditionFailure("crypto_sign_detached failed on a valid key") }
            return signature
        }
    }

    /// True only when `signature` is `publicKey`'s over exactly `message`.
    public static func verify(_ signature: [UInt8], of message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard (try? Sodium.ensureInitialized()) != nil, signature.count == signatureBytes, publicKey.count == publicKeyBytes else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), publicKey) == 0
    }
}

/// Anonymous sealed boxes (libsodium's crypto_box_seal: X25519 + XSalsa20-Poly1305 with an
/// ephemeral sender key): a device seals its data key to the hub's escrow key, and the hub
/// re-seals it to a replacement device's key, so the key never travels or rests in plaintext.
public enum SealedBox {
    public static let overhead = Int(crypto_box_sealbytes())

    public static func seal(_ message: [UInt8], to publicKey: [UInt8]) throws(SealError) -> [UInt8] {
        try Sodium.ensureInitialized()
        try checkLength("sealed box public key", publicKey.count, X25519.keyBytes)
        guard let sealed = producing(message.count + overhead, { crypto_box_seal($0, message, UInt64(message.count), publicKey) }) else {
            throw .operationFailed(function: "crypto_box_seal", code: -1)
        }
        return sealed
    }

    /// Opens a box sealed to `pair`; anything else (tampered, another key's) is `.authenticationFailed`.
    public static func open(_ sealed: [UInt8], with pair: X25519.KeyPair) throws(SealError) -> SecretBytes {
        try Sodium.ensureInitialized()
        guard sealed.count >= overhead else { throw .authenticationFailed }
        return try SecretBytes(count: sealed.count - overhead) { (output) throws(SealError) in
            let code = pair.secretKey.withPointer { secret in
                crypto_box_seal_open(output.baseAddress!.assumingMemoryBound(to: UInt8.self), sealed, UInt64(sealed.count), pair.publicKey, secret)
            }
            guard code == 0 else { throw .authenticationFailed }
        }
    }
}
