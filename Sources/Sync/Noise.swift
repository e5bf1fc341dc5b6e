public import Seal

/// Noise_IK_25519_ChaChaPoly_BLAKE2b (noiseprotocol.org, revision 34), the sync channel's
/// handshake: the device knows the hub's static key from provisioning, so one round trip
/// authenticates both sides and sets up transport keys, and no certificate bytes cross a link
/// paid by the kilobyte. Written from the specification on libsodium's primitives; checked
/// against the published noise-c vectors (Tests/SyncTests).
///
///     <- s
///     ...
///     -> e, es, s, ss      (device: its ephemeral and, encrypted, its static key + payload)
///     <- e, ee, se         (hub: its ephemeral + payload)
public enum Noise {
    public static let protocolName = "Noise_IK_25519_ChaChaPoly_BLAKE2b"
    static let hashLength = 64
    static let blockLength = 128
    static let keyLength = 32
    static let tagLength = 16
    public static let maxMessageLength = 65_535

    /// What a handshake or transport message was when it failed to decrypt.
    public enum Stage: Sendable, Equatable, CustomStringConvertible {
        case transportMessage
        case deviceStaticKey
        case firstPayload
        case secondPayload

        public var description: String {
            switch self {
            case .transportMessage: return "a transport message"
            case .deviceStaticKey: return "the device's static key (message 1)"
            case .firstPayload: return "message 1's payload"
            case .secondPayload: return "message 2's payload (is this the pinned hub?)"
            }
        }
    }

    /// A call this side made out of the handshake's order (a bug in the caller, not the peer).
    public enum Misuse: Sendable, Equatable, CustomStringConvertible {
        /// 2^64 - 1 messages on one key: the session must end.
        case nonceExhausted
        case initiatorWithoutResponderKey
        case firstWrittenByInitiatorOnly
        case firstReadByResponderOnly
        case secondFollowsFirst
        case secondReadAfterFirstSent
        case handshakeNotFinished

        public var description: String {
            switch self {
            case .nonceExhausted: return "the nonce is exhausted (start a new session)"
            case .initiatorWithoutResponderKey: return "the initiator needs the responder's static key"
            case .firstWrittenByInitiatorOnly: return "message 1 is the initiator's first"
            case .firstReadByResponderOnly: return "message 1 is read by the responder first"
            case .secondFollowsFirst: return "message 2 follows message 1"
            case .secondReadAfterFirstSent: return "message 2 is read after sending message 1"
            case .handshakeNotFinished: return "the handshake is not finished"
            }
        }
    }

    /// The primitive that failed under the handshake or a transport cipher.
    public enum Operation: String, Sendable, Equatable {
        case encrypt = "encryption"
        case keyAgreement = "X25519 key agreement"
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The peer's bytes do not authenticate at `stage`.
        case decryptFailed(stage: Stage)
        /// Handshake message `message` (1 or 2) has a length outside `allowed`.
        case malformed(message: Int, bytes: Int, allowed: ClosedRange<Int>)
        case wrongState(Misuse)
        /// libsodium refused `operation`; `cause` is its error.
        case crypto(Operation, cause: SealError)

        public var description: String {
            switch self {
            case .decryptFailed(let stage): return "handshake: \(stage) does not decrypt (wrong keys, a hub that is not the pinned one, or damaged bytes)"
            case .malformed(let message, let bytes, let allowed):
                return "handshake message \(message) malformed: it is \(bytes) bytes, needs \(allowed.lowerBound) to \(allowed.upperBound) (a peer that does not speak \(Noise.protocolName), or a damaged link)"
            case .wrongState(let misuse): return "handshake used out of order: \(misuse)"
            case .crypto(let operation, let cause): return "handshake crypto failed in \(operation.rawValue): \(cause)"
            }
        }
    }

    // MARK: HASH, HMAC, HKDF over BLAKE2b-512

    static func hash(_ parts: [UInt8]...) -> [UInt8] {
        var hasher = Blake2bHasher(outputLength: hashLength)
        for part in parts { hasher.update(part) }
        return hasher.finalize()
    }

    /// HMAC (RFC 2104) with BLAKE2b-512 and its 128-byte block, as Noise's HKDF requires
    /// (not BLAKE2b's own keyed mode).
    static func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var block = key.count > blockLength ? hash(key) : key
        block += [UInt8](repeating: 0, count: blockLength - block.count)
        let inner = hash(block.map { $0 ^ 0x36 }, data)
        return hash(block.map { $0 ^ 0x5C }, inner)
    }

    static func hkdf(chainingKey: [UInt8], _ inputKeyMaterial: [UInt8]) -> ([UInt8], [UInt8]) {
        let tempKey = hmac(key: chainingKey, inputKeyMaterial)
        let first = hmac(key: tempKey, [1])
        let second = hmac(key: tempKey, first + [2])
        return (first, second)
    }
}

/// A CipherState: a key and a counting nonce. Transport messages use one per direction.
public final class NoiseCipher {
    private var key: SecretBytes?
    public private(set) var nonce: UInt64 = 0

    init(key: [UInt8]? = nil) {
        self.key = key.map { SecretBytes(Array($0.prefix(Noise.keyLength))) }
    }

    var hasKey: Bool { key != nil }

    func setKey(_ bytes: [UInt8]) {
        key = SecretBytes(Array(bytes.prefix(Noise.keyLength)))
        nonce = 0
    }

    public func encrypt(_ plaintext: [UInt8], additionalData: [UInt8] = []) throws -> [UInt8] {
        guard let key else { return plaintext }
        guard nonce < UInt64.max else { throw Noise.Failure.wrongState(.nonceExhausted) }
        defer { nonce += 1 }
        do throws(SealError) {
            return try ChaChaPolyIETF.seal(plaintext, additionalData: additionalData, nonce: ChaChaPolyIETF.nonce(counter: nonce), key: key)
        } catch {
            throw Noise.Failure.crypto(.encrypt, cause: error)
        }
    }

    public func decrypt(_ ciphertext: [UInt8], additionalData: [UInt8] = [], stage: Noise.Stage = .transportMessage) throws -> [UInt8] {
        guard let key else { return ciphertext }
        guard nonce < UInt64.max else { throw Noise.Failure.wrongState(.nonceExhausted) }
        do {
            let plaintext = try ChaChaPolyIETF.open(ciphertext, additionalData: additionalData, nonce: ChaChaPolyIETF.nonce(counter: nonce), key: key)
            nonce += 1  // only on success: a forged message must not move the counter
            return plaintext
        } catch {
            throw Noise.Failure.decryptFailed(stage: stage)
        }
    }
}

/// The handshake for one side. Ephemeral keys can be given (tests use the published ones);
/// otherwise they are fresh from libsodium.
public final class NoiseHandshake {
    public enum Role: Sendable { case initiator, responder }

    public let role: Role
    private var chainingKey: [UInt8]
    public private(set) var handshakeHash: [UInt8]
    private let cipher = NoiseCipher()
    private let staticKey: X25519.KeyPair
    private var ephemeral: X25519.KeyPair?
    /// The peer's static key: known in advance by the initiator (pinned hub key), learnt from
    /// message 1 by the responder.
    public private(set) var remoteStatic: [UInt8]?
    private var remoteEphemeral: [UInt8]?
    private var step = 0

    public init(role: Role, staticKey: X25519.KeyPair, remoteStatic: [UInt8]? = nil, prologue: [UInt8], ephemeral: X25519.KeyPair? = nil) throws {
        self.role = role
        self.staticKey = staticKey
        self.ephemeral = ephemeral
        var name = Array(Noise.protocolName.utf8)
        name += [UInt8](repeating: 0, count: Noise.hashLength - name.count)
        handshakeHash = name
        chainingKey = name
        mixHash(prologue)
        // Pre-message pattern "<- s": both sides hash the responder's static key.
        switch role {
        case .initiator:
            guard let remoteStatic, remoteStatic.count == 32 else { throw Noise.Failure.wrongState(.initiatorWithoutResponderKey) }
            self.remoteStatic = remoteStatic
            mixHash(remoteStatic)
        case .responder:
            mixHash(staticKey.publicKey)
        }
    }

    private func mixHash(_ data: [UInt8]) { handshakeHash = Noise.hash(handshakeHash, data) }

    private func mixKey(_ inputKeyMaterial: SecretBytes) {
        let material = inputKeyMaterial.withUnsafeBytes { Array($0) }
        let (next, key) = Noise.hkdf(chainingKey: chainingKey, material)
        chainingKey = next
        cipher.setKey(key)
    }

    private func encryptAndHash(_ plaintext: [UInt8]) throws -> [UInt8] {
        let ciphertext = try cipher.encrypt(plaintext, additionalData: handshakeHash)
        mixHash(ciphertext)
        return ciphertext
    }

    private func decryptAndHash(_ ciphertext: [UInt8], stage: Noise.Stage) throws -> [UInt8] {
        let plaintext = try cipher.decrypt(ciphertext, additionalData: handshakeHash, stage: stage)
        mixHash(ciphertext)
        return plaintext
    }

    private func dh(_ secret: SecretBytes, _ peer: [UInt8]) throws -> SecretBytes {
        do throws(SealError) { return try X25519.sharedSecret(secret: secret, public: peer) } catch { throw Noise.Failure.crypto(.keyAgreement, cause: error) }
    }

    // MARK: Message 1: -> e, es, s, ss

    public func writeFirst(payload: [UInt8]) throws -> [UInt8] {
        guard role == .initiator, step == 0, let remoteStatic else { throw Noise.Failure.wrongState(.firstWrittenByInitiatorOnly) }
        let ephemeral = writeEphemeral()
        mixKey(try dh(ephemeral.secretKey, remoteStatic))
        let encryptedStatic = try encryptAndHash(staticKey.publicKey)
        mixKey(try dh(staticKey.secretKey, remoteStatic))
        let encryptedPayload = try encryptAndHash(payload)
        step = 1
        return ephemeral.publicKey + encryptedStatic + encryptedPayload
    }

    public func readFirst(_ message: [UInt8]) throws -> [UInt8] {
        guard role == .responder, step == 0 else { throw Noise.Failure.wrongState(.firstReadByResponderOnly) }
        let remoteEphemeral = try readEphemeral(message, number: 1, minimum: 32 + 32 + Noise.tagLength + Noise.tagLength)
        mixKey(try dh(staticKey.secretKey, remoteEphemeral))
        let remoteStatic = try decryptAndHash(Array(message[32..<80]), stage: .deviceStaticKey)
        self.remoteStatic = remoteStatic
        mixKey(try dh(staticKey.secretKey, remoteStatic))
        let payload = try decryptAndHash(Array(message[80...]), stage: .firstPayload)
        step = 1
        return payload
    }

    // MARK: Message 2: <- e, ee, se

    public func writeSecond(payload: [UInt8]) throws -> [UInt8] {
        guard role == .responder, step == 1, let remoteEphemeral, let remoteStatic else { throw Noise.Failure.wrongState(.secondFollowsFirst) }
        let ephemeral = writeEphemeral()
        mixKey(try dh(ephemeral.secretKey, remoteEphemeral))
        mixKey(try dh(ephemeral.secretKey, remoteStatic))
        let encryptedPayload = try encryptAndHash(payload)
        step = 2
        return ephemeral.publicKey + encryptedPayload
    }

    public func readSecond(_ message: [UInt8]) throws -> [UInt8] {
        guard role == .initiator, step == 1, let ephemeral else { throw Noise.Failure.wrongState(.secondReadAfterFirstSent) }
        let remoteEphemeral = try readEphemeral(message, number: 2, minimum: 32 + Noise.tagLength)
        mixKey(try dh(ephemeral.secretKey, remoteEphemeral))
        mixKey(try dh(staticKey.secretKey, remoteEphemeral))
        let payload = try decryptAndHash(Array(message[32...]), stage: .secondPayload)
        step = 2
        return payload
    }

    /// The token `e` written: this side's ephemeral key (a fixed one when a test gave it, else a
    /// new one), mixed into the hash; it is the message's first 32 bytes.
    private func writeEphemeral() -> X25519.KeyPair {
        let ephemeral = self.ephemeral ?? X25519.KeyPair.generate()
        self.ephemeral = ephemeral
        mixHash(ephemeral.publicKey)
        return ephemeral
    }

    /// The token `e` read: the message's length checked (`minimum` up to Noise's maximum), and
    /// the peer's ephemeral key, its first 32 bytes, kept and mixed into the hash.
    private func readEphemeral(_ message: [UInt8], number: Int, minimum: Int) throws -> [UInt8] {
        guard message.count >= minimum, message.count <= Noise.maxMessageLength else {
            throw Noise.Failure.malformed(message: number, bytes: message.count, allowed: minimum...Noise.maxMessageLength)
        }
        let remoteEphemeral = Array(message[0..<32])
        self.remoteEphemeral = remoteEphemeral
        mixHash(remoteEphemeral)
        return remoteEphemeral
    }

    /// Split(): the two transport ciphers, (sending, receiving) from this side's point of view.
    public func transport() throws -> (send: NoiseCipher, receive: NoiseCipher) {
        guard step == 2 else { throw Noise.Failure.wrongState(.handshakeNotFinished) }
        let (first, second) = Noise.hkdf(chainingKey: chainingKey, [])
        let initiatorToResponder = NoiseCipher(key: first), responderToInitiator = NoiseCipher(key: second)
        return role == .initiator ? (initiatorToResponder, responderToInitiator) : (responderToInitiator, initiatorToResponder)
    }
}
