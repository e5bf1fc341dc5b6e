/// An append-only log of framed records in segment files, built to survive power cuts on a
/// flash card: records are only ever appended (flash wears out under rewrites), each append is
/// fsynced before it counts, a new segment's directory entry is fsynced too, and on open a torn
/// or corrupt tail is cut off so the log is always a clean prefix of what was appended.
///
/// Segment file `seg-<number>.log`:  magic "SATJ" | version u16 | flags u16 | number u64 | crc32c u32
/// Record:  length u32 | type u8 | sequence u64 | payload (length bytes) | crc32c u32 (of all before it)
/// All integers little-endian. Sequences strictly increase across the whole log.
public final class SegmentedJournal {
    public struct Record: Equatable, Sendable {
        public var type: UInt8
        public var sequence: UInt64
        public var payload: [UInt8]
        public init(type: UInt8, sequence: UInt64, payload: [UInt8]) {
            self.type = type
            self.sequence = sequence
            self.payload = payload
        }
    }

    public struct Segment: Equatable, Sendable {
        public var number: UInt64
        public var name: String
        public var size: Int64
        public var firstSequence: UInt64?
        public var lastSequence: UInt64?
    }

    /// What opening found: how much was valid and what was cut off.
    public struct Recovery: Equatable, Sendable {
        public var records: Int = 0
        public var lastSequence: UInt64 = 0
        /// Bytes of torn or corrupt tail that were cut off.
        public var truncatedBytes: Int64 = 0
        /// Whole segments after a bad record that were removed (or would be, when read-only).
        public var droppedSegments: [String] = []
        /// Why the scan stopped early, if it did.
        public var stopReason: String?
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case fileSystem(FileSystemError)
        case recordTooLarge(bytes: Int, limit: Int)
        case sequenceNotIncreasing(sequence: UInt64, last: UInt64)
        case broken(String)

        public var description: String {
            switch self {
            case .fileSystem(let error): return error.description
            case .recordTooLarge(let bytes, let limit): return "journal record of \(bytes) bytes is over the \(limit)-byte limit"
            case .sequenceNotIncreasing(let sequence, let last): return "journal sequence \(sequence) does not follow \(last)"
            case .broken(let why): return "journal unusable until reopened: \(why)"
            }
        }
    }

    static let magic: [UInt8] = Array("SATJ".utf8)
    static let version: UInt16 = 1
    static let segmentHeaderBytes = 20
    static let recordOverhead = 4 + 1 + 8 + 4

    public let fileSystem: any FileSystem
    public let directory: String
    public let segmentLimitBytes: Int64
    public let maxRecordBytes: Int
    public private(set) var segments: [Segment] = []
    public private(set) var lastSequence: UInt64 = 0
    private var broken: String?

    public init(fileSystem: any FileSystem, directory: String, segmentLimitBytes: Int64 = 256 * 1024, maxRecordBytes: Int = 1 << 20) {
        self.fileSystem = fileSystem
        self.directory = directory
        self.segmentLimitBytes = segmentLimitBytes
        self.maxRecordBytes = maxRecordBytes
    }

    // MARK: Opening and replay

    /// Scans every segment, cuts off a bad tail (unless `repair` is false, for read-only media),
    /// and hands each valid record to `body` in order.
    @discardableResult
    public func open(repair: Bool = true, _ body: (Record) throws -> Void = { _ in }) throws -> Recovery {
        var recovery = Recovery()
        segments = []
        lastSequence = 0
        broken = nil
        hasOpened = false
        let names: [String]
        do {
            names = try fileSystem.listDirectory(directory).filter { Self.segmentNumber($0) != nil }
        } catch {
            throw Failure.fileSystem(error)
        }
        let ordered = names.sorted { Self.segmentNumber($0)! < Self.segmentNumber($1)! }
        var stop: (segment: Int, offset: Int64)?
        for (index, name) in ordered.enumerated() {
            let path = Paths.join(directory, name)
            // At most what a segment can hold (the limit, or one record over it): a segment that
            // claims more is read that far and the rest cut off as a bad tail.
            var bytes: [UInt8]
            do { bytes = try fileSystem.read(path, at: 0, count: maxSegmentBytes + 1) } catch { throw Failure.fileSystem(error) }
            let oversized = bytes.count > maxSegmentBytes
            if oversized { bytes.removeLast(bytes.count - maxSegmentBytes) }
            var segment = Segment(number: Self.segmentNumber(name)!, name: name, size: Int64(bytes.count))
            guard Self.validHeader(bytes, number: segment.number) else {
                recovery.stopReason = "segment \(name) has no valid header"
                stop = (index, 0)
                break
            }
            var offset = Self.segmentHeaderBytes
            while offset < bytes.count {
                guard let (record, next) = Self.decodeRecord(bytes, at: offset, maxPayload: maxRecordBytes) else {
                    recovery.stopReason = "bad record at byte \(offset) of \(name)"
                    break
                }
                guard record.sequence > lastSequence else {
                    recovery.stopReason = "sequence \(record.sequence) after \(lastSequence) at byte \(offset) of \(name)"
                    break
                }
                try body(record)
                lastSequence = record.sequence
                segment.firstSequence = segment.firstSequence ?? record.sequence
                segment.lastSequence = record.sequence
                recovery.records += 1
                offset = next
            }
            if oversized && offset == bytes.count { recovery.stopReason = "segment \(name) is larger than a segment can be" }
            if offset < bytes.count || oversized {
                let actual = oversized ? ((try? fileSystem.fileSize(path)) ?? nil) ?? Int64(bytes.count) : Int64(bytes.count)
                segment.size = Int64(offset)
                recovery.truncatedBytes += actual - Int64(offset)
                segments.append(segment)
                stop = (index, Int64(offset))
                break
            }
            segments.append(segment)
        }
        if let stop {
            let dropped = ordered[(stop.segment + 1)...]
            recovery.droppedSegments = Array(stop.offset == 0 ? ordered[stop.segment...] : dropped)
            for name in recovery.droppedSegments where stop.offset == 0 || name != ordered[stop.segment] {
                if let size = try? fileSystem.fileSize(Paths.join(directory, name)) { recovery.truncatedBytes += size ?? 0 }
            }
            if repair {
                do {
                    if stop.offset > 0 {
                        try fileSystem.withFile(Paths.join(directory, ordered[stop.segment]), .write) { file throws(FileSystemError) in
                            try file.truncate(to: stop.offset)
                            try file.sync()
                        }
                    }
                    for name in recovery.droppedSegments { try fileSystem.remove(Paths.join(directory, name)) }
                    if !recovery.droppedSegments.isEmpty { try fileSystem.syncDirectory(directory) }
                } catch {
                    broken = "could not cut off the bad tail: \(error)"
                    throw Failure.fileSystem(error)
                }
            } else {
                broken = "opened read-only with a bad tail"
            }
        }
        recovery.lastSequence = lastSequence
        hasOpened = true
        return recovery
    }

    /// Whether this journal, opened or written before, may append again without reading the
    /// segments: it is not broken, and the files are the ones it left, the same segments (or the
    /// same with older ones removed, by a snapshot in another process) with the newest one the
    /// size this journal left it at. Sizes only grow by appends and only shrink by a cut, so a
    /// newest segment of that size holds exactly the records this journal wrote or verified.
    /// Otherwise (another process appended, cut or replaced something) it opens afresh, which
    /// reads and checks every segment and cuts off a bad tail.
    @discardableResult
    public func reopen(repair: Bool = true) throws -> Recovery {
        if broken == nil, isUnchangedOnDisk() {
            return Recovery(records: 0, lastSequence: lastSequence)
        }
        return try open(repair: repair)
    }

    private var hasOpened = false

    private func isUnchangedOnDisk() -> Bool {
        guard hasOpened, let names = try? fileSystem.listDirectory(directory).filter({ Self.segmentNumber($0) != nil }) else { return false }
        let ordered = names.sorted { Self.segmentNumber($0)! < Self.segmentNumber($1)! }
        guard ordered.count <= segments.count, Array(segments.suffix(ordered.count).map(\.name)) == ordered else { return false }
        guard let newest = segments.last else { return ordered.isEmpty }
        guard !ordered.isEmpty, (try? fileSystem.fileSize(Paths.join(directory, newest.name))) == newest.size else { return false }
        // Segments removed from the front hold records a snapshot covers; forget them too.
        segments.removeFirst(segments.count - ordered.count)
        return true
    }

    // MARK: Appending

    /// Appends records (sequences strictly increasing), then fsyncs once. When this returns,
    /// all of them are durable; when it throws, none of them may be counted on, and the journal
    /// must be reopened (which cuts off whatever part did land) before the next append.
    public func append(_ records: [Record]) throws {
        if let broken { throw Failure.broken(broken) }
        var last = lastSequence
        for record in records {
            guard record.payload.count <= maxRecordBytes else { throw Failure.recordTooLarge(bytes: record.payload.count, limit: maxRecordBytes) }
            guard record.sequence > last else { throw Failure.sequenceNotIncreasing(sequence: record.sequence, last: last) }
            last = record.sequence
        }
        guard !records.isEmpty else { return }
        do {
            try write(records)
        } catch {
            broken = error.description
            throw Failure.fileSystem(error)
        }
        lastSequence = last
    }

    /// The largest a segment file can be: the limit, or one record over it (a lone oversized
    /// record still gets written).
    var maxSegmentBytes: Int { Int(segmentLimitBytes) + maxRecordBytes + Self.recordOverhead + Self.segmentHeaderBytes }

    /// Writes the records through one open descriptor per segment (pwrite, fsync, close, each
    /// checked), so an error the kernel reports at fsync or close reaches this append.
    private func write(_ records: [Record]) throws(FileSystemError) {
        var pending: [UInt8] = []
        var active: (any OpenFile)?
        do {
            try writeRecords(records, pending: &pending, active: &active)
        } catch {
            try? active?.close()
            throw error
        }
    }

    private func writeRecords(_ records: [Record], pending: inout [UInt8], active: inout (any OpenFile)?) throws(FileSystemError) {
        for record in records {
            let encoded = Self.encode(record)
            // A new segment when there is none, or when this record would take a segment that
            // already holds records over the limit (a lone oversized record still gets written).
            let activeIsFull = segments.last.map {
                $0.lastSequence != nil && $0.size + Int64(pending.count + encoded.count) > segmentLimitBytes
            } ?? true
            if activeIsFull {
                // The full segment's records must be durable before the next segment exists:
                // otherwise a power cut could keep the later records and lose the earlier ones.
                try flush(&pending, into: &active)
                if let full = active {
                    active = nil
                    try full.sync()
                    try full.close()
                }
                active = try startSegment()
            }
            pending += encoded
            segments[segments.count - 1].firstSequence = segments[segments.count - 1].firstSequence ?? record.sequence
            segments[segments.count - 1].lastSequence = record.sequence
        }
        try flush(&pending, into: &active)
        if let last = active {
            active = nil
            try last.sync()
            try last.close()
        }
    }

    private func flush(_ pending: inout [UInt8], into active: inout (any OpenFile)?) throws(FileSystemError) {
        guard !pending.isEmpty, let segment = segments.last else { return }
        if active == nil { active = try fileSystem.openFile(Paths.join(directory, segment.name), .write) }
        try active!.write(at: segment.size, pending)
        segments[segments.count - 1].size += Int64(pending.count)
        pending.removeAll(keepingCapacity: true)
    }

    /// Creates the next segment with its header, durable with its directory entry, and returns
    /// it open for the records that follow.
    private func startSegment() throws(FileSystemError) -> any OpenFile {
        let number = (segments.last?.number ?? 0) + 1
        let name = Self.segmentName(number)
        let file = try fileSystem.openFile(Paths.join(directory, name), .create)
        do {
            let header = Self.header(number: number)
            try file.write(at: 0, header)
            try file.sync()
            try fileSystem.syncDirectory(directory)
            segments.append(Segment(number: number, name: name, size: Int64(header.count)))
        } catch {
            try? file.close()
            throw error
        }
        return file
    }

    // MARK: Trimming

    /// Removes whole segments whose records are all at or below `sequence` (covered by a
    /// snapshot), never the active segment.
    public func removeSegments(coveredThrough sequence: UInt64) throws {
        var removed = false
        while segments.count > 1 && (segments[0].lastSequence ?? 0) <= sequence {
            do { try fileSystem.remove(Paths.join(directory, segments[0].name)) } catch { throw Failure.fileSystem(error) }
            segments.removeFirst()
            removed = true
        }
        if removed {
            do { try fileSystem.syncDirectory(directory) } catch { throw Failure.fileSystem(error) }
        }
    }

    // MARK: Encoding

    static func segmentName(_ number: UInt64) -> String {
        let digits = String(number)
        return "seg-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".log"
    }

    static func segmentNumber(_ name: String) -> UInt64? {
        guard name.hasPrefix("seg-"), name.hasSuffix(".log"), name.utf8.count == 20 else { return nil }
        return UInt64(name.dropFirst(4).dropLast(4))
    }

    static func header(number: UInt64) -> [UInt8] {
        var bytes = magic
        LittleEndian.append(version, to: &bytes)
        LittleEndian.append(UInt16(0), to: &bytes)
        LittleEndian.append(number, to: &bytes)
        LittleEndian.append(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }

    static func validHeader(_ bytes: [UInt8], number: UInt64) -> Bool {
        guard bytes.count >= segmentHeaderBytes, Array(bytes[0..<4]) == magic,
              LittleEndian.uint16(bytes, at: 4) == version,
              LittleEndian.uint64(bytes, at: 8) == number else { return false }
        return LittleEndian.uint32(bytes, at: 16) == CRC32C.checksum(bytes[0..<16])
    }

    public static func encode(_ record: Record) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(record.payload.count + recordOverhead)
        LittleEndian.append(UInt32(record.payload.count), to: &bytes)
        bytes.append(record.type)
        LittleEndian.append(record.sequence, to: &bytes)
        bytes += record.payload
        LittleEndian.append(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }

    /// The record at `offset` and where the next one starts, or nil when the bytes there are
    /// not a whole, intact record (torn, corrupt, or larger than the limit).
    static func decodeRecord(_ bytes: [UInt8], at offset: Int, maxPayload: Int) -> (Record, Int)? {
        guard bytes.count - offset >= recordOverhead else { return nil }
        // Compared as UInt32 before any Int: on a 32-bit handheld Int(0xFFFF_FFFF) (erased flash)
        // would trap.
        let stored = LittleEndian.uint32(bytes, at: offset)
        guard UInt64(stored) <= UInt64(maxPayload) else { return nil }
        let length = Int(stored)
        guard bytes.count - offset >= recordOverhead + length else { return nil }
        let end = offset + 13 + length
        guard LittleEndian.uint32(bytes, at: end) == CRC32C.checksum(bytes[offset..<end]) else { return nil }
        let record = Record(type: bytes[offset + 4], sequence: LittleEndian.uint64(bytes, at: offset + 5), payload: Array(bytes[(offset + 13)..<end]))
        return (record, end + 4)
    }
}
