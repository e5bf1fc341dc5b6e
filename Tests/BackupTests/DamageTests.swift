import Agent
import Backup
import Field
import SatchelTesting
import Store
import Testing

@Suite("Agent: damage found before a snapshot stops writes until a restore")
struct DamageTests {
    @Test("the snapshot's quick_check finds a damaged page no capture touches; writes stop; a restore brings them back")
    func snapshotFindsDamage() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        #expect(try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase).state == .ok)
        let ids = try fixture.captureDay(device)
        try device.database.checkpoint()
        // history_orders is master data no capture writes: only a full check sees its damage.
        let root = try device.database.int64("SELECT rootpage FROM sqlite_schema WHERE name = 'history_orders'")
        corruptPageHeader(device.path, page: root, pageSize: try device.database.int64("PRAGMA page_size"))

        let damaged = try fixture.open()
        _ = try Capture(damaged).recordVisit(customerID: "C1", outcome: .order, note: "Магазин Ёлка")  // nothing has looked yet
        let generationBefore = fixture.agent.cardReport(damaged).snapshotGeneration
        let error = #expect(throws: FieldError.self) { try fixture.agent.snapshot(damaged) }
        guard case .damagedDatabase = error else { Issue.record("expected damagedDatabase, got \(String(describing: error))"); return }
        #expect(fixture.agent.cardReport(damaged).snapshotGeneration == generationBefore, "no snapshot of a damaged file")
        #expect(throws: FieldError.self) { try Capture(damaged).recordPayment(customerID: "C1", amountMinor: 10_00, method: .cash, receipt: "KP/99") }
        #expect(throws: FieldError.self) { _ = try fixture.open() }

        let report = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
        #expect(report.movedAside != nil)
        let restored = try fixture.open()
        #expect(try BackupFixture.documentIDs(restored.database).isSuperset(of: Set(ids)))
        _ = try Capture(restored).recordPayment(customerID: "C1", amountMinor: 10_00, method: .cash, receipt: "KP/99")
    }

    @Test("the daemon looks for damage when it starts, and stops writes when it finds some")
    func daemonStartFindsDamage() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        try device.database.checkpoint()
        let root = try device.database.int64("SELECT rootpage FROM sqlite_schema WHERE name = 'display_types'")
        corruptPageHeader(device.path, page: root, pageSize: try device.database.int64("PRAGMA page_size"))
        var lines: [String] = []
        var loop = DaemonLoop(agent: fixture.agent, snapshotInterval: 3_600_000, log: { lines.append($0) })
        loop.tick()
        #expect(lines.contains { $0.contains("damaged") && $0.contains("writes are refused") }, "\(lines)")
        #expect(throws: FieldError.self) { try Capture(device).recordVisit(customerID: "C2", outcome: .closed, note: "Skład budowlany Źródło") }
    }
}
