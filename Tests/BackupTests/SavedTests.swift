import Agent
import Backup
import Field
import Journal
import SatchelTesting
import Testing
import Store

/// `DeviceAgent.capture`: the one definition of "saved" (the commit, and the fsynced card append
/// when the device has a card), and what it says when the card does not have the change.
@Suite("Saved: what capture promises")
struct SavedTests {
    @Test("with a healthy card the change is on the card before the acknowledgement, and no warning")
    func onTheCard() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        var acknowledged: DeviceAgent.Saved<String>?
        let saved = try fixture.agent.capture(.visits, in: device, { try Capture($0).recordVisit(customerID: "C1", outcome: .order, note: "Заявка — zamówienie").document.id }) {
            // At the acknowledgement the card journal already holds the change.
            #expect(fixture.agent.cardReport(device).journalThroughSeq == $0.sequence)
            acknowledged = $0
        }
        #expect(acknowledged?.value == saved.value && saved.onCard && saved.warning == nil)
        #expect(saved.card.state == .ok && saved.card.journalThroughSeq == saved.sequence)
    }

    @Test("a full card, or a backup key without a configured card: saved on the device, not on the card, and the warning says why")
    func notOnTheCard() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        fixture.card.capacity = fixture.card.volatile.files.values.reduce(0) { $0 + $1.count }
        let full = try fixture.agent.capture(.visits, in: device) { try Capture($0).recordVisit(customerID: "C2", outcome: .noOrder, note: "Karta pełna") }
        #expect(!full.onCard && full.card.state == .full)
        #expect(full.warning?.contains("not yet on the card: full (/card)") == true)

        var configuration = fixture.configuration
        configuration.cardRoot = nil
        let unconfigured = DeviceAgent(configuration, cardFileSystem: fixture.card, clock: fixture.clock)
        let lost = try unconfigured.capture(.visits, in: device) { try Capture($0).recordVisit(customerID: "C2", outcome: .noOrder, note: "Без пътя") }
        #expect(!lost.onCard && lost.card.state == .absent && lost.warning?.contains("config set card") == true)
        #expect(try device.database.int64("SELECT count(*) FROM visits") == 2)
    }

    @Test("a device without a card and without a backup key: saved, nothing to warn about")
    func noCard() throws {
        let fixture = try BackupFixture()
        var configuration = fixture.configuration
        configuration.cardRoot = nil
        let agent = DeviceAgent(configuration, cardFileSystem: fixture.card, clock: fixture.clock)
        let saved = try agent.capture(.visits, in: try fixture.open()) { try Capture($0).recordVisit(customerID: "C1", outcome: .order) }
        #expect(saved.card.state == .notConfigured && !saved.onCard && saved.warning == nil)
    }

    @Test("a capture while a snapshot is being written is not held up by it: on the card at once, and restored with the snapshot")
    func captureDuringASnapshot() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        let before = try fixture.captureDay(device)
        // While generation 2 is being encrypted onto the card, the rep saves a visit.
        var during: DeviceAgent.Saved<String>?
        fixture.card.onOperation = { card in
            guard during == nil, card.volatile.files.keys.contains(where: { $0.hasSuffix("snap-000000000002.sealed") }) else { return }
            card.onOperation = nil
            let agent = DeviceAgent(fixture.configuration, cardFileSystem: fixture.card, clock: fixture.clock)  // another process
            during = try? agent.capture(.visits, in: device, { try Capture($0).recordVisit(customerID: "C2", outcome: .order, note: "Podczas kopii — по време на копието").document.id })
        }
        let pointer = try fixture.agent.snapshot(device)
        let saved = try #require(during)
        #expect(saved.onCard && saved.card.state == .ok)
        #expect(pointer.generation == 2 && pointer.coversSequence < saved.sequence)  // copied before the visit

        fixture.wipeInternal()
        _ = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
        #expect(try BackupFixture.documentIDs(fixture.open().database) == Set(before + [saved.value]))
    }
}
