import Agent
import Backup
import Field
import Journal
import SatchelTesting
import Seal
import Store
import Testing

@Suite("Backup: card journal, snapshots, restore")
struct BackupTests {
    @Test("a wiped handheld restores every acknowledged document from the card with the passphrase")
    func wipeAndRestore() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        #expect(try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase).state == .ok)
        let before = try fixture.captureDay(device, rounds: 3)
        let reservedBefore = try device.database.int64("SELECT reserved FROM stock WHERE part_number = 'BOARD'")
        let ordersBefore = try Orders(device).list()
        #expect(fixture.agent.cardReport(device).behind == 0)
        fixture.wipeInternal()

        #expect(throws: AgentError.self) { _ = try fixture.agent.open() }  // says: restore with the passphrase
        #expect(throws: BackupError.wrongKey(path: "/card/satchel/BG03/card.json")) { try fixture.agent.restore(passphrase: "nie to hasło") }
        let report = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
        #expect(report.snapshotGeneration == 1 && report.replayed == before.count)
        let restored = try fixture.open()
        #expect(try BackupFixture.documentIDs(restored.database) == Set(before))
        #expect(try Orders(restored).list() == ordersBefore)
        #expect(try restored.database.int64("SELECT reserved FROM stock WHERE part_number = 'BOARD'") == reservedBefore)
        #expect(try restored.database.integrityCheck().isEmpty)
        // The id counter moved past everything restored: the next document gets a new id.
        let next = try Capture(restored).recordVisit(customerID: "C1", outcome: .noOrder).document.id
        #expect(!before.contains(next))
    }

    @Test("restore uses the newest snapshot plus only the journal after it")
    func snapshotPlusJournal() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        let first = try fixture.captureDay(device)
        let pointer = try fixture.agent.snapshot(device)
        #expect(pointer.generation == 2 && pointer.coversSequence == Int64(first.count))
        let second = try fixture.captureDay(device)
        fixture.wipeInternal()
        let report = try fixture.agent.restore(passphrase: BackupFixture.passphrase)
        #expect(report.snapshotGeneration == 2 && report.replayed == second.count)
        #expect(try BackupFixture.documentIDs(fixture.open().database) == Set(first + second))
    }

    @Test("a flipped bit in the newest snapshot: refused, and the older generation plus the journal restore everything")
    func flippedBitFallsBack() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        let first = try fixture.captureDay(device)
        let newest = try fixture.agent.snapshot(device)
        let second = try fixture.captureDay(device)
        let path = "/card/satchel/BG03/snapshots/" + newest.name
        var bytes = try fixture.card.read(path, max: 1 << 24)
        bytes[bytes.count / 2] ^= 0x10
        try fixture.card.write(path, at: 0, bytes)
        let report = try fixture.agent.restore(passphrase: nil, force: true)  // the key is still on internal storage
        #expect(report.snapshotGeneration == 1)
        #expect(report.skipped.count == 1 && report.skipped[0].contains("generation 2"))
        #expect(try BackupFixture.documentIDs(fixture.open().database) == Set(first + second))
        #expect(report.movedAside != nil)  // the database it replaced is kept, not deleted
    }

    @Test("a torn pointer slot, or one naming a missing file, is skipped for the other slot")
    func tornAndDanglingSlots() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        let ids = try fixture.captureDay(device)
        let newest = try fixture.agent.snapshot(device)
        let slot = "/card/satchel/BG03/" + (newest.generation % 2 == 0 ? "pointer-a" : "pointer-b")
        try fixture.card.write(slot, at: 10, [0xDE, 0xAD])
        var report = try fixture.agent.restore(passphrase: nil, force: true)
        #expect(report.snapshotGeneration == 1 && report.skipped.isEmpty)
        #expect(try BackupFixture.documentIDs(fixture.open().database) == Set(ids))

        let fresh = try BackupFixture()
        let other = try fresh.open()
        _ = try fresh.agent.initCard(other, passphrase: BackupFixture.passphrase)
        try fresh.captureDay(other)
        let dangling = try fresh.agent.snapshot(other)
        try fresh.card.remove("/card/satchel/BG03/snapshots/" + dangling.name)
        report = try fresh.agent.restore(passphrase: nil, force: true)
        #expect(report.snapshotGeneration == 1)
        #expect(report.skipped.first?.contains("missing") == true)
    }

    @Test("a card that is not ours is refused and left untouched")
    func foreignCard() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        try fixture.card.createDirectory("/card/satchel")
        try fixture.card.createDirectory("/card/satchel/PL99")
        try fixture.card.writeDurably("/card/satchel/PL99/card.json", Array("{}".utf8))
        let before = fixture.card.volatile
        #expect(throws: BackupError.self) { try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase) }
        try Capture(device).recordVisit(customerID: "C1", outcome: .order)
        let report = fixture.agent.mirror(device)
        #expect(report.state == .foreign && report.message?.contains("PL99") == true)
        #expect(fixture.card.volatile == before)
    }

    @Test("card full, read-only or removed: capture goes on, the state says so, and the card catches up later")
    func cardTrouble() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        let capture = Capture(device)

        fixture.card.capacity = fixture.card.volatile.files.values.reduce(0) { $0 + $1.count }
        try capture.recordVisit(customerID: "C1", outcome: .order)
        var report = fixture.agent.mirror(device)
        #expect(report.state == .full && report.behind == 1)

        fixture.card.capacity = nil
        fixture.card.readOnly = true
        try capture.recordVisit(customerID: "C1", outcome: .order)
        report = fixture.agent.mirror(device)
        #expect(report.state == .readOnly && report.behind == 2)

        fixture.card.readOnly = false
        fixture.card.failNext("list", with: .io)  // pulled out
        report = fixture.agent.mirror(device)
        #expect(report.state == .absent)

        report = fixture.agent.mirror(device)
        #expect(report.state == .ok && report.behind == 0 && report.journalThroughSeq == 2)
    }

    @Test("nothing on the card is readable: no names, no prices, no notes, no passphrase")
    func noPlaintextOnCard() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        try fixture.captureDay(device, rounds: 2)
        _ = try fixture.agent.snapshot(device)
        // Only strings long enough that ciphertext cannot contain them by chance.
        let secrets = ["Родопи", "Źródło", "Лепило", "Fuga epoksydowa", "Доставка", "właścicielem", "Pęknięte", "\"12.34\"", "1234,",
                       "\"KP/1\"", BackupFixture.passphrase, "\"P1\"", "\"C1\"", "Skład"]
        for (path, content) in fixture.card.volatile.files {
            for secret in secrets {
                let found = contains(content, Array(secret.utf8))
                #expect(!found, "\(path) contains '\(secret)' in plaintext")
            }
        }
        #expect(fixture.card.volatile.files.count >= 5)
    }

    private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return true }
        }
        return false
    }

    /// SQLite's ioerr method on restore: fail the 1st, 2nd, 3rd ... read of the card in turn. Each
    /// restore either completes with everything or fails and leaves the old database as it was.
    @Test("a card read failing at any point of a restore never leaves a half-restored database")
    func restoreUnderReadErrors() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        let ids = try fixture.captureDay(device)
        try device.database.checkpoint()
        let database = fixture.home + "/satchel.db"
        let original = fileBytes(database)
        var failures = 0, completions = 0
        for n in 0..<60 {
            fixture.card.failNext("read", with: .io, after: n)
            do {
                let report = try fixture.agent.restore(passphrase: nil, force: true)
                completions += 1
                #expect(try BackupFixture.documentIDs(Database(path: report.database)) == Set(ids))
                break  // from here on no read fails any more
            } catch {
                failures += 1
                #expect(fileBytes(database) == original, "read \(n + 1) failing changed the database")
                #expect(!PosixFileSystem().exists(database + ".restoring"))
            }
        }
        #expect(failures > 10 && completions == 1)
    }

    /// The ALICE/CrashMonkey method on the whole backup path: captures mirrored to the card and
    /// snapshots, with the card's possible contents taken at every write and fsync (unsynced
    /// writes lost, reordered, torn; unsynced entries lost). From each, a wiped handheld must
    /// restore every document that had been acknowledged including its card append.
    @Test("every crash state of the card restores everything acknowledged to it")
    func crashStates() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        let layout = CardLayout(root: "/card", device: "BG03")
        let identity = try CardJSON.decode(try fixture.card.read(layout.identityFile, max: 1 << 24), path: layout.identityFile)
        let key = BackupKey(SecretBytes(try PosixFileSystem().read(fixture.home + "/card.key", max: 1 << 24)))
        var acknowledged: [String] = []
        var states: [(CrashFileSystem.State, [String])] = []
        fixture.card.onOperation = { card in
            for state in card.crashStates(variants: 2, seed: 11) { states.append((state, acknowledged)) }
        }
        let capture = Capture(device)
        for round in 0..<6 {
            let id = try capture.createOrder(customerID: "C1", lines: [.init(partNumber: "P1", quantity: Int64(round + 1))], confirm: true).document.id
            let report = fixture.agent.mirror(device)
            try #require(report.state == .ok && report.behind == 0)
            acknowledged.append(id)
            let visit = try capture.recordVisit(customerID: "C2", outcome: .order).document.id
            try #require(fixture.agent.mirror(device).behind == 0)
            acknowledged.append(visit)  // acknowledged only once its card append has returned
            if round % 2 == 1 { _ = try fixture.agent.snapshot(device) }
        }
        fixture.card.onOperation = nil
        #expect(states.count > 100)
        var restoredCounts = Set<Int>()
        for (index, (state, acknowledgedThen)) in states.enumerated() {
            let home = fixture.directory.path + "/crash-\(index)"
            let report = try Restore.run(home: home, layout: layout, key: key, identity: identity, card: CrashFileSystem(state), clock: fixture.clock)
            let restored = try Database(path: home + "/satchel.db")
            let ids = try BackupFixture.documentIDs(restored)
            #expect(ids.isSuperset(of: acknowledgedThen), "state \(index): lost \(Set(acknowledgedThen).subtracting(ids).sorted()); \(report); files \(state.files.mapValues(\.count))")
            #expect(try restored.integrityCheck().isEmpty)
            restoredCounts.insert(report.replayed + Int(report.snapshotCoversSequence))
            try? PosixFileSystem().removeTree(home)
        }
        #expect(restoredCounts.count > 5)
    }
}

@Suite("Battery: low takes a snapshot, critical stops writes")
struct BatteryTests {
    func battery(_ directory: TemporaryDirectory, percent: Int, status: String) {
        writeFile(directory.path + "/capacity", Array("\(percent)\n".utf8))
        writeFile(directory.path + "/status", Array("\(status)\n".utf8))
    }

    @Test("readings follow the kernel's power_supply files", arguments: [
        (50, "Discharging", BatteryReading.Level.normal), (15, "Discharging", .low), (5, "Discharging", .critical),
        (3, "Charging", .normal), (4, "Not charging", .critical), (100, "Full", .normal),
    ])
    func levels(percent: Int, status: String, level: BatteryReading.Level) {
        let directory = TemporaryDirectory("battery")
        battery(directory, percent: percent, status: status)
        #expect(BatteryReading.read(directory: directory.path, lowPercent: 15, criticalPercent: 5)?.level == level)
    }

    @Test("garbage in sysfs is no reading, not a guess")
    func garbage() {
        let directory = TemporaryDirectory("battery")
        writeFile(directory.path + "/capacity", Array("lots\n".utf8))
        #expect(BatteryReading.read(directory: directory.path, lowPercent: 15, criticalPercent: 5) == nil)
    }

    @Test("critical battery: card brought up to date, writes stopped; charging resumes them")
    func criticalStopsWrites() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        try Capture(device).recordVisit(customerID: "C1", outcome: .order)
        let sysfs = TemporaryDirectory("battery")
        var configuration = fixture.configuration
        configuration.batteryDirectory = sysfs.path
        let agent = DeviceAgent(configuration, cardFileSystem: fixture.card, clock: fixture.clock)
        var log: [String] = []
        var loop = DaemonLoop(agent: agent, snapshotInterval: 3_600_000, log: { log.append($0) })

        battery(sysfs, percent: 4, status: "Discharging")
        loop.tick()
        #expect(agent.writesStoppedReason()?.contains("battery critical") == true)
        #expect(throws: AgentError.writesStopped(reason: "battery critical (4%)")) { _ = try agent.openForWriting() }
        let report = agent.cardReport(try agent.open())
        #expect(report.behind == 0 && report.snapshotCoversSeq == 1)

        battery(sysfs, percent: 6, status: "Charging")
        loop.tick()
        #expect(agent.writesStoppedReason() == nil)
        #expect(log.contains { $0.contains("writes resumed") })
    }
}
