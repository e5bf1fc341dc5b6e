import CSodium

/// XChaCha20-Poly1305-IETF: authenticated encryption for data at rest (backups, the card
/// journal). Its 24-byte nonce is large enough to pick at random for every message, so no
/// counter has to survive power loss.
public enum AEAD: AEADCipher {
    public static let keyBytes = Int(crypto_aead_xchacha20poly1305_ietf_keybytes())
    public static let nonceBytes = Int(crypto_aead_xchacha20poly1305_ietf_npubbytes())
    public static let tagBytes = Int(crypto_aead_xchacha20poly1305_ietf_abytes())

    public static func generateKey() -> SecretBytes { SecretBytes.random(count: keyBytes) }
    public static func randomNonce() -> [UInt8] { Random.bytes(nonceBytes) }

    public static let algorithm = AEADAlgorithm(
        name: "XChaCha20-Poly1305", keyBytes: keyBytes, nonceBytes: nonceBytes, tagBytes: tagBytes,
        encrypt: { c, m, mlen, ad, adlen, npub, k in
            crypto_aead_xchacha20poly1305_ietf_encrypt(c, nil, m, mlen, ad, adlen, nil, npub, k)
        },
        decrypt: { m, c, clen, ad, adlen, npub, k in
            crypto_aead_xchacha20poly1305_ietf_decrypt(m, nil, nil, c, clen, ad, adlen, npub, k)
        })
}

/// ChaCha20-Poly1305-IETF (RFC 8439), the cipher of the Noise sync channel. Its 12-byte nonce
/// is too small to pick at random; Noise derives it from a message counter (`nonce(counter:)`).
public enum ChaChaPolyIETF: AEADCipher {
    public static let keyBytes = Int(crypto_aead_chacha20poly1305_ietf_keybytes())
    public static let nonceBytes = Int(crypto_aead_chacha20poly1305_ietf_npubbytes())
    public static let tagBytes = Int(crypto_aead_chacha20poly1305_ietf_abytes())

    /// Noise's nonce for message `counter`: four zero bytes, then the counter little-endian.
    public static func nonce(counter: UInt64) -> [UInt8] {
        [0, 0, 0, 0] + (0..<8).map { UInt8(truncatingIfNeeded: counter >> (8 * $0)) }
    }

    public static let algorithm = AEADAlgorithm(
        name: "ChaCha20-Poly1305-IETF", keyBytes: keyBytes, nonceBytes: nonceBytes, tagBytes: tagBytes,
        encrypt: { c, m, mlen, ad, adlen, npub, k in
            crypto_aead_chacha20poly1305_ietf_encrypt(c, nil, m, mlen, ad, adlen, nil, npub, k)
        },
        decrypt: { m, c, clen, ad, adlen, npub, k in
            crypto_aead_chacha20poly1305_ietf_decrypt(m, nil, nil, c, clen, ad, adlen, npub, k)
        })
}

/// The two AEADs' one public face: both take the same arguments, so `seal` and `open` are
/// written once, over each cipher's `algorithm`.
public protocol AEADCipher {
    static var algorithm: AEADAlgorithm { get }
}

extension AEADCipher {
    /// Returns the ciphertext followed by the 16-byte tag.
    public static func seal(_ plaintext: [UInt8], additionalData: [UInt8] = [], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try algorithm.seal(plaintext, additionalData: additionalData, nonce: nonce, key: key)
    }

    public static func open(_ ciphertext: [UInt8], additionalData: [UInt8] = [], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try algorithm.open(ciphertext, additionalData: additionalData, nonce: nonce, key: key)
    }
}

/// One body checks lengths and calls either cipher's libsodium functions. Public only as the
/// type of `AEADCipher.algorithm`: nothing of it is visible outside Seal.
public struct AEADAlgorithm: Sendable {
    /// (output, input, input length, additional data, its length, nonce, key) -> 0 or -1
    typealias Function = @Sendable (
        UnsafeMutablePointer<UInt8>, UnsafePointer<UInt8>, UInt64,
        UnsafePointer<UInt8>, UInt64, UnsafePointer<UInt8>, UnsafePointer<UInt8>) -> Int32

    let name: String
    let keyBytes: Int
    let nonceBytes: Int
    let tagBytes: Int
    let encrypt: Function
    let decrypt: Function

    func seal(_ plaintext: [UInt8], additionalData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try check(nonce: nonce, key: key)
        let sealed = key.withPointer { key in
            producing(plaintext.count + tagBytes) { output in
                encrypt(output, plaintext, UInt64(plaintext.count),
                        additionalData, UInt64(additionalData.count), nonce, key)
            }
        }
        guard let sealed else { throw .operationFailed(function: "\(name) encrypt", code: -1) }
        return sealed
    }

    func open(_ ciphertext: [UInt8], additionalData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(SealError) -> [UInt8] {
        try check(nonce: nonce, key: key)
        guard ciphertext.count >= tagBytes else { throw .authenticationFailed }
        let opened = key.withPointer { key in
            producing(ciphertext.count - tagBytes) { output in
                decrypt(output, ciphertext, UInt64(ciphertext.count),
                        additionalData, UInt64(additionalData.count), nonce, key)
            }
        }
        guard let opened else { throw .authenticationFailed }
        return opened
    }

    private func check(nonce: [UInt8], key: SecretBytes) throws(SealError) {
        try Sodium.ensureInitialized()
        try checkLength("\(name) key", key.count, keyBytes)
        try checkLength("\(name) nonce", nonce.count, nonceBytes)
    }
}
