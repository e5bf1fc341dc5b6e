import CSodium

/// XChaCha20-Poly1305-IETF: authenticated encryption for data at rest (backups, the card
/// journal). Its 24-byte nonce is large enough to pick at random for every message, so no
/// counter has to survive power loss.
public enum AEAD {
    public static let keyBytes = Int(crypto_aead_xchacha20poly1305_ietf_keybytes())
    public static let nonceBytes = Int(crypto_aead_xchacha20poly1305_ietf_npubbytes())
    public static let tagBytes = Int(crypto_aead_xchacha20poly1305_ietf_abytes())

    public static func generateKey() -> SecretBytes { SecretBytes.random(count: keyBytes) }
    public static func randomNonce() -> [UInt8] { Random.bytes(nonceBytes) }

    /// Returns the ciphertext followed by the 16-byte tag.
    public static func seal(_ plaintext: [UInt8], additionalData: [UInt8] = [], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try algorithm.seal(plaintext, additionalData: additionalData, nonce: nonce, key: key)
    }

    public static func open(_ ciphertext: [UInt8], additionalData: [UInt8] = [], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try algorithm.open(ciphertext, additionalData: additionalData, nonce: nonce, key: key)
    }

    private static let algorithm = AEADAlgorithm(
        name: "XChaCha20-Poly1305", keyBytes: keyBytes, nonceBytes: nonceBytes, tagBytes: tagBytes,
        encrypt: crypto_aead_xchacha20poly1305_ietf_encrypt,
        decrypt: crypto_aead_xchacha20poly1305_ietf_decrypt)
}

/// ChaCha20-Poly1305-IETF (RFC 8439), the cipher of the Noise sync channel. Its 12-byte nonce
/// is too small to pick at random; Noise derives it from a message counter (`nonce(counter:)`).
public enum ChaChaPolyIETF {
    public static let keyBytes = Int(crypto_aead_chacha20poly1305_ietf_keybytes())
    public static let nonceBytes = Int(crypto_aead_chacha20poly1305_ietf_npubbytes())
    public static let tagBytes = Int(crypto_aead_chacha20poly1305_ietf_abytes())

    /// Noise's nonce for message `counter`: four zero bytes, then the counter little-endian.
    public static func nonce(counter: UInt64) -> [UInt8] {
        [0, 0, 0, 0] + (0..<8).map { UInt8(truncatingIfNeeded: counter >> (8 * $0)) }
    }

    /// Returns the ciphertext followed by the 16-byte tag.
    public static func seal(_ plaintext: [UInt8], additionalData: [UInt8] = [], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try algorithm.seal(plaintext, additionalData: additionalData, nonce: nonce, key: key)
    }

    public static func open(_ ciphertext: [UInt8], additionalData: [UInt8] = [], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try algorithm.open(ciphertext, additionalData: additionalData, nonce: nonce, key: key)
    }

    private static let algorithm = AEADAlgorithm(
        name: "ChaCha20-Poly1305-IETF", keyBytes: keyBytes, nonceBytes: nonceBytes, tagBytes: tagBytes,
        encrypt: crypto_aead_chacha20poly1305_ietf_encrypt,
        decrypt: crypto_aead_chacha20poly1305_ietf_decrypt)
}

/// Both AEADs share libsodium's combined-mode signature, so one body checks and calls either.
private struct AEADAlgorithm: Sendable {
    typealias Function = @convention(c) (
        UnsafeMutablePointer<UInt8>?, UnsafeMutablePointer<UInt64>?,
        UnsafePointer<UInt8>?, UInt64, UnsafePointer<UInt8>?, UInt64,
        UnsafePointer<UInt8>?, UnsafePointer<UInt8>?, UnsafePointer<UInt8>?) -> Int32

    let name: String
    let keyBytes: Int
    let nonceBytes: Int
    let tagBytes: Int
    let encrypt: Function
    let decrypt: Function

    func seal(_ plaintext: [UInt8], additionalData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try check(nonce: nonce, key: key)
        let capacity = plaintext.count + tagBytes
        var written: UInt64 = 0
        let ciphertext = [UInt8](unsafeUninitializedCapacity: capacity) { output, initialized in
            let code = key.withUnsafeBytes { key in
                encrypt(output.baseAddress, &written, plaintext, UInt64(plaintext.count),
                        additionalData, UInt64(additionalData.count), nil, nonce,
                        key.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
            initialized = code == 0 ? Int(written) : 0
        }
        guard ciphertext.count == capacity else {
            throw .operationFailed(function: "\(name) encrypt", code: -1)
        }
        return ciphertext
    }

    func open(_ ciphertext: [UInt8], additionalData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try check(nonce: nonce, key: key)
        guard ciphertext.count >= tagBytes else { throw .authenticationFailed }
        var written: UInt64 = 0
        var code: Int32 = -1
        let plaintext = [UInt8](unsafeUninitializedCapacity: ciphertext.count - tagBytes) { output, initialized in
            code = key.withUnsafeBytes { key in
                decrypt(output.baseAddress, &written, nil, ciphertext, UInt64(ciphertext.count),
                        additionalData, UInt64(additionalData.count), nonce,
                        key.baseAddress?.assumingMemoryBound(to: UInt8.self))
            }
            initialized = code == 0 ? Int(written) : 0
        }
        guard code == 0 else { throw .authenticationFailed }
        return plaintext
    }

    private func check(nonce: [UInt8], key: SecretBytes) throws(SealError) {
        try Sodium.ensureInitialized()
        guard key.count == keyBytes else {
            throw .invalidLength(what: "\(name) key", expected: keyBytes...keyBytes, actual: key.count)
        }
        guard nonce.count == nonceBytes else {
            throw .invalidLength(what: "\(name) nonce", expected: nonceBytes...nonceBytes, actual: nonce.count)
        }
    }
}
