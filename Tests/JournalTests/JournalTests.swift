import Journal
import SatchelTesting
import Testing

@Suite("Journal: framed, segmented, power-cut-safe log")
struct JournalTests {
    static let directory = "/card/journal"

    func fileSystem() throws -> CrashFileSystem {
        let fileSystem = CrashFileSystem()
        try fileSystem.createDirectory("/card")
        try fileSystem.createDirectory(Self.directory)
        return fileSystem
    }

    func record(_ sequence: UInt64, size: Int = 40) -> SegmentedJournal.Record {
        let text = "Zamówienie \(sequence): Łódź — Заказ №\(sequence) "
        let payload = Array(String(repeating: text, count: max(1, size / text.utf8.count + 1)).utf8.prefix(size))
        return .init(type: UInt8(sequence % 7), sequence: sequence, payload: payload)
    }

    func replayAll(_ fileSystem: any FileSystem, limit: Int64 = 256 * 1024) throws -> ([SegmentedJournal.Record], SegmentedJournal.Recovery) {
        var records: [SegmentedJournal.Record] = []
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory, segmentLimitBytes: limit)
        let recovery = try journal.open { records.append($0) }
        return (records, recovery)
    }

    @Test("records come back in order with their type, sequence and payload, across reopenings")
    func roundTrip() throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory)
        try journal.open()
        try journal.append([record(1), record(2)])
        try journal.append([record(5, size: 3000)])
        let (records, recovery) = try replayAll(fileSystem)
        #expect(records == [record(1), record(2), record(5, size: 3000)])
        #expect(recovery.lastSequence == 5 && recovery.truncatedBytes == 0 && recovery.stopReason == nil)
    }

    @Test("segments rotate at the size limit and covered ones are removed, never the active one")
    func rotationAndTrim() throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory, segmentLimitBytes: 1024)
        try journal.open()
        for sequence in 1...20 { try journal.append([record(UInt64(sequence), size: 200)]) }
        #expect(journal.segments.count >= 4)
        #expect(journal.segments.allSatisfy { $0.size <= 1024 })
        try journal.removeSegments(coveredThrough: 10)
        #expect(journal.segments.first.map { $0.lastSequence! > 10 } == true)
        let (records, _) = try replayAll(fileSystem, limit: 1024)
        #expect(records.first!.sequence <= 11 && records.last!.sequence == 20)
        try journal.removeSegments(coveredThrough: 1_000)
        #expect(journal.segments.count == 1)  // the active segment stays
    }

    @Test("a torn tail is cut off on open and appends continue after it")
    func tornTail() throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory)
        try journal.open()
        try journal.append([record(1), record(2)])
        let path = Self.directory + "/" + journal.segments[0].name
        let intact = try fileSystem.fileSize(path)!
        let torn = Array(SegmentedJournal.encode(record(3)).prefix(20))
        try fileSystem.write(path, at: intact, torn)
        let reopened = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory)
        let recovery = try reopened.open()
        #expect(recovery.records == 2 && recovery.truncatedBytes == 20)
        #expect(try fileSystem.fileSize(path) == intact)
        try reopened.append([record(3)])
        #expect(try replayAll(fileSystem).0.map(\.sequence) == [1, 2, 3])
    }

    @Test("a flipped bit stops replay at that record; everything after it is dropped, nothing half-read")
    func corruptMiddle() throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory, segmentLimitBytes: 600)
        try journal.open()
        for sequence in 1...12 { try journal.append([record(UInt64(sequence), size: 150)]) }
        let first = journal.segments[0]
        let path = Self.directory + "/" + first.name
        var bytes = try fileSystem.read(path, max: 1 << 24)
        bytes[20 + 17 + 150 + 30] ^= 0x04  // inside the second record of the first segment
        try fileSystem.truncate(path, to: 0)
        try fileSystem.write(path, at: 0, bytes)
        let (records, recovery) = try replayAll(fileSystem, limit: 600)
        #expect(records.map(\.sequence) == [1])
        #expect(recovery.droppedSegments.count == journal.segments.count - 1)
        #expect(recovery.stopReason?.contains("bad record") == true)
        #expect(try fileSystem.listDirectory(Self.directory) == [first.name])
    }

    @Test("a length field beyond the limit is a bad record, not an allocation")
    func boundedLength() throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory, maxRecordBytes: 4096)
        try journal.open()
        try journal.append([record(1)])
        let path = Self.directory + "/" + journal.segments[0].name
        let end = try fileSystem.fileSize(path)!
        try fileSystem.write(path, at: end, [0xFF, 0xFF, 0xFF, 0x7F] + [UInt8](repeating: 1, count: 40))
        let (records, recovery) = try replayAll(fileSystem)
        #expect(records.count == 1 && recovery.truncatedBytes == 44)
        #expect(throws: SegmentedJournal.Failure.recordTooLarge(bytes: 5000, limit: 4096)) {
            try journal.append([.init(type: 1, sequence: 2, payload: [UInt8](repeating: 0, count: 5000))])
        }
        #expect(throws: SegmentedJournal.Failure.sequenceNotIncreasing(sequence: 1, last: 1)) { try journal.append([record(1)]) }
    }

    @Test("a failed fsync fails the append and the journal refuses more until reopened", arguments: ["fsync", "write", "create", "fsync directory"])
    func failedWrite(operation: String) throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory)
        try journal.open()
        if operation != "create" && operation != "fsync directory" { try journal.append([record(1)]) }
        fileSystem.failNext(operation, with: .io)
        #expect(throws: SegmentedJournal.Failure.self) { try journal.append([record(2)]) }
        #expect(throws: SegmentedJournal.Failure.self) { try journal.append([record(3)]) }
        try journal.open()
        try journal.append([record(4)])
        let sequences = try replayAll(fileSystem).0.map(\.sequence)
        #expect(sequences.last == 4 && !sequences.contains(3))
    }

    @Test("a full or read-only card fails the append with a typed error that says so")
    func fullAndReadOnly() throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory)
        try journal.open()
        try journal.append([record(1)])
        fileSystem.capacity = try fileSystem.fileSize(Self.directory + "/" + journal.segments[0].name).map { Int($0) + 10 }
        let full = #expect(throws: SegmentedJournal.Failure.self) { try journal.append([record(2)]) }
        #expect(full?.description.contains("no space left") == true)
        fileSystem.capacity = nil
        fileSystem.readOnly = true
        try journal.open(repair: false)
        let readOnly = #expect(throws: SegmentedJournal.Failure.self) { try journal.append([record(2)]) }
        #expect(readOnly?.description.contains("read-only") == true)
    }

    @Test("on the real file system, the same: round trip, torn tail cut, rotation")
    func posix() throws {
        let directory = TemporaryDirectory("journal")
        let fileSystem = PosixFileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: directory.path, segmentLimitBytes: 2048)
        try journal.open()
        for sequence in 1...30 { try journal.append([record(UInt64(sequence), size: 100)]) }
        let last = directory.path + "/" + journal.segments.last!.name
        try fileSystem.write(last, at: try fileSystem.fileSize(last)!, [1, 2, 3])
        var sequences: [UInt64] = []
        let recovery = try SegmentedJournal(fileSystem: fileSystem, directory: directory.path, segmentLimitBytes: 2048).open { sequences.append($0.sequence) }
        #expect(sequences == Array(1...30) && recovery.truncatedBytes == 3)
        #expect(try fileSystem.listDirectory(directory.path).count == journal.segments.count)
    }

    /// The ALICE/CrashMonkey method: run a workload, and at every file-system operation take
    /// every state the card could be in if power died there (unsynced writes lost, reordered,
    /// torn; unsynced directory entries lost). Recovery from each must give a prefix of what
    /// was appended that holds every append that had returned.
    @Test("every crash state recovers to a prefix holding everything acknowledged")
    func crashStates() throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory, segmentLimitBytes: 900)
        try journal.open()
        var appended: [SegmentedJournal.Record] = []
        var acknowledged = 0
        var captured: [(state: CrashFileSystem.State, acknowledged: Int)] = []
        fileSystem.onOperation = { fs in
            for state in fs.crashStates(variants: 4, seed: 7) { captured.append((state, acknowledged)) }
        }
        for batch in 0..<25 {
            let records = (0..<(batch % 3 + 1)).map { record(UInt64(appended.count + $0 + 1), size: 60 + batch * 13) }
            appended += records
            try journal.append(records)
            acknowledged = appended.count
        }
        fileSystem.onOperation = nil
        #expect(captured.count > 300)
        var recoveredLengths = Set<Int>()
        for (state, acknowledgedThen) in captured {
            let crashed = CrashFileSystem(state)
            let (records, _) = try replayAll(crashed, limit: 900)
            #expect(records.count >= acknowledgedThen, "lost acknowledged records: \(records.count) < \(acknowledgedThen)")
            let prefix = records == Array(appended.prefix(records.count))
            #expect(prefix, "recovered sequences \(records.map(\.sequence)) are not a prefix of what was appended")
            recoveredLengths.insert(records.count)
            // After recovery the log takes appends again.
            let reopened = SegmentedJournal(fileSystem: crashed, directory: Self.directory, segmentLimitBytes: 900)
            try reopened.open()
            try reopened.append([.init(type: 9, sequence: reopened.lastSequence + 1, payload: [1])])
        }
        #expect(recoveredLengths.count > 10)  // the states really differ
    }

    // MARK: Reopening between appends (issue 10: an append must not re-read the whole journal)

    @Test("reopen trusts what this journal wrote itself: no segment is read again, and the next append follows on")
    func reopenTrustsItsOwnAppends() throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory, segmentLimitBytes: 300)
        try journal.open()
        try journal.append([record(1, size: 200), record(2, size: 200), record(3, size: 200)])
        fileSystem.failNext("read", with: .io)  // any read of a segment now fails the reopen
        let recovery = try journal.reopen()
        #expect(recovery.lastSequence == 3 && journal.lastSequence == 3)
        #expect(throws: FileSystemError.self) { _ = try fileSystem.read(Paths.join(Self.directory, journal.segments[0].name), at: 0, count: 1) }
        try journal.append([record(4)])
        #expect(try replayAll(fileSystem, limit: 300).0.map(\.sequence) == [1, 2, 3, 4])
    }

    @Test("reopen reads the card again when another writer appended, trimmed or left a torn tail, and the next append follows the records that are there")
    func reopenNoticesOtherWriters() throws {
        let fileSystem = try fileSystem()
        let ours = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory, segmentLimitBytes: 300)
        try ours.open()
        try ours.append([record(1, size: 200), record(2, size: 200)])

        // Another process appends in the same segment and in a new one.
        let theirs = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory, segmentLimitBytes: 300)
        try theirs.open()
        try theirs.append([record(3, size: 200), record(4, size: 200)])
        #expect(try ours.reopen().lastSequence == 4)
        #expect(throws: SegmentedJournal.Failure.sequenceNotIncreasing(sequence: 4, last: 4)) { try ours.append([record(4)]) }
        try ours.append([record(5, size: 200)])

        // Another process trims the segments a snapshot covers: ours forgets them, reads nothing.
        try theirs.reopen()
        try theirs.removeSegments(coveredThrough: 3)
        fileSystem.failNext("read", with: .io)
        #expect(try ours.reopen().lastSequence == 5)
        _ = try? fileSystem.read("/nothing", at: 0, count: 1)  // the unused fault
        #expect(ours.segments.map(\.name) == theirs.segments.map(\.name))

        // A process dies half-way through an append: the torn bytes are cut before ours appends.
        let newest = Paths.join(Self.directory, ours.segments.last!.name)
        let torn = Array(SegmentedJournal.encode(record(6, size: 100)).prefix(50))
        try fileSystem.write(newest, at: try fileSystem.fileSize(newest)!, torn)
        let recovery = try ours.reopen()
        #expect(recovery.truncatedBytes == Int64(torn.count) && recovery.lastSequence == 5)
        try ours.append([record(6)])
        let (records, replayed) = try replayAll(fileSystem, limit: 300)
        #expect(records.map(\.sequence) == [4, 5, 6] && replayed.truncatedBytes == 0 && replayed.stopReason == nil)
    }

    @Test("after a failed append, reopen reads the journal again and cuts what part of it landed")
    func reopenAfterAFailedAppend() throws {
        let fileSystem = try fileSystem()
        let journal = SegmentedJournal(fileSystem: fileSystem, directory: Self.directory)
        try journal.open()
        try journal.append([record(1)])
        fileSystem.failNext("fsync", with: .io)
        #expect(throws: SegmentedJournal.Failure.self) { try journal.append([record(2)]) }
        #expect(throws: SegmentedJournal.Failure.self) { try journal.append([record(3)]) }  // broken until reopened
        let recovery = try journal.reopen()
        #expect(recovery.records == 2 && recovery.lastSequence == 2)  // read again: the write landed, unsynced
        try journal.append([record(3)])
        #expect(try replayAll(fileSystem).0.map(\.sequence) == [1, 2, 3])
    }
}
