@testable import Seal
import Testing

@Test func initializationIsIdempotent() throws {
    try Sodium.ensureInitialized()
    try Sodium.ensureInitialized()
}

@Test func constantTimeEqualCompares() {
    #expect(Sodium.equal([1, 2, 3], [1, 2, 3]))
    #expect(!Sodium.equal([1, 2, 3], [1, 2, 4]))
    #expect(!Sodium.equal([1, 2, 3], [1, 2]))
    #expect(Sodium.equal([], []))
}

@Test func randomBytesAreFreshAndUniformStaysInRange() {
    #expect(Random.bytes(0) == [])
    let a = Random.bytes(32)
    let b = Random.bytes(32)
    #expect(a.count == 32)
    #expect(a != b)
    var seen = Set<UInt32>()
    for _ in 0..<1000 {
        let value = Random.uniform(upperBound: 6)
        #expect(value < 6)
        seen.insert(value)
    }
    #expect(seen.count == 6)
}

@Test func secretBytesNeverPrintTheirContents() {
    let secret = SecretBytes([0xde, 0xad, 0xbe, 0xef])
    #expect("\(secret)" == "SecretBytes(4 bytes, redacted)")
    #expect(String(reflecting: secret) == "SecretBytes(4 bytes, redacted)")
    var dumped = ""
    dump(secret, to: &dumped)
    #expect(!dumped.contains("222"))  // 0xde, as dump would print a byte
    #expect(!dumped.lowercased().contains("dead"))
}

@Test func secretBytesWipeReachesTheBytes() {
    let secret = SecretBytes.random(count: 64)
    #expect(secret.withUnsafeBytes { $0.contains { $0 != 0 } })
    secret.wipe()
    #expect(secret.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
}

/// The last reference going really frees the secret (and so runs the wipe in `deinit`): nothing
/// the type does keeps it alive. (Setting an optional to nil and expecting nil proved nothing.)
@Test func secretBytesAreFreedWhenTheLastReferenceGoes() {
    for count in [0, 1, 32, 4096] {
        var secret: SecretBytes? = SecretBytes.random(count: count)
        weak var watcher = secret
        #expect(watcher?.count == count)
        #expect(secret?.withUnsafeBytes { $0.count } == count)
        _ = "\(secret!)"  // describing it must not retain it either
        secret = nil
        #expect(watcher == nil, "a SecretBytes of \(count) bytes outlived its last reference")
    }
}

/// The error thrown while initialising reaches the caller unchanged. (That the partial bytes are
/// wiped before they are freed is not observable from outside without reading freed memory; the
/// wipe itself is checked by `secretBytesWipeReachesTheBytes`.)
@Test func failedInitializationRethrowsTheBodysError() {
    struct Refused: Error, Equatable { var at: Int }
    #expect(throws: Refused(at: 3)) {
        try SecretBytes(count: 8) { (bytes) throws(Refused) in
            bytes.storeBytes(of: 0xff, toByteOffset: 0, as: UInt8.self)
            throw Refused(at: 3)
        }
    }
}

@Test func errorsSayWhatToDo() {
    #expect(SealError.authenticationFailed.description.contains("discard"))
    #expect(SealError.invalidLength(what: "derived key", expected: 16...Int.max, actual: 8).description
        == "derived key is 8 bytes; expected at least 16")
    #expect(SealError.invalidLength(what: "AEAD key", expected: 32...32, actual: 31).description
        == "AEAD key is 31 bytes; expected 32")
}
