import CSodium

/// BLAKE2b, the hash of the Noise handshake and of download checksums.
///
/// Output and key lengths are fixed by the protocol in code, so a wrong one is a programming
/// error and traps rather than throwing.
public enum Blake2b {
    public static let minOutputLength = Int(crypto_generichash_blake2b_bytes_min())
    public static let maxOutputLength = Int(crypto_generichash_blake2b_bytes_max())
    public static let minKeyLength = Int(crypto_generichash_blake2b_keybytes_min())
    public static let maxKeyLength = Int(crypto_generichash_blake2b_keybytes_max())

    public static func hash(_ bytes: [UInt8], outputLength: Int = 32, key: [UInt8]? = nil) -> [UInt8] {
        checkLengths(outputLength: outputLength, key: key)
        Sodium.ready()
        let key = key ?? []
        let digest = producing(outputLength) { output in
            crypto_generichash_blake2b(output, outputLength, bytes, UInt64(bytes.count),
                                       key.isEmpty ? nil : key, key.count)
        }
        guard let digest else { preconditionFailure("crypto_generichash_blake2b failed with valid lengths") }
        return digest
    }

    static func checkLengths(outputLength: Int, key: [UInt8]?) {
        precondition((minOutputLength...maxOutputLength).contains(outputLength),
                     "BLAKE2b output length \(outputLength) is outside \(minOutputLength)...\(maxOutputLength)")
        if let key, !key.isEmpty {
            precondition((minKeyLength...maxKeyLength).contains(key.count),
                         "BLAKE2b key length \(key.count) is outside \(minKeyLength)...\(maxKeyLength)")
        }
    }
}

/// BLAKE2b over data that arrives in pieces (a download, a transcript).
///
/// Noncopyable, and `finalize` consumes it: a hash state cannot be finalised twice or updated
/// afterwards, and the compiler checks that instead of a flag at run time.
public struct Blake2bHasher: ~Copyable {
    public let outputLength: Int
    private let state: UnsafeMutableRawPointer
    private static let stateBytes = crypto_generichash_blake2b_statebytes()

    public init(outputLength: Int = 32, key: [UInt8]? = nil) {
        Blake2b.checkLengths(outputLength: outputLength, key: key)
        Sodium.ready()
        // libsodium declares the state 64-byte aligned for its SIMD code; Swift sees it as opaque.
        state = .allocate(byteCount: Self.stateBytes, alignment: 64)
        self.outputLength = outputLength
        let key = key ?? []
        let code = crypto_generichash_blake2b_init(OpaquePointer(state), key.isEmpty ? nil : key, key.count, outputLength)
        precondition(code == 0, "crypto_generichash_blake2b_init failed with valid lengths")
    }

    public mutating func update(_ bytes: [UInt8]) {
        let code = crypto_generichash_blake2b_update(OpaquePointer(state), bytes, UInt64(bytes.count))
        precondition(code == 0, "crypto_generichash_blake2b_update failed")
    }

    public consuming func finalize() -> [UInt8] {
        let digest = producing(outputLength) { output in
            crypto_generichash_blake2b_final(OpaquePointer(state), output, outputLength)
        }
        guard let digest else { preconditionFailure("crypto_generichash_blake2b_final failed") }
        return digest
    }

    deinit {
        sodium_memzero(state, Self.stateBytes)
        state.deallocate()
    }
}
