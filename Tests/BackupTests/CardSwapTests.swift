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
}
