@testable import Agent
import Journal
import SatchelTesting
import SystemCalls
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The wipe's shredding and the card's writability check under errnos forced by the syscall seam.
@Suite("Wipe and the card's writability through the syscall seam")
struct WipeSeamTests {
    static let key = [UInt8](repeating: 0x4B, count: 64)

    /// A key file, and a second name for it (a hard link), so the test can read what the shred
    /// left in the file after the first name is gone.
    static func keyFile(_ directory: TemporaryDirectory) throws -> (path: String, link: String) {
        let path = directory.file("data.key"), link = directory.file("data.key.link")
        let fd = try SystemCalls.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        try SystemCalls.writeAll(fd, key)
        try SystemCalls.close(fd)
        guard Glibc.link(path, link) == 0 else { throw Errno(errno) }
        return (path, link)
    }

    static func contents(_ path: String) throws -> [UInt8] {
        let fd = try SystemCalls.open(path, O_RDONLY)
        defer { try? SystemCalls.close(fd) }
        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = try bytes.withUnsafeMutableBytes { raw in try Result { () throws(Errno) in try SystemCalls.read(fd, into: raw) }.get() }
        return Array(bytes.prefix(count))
    }

    @Test("EINTR on every call of a shred is retried: the key is overwritten in full, fsynced and removed")
    func interruptedShred() throws {
        let directory = TemporaryDirectory("wipe-seam")
        let file = try Self.keyFile(directory)
        var shredded = false
        let calls = ["stat", "open", "write", "fsync", "unlink"]
        let log = SystemCalls.withFaults(calls.map { .init($0, .interrupted, times: 2) }) { shredded = DeviceAgent.shred(file.path) }
        #expect(shredded)
        #expect(try SystemCalls.status(ofPath: file.path) == nil)
        let left = try Self.contents(file.link)
        #expect(left.count == Self.key.count && left != Self.key, "the key bytes are still in the file")
        for call in calls { #expect(log.injected.filter { $0 == call }.count == 2, "\(call): \(log.injected)") }
    }

    @Test("EIO on the stat, the open, the overwrite or its fsync: the key file is still removed (the wipe goes on)",
          arguments: ["stat", "open", "write", "fsync", "close"])
    func failingOverwrite(_ call: String) throws {
        let directory = TemporaryDirectory("wipe-seam")
        let file = try Self.keyFile(directory)
        var shredded = false
        let log = SystemCalls.withFaults([.onCall(1, of: call, .ioError)]) { shredded = DeviceAgent.shred(file.path) }
        #expect(log.injected == [call])
        #expect(shredded)
        #expect(try SystemCalls.status(ofPath: file.path) == nil)
    }

    @Test("EIO on the unlink: the shred says the key was not destroyed; a missing file is not one it destroyed")
    func failingUnlink() throws {
        let directory = TemporaryDirectory("wipe-seam")
        let file = try Self.keyFile(directory)
        var shredded = true
        SystemCalls.withFaults([.init("unlink", .ioError)]) { shredded = DeviceAgent.shred(file.path) }
        #expect(!shredded)
        #expect(try SystemCalls.status(ofPath: file.path) != nil)
        #expect(!DeviceAgent.shred(directory.file("no-such.key")))
    }

    @Test("access: EINTR is retried; EACCES or ENOENT is a no; EIO is thrown, and the card counts as not writable",
          arguments: [(Errno.interrupted, "yes"), (Errno(EACCES), "no"), (Errno.noEntry, "no"), (Errno.ioError, "throws")])
    func access(_ errno: Errno, _ expected: String) throws {
        let directory = TemporaryDirectory("wipe-seam")
        var answer = ""
        var writable = true
        SystemCalls.withFaults([.init("access", errno, times: errno == .interrupted ? 2 : Int.max)]) {
            do { answer = try SystemCalls.access(directory.path, W_OK) ? "yes" : "no" } catch { answer = (error as? Errno) == .ioError ? "throws" : "\(error)" }
            writable = PosixFileSystem().isWritable(directory.path)
        }
        #expect(answer == expected)
        #expect(writable == (expected == "yes"))
    }
}
