@testable import Agent
import SatchelTesting
import Seal
import SystemCalls
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The crypto-erase of `data.key` (too many wrong app passwords): zeros written and fsynced on
/// one descriptor, so the fsync covers the writes, with no file size turned into an Int.
@Suite("destroying the keys overwrites data.key through one descriptor")
struct DestroyKeysSeamTests {
    func write(_ path: String, _ bytes: [UInt8]) throws {
        let fd = try SystemCalls.open(path, O_WRONLY | O_CREAT | O_TRUNC)
        try SystemCalls.writeAll(fd, bytes)
        try SystemCalls.close(fd)
    }

    func contents(_ path: String) throws -> [UInt8] {
        let fd = try SystemCalls.open(path, O_RDONLY)
        defer { try? SystemCalls.close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = try buffer.withUnsafeMutableBytes { raw in Result { () throws(Errno) in try SystemCalls.read(fd, into: raw) } }.get()
            if got == 0 { return bytes }
            bytes += buffer[0..<got]
        }
    }

    @Test("overwriteWithZeros: every byte zero, the size kept, one open, a pwrite a page, one fsync and one checked close; an EIO from pwrite, fsync or close is thrown; no file is .noEntry")
    func overwriteOneDescriptor() throws {
        let directory = TemporaryDirectory("destroy-keys")
        let path = directory.path + "/data.key"
        try write(path, [UInt8](repeating: 0xA5, count: 9_000))
        let log = try SystemCalls.withFaults([]) { () throws(Errno) in try SystemCalls.overwriteWithZeros(path) }
        #expect(log.calls["open"] == 1 && log.calls["fsync"] == 1 && log.calls["close"] == 1, "\(log.calls)")
        #expect(log.calls["pwrite"] == 3, "4096 + 4096 + 808: \(log.calls)")
        let after = try contents(path)
        #expect(after.count == 9_000 && after.allSatisfy { $0 == 0 })

        for call in ["pwrite", "fsync", "close"] {
            try write(path, [UInt8](repeating: 0xA5, count: 100))
            var thrown: Errno?
            let faulted = SystemCalls.withFaults([.onCall(1, of: call, .ioError)]) {
                do throws(Errno) { try SystemCalls.overwriteWithZeros(path) } catch { thrown = error }
            }
            #expect(faulted.injected == [call] && thrown == .ioError, "\(call): \(String(describing: thrown))")
            // The descriptor is closed on every path: one open, one close attempted.
            #expect(faulted.calls["open"] == 1 && faulted.calls["close"] == 1, "\(call): \(faulted.calls)")
        }
        var missing: Errno?
        do throws(Errno) { try SystemCalls.overwriteWithZeros(directory.path + "/none") } catch { missing = error }
        #expect(missing == .noEntry)
    }

    @Test("destroyKeys zeroes data.key on one descriptor then removes it; when the storage fails the fsync, the key is removed and keys-destroyed written all the same")
    func destroyKeysThroughTheSeam() throws {
        for faults in [[], [SystemCalls.Fault.onCall(1, of: "fsync", .ioError)]] {
            let directory = TemporaryDirectory("destroy-keys")
            let lock = DeviceLock(home: directory.path, settings: DeviceSettings())
            try write(lock.keyPath, [UInt8](repeating: 0xA5, count: 300))
            let log = try SystemCalls.withFaults(faults) { try lock.destroyKeys() }
            #expect(log.injected == faults.map(\.call))
            // The first pwrite and fsync of the erase are on the key file, before its removal
            // (the keys-destroyed marker is written after, by replaceFile).
            #expect((log.calls["pwrite"] ?? 0) >= 1 && (log.calls["fsync"] ?? 0) >= 1, "\(log.calls)")
            #expect(access(lock.keyPath, F_OK) != 0, "data.key is still there")
            #expect(lock.state == .destroyed)
        }
    }
}

/// data.key's Argon2id memory is outside input: bounded as UInt64 before it becomes an Int, so a
/// 32-bit handheld refuses an impossible cost as one, never traps or calls it malformed.
@Suite("data.key: the Argon2id cost is bounded before it becomes an Int")
struct SealedDataKeyCostTests {
    func file(memory: String) -> [UInt8] {
        Array(("satchel-data-key 1\nargon2id 3 \(memory)\nsalt " + String(repeating: "ab", count: 16) + "\nsealed "
               + String(repeating: "cd", count: 24 + 32 + 16) + "\n").utf8)
    }

    @Test("memory of 2^31, 2^32-1, 2^32, 2^63-1 and 2^64-1 bytes is a cost out of bounds; 2^64 is malformed; 8 MiB parses")
    func hostileMemory() throws {
        for memory in ["2147483648", "4294967295", "4294967296", "9223372036854775807", "18446744073709551615"] {
            let error = #expect(throws: DeviceLockError.self, "\(memory)") { try SealedDataKey.parse(file(memory: memory), path: "data.key") }
            guard case .keyFileDamaged(let path, let reason)? = error else { Issue.record("\(memory): \(String(describing: error))"); continue }
            #expect(path == "data.key" && reason.contains("\(memory) bytes is outside"), "\(memory): \(reason)")
        }
        let overflow = #expect(throws: DeviceLockError.self) { try SealedDataKey.parse(file(memory: "18446744073709551616"), path: "data.key") }
        guard case .keyFileDamaged(_, let reason)? = overflow else { Issue.record("\(String(describing: overflow))"); return }
        #expect(reason.contains("expected `argon2id"))
        #expect(try SealedDataKey.parse(file(memory: "8388608"), path: "data.key").cost.memLimit == 8 << 20)
    }
}
