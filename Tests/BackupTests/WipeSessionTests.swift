@testable import Agent
import Backup
import Field
import Journal
import SatchelTesting
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A wipe (hub order or offline policy) is a crypto-erase: it must take the unlocked data key
/// on tmpfs with it, or the sealed database would still open until the next reboot.
@Suite("wipe and the unlocked session")
struct WipeSessionTests {
    @Test("a wipe of an unlocked handheld destroys the session key on tmpfs and the keys this process held; the sealed database no longer opens")
    func wipeRemovesTheSessionKey() throws {
        let fixture = try BackupFixture()
        try fixture.agent.setPassword("Żółw-Ёжик 2026")
        let session = try #require(fixture.agent.deviceLock.sessionPath, "setPassword starts a session")
        #expect(access(session, F_OK) == 0)
        _ = try fixture.agent.open()  // unlocked: opens
        #expect(SealedDeviceKey.key(home: fixture.home) != nil)

        let report = fixture.agent.wipe(reason: "test: reported lost")
        #expect(access(session, F_OK) != 0, "the session key survived the wipe")
        #expect(report.destroyedKeys.contains(session), "\(report.destroyedKeys)")
        #expect(SealedDeviceKey.key(home: fixture.home) == nil)
        #expect(fixture.agent.deviceLock.sessionPath == nil)
        #expect(throws: LifecycleError.self) { _ = try fixture.agent.open() }
    }
}
