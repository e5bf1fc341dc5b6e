import Agent
import Backup
import Field
import Journal
import SatchelTesting
import Testing

/// `card init` on a card that cannot hold the backup (issue 10, reproduction 5): refused before
/// anything is written when the card says how much room it has, and cleaned up when it runs
/// out half-way, so a failed init never leaves a partial snapshot filling the card or a key that
/// makes the device believe it has a backup.
@Suite("card init on a card too small")
struct CardInitTests {
    @Test("a card with less room than the backup needs is refused before anything is written")
    func refusedBeforeWriting() throws {
        let fixture = try BackupFixture()
        let device = try fixture.open()
        fixture.card.capacity = 64 * 1024
        let before = fixture.card.volatile
        #expect {
            try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
        } throws: { error in
            guard case AgentError.cardTooSmall(let path, let needed, let free)? = error as? AgentError else { return false }
            return path == "/card" && free == 64 * 1024 && needed > 64 * 1024
        }
        #expect(fixture.card.volatile == before)
        #expect(!PosixFileSystem().exists(fixture.home + "/card.key"))
        #expect(fixture.agent.mirror(device).state == .notInitialised)
    }

    @Test("running out of space or failing at any write of the init removes what it wrote, the key included",
          arguments: [FileSystemError.Kind.noSpace, .io])
    func cleanedUpAtEveryWrite(kind: FileSystemError.Kind) throws {
        var failedAt: [Int] = []
        for skip in 0..<200 {
            let fixture = try BackupFixture()
            let device = try fixture.open()
            try Capture(device).recordVisit(customerID: "C2", outcome: .order, note: "Próba — проба \(skip)")
            let before = fixture.card.volatile
            fixture.card.failNext("write", with: kind, after: skip)
            do {
                _ = try fixture.agent.initCard(device, passphrase: BackupFixture.passphrase)
            } catch {
                failedAt.append(skip)
                if kind == .noSpace {
                    guard case AgentError.cardTooSmall? = error as? AgentError else {
                        Issue.record("write \(skip) ran out of space and said: \(error)")
                        continue
                    }
                }
                #expect(fixture.card.volatile == before, "write \(skip) failed and left \(fixture.card.volatile.files.keys.sorted()) \(fixture.card.volatile.directories.sorted())")
                #expect(!PosixFileSystem().exists(fixture.home + "/card.key"), "write \(skip) failed and left the backup key")
                continue
            }
            // The fault came after the last write: the init is whole.
            #expect(fixture.agent.mirror(device).isHealthy)
            break
        }
        #expect(failedAt.count >= 3 && failedAt == Array(0..<failedAt.count), "\(failedAt)")
    }
}
