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
        return [UInt8](unsafeUninitializedCapacity: outputLength) { output, initialized in
            bytes.withUnsafeBufferPointer { input in
                key.withUnsafeBufferPointer { key in
                    let code = crypto_generichash_blake2b(
                        output.baseAddress, outputLength, input.baseAddress, UInt64(input.count),
                        key.baseAddress, key.count)
                    precondition(code == 0, "crypto_generichash_blake2b failed with valid lengths")
                }
            }
            initialized = outputLength
        }
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
/// afterwards, and that is checked by the compiler instead of at run time.
public struct Blake2bHasher: ~Copyable {
    public let outputLength: Int
    private let state: UnsafeMutablePointer<crypto_generichash_blake2b_state>

    public init(outputLength: Int = 32, key: [UInt8]? = nil) {
        Blake2b.checkLengths(outputLength: outputLength, key: key)
        Sodium.ready()
        // libsodium's SIMD code wants the state 64-byte aligned, as its header declares.
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: MemoryLayout<crypto_generichash_blake2b_state>.size,
            alignment: max(64, MemoryLayout<crypto_generichash_blake2b_state>.alignment))
        state = raw.bindMemory(to: crypto_generichash_blake2b_state.self, capacity: 1)
        self.outputLength = outputLength
        let key = key ?? []
        let code = key.withUnsafeBufferPointer {
            crypto_generichash_blake2b_init(state, $0.baseAddress, $0.count, outputLength)
        }
        precondition(code == 0, "crypto_generichash_blake2b_init failed with valid lengths")
    }

    public mutating func update(_ bytes: [UInt8]) {
        let code = bytes.withUnsafeBufferPointer {
            crypto_generichash_blake2b_update(state, $0.baseAddress, UInt64($0.count))
        }
        precondition(code == 0, "crypto_generichash_blake2b_update failed")
    }

    public consuming func finalize() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: outputLength) { output, initialized in
            let code = crypto_generichash_blake2b_final(state, output.baseAddress, outputLength)
            precondition(code == 0, "crypto_generichash_blake2b_final failed")
            initialized = outputLength
        }
    }

    deinit {
        sodium_memzero(state, MemoryLayout<crypto_generichash_blake2b_state>.size)
        state.deallocate()
    }
}
