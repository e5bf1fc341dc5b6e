import Agent
import Backup
import Field
import Journal
import SatchelTesting
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One agent capturing many times in one process (the console, the daemon) keeps the card it
/// attached and revalidates it by fingerprints of card.json and card.key (`DeviceAgent.attach`),
/// and the newest snapshot pointer by the slots' fingerprints. These run on real directories
/// (the CrashFileSystem gives no fingerprints, so the other tests always attach afresh): a card
/// swapped, pulled or brought back between two captures must be seen at the second one.
@Suite("Card swapped between captures in one process")
struct CardSwapTests {
    let ours: BackupFixture
    let other: BackupFixture

    init() throws {
        ours = try BackupFixture()
        other = try BackupFixture()
    }
    var mount: String { ours.directory.path + "/card" }
    var aside: String { ours.directory.path + "/card-ours" }
    var otherCard: String { other.directory.path + "/card" }

    func agent(_ fixture: BackupFixture, card root: String) -> DeviceAgent {
        var configuration = fixture.configuration
        configuration.cardRoot = root
        return DeviceAgent(configuration, cardFileSystem: PosixFileSystem(), clock: fixture.clock)
    }

    /// Every file under `path` with its bytes, to show a card was left as it was.
    func contents(_ path: String) throws -> [String: [UInt8]] {
        let files = PosixFileSystem()
        var found: [String: [UInt8]] = [:]
        for name in try files.listDirectory(path) {
            let child = Paths.join(path, name)
            if let inner = try? files.listDirectory(child) {
                _ = inner
                for (key, value) in try contents(child) { found[key] = value }
            } else {
                found[child] = try files.read(child, max: 16 * 1024 * 1024)
            }
        }
        return found
    }

    @Test("a card of the same device id with another key swapped in between two captures is refused untouched; pulled, absent; put back, it catches up")
    func swapBetweenCaptures() throws {
        #expect(mkdir(mount, 0o700) == 0 && mkdir(otherCard, 0o700) == 0)
        let agent = agent(ours, card: mount)
        let device = try ours.open()
        #expect(try agent.initCard(device, passphrase: BackupFixture.passphrase).state == .ok)
        // Another handheld's card under the same device id (BG03), with its own key: card.json
        // sits at the very path ours does.
        #expect(try self.agent(other, card: otherCard).initCard(try other.open(), passphrase: "inna karta").state == .ok)
        func visit(_ note: String) throws -> DeviceAgent.Saved<String> {
            try agent.capture(.visits, in: device) { try Capture($0).recordVisit(customerID: "C1", outcome: .order, note: note).document.id }
        }

        let first = try visit("przed zamianą")
        #expect(first.onCard && first.card.state == .ok && first.warning == nil)

        #expect(rename(mount, aside) == 0 && rename(otherCard, mount) == 0)
        let swappedIn = try contents(mount)
        let second = try visit("po zamianie — след смяната")
        #expect(!second.onCard && second.card.state == .foreign, "\(second.card.summary)")
        #expect(second.warning?.contains("not yet on the card") == true)
        #expect(try contents(mount) == swappedIn, "the other device's card was written to")

        #expect(rename(mount, otherCard) == 0 && mkdir(mount, 0o700) == 0)  // pulled: an empty mount point
        let third = try visit("bez karty")
        #expect(!third.onCard && third.card.state == .absent, "\(third.card.summary)")

        #expect(rmdir(mount) == 0 && rename(aside, mount) == 0)
        let fourth = try visit("z powrotem")
        #expect(fourth.onCard && fourth.card.state == .ok && fourth.card.behind == 0, "\(fourth.card.summary)")
        #expect(fourth.card.journalThroughSeq == fourth.sequence && fourth.sequence == first.sequence + 3)
    }

    @Test("a snapshot another process takes between two captures shows in the second capture's report")
    func snapshotByAnotherProcess() throws {
        #expect(mkdir(mount, 0o700) == 0)
        let agent = agent(ours, card: mount)
        let device = try ours.open()
        _ = try agent.initCard(device, passphrase: BackupFixture.passphrase)
        let first = try agent.capture(.visits, in: device) { try Capture($0).recordVisit(customerID: "C2", outcome: .noOrder).document.id }
        #expect(first.card.snapshotGeneration == 1)
        // `satchel backup` or the daemon: another agent on the same home and card.
        let pointer = try self.agent(ours, card: mount).snapshot(try ours.open())
        #expect(pointer.generation == 2)
        let second = try agent.capture(.visits, in: device) { try Capture($0).recordVisit(customerID: "C2", outcome: .noOrder).document.id }
        #expect(second.onCard && second.card.snapshotGeneration == 2 && second.card.snapshotCoversSeq == first.sequence)
    }

    @Test("while the card holds one snapshot, captures in one process read its pointer once, and the second snapshot's pointer at the next capture")
    func pointerKeptWithOneSlotMissing() throws {
        #expect(mkdir(mount, 0o700) == 0)
        let files = SlotReadCounter()
        var configuration = ours.configuration
        configuration.cardRoot = mount
        let agent = DeviceAgent(configuration, cardFileSystem: files, clock: ours.clock)
        let device = try ours.open()
        _ = try agent.initCard(device, passphrase: BackupFixture.passphrase)
        let layout = CardLayout(root: mount, device: try device.deviceID())
        // Generation 1 is in one slot; the other is missing until the second snapshot.
        #expect(PosixFileSystem().exists(layout.pointerSlot(1)) && !PosixFileSystem().exists(layout.pointerSlot(0)))
        func visit(_ note: String) throws -> DeviceAgent.Saved<String> {
            try agent.capture(.visits, in: device) { try Capture($0).recordVisit(customerID: "C2", outcome: .noOrder, note: note).document.id }
        }
        let first = try visit("pierwsza — първа")
        let readsAfterFirst = files.slotReads
        for note in ["druga", "трета", "czwarta"] {
            let saved = try visit(note)
            #expect(saved.onCard && saved.card.snapshotGeneration == 1 && saved.card.snapshotCoversSeq == first.card.snapshotCoversSeq)
        }
        #expect(files.slotReads == readsAfterFirst, "the unchanged pointer was read again: \(files.slotReads - readsAfterFirst) reads")
        // `satchel backup` in another process writes generation 2 into the missing slot.
        let pointer = try self.agent(ours, card: mount).snapshot(try ours.open())
        #expect(pointer.generation == 2 && PosixFileSystem().exists(layout.pointerSlot(0)))
        let after = try visit("po kopii — след копието")
        #expect(after.onCard && after.card.snapshotGeneration == 2 && after.card.snapshotCoversSeq == pointer.coversSequence)
        #expect(files.slotReads > readsAfterFirst)
    }
}

/// The real file system, counting the reads of the snapshot pointer slots.
final class SlotReadCounter: FileSystem {
    let posix = PosixFileSystem()
    private(set) var slotReads = 0
    private func count(_ path: String) { if path.hasSuffix("/pointer-a") || path.hasSuffix("/pointer-b") { slotReads += 1 } }

    func createDirectory(_ path: String) throws(FileSystemError) { try posix.createDirectory(path) }
    func listDirectory(_ path: String) throws(FileSystemError) -> [String] { try posix.listDirectory(path) }
    func syncDirectory(_ path: String) throws(FileSystemError) { try posix.syncDirectory(path) }
    func fileSize(_ path: String) throws(FileSystemError) -> Int64? { try posix.fileSize(path) }
    func openFile(_ path: String, _ mode: OpenMode) throws(FileSystemError) -> any OpenFile {
        if mode == .read { count(path) }
        return try posix.openFile(path, mode)
    }
    func rename(_ from: String, to: String) throws(FileSystemError) { try posix.rename(from, to: to) }
    func remove(_ path: String) throws(FileSystemError) { try posix.remove(path) }
    func isWritable(_ path: String) -> Bool { posix.isWritable(path) }
    func freeBytes(_ path: String) -> Int64? { posix.freeBytes(path) }
    func removeDirectory(_ path: String) throws(FileSystemError) { try posix.removeDirectory(path) }
    func fingerprint(_ path: String) -> FileFingerprint? { posix.fingerprint(path) }
    func read(_ path: String, at offset: Int64, count bytes: Int) throws(FileSystemError) -> [UInt8] {
        count(path)
        return try posix.read(path, at: offset, count: bytes)
    }
}
