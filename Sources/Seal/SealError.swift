/// Why a cryptographic operation was refused; libsodium's return code where it gives one.
public enum SealError: Error, Equatable, CustomStringConvertible {
    /// sodium_init returned -1: the system could not provide what libsodium needs.
    case initializationFailed(code: Int32)
    /// A key, nonce, salt, header or output length is outside what the primitive takes.
    case invalidLength(what: String, expected: ClosedRange<Int>, actual: Int)
    /// Decryption failed: tampered, truncated, reordered, or the wrong key, nonce or
    /// additional data. None of the bytes may be used.
    case authenticationFailed
    /// The peer's X25519 public key is a low-order point: the shared secret would be all zeros.
    case weakPublicKey
    /// The stream already ended with its final tag.
    case streamFinished
    /// The stream stopped before its final tag: the rest was cut off.
    case truncated
    /// The text is not hexadecimal; `offset` is the UTF-8 offset of the first bad character.
    case invalidHex(offset: Int)
    /// A libsodium function failed where it rarely does (usually out of memory).
    case operationFailed(function: String, code: Int32)

    public var description: String {
        switch self {
        case .initializationFailed(let code):
            return "sodium_init failed (\(code)); the system could not provide randomness, check /dev/urandom"
        case .invalidLength(let what, let expected, let actual):
            let range = expected.lowerBound == expected.upperBound
                ? "\(expected.lowerBound)"
                : expected.upperBound == Int.max ? "at least \(expected.lowerBound)" : "\(expected.lowerBound)...\(expected.upperBound)"
            return "\(what) is \(actual) bytes; expected \(range)"
        case .authenticationFailed:
            return "authentication failed (libsodium returned -1): the data was tampered with, truncated or reordered, or the key or nonce is wrong; discard it"
        case .weakPublicKey:
            return "X25519 refused a low-order public key (crypto_scalarmult returned -1); the peer is broken or hostile"
        case .streamFinished:
            return "the secret stream already ended with its final tag; start a new stream"
        case .truncated:
            return "the secret stream ended without its final tag; the data was cut off, discard it"
        case .invalidHex(let offset):
            return "not hexadecimal at offset \(offset) (expected pairs of 0-9, a-f)"
        case .operationFailed(let function, let code):
            return "\(function) failed (\(code)); most likely out of memory"
        }
    }
}
