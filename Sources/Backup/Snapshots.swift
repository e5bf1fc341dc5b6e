import Field
public import Journal
import Seal
public import Store

/// Where a snapshot generation lives and how to check it, as written to a pointer slot.
/// Slot (fixed 128 bytes): "SATP" | version u16 | 0 u16 | generation u64 | covers seq u64 |
/// plaintext size u64 | BLAKE2b-256 of the plaintext (32) | name length u8 | name (<= 59) | crc32c u32.
public struct SnapshotPointer: Equatable, Sendable, Codable {
    public var generation: UInt64
    public var coversSequence: Int64
    public var plaintextSize: UInt64
    public var hash: [UInt8]
    public var name: String

    static let slotBytes = 128
    static let magic = Array("SATP".utf8)

    func encode() -> [UInt8] {
        var bytes = Self.magic
        LittleEndian.append(UInt16(1), to: &bytes)
        LittleEndian.append(UInt16(0), to: &bytes)
        LittleEndian.append(generation, to: &bytes)
        LittleEndian.append(UInt64(bitPattern: coversSequence), to: &bytes)
        LittleEndian.append(plaintextSize, to: &bytes)
        bytes += hash
        let nameBytes = Array(name.utf8.prefix(59))
        bytes.append(UInt8(nameBytes.count))
        bytes += nameBytes
        bytes += [UInt8](repeating: 0, count: Self.slotBytes - 4 - bytes.count)
        LittleEndian.append(CRC32C.checksum(bytes), to: &bytes)
        return bytes
    }

    /// nil for a slot that is empty, torn or otherwise not a whole pointer.
    static func decode(_ bytes: [UInt8]) -> SnapshotPointer? {
        guard bytes.count == slotBytes, Array(bytes[0..<4]) == magic, LittleEndian.uint16(bytes, at: 4) == 1,
              LittleEndian.uint32(bytes, at: slotBytes - 4) == CRC32C.checksum(bytes[0..<(slotBytes - 4)]) else { return nil }
        let nameLength = Int(bytes[64])
        guard nameLength <= 59 else { return nil }
        let name = String(decoding: bytes[65..<(65 + nameLength)], as: UTF8.self)
        // The name is joined to the snapshot directory: a slot naming "../x" or "a/b" (damaged,
        // or written to lead a restore elsewhere) is not a pointer.
        guard Paths.isPlainName(name) else { return nil }
        return SnapshotPointer(
            generation: LittleEndian.uint64(bytes, at: 8), coversSequence: Int64(bitPattern: LittleEndian.uint64(bytes, at: 16)),
            plaintextSize: LittleEndian.uint64(bytes, at: 24), hash: Array(bytes[32..<64]), name: name)
    }
}

/// Encrypted snapshots of the device database on the card, committed through two alternating
/// pointer slots because vfat has no atomic rename: a snapshot is written and verified in a new
/// file, then the slot not holding the newest generation is overwritten to point at it. A torn
/// slot write leaves the other slot, and the generation it names, intact; generation n-2 and the
/// journal segments it alone needed are deleted only after generation n is committed.
///
/// Snapshot file: "SATS" | version u16 | 0 u16 | secretstream header (24) | chunks of
/// (length u32 | sealed 64 KiB of the SQLite file), the last one tagged final.
public final class Snapshots {
    public let layout: CardLayout
    let card: any FileSystem
    let local: any FileSystem
    let key: SecretBytes
    static let chunkBytes = 64 * 1024
    static let magic = Array("SATS".utf8)

    public init(layout: CardLayout, key: BackupKey, card: any FileSystem, local: any FileSystem = PosixFileSystem()) {
        self.layout = layout
        self.card = card
        self.local = local
        self.key = key.snapshotKey
    }

    /// The valid pointers, newest first (at most two). A slot that is missing or not a whole
    /// pointer is passed over; a slot that cannot be read is an error, not an absence: taking it
    /// for "no snapshot" could restore from too little.
    public func pointers() throws -> [SnapshotPointer] {
        var found: [SnapshotPointer] = []
        for index in 0..<2 {
            let path = layout.pointerSlot(index)
            do {
                guard try card.fileSize(path) != nil else { continue }
                if let pointer = SnapshotPointer.decode(try card.read(path, at: 0, count: SnapshotPointer.slotBytes + 1)) { found.append(pointer) }
            } catch {
                throw BackupError.fileSystem(error)
            }
        }
        return found.sorted { $0.generation > $1.generation }
    }

    /// Writes a snapshot of `database` onto the card and reads it back, without committing it:
    /// `commit` makes it the newest generation. `workDirectory` (internal storage) holds the
    /// plaintext copy while it is encrypted. Capture may go on meanwhile: the copy is one read
    /// transaction of SQLite's online backup, and WAL lets writers proceed beside it. Only one
    /// snapshot may be written at a time (the caller holds a lock): the generation is the
    /// newest committed one's next.
    public func write(from database: Database, workDirectory: String) throws -> SnapshotPointer {
        let plaintext = Paths.join(workDirectory, "snapshot.tmp")
        for suffix in ["", "-wal", "-shm", "-journal"] { try? local.remove(plaintext + suffix) }
        defer { for suffix in ["", "-wal", "-shm", "-journal"] { try? local.remove(plaintext + suffix) } }
        let covers: Int64
        do {
            try database.backup(to: plaintext, pagesPerStep: -1)
            var options = Database.Options()
            options.walMode = false
            let copy = try Database(path: plaintext, options: options)
            let problems = try copy.quickCheck()
            guard problems.isEmpty else { throw BackupError.snapshotInvalid(path: plaintext, detail: problems.joined(separator: "; ")) }
            covers = try copy.int64("SELECT COALESCE(max(seq), 0) FROM changes")
        } catch let error as StoreError {
            throw BackupError.database(error.description)
        }
        let existing = try pointers()
        let generation = (existing.first?.generation ?? 0) + 1
        let name = "snap-" + Self.padded(generation) + ".sealed"
        let path = Paths.join(layout.snapshotDirectory, name)
        do {
            try? card.remove(path)  // a leftover of an interrupted attempt at this generation
            let (size, hash) = try encrypt(plaintext, to: path, generation: generation)
            try card.sync(path)
            try card.syncDirectory(layout.snapshotDirectory)
            let pointer = SnapshotPointer(generation: generation, coversSequence: covers, plaintextSize: size, hash: hash, name: name)
            try verify(pointer)
            return pointer
        } catch let error as FileSystemError {
            throw BackupError.fileSystem(error)
        }
    }

    /// Commits a snapshot `write` wrote and verified: overwrites the pointer slot not holding the
    /// newest generation, then removes the generation before the previous one and the journal
    /// segments only it needed (with the card journal's one writer holding its lock).
    public func commit(_ pointer: SnapshotPointer, journal: CardJournal?) throws {
        do {
            let slot = layout.pointerSlot(Int(pointer.generation % 2))
            try card.writeDurably(slot, pointer.encode())
            try cleanUp(keeping: try pointers(), journal: journal)
        } catch let error as FileSystemError {
            throw BackupError.fileSystem(error)
        }
    }

    /// Decrypts the snapshot into `destination` (internal storage), checking its hash and size.
    public func restore(_ pointer: SnapshotPointer, to destination: String) throws {
        try? local.remove(destination)
        do {
            try local.createFile(destination)
            var offset: Int64 = 0
            let hash = try decrypt(pointer) { chunk in
                try local.write(destination, at: offset, chunk)
                offset += Int64(chunk.count)
            }
            guard hash == pointer.hash, UInt64(offset) == pointer.plaintextSize else {
                throw BackupError.snapshotInvalid(path: pointer.name, detail: "contents do not match the pointer's hash")
            }
            try local.sync(destination)
        } catch let error as FileSystemError {
            throw BackupError.fileSystem(error)
        }
    }

    /// Reads the snapshot back through decryption and checks it against its pointer.
    public func verify(_ pointer: SnapshotPointer) throws {
        var size: UInt64 = 0
        let hash = try decrypt(pointer) { size += UInt64($0.count) }
        guard hash == pointer.hash, size == pointer.plaintextSize else {
            throw BackupError.snapshotInvalid(path: pointer.name, detail: "read back differently than written")
        }
    }

    // MARK: Encryption

    private func additionalData(_ generation: UInt64) -> [UInt8] {
        var bytes = Array("satchel snapshot \(layout.device) ".utf8)
        LittleEndian.append(generation, to: &bytes)
        return bytes
    }

    private func encrypt(_ source: String, to path: String, generation: UInt64) throws -> (UInt64, [UInt8]) {
        guard let total = try local.fileSize(source) else { throw BackupError.snapshotInvalid(path: source, detail: "missing") }
        let pusher = try SecretStreamPusher(key: key)
        var header = Self.magic
        LittleEndian.append(UInt16(1), to: &header)
        LittleEndian.append(UInt16(0), to: &header)
        header += pusher.header
        try card.createFile(path)
        try card.write(path, at: 0, header)
        var written = Int64(header.count)
        var hasher = Blake2bHasher(outputLength: 32)
        var offset: Int64 = 0
        let associated = additionalData(generation)
        repeat {
            let chunk = try local.read(source, at: offset, count: Self.chunkBytes)
            offset += Int64(chunk.count)
            hasher.update(chunk)
            let sealed = try pusher.push(chunk, tag: offset >= total ? .final : .message, additionalData: associated)
            var framed: [UInt8] = []
            LittleEndian.append(UInt32(sealed.count), to: &framed)
            framed += sealed
            try card.write(path, at: written, framed)
            written += Int64(framed.count)
        } while offset < total
        return (UInt64(total), hasher.finalize())
    }

    private func decrypt(_ pointer: SnapshotPointer, _ body: ([UInt8]) throws -> Void) throws -> [UInt8] {
        let path = Paths.join(layout.snapshotDirectory, pointer.name)
        let invalid = { (detail: String) in BackupError.snapshotInvalid(path: path, detail: detail) }
        let headerBytes = 8 + SecretStream.headerBytes
        guard let size = try card.fileSize(path) else { throw invalid("the file is missing") }
        let header = try card.read(path, at: 0, count: headerBytes)
        guard header.count == headerBytes, Array(header[0..<4]) == Self.magic else { throw invalid("not a Satchel snapshot") }
        let puller: SecretStreamPuller
        do { puller = try SecretStreamPuller(key: key, header: Array(header[8...])) } catch { throw invalid("\(error)") }
        var hasher = Blake2bHasher(outputLength: 32)
        var offset = Int64(headerBytes)
        let associated = additionalData(pointer.generation)
        let limit = Self.chunkBytes + SecretStream.overheadBytes
        while !puller.finished {
            let lengthBytes = try card.read(path, at: offset, count: 4)
            guard lengthBytes.count == 4 else { throw invalid("ends before its final chunk") }
            // Compared as UInt32 before Int(): erased flash (0xFFFFFFFF) must not trap on 32-bit.
            let stored = LittleEndian.uint32(lengthBytes, at: 0)
            guard UInt64(stored) <= UInt64(limit), offset + 4 + Int64(stored) <= size else { throw invalid("chunk length \(stored) at byte \(offset) is impossible") }
            let length = Int(stored)
            let sealed = try card.read(path, at: offset + 4, count: length)
            offset += 4 + Int64(length)
            do {
                let (chunk, _) = try puller.pull(sealed, additionalData: associated)
                hasher.update(chunk)
                try body(chunk)
            } catch let error as SealError {
                throw error == .authenticationFailed ? BackupError.wrongKey(path: path) : invalid("\(error)")
            }
        }
        return hasher.finalize()
    }

    // MARK: Retention

    private func cleanUp(keeping retained: [SnapshotPointer], journal: CardJournal?) throws {
        let keep = Set(retained.map(\.name))
        var removed = false
        for name in try card.listDirectory(layout.snapshotDirectory) where !keep.contains(name) {
            try card.remove(Paths.join(layout.snapshotDirectory, name))
            removed = true
        }
        if removed { try card.syncDirectory(layout.snapshotDirectory) }
        // Journal records stay as long as the oldest retained snapshot may be the one restored.
        if let journal, let oldest = retained.map(\.coversSequence).min(), retained.count == 2 {
            try journal.trim(coveredThrough: oldest)
        }
    }

    static func padded(_ value: UInt64) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 12 - digits.count)) + digits
    }
}
