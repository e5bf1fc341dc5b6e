import Agent
import Backup
import Field
import Journal
import SatchelTesting
import Seal
import Store
import Testing

/// The id-space epoch on the card (issue 10): every restore records a new one on the card before
/// it swaps the database in; a torn slot falls back to the other; a card that refuses the record
/// refuses the restore and replaces nothing.
@Suite("Backup: the epoch of the id space across restores")
struct EpochTests {
    @Test("ids read back as device, epoch and sequence; epoch 1 keeps the old form")
    func clientIDs() {
        #expect(ClientID.make(device: "WAW07", epoch: 1, sequence: 42) == "WAW07-000042")
        #expect(ClientID.make(device: "WAW07", epoch: 3, sequence: 1_234_567) == "WAW07~3-1234567")
        #expect(ClientID.parse("WAW07~3-1234567") == ClientID.Parts(device: "WAW07", epoch: 3, sequence: 1_234_567))
        #expect(ClientID.parse("BG.03_a-000001") == ClientID.Parts(device: "BG.03_a", epoch: 1, sequence: 1))
        for malformed in ["WAW07", "WAW07-", "WAW07~1-000001", "WAW07~02-000001", "WAW07~x-1", "WAW07-recovered-1", "-000001", "WAW07-0"] {
            #expect(ClientID.parse(malformed) == nil, "\(malformed)")
        }
        #expect(ClientID.belongs("WAW07~2-000009", to: "WAW07") && !ClientID.belongs("WAW070-000009", to: "WAW07"))
    }

    @Test("each restore moves the epoch on, on the card first; ids issued after it are new")
    func restoresAdvance() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        let before = try fixture.captureDay(device)
        #expect(before.allSatisfy { ClientID.parse($0)?.epoch == 1 })
        fixture.wipeInternal()
        let first = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
        #expect(first.epoch == 2)
        let layout = CardLayout(root: "/card", device: "BG03")
        let key = BackupKey(SecretBytes(fileBytes(fixture.home + "/card.key")))
        #expect(try CardEpoch(layout: layout, key: key, card: fixture.card).read() == 2)
        let after = try fixture.captureDay(try fixture.open())
        #expect(after.allSatisfy { $0.hasPrefix("BG03~2-") })
        #expect(Set(before).isDisjoint(with: after))
        let second = try fixture.agent.restore(passphrase: nil, force: true)
        #expect(second.epoch == 3)
        #expect(try fixture.open().epoch() == 3)
    }

    @Test("a torn epoch slot falls back to the other; the restore still moves past it")
    func tornSlot() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        _ = try fixture.agent.restore(passphrase: nil, force: true)   // epoch 2, in the second slot
        let layout = CardLayout(root: "/card", device: "BG03")
        let key = BackupKey(SecretBytes(fileBytes(fixture.home + "/card.key")))
        try fixture.card.write("/card/satchel/BG03/epoch-b", at: 20, [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(try CardEpoch(layout: layout, key: key, card: fixture.card).read() == 1)
        // The rebuilt database says 2 (its journal and snapshot know it): the next is 3 all the same.
        _ = try fixture.captureDay(try fixture.open())
        let report = try fixture.agent.restore(passphrase: nil, force: true)
        #expect(report.epoch == 3)
    }

    @Test("a card that refuses the epoch record refuses the restore: nothing is replaced")
    func readOnlyCardRefuses() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        _ = try fixture.captureDay(device)
        fixture.wipeInternal()
        fixture.card.readOnly = true
        do {
            _ = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
            Issue.record("a restore that could not record its epoch went ahead")
        } catch let error as BackupError {
            guard case .epochNotRecorded = error else { Issue.record("\(error)"); return }
            #expect(error.exitCode == 74 && error.description.contains("make the card writable"))
        }
        #expect(!PosixFileSystem().exists(fixture.home + "/satchel.db"))
        #expect(!PosixFileSystem().exists(fixture.home + "/satchel.db.restoring"))
        fixture.card.readOnly = false
        #expect(try fixture.agent.restore(passphrase: BackupFixture.passphrase).epoch == 2)
    }
}
