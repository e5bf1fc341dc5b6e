import Field
import Foundation
import Hub
import SatchelTesting
import Seal
import Sync
import Testing
import Transport

/// Issue 15: the back office (users and tokens, decisions, territories' visibility) and devices'
/// lifecycle (technicians, lost devices, escrow) do the same on the embedded SQLite hub and on
/// PostgreSQL, through one protocol each; these run against both, on real databases.
@Suite("Back office and device lifecycle on both backends", .serialized)
struct BackOfficeBackendsTests {
    static let cheap = PasswordHash.Cost(opsLimit: 1, memLimit: 64 * 1024)
    static let now: Int64 = 1_796_000_000_000

    /// A hub of `backend` with the ERP's territory hierarchy PL > PL-S > PL-S-KRK and a rep in
    /// each of the two lower ones, each with a handheld.
    final class Hub {
        let store: TestStore
        let office: any OfficeStore
        let lifecycle: any DeviceLifecycleStore
        init(_ backend: Backend) throws {
            store = try backend.makeHub()
            office = try #require(store.storage as? any OfficeStore)
            lifecycle = try #require(store.storage as? any DeviceLifecycleStore)
            try store.execute("INSERT INTO territories(id, name, parent_id) VALUES ('PL', 'Polska', NULL), ('PL-S', 'Południe', 'PL'), ('PL-S-KRK', 'Kraków', 'PL-S'), ('BG', 'България', NULL)")
            for (rep, name, territory, device, key) in [("rep_zak", "Małgorzata Żak", "PL-S-KRK", "H01", UInt8(1)), ("rep_nowak", "Łukasz Nowak", "PL-S", "H02", 2),
                                                        ("rep_petrova", "Мария Петрова", "BG", "H03", 3)] {
                try office.addRep(id: rep, name: name, passwordHash: "$argon2id$x")
                try office.setRepScope(rep: rep, territory: territory, channel: nil, role: nil)
                try office.addDevice(id: device, rep: rep, publicKey: Array(repeating: key, count: 32), now: 1, replaces: nil)
            }
        }
    }

    @Test("office users: a supervisor needs a territory the hub knows, sees the reps of it and below; tokens check, expire and are revoked; nothing of a refusal is stored", arguments: Backend.allCases)
    func usersTokensAndVisibility(backend: Backend) throws {
        let hub = try Hub(backend)
        #expect { try hub.office.addOfficeUser(OfficeUser(name: "Anna", role: .supervisor, territory: "NOPE"), now: Self.now) }
            throws: { ($0 as? HubError)?.description.contains("territory NOPE") == true }
        #expect { try hub.office.addOfficeUser(OfficeUser(name: "Anna", role: .office, territory: "PL"), now: Self.now) }
            throws: { ($0 as? HubError)?.description.contains("sees every territory") == true }
        #expect(try hub.office.officeUsers().isEmpty)
        try hub.office.addOfficeUser(OfficeUser(name: " Anna Wiśniewska ", role: .supervisor, territory: "PL-S"), now: Self.now)
        #expect { try hub.office.addOfficeUser(OfficeUser(name: "Anna Wiśniewska", role: .salesManager, territory: "PL"), now: Self.now) }
            throws: { ($0 as? HubError)?.description.contains("exists already") == true }
        #expect(try hub.office.officeUsers() == [OfficeUser(name: "Anna Wiśniewska", role: .supervisor, territory: "PL-S")])
        let supervisor = try #require(try hub.office.officeUsers().first)
        #expect(try hub.office.visibleReps(for: supervisor) == ["rep_zak", "rep_nowak"])
        #expect(try hub.office.visibleReps(for: OfficeUser(name: "x", role: .office, territory: nil)) == nil)

        let issued = try hub.office.issueOfficeToken(user: "Anna Wiśniewska", days: 7, now: Self.now)
        #expect(try hub.office.officeUser(token: issued.token, now: Self.now + 1) == .success(supervisor))
        #expect(try hub.office.officeUser(token: issued.token, now: issued.expiresAt) == .failure(.expired(user: "Anna Wiśniewska", at: issued.expiresAt)))
        #expect(try hub.office.officeUser(token: "sto_" + String(repeating: "ab", count: 32), now: Self.now) == .failure(.unknown))
        #expect(try hub.office.officeUser(token: "Bearer nonsense", now: Self.now) == .failure(.malformed))
        #expect(try hub.office.officeUser(token: nil, now: Self.now) == .failure(.missing))
        #expect(throws: HubError.self) { _ = try hub.office.issueOfficeToken(user: "Nobody", days: 7, now: Self.now) }
        // The hub keeps only the token's hash.
        #expect(try hub.store.text("SELECT count(*) FROM office_tokens") == "1")
        #expect(try hub.office.revokeOfficeTokens(user: "Anna Wiśniewska") == 1)
        #expect(try hub.office.officeUser(token: issued.token, now: Self.now + 1) == .failure(.unknown))
    }

    @Test("a decision: the office user's approval becomes the document's state for the device, logged append-only; a rejection reason over 500 characters changes nothing", arguments: Backend.allCases)
    func decisionIsLoggedAppendOnly(backend: Backend) throws {
        let hub = try Hub(backend)
        let held = SampleDocuments.order("H01-1", customer: "CPL000001", state: .confirmed, approval: .pending, holdReason: "overdue")
        _ = try hub.office.commit(Batch(id: "B1", changes: [
            SyncChange(seq: 1, changeId: "H01-1", at: 1, entity: "order", entityId: "H01-1", action: "confirmed", payload: SampleDocuments.payload(.order(held))),
        ]), device: "H01", now: Self.now)
        let document = try #require(try hub.office.officeDocuments(DocumentFilter()).first)
        #expect(document.approval == "pending" && document.holdReason == "overdue" && document.customer == "CPL000001" && document.currency == "PLN")
        let office = OfficeUser(name: "Biuro", role: .office, territory: nil)
        try hub.office.addOfficeUser(office, now: Self.now)
        #expect(throws: HubError.self) {
            try hub.office.decide(.reject, on: document, by: office, reason: String(repeating: "ż", count: 501), now: Self.now)
        }
        #expect(try hub.store.text("SELECT count(*) FROM office_decisions") == "0")
        try hub.office.decide(.approve, on: document, by: office, reason: "Klient zapłacił — клиентът плати", now: Self.now + 1)
        let decided = try #require(try hub.office.officeDocuments(DocumentFilter()).first)
        #expect(decided.approval == "approved" && decided.state == "confirmed")
        #expect(try hub.store.text("SELECT reason FROM office_decisions") == "Klient zapłacił — клиентът плати")
        #expect(throws: (any Error).self) { try hub.store.execute("UPDATE office_decisions SET reason = 'edited'") }
        #expect(throws: (any Error).self) { try hub.store.execute("DELETE FROM office_decisions") }
    }

    @Test("escrow: only the sealed key is kept, released only to the registered replacement with a valid credential; lost, retired and refusals are append-only events", arguments: Backend.allCases)
    func escrowAndLostOnBothBackends(backend: Backend) throws {
        let hub = try Hub(backend)
        let storage = hub.lifecycle
        let credential = try storage.addTechnician(id: "T1", name: "Иван Петров", expiresAt: nil, now: 0)
        #expect(throws: HubError.self) { _ = try storage.addTechnician(id: "T1", name: "again", expiresAt: nil, now: 0) }
        let old = X25519.KeyPair.generate(), new = X25519.KeyPair.generate(), other = X25519.KeyPair.generate()
        try storage.register(device: "OLD", publicKey: old.publicKey, Register(credential: credential, rep: "rep_zak"), now: 1)
        #expect { try storage.register(device: "OLD", publicKey: old.publicKey, Register(credential: credential, rep: "rep_zak"), now: 1) }
            throws: { ($0 as? LifecycleRefusal)?.description.contains("--replace") == true }
        let dataKey = Random.bytes(32)
        let escrow = try storage.lifecycleKeys().escrow.publicKey
        #expect(try storage.lifecycleKeys().signing.publicKey == storage.lifecycleKeys().signing.publicKey)
        try storage.depositEscrow(device: "OLD", EscrowDeposit(sealedKey: try SealedBox.seal(dataKey, to: escrow), keyCheck: "abc"), now: 2)
        try storage.register(device: "OTHER", publicKey: other.publicKey, Register(credential: credential, rep: "rep_zak"), now: 3)
        #expect(throws: LifecycleRefusal.self) { _ = try storage.releaseEscrow(of: "OLD", to: "OTHER", credential: credential, now: 4) }
        try storage.register(device: "NEW", publicKey: new.publicKey, Register(credential: credential, rep: "rep_zak", replaces: "OLD"), now: 5)
        #expect(throws: LifecycleRefusal.self) { _ = try storage.releaseEscrow(of: "OLD", to: "NEW", credential: "T1.0000", now: 6) }
        #expect(try storage.lifecycleState(device: "OLD") == .retired)
        let released = try storage.releaseEscrow(of: "OLD", to: "NEW", credential: credential, now: 7)
        #expect(try SealedBox.open(try Hex.decode(released.sealedKey), with: new).withUnsafeBytes { Array($0) } == dataKey)
        try storage.revokeTechnician(id: "T1", now: 8)
        #expect { try storage.register(device: "LATE", publicKey: X25519.KeyPair.generate().publicKey, Register(credential: credential, rep: "rep_zak"), now: 9) }
            throws: { ($0 as? LifecycleRefusal)?.description.contains("revoked") == true }
        try storage.markLost(device: "OTHER", now: 10)
        #expect(try storage.lifecycleState(device: "OTHER") == .lost)
        #expect(throws: HubError.self) { try storage.markLost(device: "NOPE", now: 10) }
        try storage.setOfflinePolicy(lockAfterDays: 7, wipeAfterDays: 30, now: 11)
        #expect(throws: HubError.self) { try storage.setOfflinePolicy(lockAfterDays: 30, wipeAfterDays: 7, now: 11) }
        let assignment = try storage.assignment(device: "NEW", now: 12)
        #expect(assignment.rep == "rep_zak" && assignment.lockAfterDays == 7 && assignment.wipeAfterDays == 30)
        let events = try storage.lifecycleEvents(device: nil, limit: 50).map(\.event)
        for expected in ["escrow released", "escrow release refused", "credential refused", "retired", "reported lost", "technician revoked", "offline policy"] {
            #expect(events.contains(expected), "no \(expected) event in \(events)")
        }
        #expect(try storage.lifecycleEvents(device: "OTHER", limit: 50).allSatisfy { $0.device == "OTHER" })
        for table in ["lifecycle_events", "device_escrow"] {
            #expect(throws: (any Error).self) { try hub.store.execute("DELETE FROM \(table)") }
            #expect(throws: (any Error).self) { try hub.store.execute("UPDATE \(table) SET device_id = 'X'") }
        }
    }

    @Test("a device the office reported lost is refused at HELLO and told to destroy its keys, on either backend, and the hub records the wipe order", arguments: Backend.allCases)
    func lostDeviceRefusedAtHello(backend: Backend) throws {
        let store = try backend.makeHub()
        let storage = try #require(store.storage as? any DeviceLifecycleStore & HubStorage)
        let deviceKey = X25519.KeyPair.generate()
        try storage.addRep(id: "R1", name: "Светлана Кузнецова", passwordHash: PasswordHash.hash(password: "hasło", cost: Self.cheap))
        try storage.addDevice(id: "BG01", rep: "R1", publicKey: deviceKey.publicKey, now: 0)
        try storage.markLost(device: "BG01", now: 1)
        let server = SyncServer(sessionTimeout: 5, makeStorage: store.open)
        #expect(throws: SyncFailure.refused(.lost)) {
            _ = try server.inProcessSession { stream in
                try SyncClient.run(stream, deviceKey: deviceKey, hubKey: try storage.hubKey().publicKey, device: "BG01", password: "hasło",
                                   batches: [], deadline: .after(seconds: 5))
            }
        }
        #expect(try storage.lifecycleEvents(device: "BG01", limit: 5).map(\.event).contains("wipe ordered"))
        #expect(try storage.auditLog(limit: 1).first?.result == "refused")
    }
}
