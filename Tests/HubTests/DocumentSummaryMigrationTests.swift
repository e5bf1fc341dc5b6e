import Field
import Foundation
import Hub
import SatchelTesting
import Store
import Sync
import Testing

/// Issue 13: the hub decodes a document once, at ingest, with the device's codec and keeps what
/// the office reads of it in typed columns (document_summaries); no SQL reads the JSON. A hub
/// from before (SQLite v10, PostgreSQL v8) is migrated, its documents backfilled by decoding
/// them in Swift, and the office sees them as before.
@Suite("Document summaries: decoded once at ingest, backfilled for documents stored before", .serialized)
struct DocumentSummaryMigrationTests {
    static let now: Int64 = 1_796_000_000_000

    /// Takes the store back to the schema before the summaries, as a hub of that version left it:
    /// device_changes as it was, no summary table, the version one lower. The summaries are the
    /// newest migration on SQLite, so "one lower" is the version before them; on PostgreSQL the ERP
    /// currencies came after, and go with them.
    static func downgradeToBeforeSummaries(_ store: TestStore) throws {
        try store.execute("DROP TABLE document_summaries")
        try store.execute("DROP TABLE pending_backfills")
        if store.storage is SQLiteHubStorage {
            let version = try #require(Int(try store.text("PRAGMA user_version")))
            try store.execute("PRAGMA user_version=\(version - 1)")
        } else {
            // PostgreSQL's ERP exchange (v11: currencies, export positions and cursor) came after
            // the summaries: undone with them.
            for table in ["erp_currencies", "erp_exports", "erp_export_state"] { try store.execute("DROP TABLE IF EXISTS \(table)") }
            try store.execute("ALTER TABLE device_changes DROP COLUMN IF EXISTS position")
            try store.execute("DELETE FROM satchel_schema WHERE version >= (SELECT version FROM satchel_schema WHERE name LIKE '%document summaries%')")
        }
    }

    /// A change as a hub from before the codec stored it: the device's JSON text as it came.
    static func stageLegacyChange(_ store: TestStore, id: String, device: String, seq: Int64, entity: String, action: String, payload: String) throws {
        try store.execute("""
            INSERT INTO device_changes(change_id, device_id, seq, at, entity, entity_id, action, payload, received_at, epoch)
            VALUES ('\(id)', '\(device)', \(seq), \(seq), '\(entity)', '\(id)', '\(action)', '\(payload)', \(now - 60_000), 1)
            """)
    }

    static func documents(_ storage: any HubStorage) throws -> [OfficeDocument] {
        try #require(storage as? any OfficeStore).officeDocuments(DocumentFilter())
    }

    @Test("a hub from before the summaries is migrated: every document uploaded before lists as it did, its Polish, Bulgarian and Russian text intact; legacy rows that do not decode keep what the office saw and say why", arguments: Backend.allCases)
    func documentsUploadedBeforeTheMigrationListAsBefore(backend: Backend) throws {
        let store = try backend.makeHub()
        for (rep, name, device, key) in [("rep-zielinska", "Agnieszka Zielińska", "PL01", UInt8(1)), ("rep-dimitrov", "Стоян Димитров", "BG01", 2),
                                         ("rep-kuznetsova", "Ольга Кузнецова", "RU01", 3)] {
            try store.storage.addRep(id: rep, name: name, passwordHash: "$argon2id$x")
            try store.storage.addDevice(id: device, rep: rep, publicKey: Array(repeating: key, count: 32), now: 1)
        }
        let order = SampleDocuments.order("PL01-1", customer: "CPL000017", state: .confirmed, approval: .pending,
                                          holdReason: "przekroczony limit kredytowy — превишен кредитен лимит", lines: 2)
        let quote = QuoteDocument(id: "BG01-1", customerId: "CBG000042", currency: "BGN", discountBasisPoints: 1_500, totalMinor: 120_000,
                                  approval: .pending, holdReason: "отстъпка над 10% — скидка больше 10%", at: SampleDocuments.at,
                                  lines: [QuoteLine(lineNo: 1, partNumber: "PN-20001", quantity: 40, unitPriceMinor: 3_000, amountMinor: 120_000)])
        let maintenance = MaintenanceDocument(id: "RU01-2", equipmentId: "ХОЛ-0007", at: SampleDocuments.at, kind: .cleaning,
                                              note: "Почищен конденсатор — wyczyszczony skraplacz")
        _ = try store.storage.commit(Batch(id: "PL-B1", changes: [
            SyncChange(seq: 1, changeId: "PL01-1", at: 1, entity: "order", entityId: "PL01-1", action: "confirmed", payload: SampleDocuments.payload(.order(order))),
        ]), device: "PL01", now: Self.now - 3_600_000)
        _ = try store.storage.commit(Batch(id: "BG-B1", changes: [
            SyncChange(seq: 1, changeId: "BG01-1", at: 2, entity: "quote", entityId: "BG01-1", action: "created", payload: SampleDocuments.payload(.quote(quote))),
            SyncChange(seq: 2, changeId: "BG01-2", at: 3, entity: "payment", entityId: "BG01-2", action: "collected",
                       payload: SampleDocuments.payload(.payment(SampleDocuments.payment("BG01-2", customer: "CBG000042")))),
        ]), device: "BG01", now: Self.now - 2_400_000)
        _ = try store.storage.commit(Batch(id: "RU-B1", changes: [
            SyncChange(seq: 1, changeId: "RU01-1", at: 4, entity: "complaint", entityId: "RU01-1", action: "filed",
                       payload: SampleDocuments.payload(.complaint(SampleDocuments.complaint("RU01-1", customer: "CRU000003")))),
            SyncChange(seq: 2, changeId: "RU01-2", at: 5, entity: "maintenance", entityId: "RU01-2", action: "recorded", payload: SampleDocuments.payload(.maintenance(maintenance))),
        ]), device: "RU01", now: Self.now - 1_200_000)
        try store.storage.setDocumentState(device: "RU01", entity: "complaint", entityId: "RU01-1", state: "resolved", approval: nil, now: Self.now)
        let before = try Self.documents(store.storage)
        #expect(before.map(\.id) == ["RU01-2", "RU01-1", "BG01-2", "BG01-1", "PL01-1"])

        try Self.downgradeToBeforeSummaries(store)
        // Rows as a hub from before the codec kept them, the device's JSON as it came: an order of
        // an older satchel that had no approval yet (the codec refuses it), and a payload that is
        // not JSON at all.
        let olderOrder = try Document.order(SampleDocuments.order("PL01-2", customer: "CPL000018", state: .confirmed, holdReason: "zaległe płatności"))
            .json().replacingOccurrences(of: "\"approval\":\"none\",", with: "")
        #expect(!olderOrder.contains("approval"))
        try Self.stageLegacyChange(store, id: "PL01-2", device: "PL01", seq: 2, entity: "order", action: "confirmed", payload: olderOrder)
        try Self.stageLegacyChange(store, id: "RU01-3", device: "RU01", seq: 3, entity: "visit", action: "recorded", payload: "не JSON — nie JSON")

        // Opening the store migrates it and backfills the summaries by decoding each change.
        let migrated = try store.open()
        let after = try Self.documents(migrated)
        #expect(after.filter { document in before.contains { $0.id == document.id } } == before)
        let byID = Dictionary(uniqueKeysWithValues: after.map { ($0.id, $0) })
        let pendingOrder = try #require(byID["PL01-1"])
        #expect(pendingOrder.customer == "CPL000017" && pendingOrder.state == "confirmed" && pendingOrder.approval == "pending")
        #expect(pendingOrder.totalMinor == 7_500 && pendingOrder.currency == "PLN")
        #expect(pendingOrder.holdReason == "przekroczony limit kredytowy — превишен кредитен лимит")
        let pendingQuote = try #require(byID["BG01-1"])
        #expect(pendingQuote.discountBasisPoints == 1_500 && pendingQuote.totalMinor == 120_000 && pendingQuote.approval == "pending")
        #expect(pendingQuote.holdReason == "отстъпка над 10% — скидка больше 10%" && pendingQuote.customer == "CBG000042")
        #expect(byID["BG01-2"]?.currency == "BGN" && byID["BG01-2"]?.totalMinor == nil && byID["BG01-2"]?.state == nil)
        #expect(byID["RU01-1"]?.state == "resolved" && byID["RU01-1"]?.customer == "CRU000003")
        #expect(byID["RU01-2"]?.customer == nil && byID["RU01-2"]?.lastAction == "recorded")
        // The older order: what the office saw of it before, read key by key.
        let older = try #require(byID["PL01-2"])
        #expect(older.customer == "CPL000018" && older.state == "confirmed" && older.approval == nil && older.totalMinor == 3_750)
        #expect(older.holdReason == "zaległe płatności" && older.currency == "PLN")
        // Not JSON: listed, nothing guessed (as before, when SQL found no JSON in it).
        let unreadable = try #require(byID["RU01-3"])
        #expect(unreadable.customer == nil && unreadable.state == nil && unreadable.lastAction == "recorded")
        #expect(try (Self.documents(migrated)).count == 7)
        // The filter on state reads the summaries too.
        #expect(try #require(migrated as? any OfficeStore).officeDocuments(DocumentFilter(state: "confirmed")).map(\.id) == ["PL01-2", "PL01-1"])

        // Every change has its summary; the two legacy rows that do not decode say why; the
        // backfill is done and is not repeated.
        #expect(try store.text("SELECT count(*) FROM device_changes") == "7")
        #expect(try store.text("SELECT count(*) FROM document_summaries") == "7")
        #expect(try store.text("SELECT count(*) FROM pending_backfills") == "0")
        #expect(try store.text("SELECT count(*) FROM document_summaries WHERE unreadable IS NOT NULL") == "2")
        #expect(try store.text("SELECT count(*) FROM document_summaries WHERE unreadable IS NOT NULL AND change_id IN ('PL01-2', 'RU01-3')") == "2")
        #expect(try store.text("SELECT unreadable FROM document_summaries WHERE change_id = 'PL01-2'").contains("approval"))
        _ = try store.open()
        #expect(try store.text("SELECT count(*) FROM document_summaries") == "7")

        // And a document uploaded after the migration lists beside them, summarised at ingest.
        _ = try migrated.commit(Batch(id: "PL-B2", changes: [
            SyncChange(seq: 3, changeId: "PL01-3", at: 6, entity: "visit", entityId: "PL01-3", action: "recorded",
                       payload: SampleDocuments.payload(.visit(SampleDocuments.visit("PL01-3", customer: "CPL000019")))),
        ]), device: "PL01", now: Self.now)
        #expect(try Self.documents(migrated).first.map { [$0.id, $0.customer] } == ["PL01-3", "CPL000019"])
        #expect(try store.text("SELECT customer_id FROM document_summaries WHERE change_id = 'PL01-3'") == "CPL000019")
    }

    @Test("after the migration, a customer the rep's handheld wrote a document for before it still comes first after the routes in the download scope", arguments: Backend.allCases)
    func recentDocumentsCustomerStaysInScopeAfterMigration(backend: Backend) throws {
        let setup = try DownloadTests.Setup(backend: backend)
        // A second handheld of the rep (the scope takes the customers of all the rep's devices).
        try setup.storage.addDevice(id: "BG04", rep: "R07", publicKey: Array(repeating: 9, count: 32), now: 0)
        _ = try setup.storage.commit(Batch(id: "BG04-B1", changes: [
            SyncChange(seq: 1, changeId: "BG04-1", at: DownloadTests.now, entity: "payment", entityId: "BG04-1", action: "collected",
                       payload: SampleDocuments.payload(.payment(SampleDocuments.payment("BG04-1", customer: "CBG100045", receipt: "КП/45")))),
        ]), device: "BG04", now: DownloadTests.now)
        try Self.downgradeToBeforeSummaries(setup.store)
        // 20 route stops, then the customer of the recent payment, before the territory's (CBG100020 and on).
        let result = try setup.sync(.initialise, budgets: ["customers": 21, "products": 6_000])
        #expect(result.mismatched == [])
        #expect(try setup.device.database.int64("SELECT count(*) FROM customers") == 21)
        #expect(try setup.device.database.int64("SELECT count(*) FROM customers WHERE id = 'CBG100045'") == 1)
        #expect(try setup.device.database.int64("SELECT count(*) FROM customers WHERE id = 'CBG100020'") == 0)
        #expect(try setup.store.text("SELECT count(*) FROM pending_backfills") == "0")
    }
}
