import Seal
import Testing

// Published test vectors: if libsodium, the wrapper's argument order or a length is wrong,
// these are what notice.

@Test func blake2b512OfEmptyInput() {
    let digest = Blake2b.hash([], outputLength: 64)
    #expect(Hex.encode(digest) == "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce")
}

@Test func blake2b512OfAbc() {  // RFC 7693, appendix A
    let digest = Blake2b.hash(Array("abc".utf8), outputLength: 64)
    #expect(Hex.encode(digest) == "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923")
}

@Test func incrementalBlake2bMatchesOneShot() {
    let text = Array("Съешь же ещё этих мягких французских булок".utf8)
    let key = Array(repeating: UInt8(7), count: 32)
    var hasher = Blake2bHasher(outputLength: 32, key: key)
    hasher.update(Array(text[..<5]))
    hasher.update([])
    hasher.update(Array(text[5...]))
    let incremental = hasher.finalize()
    #expect(incremental == Blake2b.hash(text, outputLength: 32, key: key))
    #expect(incremental != Blake2b.hash(text, outputLength: 32))  // the key matters
    #expect(incremental.count == 32)
}

private let aliceSecret = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
private let alicePublic = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
private let bobSecret = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
private let bobPublic = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
private let sharedSecret = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

@Test func x25519Rfc7748Section6_1() throws {
    let alice = try X25519.KeyPair(secretKey: SecretBytes(Hex.decode(aliceSecret)))
    let bob = try X25519.KeyPair(secretKey: SecretBytes(Hex.decode(bobSecret)))
    #expect(Hex.encode(alice.publicKey) == alicePublic)
    #expect(Hex.encode(bob.publicKey) == bobPublic)

    let aliceShared = try X25519.sharedSecret(secret: alice.secretKey, public: bob.publicKey)
    let bobShared = try X25519.sharedSecret(secret: bob.secretKey, public: alice.publicKey)
    #expect(aliceShared.withUnsafeBytes { Hex.encode(Array($0)) } == sharedSecret)
    #expect(bobShared.withUnsafeBytes { Hex.encode(Array($0)) } == sharedSecret)
}

private let rfc8439Plaintext = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
private let rfc8439Ciphertext = """
    d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6\
    3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36\
    92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc\
    3ff4def08e4b7a9de576d26586cec64b6116
    """
private let rfc8439Tag = "1ae10b594f09e26a7e902ecbd0600691"

@Test func chaCha20Poly1305Rfc8439Section2_8_2() throws {
    let key = SecretBytes(Array(0x80...0x9f))
    let nonce = try Hex.decode("070000004041424344454647")
    let aad = try Hex.decode("50515253c0c1c2c3c4c5c6c7")
    let plaintext = Array(rfc8439Plaintext.utf8)
    #expect(plaintext.count == 114)

    let sealed = try ChaChaPolyIETF.seal(plaintext, additionalData: aad, nonce: nonce, key: key)
    #expect(Hex.encode(Array(sealed.dropLast(16))) == rfc8439Ciphertext)
    #expect(Hex.encode(Array(sealed.suffix(16))) == rfc8439Tag)
    #expect(try ChaChaPolyIETF.open(sealed, additionalData: aad, nonce: nonce, key: key) == plaintext)
}

@Test func hexRoundTripsAndRefusesBadInput() throws {
    #expect(Hex.encode([0x00, 0x7f, 0xff]) == "007fff")
    #expect(try Hex.decode("007F") == [0x00, 0x7f])
    #expect(try Hex.decode("") == [])
    #expect(throws: SealError.invalidHex(offset: 3)) { try Hex.decode("abc") }
    #expect(throws: SealError.invalidHex(offset: 1)) { try Hex.decode("0g") }
    #expect(throws: SealError.invalidHex(offset: 2)) { try Hex.decode("00ż") }
}
