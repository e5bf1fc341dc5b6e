import Agent
import Backup
import Field
import SatchelTesting
import Store
import Testing

@Suite("Backup: cancelled drafts and removed lines replay on restore")
struct DraftEditBackupTests {
    @Test("a wiped handheld restores a draft with a line removed as it was, and a cancelled draft stays cancelled")
    func draftEditsRestored() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        #expect(try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase).state == .ok)
        let capture = Capture(device)
        let kept = try capture.createOrder(customerID: "C1", lines: [.init(partNumber: "P1", quantity: 2), .init(partNumber: "P2", quantity: 3),
                                                                     .init(partNumber: "P1", quantity: 5)], confirm: false).document
        let trimmed = try fixture.agent.capture(.orders, in: device) { try Capture($0).removeLine(orderID: kept.id, lineNo: 2) }.value.document
        #expect(trimmed.lines.map(\.lineNo) == [1, 2])
        #expect(trimmed.lines.map(\.quantity) == [2, 5])
        let dropped = try capture.createOrder(customerID: "C2", lines: [.init(partNumber: "P2", quantity: 1)], confirm: false).document
        let cancelled = try fixture.agent.capture(.orders, in: device) { try Capture($0).cancelOrder(dropped.id) }
        #expect(cancelled.onCard)
        #expect(cancelled.value.document.state == .cancelled)
        #expect(try device.database.text("SELECT action FROM changes ORDER BY seq DESC LIMIT 1") == "cancelled")
        fixture.wipeInternal()

        _ = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
        let restored = try fixture.open()
        #expect(try Orders(restored).load(kept.id) == trimmed)
        #expect(throws: FieldError.unknownOrder(dropped.id)) { try Orders(restored).load(dropped.id) }
        // The next document gets a fresh id: the cancelled one is never reused.
        let next = try Capture(restored).createOrder(customerID: "C2", lines: [], confirm: false).document
        #expect(next.id != dropped.id && next.id != kept.id)
    }
}
