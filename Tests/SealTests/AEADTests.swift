import Seal
import Testing

private let message = Array("Zażółć gęślą jaźń — Здравейте, България".utf8)
private let header = Array("invoice 2024/Łódź/17".utf8)

@Test func xChaChaRoundTripAndConstants() throws {
    #expect(AEAD.keyBytes == 32 && AEAD.nonceBytes == 24 && AEAD.tagBytes == 16)
    let key = AEAD.generateKey()
    let nonce = AEAD.randomNonce()
    let sealed = try AEAD.seal(message, additionalData: header, nonce: nonce, key: key)
    #expect(sealed.count == message.count + AEAD.tagBytes)
    #expect(!sealed.starts(with: message.prefix(16)))
    #expect(try AEAD.open(sealed, additionalData: header, nonce: nonce, key: key) == message)
}

@Test func emptyPlaintextStillCarriesATag() throws {
    let key = AEAD.generateKey()
    let nonce = AEAD.randomNonce()
    let sealed = try AEAD.seal([], nonce: nonce, key: key)
    #expect(sealed.count == AEAD.tagBytes)
    #expect(try AEAD.open(sealed, nonce: nonce, key: key) == [])
}

@Test func everyFlippedBitIsRefused() throws {
    let key = AEAD.generateKey()
    let nonce = AEAD.randomNonce()
    let sealed = try AEAD.seal(message, additionalData: header, nonce: nonce, key: key)
    for bit in 0..<(sealed.count * 8) {
        var tampered = sealed
        tampered[bit / 8] ^= 1 << (bit % 8)
        #expect(throws: SealError.authenticationFailed) {
            try AEAD.open(tampered, additionalData: header, nonce: nonce, key: key)
        }
    }
}

@Test func wrongKeyNonceOrAdditionalDataIsRefused() throws {
    let key = AEAD.generateKey()
    let nonce = AEAD.randomNonce()
    let sealed = try AEAD.seal(message, additionalData: header, nonce: nonce, key: key)
    #expect(throws: SealError.authenticationFailed) {
        try AEAD.open(sealed, additionalData: header, nonce: nonce, key: AEAD.generateKey())
    }
    #expect(throws: SealError.authenticationFailed) {
        try AEAD.open(sealed, additionalData: header, nonce: AEAD.randomNonce(), key: key)
    }
    #expect(throws: SealError.authenticationFailed) {
        try AEAD.open(sealed, additionalData: Array("invoice 2024/Łódź/18".utf8), nonce: nonce, key: key)
    }
    #expect(throws: SealError.authenticationFailed) {
        try AEAD.open(Array(sealed.dropLast()), additionalData: header, nonce: nonce, key: key)
    }
    #expect(throws: SealError.authenticationFailed) {
        try AEAD.open(Array(sealed.prefix(5)), additionalData: header, nonce: nonce, key: key)
    }
}

@Test func wrongLengthsAreRefusedBeforeLibsodiumSeesThem() {
    let key = AEAD.generateKey()
    #expect(throws: SealError.invalidLength(what: "XChaCha20-Poly1305 nonce", expected: 24...24, actual: 12)) {
        try AEAD.seal(message, nonce: Array(repeating: 0, count: 12), key: key)
    }
    #expect(throws: SealError.invalidLength(what: "ChaCha20-Poly1305-IETF key", expected: 32...32, actual: 16)) {
        try ChaChaPolyIETF.seal(message, nonce: ChaChaPolyIETF.nonce(counter: 0), key: SecretBytes(Array(repeating: 1, count: 16)))
    }
}

@Test func chaChaPolyNoiseNonceIsZeroPrefixedLittleEndian() throws {
    #expect(ChaChaPolyIETF.nonce(counter: 0x0102_0304_0506_0708) == [0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1])
    let key = SecretBytes.random(count: ChaChaPolyIETF.keyBytes)
    let first = try ChaChaPolyIETF.seal(message, nonce: ChaChaPolyIETF.nonce(counter: 1), key: key)
    let second = try ChaChaPolyIETF.seal(message, nonce: ChaChaPolyIETF.nonce(counter: 2), key: key)
    #expect(first != second)
    #expect(throws: SealError.authenticationFailed) {
        try ChaChaPolyIETF.open(first, nonce: ChaChaPolyIETF.nonce(counter: 2), key: key)
    }
}

@Test func x25519AgreesAndRefusesLowOrderPoints() throws {
    let alice = X25519.KeyPair.generate()
    let bob = X25519.KeyPair.generate()
    #expect(alice.publicKey != bob.publicKey)
    #expect(try X25519.publicKey(fromSecret: alice.secretKey) == alice.publicKey)
    let ab = try X25519.sharedSecret(secret: alice.secretKey, public: bob.publicKey)
    let ba = try X25519.sharedSecret(secret: bob.secretKey, public: alice.publicKey)
    #expect(ab.withUnsafeBytes { Array($0) } == ba.withUnsafeBytes { Array($0) })

    #expect(throws: SealError.weakPublicKey) {
        try X25519.sharedSecret(secret: alice.secretKey, public: Array(repeating: 0, count: 32))
    }
    var one = Array(repeating: UInt8(0), count: 32)
    one[0] = 1  // the point of order 1
    #expect(throws: SealError.weakPublicKey) { try X25519.sharedSecret(secret: alice.secretKey, public: one) }
    #expect(throws: SealError.self) { try X25519.sharedSecret(secret: alice.secretKey, public: [1, 2, 3]) }
}
