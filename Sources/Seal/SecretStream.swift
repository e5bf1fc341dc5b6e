import CSodium

/// Marks the role of a chunk inside a secret stream; authenticated along with the chunk.
public enum SecretStreamTag: UInt8, Sendable {
    case message = 0
    /// The end of a logical set of chunks (for example one table); the stream goes on.
    case push = 1
    /// Derives a new key after this chunk, so earlier chunks stay safe if later state leaks.
    case rekey = 2
    /// The last chunk. Without it a reader cannot tell a complete stream from a cut one.
    case final = 3
}

/// crypto_secretstream_xchacha20poly1305: a sequence of chunks (a backup file, a long upload)
/// where each chunk is authenticated together with its position, so chunks cannot be dropped,
/// reordered or truncated without the reader noticing.
public enum SecretStream {
    public static let keyBytes = Int(crypto_secretstream_xchacha20poly1305_keybytes())
    public static let headerBytes = Int(crypto_secretstream_xchacha20poly1305_headerbytes())
    /// What each chunk adds to its message: one tag byte and a 16-byte MAC.
    public static let overheadBytes = Int(crypto_secretstream_xchacha20poly1305_abytes())
}

/// Encrypts a stream. Send `header` first; it is not secret.
public final class SecretStreamPusher {
    public let header: [UInt8]
    /// True once a `.final` chunk has been pushed.
    public private(set) var finished = false
    private let state: UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>

    public init(key: SecretBytes) throws(SealError) {
        try Sodium.ensureInitialized()
        try checkLength("secret stream key", key.count, SecretStream.keyBytes)
        let state = UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>.allocate(capacity: 1)
        let header = key.withPointer { key in
            producing(SecretStream.headerBytes) { header in
                crypto_secretstream_xchacha20poly1305_init_push(state, header, key)
            }
        }
        guard let header else {
            state.deallocate()
            throw .operationFailed(function: "crypto_secretstream_xchacha20poly1305_init_push", code: -1)
        }
        self.header = header
        self.state = state
    }

    deinit {
        sodium_memzero(state, MemoryLayout<crypto_secretstream_xchacha20poly1305_state>.size)
        state.deallocate()
    }

    public func push(_ message: [UInt8], tag: SecretStreamTag = .message, additionalData: [UInt8] = []) throws(SealError) -> [UInt8] {
        guard !finished else { throw .streamFinished }
        let state = state
        let chunk = producing(message.count + SecretStream.overheadBytes) { output in
            crypto_secretstream_xchacha20poly1305_push(
                state, output, nil, message, UInt64(message.count),
                additionalData, UInt64(additionalData.count), tag.rawValue)
        }
        guard let chunk else {
            throw .operationFailed(function: "crypto_secretstream_xchacha20poly1305_push", code: -1)
        }
        if tag == .final { finished = true }
        return chunk
    }
}

/// Decrypts a stream chunk by chunk, in order. Call `finish()` when the input ends: only a
/// `.final` chunk proves nothing was cut off.
public final class SecretStreamPuller {
    /// True once the `.final` chunk has been pulled.
    public private(set) var finished = false
    private let state: UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>

    public init(key: SecretBytes, header: [UInt8]) throws(SealError) {
        try Sodium.ensureInitialized()
        try checkLength("secret stream key", key.count, SecretStream.keyBytes)
        try checkLength("secret stream header", header.count, SecretStream.headerBytes)
        let state = UnsafeMutablePointer<crypto_secretstream_xchacha20poly1305_state>.allocate(capacity: 1)
        let code = key.withPointer { key in
            crypto_secretstream_xchacha20poly1305_init_pull(state, header, key)
        }
        guard code == 0 else {
            state.deallocate()
            throw .operationFailed(function: "crypto_secretstream_xchacha20poly1305_init_pull", code: code)
        }
        self.state = state
    }

    deinit {
        sodium_memzero(state, MemoryLayout<crypto_secretstream_xchacha20poly1305_state>.size)
        state.deallocate()
    }

    /// Throws `.authenticationFailed` for a chunk that was altered, cut, or is not the next one.
    public func pull(_ chunk: [UInt8], additionalData: [UInt8] = []) throws(SealError) -> (message: [UInt8], tag: SecretStreamTag) {
        guard !finished else { throw .streamFinished }
        guard chunk.count >= SecretStream.overheadBytes else { throw .authenticationFailed }
        let state = state
        var tag: UInt8 = 0
        let message = producing(chunk.count - SecretStream.overheadBytes) { output in
            crypto_secretstream_xchacha20poly1305_pull(
                state, output, nil, &tag, chunk, UInt64(chunk.count),
                additionalData, UInt64(additionalData.count))
        }
        guard let message, let known = SecretStreamTag(rawValue: tag) else { throw .authenticationFailed }
        if known == .final { finished = true }
        return (message, known)
    }

    /// Throws `.truncated` unless the `.final` chunk arrived.
    public func finish() throws(SealError) {
        guard finished else { throw .truncated }
    }
}
