import Field
import Foundation
import Hub
import SatchelTesting
import Sync
import Testing

/// Issue 17: the office's questions, answered from the hub's tables and the audit log.
@Suite("Office queries: devices, reps, documents received, missed syncs", .serialized)
struct OfficeQueriesTests {
    static let hour: Int64 = 3_600_000
    static let now: Int64 = 1_796_000_000_000

    /// The same questions on both backends (issue 15: everything the hub does goes through the
    /// protocol, and the same tests run against SQLite and PostgreSQL).
    final class Hub {
        let store: TestStore
        let storage: any OfficeStore
        init(_ backend: Backend) throws {
            store = try backend.makeHub()
            storage = try #require(store.storage as? any OfficeStore)
            for (rep, name, device, key) in [("rep-kowalska", "Zofia Kowalska", "H01", UInt8(1)), ("rep-petrova", "Мария Петрова", "H02", 2),
                                             ("rep-smirnov", "Иван Смирнов", "H03", 3), ("rep-nowak", "Łukasz Nowak", "H04", 4)] {
                try storage.addRep(id: rep, name: name, passwordHash: "$argon2id$x")
                try storage.addDevice(id: device, rep: rep, publicKey: Array(repeating: key, count: 32), now: 1, replaces: nil)
            }
            try storage.revokeDevice(id: "H04")
        }

        func sync(_ device: String, _ rep: String, at: Int64, result: String = "ok", error: String? = nil) throws {
            try storage.audit(AuditEntry(device: device, rep: rep, mode: "full", startedAt: at - 5_000, endedAt: at, bytesUp: 100, bytesDown: 200,
                                         recordsUp: 1, recordsDown: 2, result: result, error: error))
        }
    }

    @Test("missed syncs: a rep whose last successful sync is 30 hours old is listed with why the last attempt failed, one who never synced is listed, one who synced 2 hours ago and one whose only handheld is revoked are not", arguments: Backend.allCases)
    func missedSyncsFollowTheCompanyRule(backend: Backend) throws {
        let hub = try Hub(backend)
        try hub.sync("H01", "rep-kowalska", at: Self.now - 2 * Self.hour)
        try hub.sync("H02", "rep-petrova", at: Self.now - 30 * Self.hour)
        try hub.sync("H02", "rep-petrova", at: Self.now - 1 * Self.hour, result: "failed", error: "deadline: no answer from the hub within 60 s (GPRS lost)")
        let missed = try hub.storage.missedSyncs(now: Self.now)
        #expect(missed.map(\.rep) == ["rep-petrova", "rep-smirnov"])
        #expect(missed[0].lastSuccessfulSync == Self.now - 30 * Self.hour)
        #expect(missed[0].lastError == "deadline: no answer from the hub within 60 s (GPRS lost)")
        #expect(missed[1].lastSuccessfulSync == nil && missed[1].devices == ["H03"])
        // Before it went 24 hours, Petrova was in time.
        #expect(try hub.storage.missedSyncs(now: Self.now - 8 * Self.hour).map(\.rep) == ["rep-smirnov"])
    }

    @Test("devices and reps carry their last successful sync and the last failure's cause", arguments: Backend.allCases)
    func devicesAndReps(backend: Backend) throws {
        let hub = try Hub(backend)
        try hub.sync("H01", "rep-kowalska", at: Self.now - 2 * Self.hour)
        try hub.sync("H01", "rep-kowalska", at: Self.now - 1 * Self.hour, result: "refused", error: "wrong sync password")
        let devices = try hub.storage.officeDevices()
        #expect(devices.first { $0.id == "H01" }?.lastSuccessfulSync == Self.now - 2 * Self.hour)
        #expect(devices.first { $0.id == "H01" }?.lastError == "wrong sync password")
        #expect(devices.first { $0.id == "H04" }?.revoked == true)
        let reps = try hub.storage.officeReps()
        #expect(reps.first { $0.id == "rep-kowalska" }?.lastSuccessfulSync == Self.now - 2 * Self.hour)
        #expect(reps.first { $0.id == "rep-nowak" }?.devices == 0)
    }

    @Test("documents received: one line per document with its changes folded, the office's state over the device's, filtered by rep, state and day", arguments: Backend.allCases)
    func documentsByRepStateAndDay(backend: Backend) throws {
        let hub = try Hub(backend)
        let order = { (state: OrderState) in SampleDocuments.payload(.order(SampleDocuments.order("H01-1", customer: "CPL000001", state: state))) }
        _ = try hub.storage.commit(Batch(id: "B1", changes: [
            SyncChange(seq: 1, changeId: "H01-1", at: 1, entity: "order", entityId: "H01-1", action: "created", payload: order(.draft)),
            SyncChange(seq: 2, changeId: "H01-2", at: 2, entity: "order", entityId: "H01-1", action: "confirmed", payload: order(.confirmed)),
        ]), device: "H01", now: Self.now - 30 * Self.hour)
        _ = try hub.storage.commit(Batch(id: "B2", changes: [
            SyncChange(seq: 1, changeId: "H02-1", at: 3, entity: "visit", entityId: "H02-1", action: "recorded", payload: SampleDocuments.payload(.visit(SampleDocuments.visit("H02-1", customer: "CBG000001")))),
        ]), device: "H02", now: Self.now)
        try hub.storage.setDocumentState(device: "H01", entity: "order", entityId: "H01-1", state: "accepted", approval: nil, now: Self.now)
        let all = try hub.storage.officeDocuments(DocumentFilter())
        #expect(all.map(\.id) == ["H02-1", "H01-1"])
        #expect(all[1].changes == 2 && all[1].state == "accepted" && all[1].lastAction == "confirmed" && all[1].customer == "CPL000001")
        #expect(try hub.storage.officeDocuments(DocumentFilter(rep: "rep-kowalska")).map(\.id) == ["H01-1"])
        #expect(try hub.storage.officeDocuments(DocumentFilter(state: "accepted")).map(\.id) == ["H01-1"])
        #expect(try hub.storage.officeDocuments(DocumentFilter(from: Self.now - Self.hour)).map(\.id) == ["H02-1"])
    }
}
