import Agent
import Backup
import Field
import Journal
import SatchelTesting
import Seal
import Testing

/// Bounds on what a card may say (issue 13): a card is outside input, damaged or hostile.
@Suite("Backup: bounds on what a card may say")
struct BoundsTests {
    @Test("card init refuses an Argon2id cost a restore would refuse to read back, before anything is derived or written")
    func keyCostBoundOnWrite() throws {
        for cost in [PasswordHash.Cost(opsLimit: 9, memLimit: 64 * 1024), PasswordHash.Cost(opsLimit: 2, memLimit: 1 << 30), PasswordHash.Cost(opsLimit: 0, memLimit: 64 * 1024)] {
            let error = #expect(throws: BackupError.self) {
                try BackupKey.generate().identity(device: "BG03", rep: "R07", passphrase: "Zażółć-гусля-2026", cost: cost, now: 0)
            }
            #expect(error == .keyCostOutOfBounds(opsLimit: cost.opsLimit, memLimit: cost.memLimit))
            #expect(error?.exitCode == 65 && error?.description.contains("nothing was written") == true)
        }
        // The bounds are the ones unwrap applies: what init accepts, restore reads back.
        let key = BackupKey.generate()
        let identity = try key.identity(device: "BG03", rep: "R07", passphrase: "Zażółć-гусля-2026", cost: BackupFixture.cheapCost, now: 0)
        #expect(try BackupKey.unwrap(identity, passphrase: "Zażółć-гусля-2026", path: "card.json").check == key.check)
    }

    /// Rewrites the name in a pointer slot, with a correct checksum, as a hostile card would.
    func renamePointer(_ card: CrashFileSystem, slot: String, to name: String) throws {
        var bytes = try card.read(slot, max: 128)
        let nameBytes = Array(name.utf8)
        bytes[64] = UInt8(nameBytes.count)
        for index in 65..<124 { bytes[index] = index - 65 < nameBytes.count ? nameBytes[index - 65] : 0 }
        let crc = CRC32C.checksum(bytes[0..<124])
        for index in 0..<4 { bytes[124 + index] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(index))) }
        try card.write(slot, at: 0, bytes)
    }

    @Test("a pointer slot naming a path (with / or ..) is not a pointer: the restore takes the other slot and never looks outside the snapshot directory")
    func pointerNameIsPlain() throws {
        for hostile in ["../card.json", "../../../../etc/passwd", "a/b.sealed", "..", "."] {
            let fixture = try BackupFixture()
            let device = try fixture.open()
            _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
            let ids = try fixture.captureDay(device)
            let newest = try fixture.agent.snapshot(device)
            let slot = "/card/satchel/BG03/" + (newest.generation % 2 == 0 ? "pointer-a" : "pointer-b")
            try renamePointer(fixture.card, slot: slot, to: hostile)
            let report = try fixture.agent.restore(passphrase: nil, force: true)
            #expect(report.snapshotGeneration == 1 && report.skipped.isEmpty, "\(hostile): \(report.skipped)")
            #expect(try BackupFixture.documentIDs(fixture.open().database) == Set(ids))
        }
    }

    @Test("erased flash (0xFF) in both pointer slots, and snapshot chunk lengths of 0x7FFFFFFF to 0xFFFFFFFF: refused with a clear reason, no trap, nothing replaced")
    func erasedAndHostileLengths() throws {
        for length: UInt32 in [0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF] {
            let fixture = try BackupFixture()
            let device = try fixture.open()
            _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
            try fixture.captureDay(device)
            let first = try #require(try fixture.card.listDirectory("/card/satchel/BG03/snapshots").first)
            var field: [UInt8] = []
            LittleEndian.append(length, to: &field)
            try fixture.card.write("/card/satchel/BG03/snapshots/" + first, at: 8 + 24, field)
            let error = #expect(throws: BackupError.self) { try fixture.agent.restore(passphrase: nil, force: true) }
            #expect(error?.description.contains("chunk length \(length)") == true, "\(String(describing: error))")
        }
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        for slot in ["pointer-a", "pointer-b"] where fixture.card.exists("/card/satchel/BG03/" + slot) {
            try fixture.card.write("/card/satchel/BG03/" + slot, at: 0, [UInt8](repeating: 0xFF, count: 128))
        }
        // Erased slots are no pointer: the restore falls back on the journal alone, as with no snapshot.
        let report = try fixture.agent.restore(passphrase: nil, force: true)
        #expect(report.snapshotGeneration == nil && report.skipped.isEmpty)
    }

    @Test("a snapshot whose first chunk length is one past the bytes the file has left: refused with the chunk's length and place, no trap, the device's documents as they were")
    func snapshotChunkOnePastTheEnd() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        let ids = try fixture.captureDay(device)
        let first = "/card/satchel/BG03/snapshots/" + (try #require(try fixture.card.listDirectory("/card/satchel/BG03/snapshots").first))
        let stored = LittleEndian.uint32(try fixture.card.read(first, at: 8 + 24, count: 4), at: 0)
        // The file cut so that the chunk's stated length is one past what follows its length field.
        try fixture.card.truncate(first, to: 8 + 24 + 4 + Int64(stored) - 1)
        let error = #expect(throws: BackupError.self) { try fixture.agent.restore(passphrase: nil, force: true) }
        #expect(error?.description.contains("chunk length \(stored) at byte 32") == true, "\(String(describing: error))")
        #expect(try BackupFixture.documentIDs(fixture.open().database) == Set(ids))
    }

    @Test("a sealed record slot (epoch-a/-b) whose length field reads 0x7FFFFFFF to 0xFFFFFFFF, or one past the bytes the slot holds, does not open: no trap, the other slot is read, nothing on the card changed")
    func sealedRecordHostileLengths() throws {
        // The field is a u32: 2^63-1 cannot be written in it; the widest a slot can claim is 0xFFFFFFFF.
        let stored = 8 + AEAD.tagBytes
        for length: UInt32 in [0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF, UInt32(stored + 1)] {
            let card = CrashFileSystem()
            try card.createDirectory("/card")
            try card.createDirectory("/card/satchel")
            try card.createDirectory("/card/satchel/BG03")
            let epoch = CardEpoch(layout: CardLayout(root: "/card", device: "BG03"), key: BackupKey.generate(), card: card)
            try epoch.record(1)
            try epoch.record(2)   // generation 2, in epoch-b
            let slot = "/card/satchel/BG03/epoch-b"
            #expect(LittleEndian.uint32(try card.read(slot, max: 4096), at: 16) == UInt32(stored))
            var field: [UInt8] = []
            LittleEndian.append(length, to: &field)
            try card.write(slot, at: 16, field)
            let before = try ["epoch-a", "epoch-b"].map { try card.read("/card/satchel/BG03/" + $0, max: 4096) }
            #expect(try epoch.read() == 1, "length \(length)")
            #expect(try ["epoch-a", "epoch-b"].map { try card.read("/card/satchel/BG03/" + $0, max: 4096) } == before, "length \(length): the card changed")
            // Both slots hostile: a typed error naming the slots, never a trap or a value.
            try card.write("/card/satchel/BG03/epoch-a", at: 16, field)
            let error = #expect(throws: BackupError.self, "length \(length)") { try epoch.read() }
            #expect(error?.description.contains("epoch-a does not open") == true, "\(String(describing: error))")
        }
    }
}
