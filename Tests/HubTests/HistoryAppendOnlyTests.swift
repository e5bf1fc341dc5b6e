import Field
import Hub
import SatchelTesting
import Seal
import Store
import Sync
import Testing
import Transport

/// Issue 14: the hub's own history is append-only. Whatever connection tries, a receipt, an
/// audit entry or a stored device change cannot be edited or deleted, and the hub goes on
/// appending.
@Suite("The hub's history is append-only")
struct HistoryAppendOnlyTests {
    @Test("UPDATE and DELETE on audit, receipts and device_changes are refused by the database itself; rows unchanged; appends still work")
    func historyCannotBeRewritten() throws {
        let directory = TemporaryDirectory("hub-history")
        let path = directory.path + "/hub.db"
        let storage = try SQLiteHubStorage(path: path)
        let key = X25519.KeyPair.generate()
        try storage.addRep(id: "R03", name: "Małgorzata Wiśniewska", passwordHash: PasswordHash.hash(password: "hasło", cost: .init(opsLimit: 1, memLimit: 64 * 1024)))
        try storage.addDevice(id: "PL03", rep: "R03", publicKey: key.publicKey, now: 0)
        let batch = Batch(id: "PL03-1-2", changes: (1...2).map {
            SyncChange(seq: $0, changeId: "PL03-00000\($0)", at: 1_795_428_000_000 + $0, entity: "visit", entityId: "PL03-00000\($0)",
                       action: "recorded", payload: SampleDocuments.payload(.visit(SampleDocuments.visit("PL03-00000\($0)", note: "Wizyta — посещение, Łódź"))))
        })
        // A real session: the server stores the batch (receipt, device changes) and audits it.
        let server = SyncServer { try SQLiteHubStorage(path: path) }
        func session(_ batch: Batch) throws -> FastSyncResult {
            try server.inProcessSession { deviceEnd in
                try FastSyncClient.run(deviceEnd, deviceKey: key, hubKey: try storage.hubKey().publicKey, device: "PL03",
                                       password: "hasło", batch: batch, deadline: .after(seconds: 10))
            }
        }
        _ = try session(batch)

        let shell = try Database(path: path)
        func rows(_ table: String) throws -> [String] {
            try shell.query("SELECT * FROM \(table) ORDER BY 1") { row in (0..<row.columnCount).map { row.text(Int32($0)) }.joined(separator: "|") }
        }
        let before = try ["audit", "receipts", "device_changes"].map { try rows($0) }
        let attempts: [(String, String)] = [
            ("UPDATE audit SET result = 'ok' , error = NULL", "audit"),
            ("DELETE FROM audit", "audit"),
            ("UPDATE receipts SET stored = 0", "receipts"),
            ("DELETE FROM receipts WHERE device_id = 'PL03'", "receipts"),
            ("UPDATE device_changes SET payload = '{}'", "device_changes"),
            ("DELETE FROM device_changes", "device_changes"),
        ]
        for (sql, table) in attempts {
            do {
                try shell.execute(sql)
                Issue.record("\(sql) was not refused")
            } catch {
                #expect("\(error)".contains("append-only (\(table))"), "\(sql): \(error)")
            }
        }
        #expect(try ["audit", "receipts", "device_changes"].map { try rows($0) } == before)
        #expect(before.allSatisfy { !$0.isEmpty })

        // Appending goes on: a new session's entry and a new batch.
        let next = Batch(id: "PL03-3-3", changes: [SyncChange(seq: 3, changeId: "PL03-000003", at: 1_795_428_000_003, entity: "visit",
                                                               entityId: "PL03-000003", action: "recorded", payload: SampleDocuments.payload(.visit(SampleDocuments.visit("PL03-000003"))))])
        _ = try session(next)
        #expect(try shell.int64("SELECT count(*) FROM device_changes") == 3)
        #expect(try shell.int64("SELECT count(*) FROM receipts") == 2)
        #expect(try storage.auditLog(limit: 10).count == 2)
    }
}
