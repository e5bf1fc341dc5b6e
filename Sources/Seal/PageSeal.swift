import CSodium

/// XChaCha20-Poly1305-IETF over a fixed-size page, in place: what the encrypted SQLite files
/// (`Store.PageEncryption`) use. The last `reservedBytes` of every page hold a fresh random
/// nonce (24 bytes) and the tag (16 bytes); the bytes before them are encrypted in place, so a
/// page keeps its size and SQLite's reserved-bytes-per-page leaves room for both. Nothing here
/// is a new primitive: libsodium's detached AEAD, with a random 192-bit nonce per write (no
/// counter to keep across power cuts).
public enum PageSeal {
    public static let nonceBytes = Int(crypto_aead_xchacha20poly1305_ietf_npubbytes())
    public static let tagBytes = Int(crypto_aead_xchacha20poly1305_ietf_abytes())
    /// Nonce and tag at the end of each page.
    public static let reservedBytes = nonceBytes + tagBytes
    public static let keyBytes = Int(crypto_aead_xchacha20poly1305_ietf_keybytes())

    /// Encrypts `page` in place under a new random nonce, binding `additionalData` (where the
    /// page lives). False only when libsodium fails (it does not for valid lengths).
    public static func seal(_ page: UnsafeMutableRawBufferPointer, additionalData: UnsafeRawBufferPointer, key: SecretBytes) -> Bool {
        guard key.count == keyBytes, page.count > reservedBytes, let base = page.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
        Sodium.ready()
        let length = page.count - reservedBytes
        let nonce = base + length, tag = nonce + nonceBytes
        randombytes_buf(nonce, nonceBytes)
        return key.withPointer { key in
            crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
                base, tag, nil, base, UInt64(length),
                additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(additionalData.count),
                nil, nonce, key) == 0
        }
    }

    /// Decrypts `page` in place; false (and the page left as it was read) when the tag does not
    /// match: tampered, moved to another place, or another key.
    public static func open(_ page: UnsafeMutableRawBufferPointer, additionalData: UnsafeRawBufferPointer, key: SecretBytes) -> Bool {
        guard key.count == keyBytes, page.count > reservedBytes, let base = page.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
        Sodium.ready()
        let length = page.count - reservedBytes
        let nonce = base + length, tag = nonce + nonceBytes
        return key.withPointer { key in
            // libsodium checks the tag before it writes a byte of plaintext (crypto_aead_*_decrypt_detached).
            crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                base, nil, base, UInt64(length), tag,
                additionalData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(additionalData.count),
                nonce, key) == 0
        }
    }
}
