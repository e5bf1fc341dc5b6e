#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What an SQLite file says about itself, read with plain `read(2)` calls before SQLite is let
/// near it. Opening a file read-write is not harmless: `journal_mode=WAL` rewrites the header of
/// a rollback-mode file, a 0-byte file becomes a database, and even a read-only connection
/// creates `-wal` and `-shm` beside a WAL-mode file. A program that must refuse foreign or newer
/// files untouched decides from this first (sqlite.org/fileformat2.html).
public struct DatabaseFileHeader: Sendable, Equatable {
    public var pageSize: Int
    /// Bytes 18-19: 1 for a rollback journal, 2 for WAL.
    public var writeVersion: UInt8
    /// `PRAGMA user_version` (offset 60).
    public var userVersion: Int64
    /// `PRAGMA application_id` (offset 68).
    public var applicationID: Int64
    /// Whether page 1 came from a committed frame of the `-wal` file (the main file's copy is older).
    public var fromWAL: Bool
}

public enum DatabaseFile {
    public enum Inspection: Sendable, Equatable {
        case missing
        /// 0 bytes: not a database yet, whatever SQLite would make of it.
        case empty
        /// Does not start with "SQLite format 3\0" (or is shorter than its header).
        case notSQLite(detail: String)
        case sqlite(DatabaseFileHeader)
        /// The file could not be read (`errno`).
        case unreadable(errno: Int32)
    }

    static let magic = Array("SQLite format 3\u{0}".utf8)

    /// Reads the header of `path`, taking page 1 from the newest committed frame of `path-wal`
    /// when there is one: until a checkpoint, the WAL holds the current `user_version` and
    /// `application_id` and the main file an older copy. Writes nothing, creates nothing.
    public static func inspect(_ path: String) -> Inspection {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return errno == ENOENT ? .missing : .unreadable(errno: errno) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return .unreadable(errno: errno) }
        if info.st_size == 0 { return .empty }
        guard let bytes = readFully(descriptor, count: 100, at: 0) else { return .unreadable(errno: errno) }
        guard bytes.count == 100 else { return .notSQLite(detail: "\(bytes.count) bytes, shorter than an SQLite header") }
        guard Array(bytes[0..<16]) == magic else { return .notSQLite(detail: "it does not start with the SQLite header") }
        var header = parse(page1: bytes, fromWAL: false)
        guard let pageSize = header?.pageSize else { return .notSQLite(detail: "its page size is invalid") }
        if let newer = newestPage1(walPath: path + "-wal", pageSize: pageSize), let fromWAL = parse(page1: newer, fromWAL: true) {
            header = fromWAL
        }
        return header.map { .sqlite($0) } ?? .notSQLite(detail: "its header is invalid")
    }

    static func parse(page1 bytes: [UInt8], fromWAL: Bool) -> DatabaseFileHeader? {
        guard bytes.count >= 100 else { return nil }
        let rawSize = Int(bigEndian32(bytes, 16) >> 16)
        let pageSize = rawSize == 1 ? 65_536 : rawSize
        guard pageSize >= 512, pageSize <= 65_536, pageSize & (pageSize - 1) == 0 else { return nil }
        return DatabaseFileHeader(
            pageSize: pageSize, writeVersion: bytes[18],
            userVersion: Int64(Int32(bitPattern: bigEndian32(bytes, 60))),
            applicationID: Int64(Int32(bitPattern: bigEndian32(bytes, 68))),
            fromWAL: fromWAL)
    }

    /// The first 100 bytes of the newest copy of page 1 in the WAL that belongs to a committed
    /// transaction, validated as SQLite validates frames on recovery: matching salts and a
    /// cumulative checksum, stopping at the first frame that fails (sqlite.org/fileformat2.html#walformat).
    static func newestPage1(walPath: String, pageSize: Int) -> [UInt8]? {
        let descriptor = open(walPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        guard let header = readFully(descriptor, count: 32, at: 0), header.count == 32 else { return nil }
        let magic = bigEndian32(header, 0)
        guard magic == 0x377F_0682 || magic == 0x377F_0683, Int(bigEndian32(header, 8)) == pageSize else { return nil }
        let bigEndianWords = magic & 1 == 1
        var checksum = walChecksum(header[0..<24], bigEndian: bigEndianWords, seed: (0, 0))
        guard checksum == (bigEndian32(header, 24), bigEndian32(header, 28)) else { return nil }
        let salts = (bigEndian32(header, 16), bigEndian32(header, 20))
        var committed: [UInt8]?, pending: [UInt8]?
        var offset = 32
        while let frame = readFully(descriptor, count: 24 + pageSize, at: offset), frame.count == 24 + pageSize {
            guard (bigEndian32(frame, 8), bigEndian32(frame, 12)) == salts else { break }
            checksum = walChecksum(frame[0..<8], bigEndian: bigEndianWords, seed: checksum)
            checksum = walChecksum(frame[24...], bigEndian: bigEndianWords, seed: checksum)
            guard checksum == (bigEndian32(frame, 16), bigEndian32(frame, 20)) else { break }
            if bigEndian32(frame, 0) == 1 { pending = Array(frame[24..<124]) }
            if bigEndian32(frame, 4) != 0 { committed = pending ?? committed }  // a commit frame
            offset += 24 + pageSize
        }
        return committed
    }

    static func walChecksum(_ bytes: ArraySlice<UInt8>, bigEndian: Bool, seed: (UInt32, UInt32)) -> (UInt32, UInt32) {
        var (s0, s1) = seed
        var index = bytes.startIndex
        func word(_ at: Int) -> UInt32 {
            let (b0, b1, b2, b3) = (UInt32(bytes[at]), UInt32(bytes[at + 1]), UInt32(bytes[at + 2]), UInt32(bytes[at + 3]))
            return bigEndian ? b0 << 24 | b1 << 16 | b2 << 8 | b3 : b3 << 24 | b2 << 16 | b1 << 8 | b0
        }
        while index + 8 <= bytes.endIndex {
            s0 = s0 &+ word(index) &+ s1
            s1 = s1 &+ word(index + 4) &+ s0
            index += 8
        }
        return (s0, s1)
    }

    static func bigEndian32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
    }

    static func readFully(_ descriptor: Int32, count: Int, at offset: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let got = buffer.withUnsafeMutableBytes { raw in
                pread(descriptor, raw.baseAddress! + filled, count - filled, off_t(offset + filled))
            }
            if got < 0 { if errno == EINTR { continue }; return nil }
            if got == 0 { break }
            filled += got
        }
        return Array(buffer[0..<filled])
    }
}
