import Agent
import Foundation
import Field
import Hub
import SatchelTesting
import Seal
import Store
import Sync
import Testing
import Transport

/// The hub's side of devices' lifecycle and the handheld's offline policy, in one process: real
/// SQLite files on both ends, the real sync server over a socket pair, the agent on a manual clock.
@Suite("Device lifecycle: wipe orders mid-sync, the offline lock and wipe, escrow")
struct DeviceLifecycleTests {
    static let cheap = PasswordHash.Cost(opsLimit: 1, memLimit: 64 * 1024)
    static let day: Int64 = 86_400_000
    static let start: Int64 = 1_800_000_000_000

    func change(_ seq: Int64) -> SyncChange {
        SyncChange(seq: seq, changeId: "PL07-\(seq)", at: seq, entity: "visit", entityId: "PL07-v\(seq)", action: "recorded",
                   payload: DocumentCodec.encode(.visit(VisitDocument(id: "PL07-v\(seq)", customerId: "CPL1", at: seq, outcome: .noOrder,
                                                                      note: "Wizyta w Łodzi — посещение \(seq)"))))
    }

    @Test("a device reported lost while its session runs: the batch the hub acknowledged stays, the next one is refused with ERROR 11, audited")
    func lostMidSync() throws {
        let directory = TemporaryDirectory("lost-mid-sync")
        let path = directory.path + "/hub.db"
        let storage = try SQLiteHubStorage(path: path)
        let deviceKey = X25519.KeyPair.generate()
        try storage.addRep(id: "R1", name: "Małgorzata Żak", passwordHash: PasswordHash.hash(password: "hasło", cost: Self.cheap))
        try storage.addDevice(id: "PL07", rep: "R1", publicKey: deviceKey.publicKey, now: 0)
        // The office's "device lost" lands between the two batches: fired by the hub's own write
        // of the first receipt, in its transaction (a fault-injection seam made of SQLite itself).
        try Database(path: path).execute(script: """
            CREATE TRIGGER office_reports_lost AFTER INSERT ON receipts WHEN NEW.batch_id = 'PL07-1-3'
            BEGIN INSERT OR REPLACE INTO device_lifecycle(device_id, state, changed_at) VALUES (NEW.device_id, 'lost', 0); END;
            """)
        let server = SyncServer(sessionTimeout: 5) { try SQLiteHubStorage(path: path) }
        let first = Batch(id: "PL07-1-3", changes: (1...3).map(change)), second = Batch(id: "PL07-4-6", changes: (4...6).map(change))
        #expect(throws: SyncFailure.self) {
            do {
                _ = try server.inProcessSession { stream in
                    try SyncClient.run(stream, deviceKey: deviceKey, hubKey: try storage.hubKey().publicKey, device: "PL07", password: "hasło",
                                       batches: [first, second], deadline: .after(seconds: 5))
                }
            } catch let failure as SyncFailure {
                guard case .hubError(code: .deviceLost, let message) = failure else { Issue.record("expected ERROR 11, got \(failure)"); throw failure }
                #expect(message.contains("what the hub acknowledged stays"))
                throw failure
            }
        }
        #expect(try storage.changeCount(device: "PL07") == 3)   // the acknowledged batch, whole; nothing of the second
        let audit = try #require(try storage.auditLog(limit: 1).first)
        #expect(audit.result == "refused")
        #expect(audit.error?.contains("reported lost while this session ran") == true)
        #expect(try storage.lifecycleEvents(device: "PL07", limit: 5).map(\.event).contains("wipe ordered"))
        // From now on the device is refused at HELLO.
        #expect(throws: SyncFailure.refused(.lost)) {
            _ = try server.inProcessSession { stream in
                try SyncClient.run(stream, deviceKey: deviceKey, hubKey: try storage.hubKey().publicKey, device: "PL07", password: "hasło",
                                   batches: [second], deadline: .after(seconds: 5))
            }
        }
        #expect(try storage.changeCount(device: "PL07") == 3)
    }

    /// A handheld with the hub's signed assignment (policy: lock after 7 days, wipe after 30).
    struct Handheld {
        let directory: TemporaryDirectory
        let storage: SQLiteHubStorage
        let clock = ManualClock(DeviceLifecycleTests.start)
        var home: String { directory.path + "/device" }
        var agent: DeviceAgent { DeviceAgent(AgentConfiguration(home: home), clock: clock) }

        init(_ name: String, lock: Int = 7, wipe: Int = 30) throws {
            directory = TemporaryDirectory(name)
            storage = try SQLiteHubStorage(path: directory.path + "/hub.db")
            try storage.addRep(id: "R1", name: "Светлана Кузнецова", passwordHash: PasswordHash.hash(password: "hasło", cost: DeviceLifecycleTests.cheap))
            let key = X25519.KeyPair.generate()
            try storage.addDevice(id: "BG01", rep: "R1", publicKey: key.publicKey, now: 0)
            try storage.setOfflinePolicy(lockAfterDays: lock, wipeAfterDays: wipe, now: 0)
            let device = try DeviceDatabase.create(home: directory.path + "/device", deviceID: "BG01", repID: "R1", clock: clock)
            writeFile(directory.path + "/device/device.key", key.secretKey.withUnsafeBytes { Array($0) })
            try contact(device)
        }

        /// A sync: the hub's assignment, issued at the hub's time (the manual clock's).
        func contact(_ device: DeviceDatabase? = nil) throws {
            let signed = SignedAssignment.sign(try storage.assignment(device: "BG01", now: clock.nowMilliseconds()), with: try storage.lifecycleKeys().signing)
            try ContactPolicy.record(signed, in: try device ?? DeviceDatabase.open(home: home, clock: clock))
        }

        func at(day: Int64) { clock.set(DeviceLifecycleTests.start + day * DeviceLifecycleTests.day) }
    }

    @Test("offline: usable for 7 days, locked from day 7 (status still runs), a sync unlocks; a clock set back gains nothing; wiped once locked for the rest of the 30 days")
    func offlineLockAndWipe() throws {
        let handheld = try Handheld("offline")
        handheld.at(day: 6)
        _ = try handheld.agent.open()
        handheld.at(day: 8)
        #expect { _ = try handheld.agent.open() } throws: { error in
            guard case LifecycleError.locked(let why) = error else { return false }
            return why.contains("8 days") && why.contains("satchel sync")
        }
        _ = try handheld.agent.openForReading(whileLocked: true)
        #expect(throws: LifecycleError.self) { _ = try handheld.agent.openForReading() }
        // The rep sets the clock back to the day after the sync: still locked.
        handheld.at(day: 1)
        #expect { _ = try handheld.agent.open() } throws: { error in
            guard case LifecycleError.locked(let why) = error else { return false }
            return why.contains("earlier than this device has already seen")
        }
        // A sync (the hub's time, day 9) unlocks.
        handheld.at(day: 9)
        try handheld.contact()
        _ = try handheld.agent.open()
        // Then nothing for 31 days: locked at day 16, wiped once locked for 23 days (day 39).
        handheld.at(day: 16)
        #expect(throws: LifecycleError.self) { _ = try handheld.agent.open() }
        handheld.at(day: 38)
        #expect { _ = try handheld.agent.open() } throws: { error in
            if case LifecycleError.locked = error { return true }
            return false
        }
        handheld.at(day: 39)
        #expect { _ = try handheld.agent.open() } throws: { error in
            if case LifecycleError.wiped = error { return true }
            return false
        }
        #expect(!fileExists(handheld.home + "/device.key"))
        #expect(!fileExists(handheld.home + "/satchel.db"))
        #expect(throws: LifecycleError.self) { _ = try handheld.agent.openForReading(whileLocked: true) }
    }

    @Test("a clock that jumps years ahead locks the handheld but does not wipe it at once: the wipe waits for the days between lock and wipe")
    func clockJumpLocksFirst() throws {
        let handheld = try Handheld("clock-jump")
        handheld.at(day: 900)
        #expect { _ = try handheld.agent.open() } throws: { error in
            if case LifecycleError.locked = error { return true }
            return false
        }
        handheld.at(day: 922)
        #expect(throws: LifecycleError.self) { _ = try handheld.agent.open() }
        #expect(fileExists(handheld.home + "/satchel.db"))
        handheld.at(day: 923)
        #expect { _ = try handheld.agent.open() } throws: { error in
            if case LifecycleError.wiped = error { return true }
            return false
        }
    }

    @Test("an edited assignment (role, last contact) is not obeyed: the handheld locks until a sync brings a signed one")
    func editedAssignmentLocks() throws {
        let handheld = try Handheld("edited-assignment")
        let database = try Database(path: handheld.home + "/satchel.db")
        let stored = try database.text("SELECT value FROM sync_state WHERE key = 'hub_assignment'")
        // The rep makes the handheld a supervisor's, keeping the hub's signature.
        var signed = try SignedAssignment.decode(try Hex.decode(stored))
        var assignment = try DeviceAssignment.decode(signed.body)
        assignment.role = "supervisor"
        signed.body = assignment.encode()
        let bytes = signed.encode()
        try database.execute("UPDATE sync_state SET value = ? WHERE key = 'hub_assignment'", [.text(Hex.encode(bytes))])
        #expect { _ = try handheld.agent.open() } throws: { error in
            guard case LifecycleError.locked(let why) = error else { return false }
            return why.contains("does not verify")
        }
        try handheld.contact()
        _ = try handheld.agent.open()
        // Removing it while the pinned key stays is no way out either.
        try database.execute("DELETE FROM sync_state WHERE key = 'hub_assignment'")
        #expect(throws: LifecycleError.self) { _ = try handheld.agent.open() }
    }

    @Test("escrow: the hub keeps only the sealed key, releases it only to the registered replacement with a valid credential, and every step is an append-only event")
    func escrowRelease() throws {
        let directory = TemporaryDirectory("escrow")
        let path = directory.path + "/hub.db"
        let storage = try SQLiteHubStorage(path: path)
        try storage.addRep(id: "R1", name: "Paweł Wróblewski", passwordHash: PasswordHash.hash(password: "hasło", cost: Self.cheap))
        let credential = try storage.addTechnician(id: "T1", name: "Иван Петров", expiresAt: nil, now: 0)
        let old = X25519.KeyPair.generate(), new = X25519.KeyPair.generate(), other = X25519.KeyPair.generate()
        try storage.register(device: "OLD", publicKey: old.publicKey, Register(credential: credential, rep: "R1"), now: 1)
        let dataKey = Random.bytes(32)
        let escrow = try storage.lifecycleKeys().escrow.publicKey
        try storage.depositEscrow(device: "OLD", EscrowDeposit(sealedKey: try SealedBox.seal(dataKey, to: escrow), keyCheck: "abc"), now: 2)
        #expect(!fileBytes(path).contains(subsequence: dataKey))
        #expect(!fileBytes(path).contains(subsequence: Array(credential.utf8)))
        try storage.register(device: "OTHER", publicKey: other.publicKey, Register(credential: credential, rep: "R1"), now: 3)
        // Not to a device that does not replace OLD, not with a wrong credential.
        #expect(throws: LifecycleRefusal.self) { _ = try storage.releaseEscrow(of: "OLD", to: "OTHER", credential: credential, now: 4) }
        try storage.register(device: "NEW", publicKey: new.publicKey, Register(credential: credential, rep: "R1", replaces: "OLD"), now: 5)
        #expect(throws: LifecycleRefusal.self) { _ = try storage.releaseEscrow(of: "OLD", to: "NEW", credential: "T1.0000", now: 6) }
        #expect(try storage.lifecycleState(device: "OLD") == .retired)
        let released = try storage.releaseEscrow(of: "OLD", to: "NEW", credential: credential, now: 7)
        let opened = try SealedBox.open(try Hex.decode(released.sealedKey), with: new)
        #expect(opened.withUnsafeBytes { Array($0) } == dataKey)
        #expect(throws: SealError.self) { _ = try SealedBox.open(try Hex.decode(released.sealedKey), with: other) }
        // An expired credential is refused as expired.
        let expiring = try storage.addTechnician(id: "T2", name: "Zofia", expiresAt: 10, now: 0)
        #expect { try storage.register(device: "LATE", publicKey: X25519.KeyPair.generate().publicKey, Register(credential: expiring, rep: "R1"), now: 11) }
            throws: { ($0 as? LifecycleRefusal)?.description.contains("expired") == true }
        let events = try storage.lifecycleEvents(device: nil, limit: 50).map(\.event)
        #expect(events.contains("escrow released") && events.contains("escrow release refused") && events.contains("credential refused") && events.contains("retired"))
        for table in ["lifecycle_events", "device_escrow"] {
            #expect(throws: (any Error).self) { try Database(path: path).execute("DELETE FROM \(table)") }
            #expect(throws: (any Error).self) { try Database(path: path).execute("UPDATE \(table) SET device_id = 'X'") }
        }
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return false }
        let first = subsequence[0]
        return (0...(count - subsequence.count)).contains { self[$0] == first && Array(self[$0..<($0 + subsequence.count)]) == subsequence }
    }
}

func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
