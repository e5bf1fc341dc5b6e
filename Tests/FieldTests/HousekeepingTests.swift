import Field
import Store
import Testing

@Suite("Housekeeping: what the hub holds goes after the retention period, nothing else")
struct HousekeepingTests {
    @Test("only uploaded documents older than 30 days go; open orders stay; the newest change stays; unsent changes cannot be deleted")
    func onlyWhatTheHubHolds() throws {
        let fixture = try Fixture()
        let capture = Capture(fixture.device)
        let database = fixture.device.database
        let old = try capture.recordVisit(customerID: "CPL1", outcome: .order, note: "Stara wizyta")
        let settled = try capture.createOrder(customerID: "CPL1", lines: [OrderLineRequest(partNumber: "P1", quantity: 2)], confirm: true).document.id
        let open = try capture.createOrder(customerID: "CPL1", lines: [OrderLineRequest(partNumber: "P2", quantity: 1)], confirm: true).document.id
        try database.execute("UPDATE orders SET state = 'settled' WHERE id = ?", [.text(settled)])
        let unsent = try capture.recordVisit(customerID: "CRU1", outcome: .noOrder, note: "Не отправлено")
        // The hub holds the first three changes; 31 days pass.
        try database.execute("UPDATE sync_state SET value = '3' WHERE key = 'uploaded_through_seq'")
        fixture.clock.advance(milliseconds: 31 * 86_400_000)
        let report = try Housekeeping(fixture.device).run()
        #expect(report.documents == 2)   // the old visit and the settled order
        #expect(try database.int64("SELECT count(*) FROM visits WHERE id = ?", [.text(old.document.id)]) == 0)
        #expect(try database.int64("SELECT count(*) FROM orders WHERE id = ?", [.text(settled)]) == 0)
        #expect(try database.int64("SELECT count(*) FROM order_lines WHERE order_id = ?", [.text(settled)]) == 0)
        #expect(try database.int64("SELECT count(*) FROM orders WHERE id = ?", [.text(open)]) == 1)        // confirmed, not settled
        #expect(try database.int64("SELECT count(*) FROM visits WHERE id = ?", [.text(unsent.document.id)]) == 1)  // never uploaded
        #expect(try database.int64("SELECT min(seq) FROM changes") == 4)
        // The database itself refuses to delete what the hub does not hold.
        #expect(throws: StoreError.self) { try database.execute("DELETE FROM changes WHERE seq = 4") }
        // Everything uploaded and old: the newest change still stays (the journal's anchor).
        try database.execute("UPDATE sync_state SET value = '4' WHERE key = 'uploaded_through_seq'")
        try Housekeeping(fixture.device).run()
        #expect(try database.int64("SELECT count(*) FROM changes") == 1)
        #expect(throws: StoreError.self) { try database.execute("DELETE FROM changes") }
    }
}
