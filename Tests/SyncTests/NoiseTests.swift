import Seal
import Sync
import Testing

@Suite("Noise IK: the sync channel's handshake")
struct NoiseTests {
    // Published vectors: rweather/noise-c tests/vector/noise-c-basic.txt, Noise_IK_25519_ChaChaPoly_BLAKE2b.
    static let prologue = "50726f6c6f677565313233"
    static let initiatorStatic = "e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1"
    static let initiatorEphemeral = "893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"
    static let responderStatic = "4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893"
    static let responderStaticPublic = "31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62"
    static let responderEphemeral = "bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b"
    static let payload1 = "4c756477696720766f6e204d69736573"
    static let message1 = "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
        + "ba83a447b38c83e327ad936929812f624884847b7831e95e197b2f797088efdd232fe541af156ec6d0657602902a8c3e"
        + "e64e470f4b6fcd9298ce0b56fe20f86e60d9d933ec6e103ffb09e6001d6abb64"
    static let payload2 = "4d757272617920526f746862617264"
    static let message2 = "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843"
        + "9f069b267a06b3de3ecb1043bcb09807c6cd101f3826192a65f11ef3fe4317"
    static let transport1 = ("462e20412e20486179656b", "cd54383060e7a28434cca27fb1cc524cfbabeb18181589df219d07")
    static let transport2 = ("4361726c204d656e676572", "a856d3bf0246bfc476c655009cd1ed677b8dcc5b349ae8ef2a05f2")
    static let handshakeHash = "00e51d2aac81a9b8ebe441d6af3e1c8efc0f030cc608332edcb42588ff6a0ce26415ddc106e95277a5e6d54132f1e5245976b89caf96d262f1fe5a7f0c55c078"

    func pair(_ secret: String) throws -> X25519.KeyPair { try X25519.KeyPair(secretKey: SecretBytes(try Hex.decode(secret))) }

    func handshakes() throws -> (NoiseHandshake, NoiseHandshake) {
        let initiator = try NoiseHandshake(role: .initiator, staticKey: pair(Self.initiatorStatic), remoteStatic: Hex.decode(Self.responderStaticPublic),
                                           prologue: Hex.decode(Self.prologue), ephemeral: pair(Self.initiatorEphemeral))
        let responder = try NoiseHandshake(role: .responder, staticKey: pair(Self.responderStatic), prologue: Hex.decode(Self.prologue),
                                           ephemeral: pair(Self.responderEphemeral))
        return (initiator, responder)
    }

    @Test("both sides reproduce the published messages, handshake hash and transport ciphertexts")
    func publishedVectors() throws {
        let (initiator, responder) = try handshakes()
        let first = try initiator.writeFirst(payload: Hex.decode(Self.payload1))
        #expect(Hex.encode(first) == Self.message1)
        #expect(try Hex.encode(responder.readFirst(first)) == Self.payload1)
        #expect(responder.remoteStatic == (try pair(Self.initiatorStatic)).publicKey)
        let second = try responder.writeSecond(payload: Hex.decode(Self.payload2))
        #expect(Hex.encode(second) == Self.message2)
        #expect(try Hex.encode(initiator.readSecond(second)) == Self.payload2)
        #expect(Hex.encode(initiator.handshakeHash) == Self.handshakeHash)
        #expect(responder.handshakeHash == initiator.handshakeHash)

        let (initiatorSend, initiatorReceive) = try initiator.transport()
        let (responderSend, responderReceive) = try responder.transport()
        let sealed = try initiatorSend.encrypt(Hex.decode(Self.transport1.0))
        #expect(Hex.encode(sealed) == Self.transport1.1)
        #expect(try Hex.encode(responderReceive.decrypt(sealed)) == Self.transport1.0)
        let answer = try responderSend.encrypt(Hex.decode(Self.transport2.0))
        #expect(Hex.encode(answer) == Self.transport2.1)
        #expect(try Hex.encode(initiatorReceive.decrypt(answer)) == Self.transport2.0)
    }

    @Test("a device that pinned another hub key cannot complete the handshake")
    func wrongPinnedKey() throws {
        let impostor = X25519.KeyPair.generate()
        let device = try NoiseHandshake(role: .initiator, staticKey: .generate(), remoteStatic: impostor.publicKey, prologue: [])
        let hub = try NoiseHandshake(role: .responder, staticKey: .generate(), prologue: [])
        let first = try device.writeFirst(payload: Array("sync".utf8))
        #expect(throws: Noise.Failure.decryptFailed(stage: .deviceStaticKey)) { try hub.readFirst(first) }
    }

    @Test("a short message 1 is refused with its length and the lengths allowed; a call out of order names the step")
    func typedRefusals() throws {
        let hub = try NoiseHandshake(role: .responder, staticKey: .generate(), prologue: [])
        let error = #expect(throws: Noise.Failure.self) { try hub.readFirst([UInt8](repeating: 0, count: 10)) }
        #expect(error == .malformed(message: 1, bytes: 10, allowed: 96...Noise.maxMessageLength))
        #expect(error?.description.contains("handshake message 1 malformed: it is 10 bytes, needs 96 to 65535") == true, "\(String(describing: error))")
        #expect(throws: Noise.Failure.wrongState(.secondFollowsFirst)) { try hub.writeSecond(payload: []) }
        #expect(throws: Noise.Failure.wrongState(.handshakeNotFinished)) { try hub.transport() }
        #expect(Noise.Failure.wrongState(.secondFollowsFirst).description == "handshake used out of order: message 2 follows message 1")
    }

    @Test("an unexpected hub message says what came, what was due and what to do")
    func unexpectedMessageText() {
        let failure = SyncFailure.unexpected(.wrongType(7, expected: .receipt))
        #expect(failure.description == "unexpected message from the hub: message type 7, expected receipt (6); update satchel or the hub so both speak the same protocol")
        #expect(SyncFailure.unexpected(.receiptForOtherBatch(received: "b2", sent: "b1")).description.contains("receipt for batch b2 instead of b1"))
    }

    @Test("a flipped bit anywhere in message 1 or 2 is refused", arguments: [0, 31, 40, 79, 90])
    func tampering(offset: Int) throws {
        let (initiator, responder) = try handshakes()
        var first = try initiator.writeFirst(payload: Array("Zamówienia: 40".utf8))
        first[offset] ^= 0x01
        #expect(throws: Noise.Failure.self) { try responder.readFirst(first) }
    }

    @Test("transport: replayed or reordered messages fail, and the counter does not move on a forgery")
    func transportReplay() throws {
        let (initiator, responder) = try handshakes()
        _ = try responder.readFirst(initiator.writeFirst(payload: []))
        _ = try initiator.readSecond(responder.writeSecond(payload: []))
        let (send, _) = try initiator.transport()
        let (_, receive) = try responder.transport()
        let one = try send.encrypt(Array("zamówienie 1".utf8)), two = try send.encrypt(Array("заказ 2".utf8))
        #expect(throws: Noise.Failure.self) { try receive.decrypt(two) }  // out of order
        #expect(try receive.decrypt(one) == Array("zamówienie 1".utf8))
        #expect(throws: Noise.Failure.self) { try receive.decrypt(one) }  // replayed
        #expect(try receive.decrypt(two) == Array("заказ 2".utf8))
    }

    @Test("messages of impossible length are refused before any crypto", arguments: [0, 10, 79, 70_000])
    func lengths(count: Int) throws {
        let (_, responder) = try handshakes()
        #expect(throws: Noise.Failure.self) { try responder.readFirst([UInt8](repeating: 7, count: count)) }
    }
}
