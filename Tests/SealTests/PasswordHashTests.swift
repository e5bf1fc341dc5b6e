import Seal
import Testing

/// Argon2id's minimum passes and a small memory size, so the tests run in milliseconds.
private let cheap = PasswordHash.Cost(opsLimit: 1, memLimit: 64 * 1024)

@Test(arguments: ["Zażółć gęślą jaźń", "Съешь же ещё этих мягких французских булок", ""])
func passwordHashVerifiesOnlyTheRightPassword(password: String) throws {
    let hash = try PasswordHash.hash(password: password, cost: cheap)
    #expect(hash.hasPrefix("$argon2id$v=19$m=64,t=1,"))
    #expect(PasswordHash.verify(hash, password: password))
    #expect(!PasswordHash.verify(hash, password: password + "1"))
    #expect(!PasswordHash.verify(hash, password: "Zazolc gesla jazn"))  // folded diacritics are another password
}

@Test func passwordHashesAreSalted() throws {
    let first = try PasswordHash.hash(password: "Здравейте", cost: cheap)
    let second = try PasswordHash.hash(password: "Здравейте", cost: cheap)
    #expect(first != second)
    #expect(PasswordHash.verify(second, password: Array("Здравейте".utf8)))
}

@Test func garbageHashNeverVerifies() {
    #expect(!PasswordHash.verify("", password: ""))
    #expect(!PasswordHash.verify("$argon2id$v=19$m=64,t=1,p=1$garbage", password: "x"))
}

@Test func rehashIsAskedForWhenTheCostChanges() throws {
    let hash = try PasswordHash.hash(password: "jaźń", cost: cheap)
    #expect(!PasswordHash.needsRehash(hash, cost: cheap))
    #expect(PasswordHash.needsRehash(hash, cost: .handheld))
}

@Test func costBelowArgon2idMinimumIsRefused() {
    #expect(throws: SealError.self) {
        try PasswordHash.hash(password: "x", cost: PasswordHash.Cost(opsLimit: 0, memLimit: 64 * 1024))
    }
}

@Test func presetsAreTheDocumentedOnes() {
    #expect(PasswordHash.Cost.handheld == PasswordHash.Cost(opsLimit: 3, memLimit: 8 << 20))
    #expect(PasswordHash.Cost.interactive == PasswordHash.Cost(opsLimit: 2, memLimit: 64 << 20))
}

@Test func derivedKeyDependsOnPasswordAndSalt() throws {
    let salt = Random.bytes(PasswordHash.saltBytes)
    func key(_ password: String, _ salt: [UInt8]) throws -> [UInt8] {
        try PasswordHash.deriveKey(password: password, salt: salt, cost: cheap).withUnsafeBytes { Array($0) }
    }
    let first = try key("Gżegżółka", salt)
    #expect(first.count == 32)
    #expect(try key("Gżegżółka", salt) == first)
    #expect(try key("Gzegzolka", salt) != first)
    #expect(try key("Gżegżółka", Random.bytes(PasswordHash.saltBytes)) != first)
    #expect(throws: SealError.invalidLength(what: "Argon2id salt", expected: 16...16, actual: 8)) {
        try PasswordHash.deriveKey(password: "x", salt: Array(salt.prefix(8)), cost: cheap)
    }
}

@Test func derivedKeyEncryptsABackup() throws {
    let salt = Random.bytes(PasswordHash.saltBytes)
    let key = try PasswordHash.deriveKey(password: "Съешь", salt: salt, length: AEAD.keyBytes, cost: cheap)
    let nonce = AEAD.randomNonce()
    let sealed = try AEAD.seal(Array("backup".utf8), nonce: nonce, key: key)
    let again = try PasswordHash.deriveKey(password: "Съешь", salt: salt, length: AEAD.keyBytes, cost: cheap)
    #expect(try AEAD.open(sealed, nonce: nonce, key: again) == Array("backup".utf8))
}
