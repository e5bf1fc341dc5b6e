#if canImport(Glibc)
import Glibc
#endif
import Journal
import SatchelTesting
import SystemCalls
import Testing

/// The real file system under forced errnos (the SystemCalls driver), on a real directory: what
/// a card or internal storage does to an append when the kernel says EINTR, EAGAIN, EIO or ENOSPC.
@Suite("Journal on the real file system, through the syscall seam")
struct SeamTests {
    func record(_ sequence: UInt64) -> SegmentedJournal.Record {
        .init(type: 1, sequence: sequence, payload: Array("Zamówienie \(sequence): Łódź — Заказ №\(sequence) — Поръчка".utf8))
    }

    func journal(_ directory: TemporaryDirectory) throws -> SegmentedJournal {
        let fileSystem = PosixFileSystem()
        try fileSystem.createDirectory(directory.file("journal"))
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: directory.file("journal"))
        try journal.open()
        try journal.append([record(1)])  // the segment exists: the next append is a plain one
        return journal
    }

    func replayed(_ directory: TemporaryDirectory) throws -> [UInt64] {
        var sequences: [UInt64] = []
        try SegmentedJournal(fileSystem: PosixFileSystem(), directory: directory.file("journal")).open { sequences.append($0.sequence) }
        return sequences
    }

    @Test("an append opens its segment once and writes, fsyncs and closes that one descriptor")
    func oneDescriptorPerAppend() throws {
        let directory = TemporaryDirectory("seam")
        let journal = try journal(directory)
        let log = try SystemCalls.withFaults([]) { try journal.append([record(2), record(3)]) }
        #expect(log.calls["open"] == 1, "calls: \(log.calls)")
        #expect(log.calls["fsync"] == 1 && log.calls["close"] == 1 && log.calls["pwrite"] == 1, "calls: \(log.calls)")
        #expect(try replayed(directory) == [1, 2, 3])
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var call: String
        var errno: Errno
        /// nil: the append succeeds; otherwise the kind of the typed error it throws.
        var failure: FileSystemError.Kind?
        var testDescription: String { "\(errno.rawValue) on \(call)" }
    }

    static let cases: [Case] = [
        // EINTR: retried where the call is restartable; the user sees nothing.
        Case(call: "open", errno: .interrupted, failure: nil),
        Case(call: "pwrite", errno: .interrupted, failure: nil),
        Case(call: "fsync", errno: .interrupted, failure: nil),
        // EAGAIN cannot come from a regular file; if it does, it is a clear error, not a lost record.
        Case(call: "pwrite", errno: .wouldBlock, failure: .other(EAGAIN)),
        // EIO: the card is failing or was pulled; ENOSPC: full. Both are typed, and the append counts for nothing.
        Case(call: "open", errno: .ioError, failure: .io),
        Case(call: "pwrite", errno: .ioError, failure: .io),
        Case(call: "fsync", errno: .ioError, failure: .io),
        Case(call: "close", errno: .ioError, failure: .io),
        Case(call: "pwrite", errno: .noSpace, failure: .noSpace),
        Case(call: "fsync", errno: .noSpace, failure: .noSpace),
        Case(call: "close", errno: .noSpace, failure: .noSpace),
    ]

    @Test("under EINTR an append succeeds; under EAGAIN, EIO or ENOSPC (at write, fsync or close) it throws a typed error, the journal refuses more until reopened, and the reopened journal holds every acknowledged record", arguments: cases)
    func appendUnderErrno(_ fault: Case) throws {
        let directory = TemporaryDirectory("seam")
        let journal = try journal(directory)
        var thrown: (any Error)?
        let log = SystemCalls.withFaults([SystemCalls.Fault(fault.call, fault.errno, times: fault.errno == .interrupted ? 3 : .max)]) {
            do { try journal.append([record(2)]) } catch { thrown = error }
        }
        #expect(log.injected.count >= 1, "the fault was hit")
        if let kind = fault.failure {
            guard case SegmentedJournal.Failure.fileSystem(let error)? = thrown else {
                Issue.record("expected a file system failure, got \(String(describing: thrown))")
                return
            }
            #expect(error.kind == kind && error.path.hasSuffix(".log"), "\(error)")
            #expect(throws: SegmentedJournal.Failure.self) { try journal.append([record(3)]) }
            try journal.open()
            #expect(journal.lastSequence >= 1)
            try journal.append([record(journal.lastSequence + 1)])
            #expect(try replayed(directory).first == 1)
        } else {
            #expect(thrown == nil)
            #expect(try replayed(directory) == [1, 2])
        }
    }

    @Test("read(max:) refuses a file larger than its format allows without reading it whole, whatever stat says")
    func boundedRead() throws {
        let directory = TemporaryDirectory("seam")
        let path = directory.file("card.json")
        let fd = open(path, O_WRONLY | O_CREAT, 0o600)
        #expect(ftruncate(fd, 1 << 30) == 0)  // 1 GiB, sparse: a damaged card's directory entry
        close(fd)
        let fileSystem = PosixFileSystem()
        var thrown: (any Error)?
        let log = SystemCalls.withFaults([]) {
            do { _ = try fileSystem.read(path, max: 16 * 1024) } catch { thrown = error }
        }
        let refusal = thrown as? FileSystemError
        #expect(refusal?.kind == .tooLarge(limit: 16 * 1024))
        #expect(refusal?.description.contains("card.json") == true)
        #expect(log.calls["pread"] == 1, "one read of at most max+1 bytes: \(log.calls)")
    }

    @Test("a segment filled with erased flash (0xFF), or whose record length reads 0x7FFFFFFF to 0xFFFFFFFF, is cut off cleanly: no trap, the records before it kept")
    func erasedAndHostileLengths() throws {
        // The field is a u32 (2^63-1 cannot be written in it). 4084: one past the 4100 bytes left
        // after it (17 bytes of record overhead + 4084 = 4101), within the record limit.
        for length: UInt32 in [0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF, 4100 - 17 + 1] {
            let fileSystem = CrashFileSystem()
            try fileSystem.createDirectory("/card")
            try fileSystem.createDirectory("/card/journal")
            let journal = SegmentedJournal(fileSystem: fileSystem, directory: "/card/journal")
            try journal.open()
            try journal.append([record(1), record(2)])
            let path = "/card/journal/" + journal.segments[0].name
            let size = try #require(try fileSystem.fileSize(path))
            var tail: [UInt8] = []
            LittleEndian.append(length, to: &tail)
            try fileSystem.write(path, at: size, tail + [UInt8](repeating: 0xFF, count: 4096))
            var sequences: [UInt64] = []
            let recovery = try SegmentedJournal(fileSystem: fileSystem, directory: "/card/journal").open { sequences.append($0.sequence) }
            #expect(sequences == [1, 2] && recovery.truncatedBytes == Int64(4 + 4096), "length \(length)")
        }
        // A segment that is erased flash from its first byte has no header: dropped, nothing invented.
        let fileSystem = CrashFileSystem()
        try fileSystem.createDirectory("/card")
        try fileSystem.createDirectory("/card/journal")
        try fileSystem.createFile("/card/journal/seg-000000000001.log")
        try fileSystem.write("/card/journal/seg-000000000001.log", at: 0, [UInt8](repeating: 0xFF, count: 8192))
        let recovery = try SegmentedJournal(fileSystem: fileSystem, directory: "/card/journal").open()
        #expect(recovery.records == 0 && recovery.droppedSegments == ["seg-000000000001.log"])
    }

    @Test("a segment larger than any segment can be is read only as far as a segment can reach, and the rest cut off")
    func oversizedSegment() throws {
        let fileSystem = CrashFileSystem()
        try fileSystem.createDirectory("/card")
        try fileSystem.createDirectory("/card/journal")
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: "/card/journal", segmentLimitBytes: 1024, maxRecordBytes: 512)
        try journal.open()
        try journal.append([record(1)])
        let path = "/card/journal/" + journal.segments[0].name
        let size = try #require(try fileSystem.fileSize(path))
        try fileSystem.write(path, at: size, [UInt8](repeating: 0, count: 10_000))
        var sequences: [UInt64] = []
        let reopened = SegmentedJournal(fileSystem: fileSystem, directory: "/card/journal", segmentLimitBytes: 1024, maxRecordBytes: 512)
        let recovery = try reopened.open { sequences.append($0.sequence) }
        #expect(sequences == [1] && recovery.truncatedBytes == 10_000)
        #expect(try fileSystem.fileSize(path) == size)
    }
}

/// The crash model itself: what it must be able to produce, or the crash-state tests prove less
/// than they say.
@Suite("CrashFileSystem: the states a power cut can leave")
struct CrashModelTests {
    @Test("a rename or a create not followed by a directory fsync can vanish; after the fsync it cannot")
    func lostDirectoryEntries() throws {
        let fileSystem = CrashFileSystem()
        try fileSystem.createDirectory("/card")
        try fileSystem.writeDurably("/card/old", Array("Поръчка".utf8))
        try fileSystem.rename("/card/old", to: "/card/new")
        try fileSystem.writeDurably("/card/other", [1])
        // "other"'s directory fsync made every entry of /card durable, the rename's too: start again.
        let second = CrashFileSystem()
        try second.createDirectory("/card")
        try second.writeDurably("/card/old", Array("Zamówienie".utf8))
        try second.rename("/card/old", to: "/card/new")
        try second.createFile("/card/fresh")
        try second.sync("/card/fresh")
        let states = second.crashStates(variants: 40, seed: 3)
        #expect(states.contains { $0.files["/card/new"] == nil }, "the renamed name can be lost")
        #expect(states.contains { $0.files["/card/fresh"] == nil }, "the created name can be lost")
        #expect(states.contains { $0.files["/card/new"] == Array("Zamówienie".utf8) })
        try second.syncDirectory("/card")
        #expect(second.crashStates(variants: 40, seed: 3).allSatisfy { $0.files["/card/new"] == Array("Zamówienie".utf8) && $0.files["/card/old"] == nil && $0.files["/card/fresh"] != nil })
        #expect(fileSystem.durable.files["/card/new"] == Array("Поръчка".utf8))
    }

    @Test("unsynced writes can land out of order, and a torn write can leave garbage after the tear, not only a prefix")
    func reorderedAndGarbage() throws {
        let fileSystem = CrashFileSystem()
        try fileSystem.createDirectory("/card")
        try fileSystem.writeDurably("/card/log", [])
        let first = [UInt8](repeating: 0xA1, count: 600), second = [UInt8](repeating: 0xB2, count: 600)
        try fileSystem.write("/card/log", at: 0, first)
        try fileSystem.write("/card/log", at: 600, second)
        let states = fileSystem.crashStates(variants: 200, seed: 5).compactMap { $0.files["/card/log"] }
        #expect(states.contains { $0.count >= 1200 && $0[0] == 0 && $0[600] == 0xB2 }, "the second write landed, the first did not")
        #expect(states.contains { $0.contains { $0 != 0 && $0 != 0xA1 && $0 != 0xB2 } }, "garbage after a tear")
        #expect(states.contains { !$0.isEmpty && $0.count < 600 }, "a torn prefix")
    }

    @Test("a file kept open writes to what it opened, even after its name was removed")
    func openFileFollowsItsInode() throws {
        let fileSystem = CrashFileSystem()
        try fileSystem.createDirectory("/card")
        try fileSystem.writeDurably("/card/seg", [1, 2, 3])
        let file = try fileSystem.openFile("/card/seg", .write)
        try fileSystem.remove("/card/seg")
        try fileSystem.writeDurably("/card/seg", [9])
        #expect(!file.isStillNamed())
        try file.write(at: 3, [4])
        try file.close()
        #expect(fileSystem.volatile.files["/card/seg"] == [9])
    }
}
