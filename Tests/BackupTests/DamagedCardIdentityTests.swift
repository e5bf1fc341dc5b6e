import Backup
import Seal
import Testing

/// card.json comes from a card that may be damaged or from another hand: what `satchel restore`
/// unwraps after a wipe must be refused as a damaged identity file (exit 69, naming the file),
/// never escape as a crypto error, and never make Argon2id run for hours or allocate gigabytes.
/// Found by fuzzing card.json (Tests/Fuzz/regressions/card-json).
@Suite struct DamagedCardIdentityTests {
    static let passphrase = "Zażółć-гусля-2026"
    static let path = "/card/satchel/WAW07/card.json"

    static func identity() throws -> CardIdentity {
        try BackupKey.generate().identity(device: "WAW07", rep: "Zofia Wójcik-Łęcka", passphrase: passphrase,
                                          cost: PasswordHash.Cost(opsLimit: 1, memLimit: 64 * 1024), now: 1_795_428_000_000)
    }

    static let damages: [(String, @Sendable (inout CardIdentity) -> Void)] = [
        ("salt not hexadecimal", { $0.keySalt = "Ż" + $0.keySalt.dropFirst(2) }),
        ("salt one byte short", { $0.keySalt = String($0.keySalt.dropLast(2)) }),
        ("nonce two bytes short", { $0.keyNonce = String($0.keyNonce.dropLast(4)) }),
        ("wrapped key not hexadecimal", { $0.wrappedKey = "ba" + "zz" }),
        ("no passes", { $0.keyOpsLimit = 0 }),
        ("2^32 - 1 passes (hours of Argon2id)", { $0.keyOpsLimit = 4_294_967_295 }),
        ("64 GiB of Argon2id memory", { $0.keyMemLimit = 64 << 30 }),
        ("1 KiB of Argon2id memory", { $0.keyMemLimit = 1024 }),
    ]

    @Test("a damaged key slot in card.json is refused as a damaged identity file, before any key derivation",
          .timeLimit(.minutes(1)), arguments: damages.indices)
    func damagedKeySlotIsRefused(_ index: Int) throws {
        let (what, damage) = Self.damages[index]
        var identity = try Self.identity()
        damage(&identity)
        let error = #expect(throws: BackupError.self, "\(what)") {
            try BackupKey.unwrap(identity, passphrase: Self.passphrase, path: Self.path)
        }
        guard case .cardIdentityDamaged(let path, _) = error else {
            Issue.record("\(what): \(String(describing: error)) instead of a damaged identity file")
            return
        }
        #expect(path == Self.path)
        #expect(error?.exitCode == 69)
    }

    @Test("an undamaged card.json still unwraps with its passphrase, and a wrong passphrase is still a wrong key")
    func undamagedStillUnwraps() throws {
        let identity = try Self.identity()
        let key = try BackupKey.unwrap(identity, passphrase: Self.passphrase, path: Self.path)
        #expect(key.check == identity.keyCheck)
        #expect(throws: BackupError.wrongKey(path: Self.path)) {
            try BackupKey.unwrap(identity, passphrase: "Слънчев бряг 2026", path: Self.path)
        }
    }
}
