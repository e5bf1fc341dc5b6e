@testable import Agent
import Field
import Seal
import SatchelTesting
import SystemCalls
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The unlocked session's key file is written as every small file of the agent is
/// (`SystemCalls.replaceFile`): a failed write, fsync or close leaves the key that was there.
@Suite("the session key file is written whole or not at all")
struct SessionKeyFileTests {
    func bytes(_ key: DataKey) -> [UInt8] { key.secret.withUnsafeBytes { Array($0) } }

    @Test("writing the session key fsyncs the file and its directory; an EIO from write, fsync or close is a DeviceLockError and the old key stays, no temporary file left")
    func durableWrite() throws {
        let directory = TemporaryDirectory("session-key-file")
        let file = SessionKeyFile(home: directory.path, nowMilliseconds: { SystemClock().nowMilliseconds() })
        defer { file.remove() }
        let first = DataKey(SecretBytes(Array(repeating: 0x11, count: DataKey.bytes)))
        let log = try SystemCalls.withFaults([]) { try file.write(first) }
        #expect((log.calls["fsync"] ?? 0) >= 2, "the file and its directory are fsynced: \(log.calls)")
        #expect(try file.read(idleMinutes: 60, touch: false).map(bytes) == bytes(first))

        let second = DataKey(SecretBytes(Array(repeating: 0x22, count: DataKey.bytes)))
        for call in ["write", "fsync", "close"] {
            var thrown: (any Error)?
            let faulted = SystemCalls.withFaults([.onCall(1, of: call, .ioError)]) {
                do { try file.write(second) } catch { thrown = error }
            }
            #expect(faulted.injected == [call], "\(call): \(faulted.injected)")
            guard case .runtimeDirectoryUnsafe(let path, let reason)? = thrown as? DeviceLockError else {
                Issue.record("\(call): \(String(describing: thrown))")
                continue
            }
            #expect(path == file.path && reason.contains(call), "\(call): \(reason)")
            #expect(try file.read(idleMinutes: 60, touch: false).map(bytes) == bytes(first), "\(call): the old key changed")
            #expect(access(file.path + ".tmp", F_OK) != 0, "\(call): the temporary file was left")
        }
        try file.write(second)
        #expect(try file.read(idleMinutes: 60, touch: false).map(bytes) == bytes(second))
    }
}
