import Backup
import Field
import Journal
import SatchelTesting
import Seal
import Store

enum BackupHarness {
    static let layout = CardLayout(root: "/card", device: "WAW07")
    /// A fixed backup key, so an input means the same thing in every run.
    static let key = BackupKey(SecretBytes([UInt8](repeating: 0x4B, count: 32)))
    static var segmentPath: String { Paths.join(layout.journalDirectory, "seg-000000000001.log") }

    static func documented(_ error: any Error) -> Bool { error is BackupError || error is FieldError }

    /// A card holding `files`, with the directories a device's backup has.
    static func card(_ files: [String: [UInt8]]) -> CrashFileSystem {
        var state = CrashFileSystem.State()
        state.directories = ["/", "/card", layout.satchelDirectory, layout.deviceDirectory, layout.journalDirectory, layout.snapshotDirectory, "/local"]
        state.files = files
        return CrashFileSystem(state)
    }

    // MARK: Card journal

    /// Input: mode (1 byte) | segment.
    /// Mode bits 0-1: 0 the segment file as given; 1 the same with its header and record CRCs
    /// made right (so mutations reach the records behind them); 2 and 3 records built from
    /// (type u8 | sequence step u8 | length u16 LE | plaintext) and sealed with the card key
    /// (so mutations reach the change-entry JSON behind the encryption). Bit 2: open with repair.
    static func cardJournal(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        var control = ControlBytes(input)
        let mode = control.byte()
        let segment: [UInt8] = switch mode & 3 {
        case 0: Array(control.rest)
        case 1: withCRCsFixed(Array(control.rest))
        default: sealedSegment(control.rest)
        }
        let repair = mode & 4 != 0
        let fileSystem = card([segmentPath: segment])
        let before = fileSystem.volatile
        var entries: [ChangeEntry] = []
        let outcome = try refusing(.cardJournal, documented: documented) {
            let journal = CardJournal(layout: layout, key: key, fileSystem: fileSystem)
            let recovery = try journal.open(repair: repair) { entries.append($0) }
            try require(recovery.records == entries.count, .cardJournal, "\(recovery.records) records counted, \(entries.count) handed over")
            try require(zip(entries, entries.dropFirst()).allSatisfy { $0.seq < $1.seq }, .cardJournal, "entries out of sequence")
            if repair {
                // A repaired journal is a clean prefix: opening it again cuts nothing and finds the same entries.
                var again: [ChangeEntry] = []
                let second = try CardJournal(layout: layout, key: key, fileSystem: fileSystem).open(repair: false) { again.append($0) }
                try require(second.truncatedBytes == 0 && second.droppedSegments.isEmpty, .cardJournal, "a repaired journal still has a bad tail")
                try require(again == entries, .cardJournal, "a repaired journal gives other entries")
            }
        }
        if !repair {
            try require(fileSystem.volatile == before, .cardJournal, "opening without repair changed the card")
        }
        return outcome
    }

    /// The header CRC and every record CRC made right, so the fuzzer gets past them.
    static func withCRCsFixed(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        guard bytes.count >= 20 else { return bytes }
        setUInt32(CRC32C.checksum(bytes[0..<16]), in: &bytes, at: 16)
        var offset = 20
        while bytes.count - offset >= 17 {
            let length = Int(LittleEndian.uint32(bytes, at: offset))
            guard length <= 1 << 20, bytes.count - offset - 17 >= length else { break }
            let end = offset + 13 + length
            setUInt32(CRC32C.checksum(bytes[offset..<end]), in: &bytes, at: end)
            offset = end + 4
        }
        return bytes
    }

    static func setUInt32(_ value: UInt32, in bytes: inout [UInt8], at offset: Int) {
        for index in 0..<4 { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(index))) }
    }

    /// Segment 1 with whole records sealed as CardJournal seals them: the record payload is
    /// nonce | XChaCha20-Poly1305 of the plaintext, under the journal subkey, with the device and
    /// sequence as additional data (Sources/Backup/CardJournal.swift; the subkey derivation is
    /// Backup's BackupKey.subkey, internal there, repeated here).
    static func sealedSegment(_ description: ArraySlice<UInt8>) -> [UInt8] {
        var bytes = Array("SATJ".utf8)
        LittleEndian.append(UInt16(1), to: &bytes)
        LittleEndian.append(UInt16(0), to: &bytes)
        LittleEndian.append(UInt64(1), to: &bytes)
        LittleEndian.append(CRC32C.checksum(bytes), to: &bytes)
        var control = ControlBytes(Array(description))
        var sequence: UInt64 = 0
        while !control.rest.isEmpty {
            let type = control.byte()
            sequence &+= UInt64(control.byte())
            let length = Int(control.byte()) | Int(control.byte()) << 8
            let plaintext = control.take(length)
            let nonce = (0..<24).map { UInt8(truncatingIfNeeded: sequence &+ UInt64($0)) }
            var additionalData = Array("satchel change \(layout.device) ".utf8)
            LittleEndian.append(sequence, to: &additionalData)
            guard let sealed = try? AEAD.seal(plaintext, additionalData: additionalData, nonce: nonce, key: journalKey) else { break }
            bytes += SegmentedJournal.encode(.init(type: type, sequence: sequence, payload: nonce + sealed))
        }
        return bytes
    }

    static let journalKey = SecretBytes(Blake2b.hash(Array("satchel journal v1".utf8), outputLength: 32, key: key.bytes))

    static let entries: [ChangeEntry] = [
        ChangeEntry(seq: 1, changeId: "WAW07-1", at: 1_795_428_000_000, entity: "order", entityId: "WAW07-o1", action: "confirmed",
                    payload: DocumentCodec.encode(.order(OrderDocument(
                        id: "WAW07-o1", customerId: "CPL1", state: .confirmed, approval: .none, holdReason: nil, priceLevel: "customer",
                        currency: "PLN", totalMinor: 3_000, note: "Доставка до 10:00 — dostawa rano", createdAt: 1_795_428_000_000,
                        confirmedAt: 1_795_428_000_000,
                        lines: [OrderLine(lineNo: 1, partNumber: "P1", unit: "szt", quantity: 3, baseQuantity: 3, unitPriceMinor: 1_000, amountMinor: 3_000)])))),
        ChangeEntry(seq: 2, changeId: "WAW07-2", at: 1_795_428_060_000, entity: "visit", entityId: "WAW07-v1", action: "recorded",
                    payload: DocumentCodec.encode(.visit(VisitDocument(id: "WAW07-v1", customerId: "C2", at: 1_795_428_060_000, outcome: .order,
                                                                       note: "Rozmowa z właścicielem")))),
        ChangeEntry(seq: 5, changeId: "WAW07-5", at: 1_795_428_120_000, entity: "payment", entityId: "WAW07-p1", action: "collected",
                    payload: DocumentCodec.encode(.payment(PaymentDocument(id: "WAW07-p1", customerId: "C2", amountMinor: 15_000, currency: "BGN",
                                                                           method: .cash, receipt: "КП/7", collectedAt: 1_795_428_120_000)))),
    ]

    static func cardJournalSeeds() throws -> [(name: String, bytes: [UInt8])] {
        // A real segment, written by CardJournal itself.
        let fileSystem = card([:])
        try CardJournal(layout: layout, key: key, fileSystem: fileSystem).append(entries)
        let written = fileSystem.volatile.files[segmentPath] ?? []
        // The same entries described for the sealing mode.
        var described: [UInt8] = []
        var previous: Int64 = 0
        for entry in entries {
            let plaintext = entry.record()
            described += [2, UInt8(entry.seq - previous), UInt8(plaintext.count & 0xFF), UInt8(plaintext.count >> 8)] + plaintext
            previous = entry.seq
        }
        return [
            (name: "written-by-card-journal", bytes: [0] + written),
            (name: "written-repair", bytes: [4 | 1] + written),
            (name: "torn-tail", bytes: [4] + written.dropLast(9)),
            (name: "sealed-entries", bytes: [2] + described),
            (name: "sealed-entries-repair", bytes: [4 | 2] + described),
        ]
    }

    // MARK: Snapshot pointers

    /// Input: mode (1 byte) | slot A (128 bytes) | slot B (128 bytes) | the snapshot file.
    /// Mode bits 0-1: make slot A's, slot B's CRC right; bits 2-3: slot A, slot B absent.
    /// The newest valid pointer is then restored from the snapshot file it names.
    static func snapshotPointers(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        var control = ControlBytes(input)
        let mode = control.byte()
        var slots = [control.take(128), control.take(128)]
        let snapshot = Array(control.rest)
        var files: [String: [UInt8]] = [:]
        for index in 0..<2 {
            if mode & (1 << index) != 0 && slots[index].count == 128 {
                setUInt32(CRC32C.checksum(slots[index][0..<124]), in: &slots[index], at: 124)
            }
            if mode & (4 << index) == 0 { files[layout.pointerSlot(index)] = slots[index] }
        }
        let fileSystem = card(files)
        let local = card([:])
        return try refusing(.snapshotPointers, documented: documented) {
            let snapshots = Snapshots(layout: layout, key: key, card: fileSystem, local: local)
            let pointers = try snapshots.pointers()
            try require(pointers.count <= 2, .snapshotPointers, "\(pointers.count) pointers from two slots")
            try require(zip(pointers, pointers.dropFirst()).allSatisfy { $0.generation >= $1.generation }, .snapshotPointers, "pointers not newest first")
            guard let newest = pointers.first else { return }
            try? fileSystem.writeDurably(Paths.join(layout.snapshotDirectory, Paths.name(of: newest.name)), snapshot)
            let card = fileSystem.volatile
            do {
                try snapshots.restore(newest, to: "/local/restored.db")
            } catch {
                // A refused snapshot leaves the card as it was.
                try require(fileSystem.volatile == card, .snapshotPointers, "a refused restore changed the card")
                throw error
            }
        }
    }

    static func snapshotPointerSeeds() throws -> [(name: String, bytes: [UInt8])] {
        // Two real generations, taken by Snapshots itself from a small SQLite database.
        let directory = TemporaryDirectory("fuzz-seed")
        let fileSystem = card([:])
        let database = try Database(path: directory.file("device.db"))
        try database.execute(script: "CREATE TABLE changes(seq INTEGER PRIMARY KEY, note TEXT); INSERT INTO changes(note) VALUES ('Zażółć'), ('Доставка');")
        let snapshots = Snapshots(layout: layout, key: key, card: fileSystem, local: PosixFileSystem())
        try snapshots.commit(try snapshots.write(from: database, workDirectory: directory.path), journal: nil)
        let second = try snapshots.write(from: database, workDirectory: directory.path)
        try snapshots.commit(second, journal: nil)
        let files = fileSystem.volatile.files
        let slotA = files[layout.pointerSlot(0)] ?? [], slotB = files[layout.pointerSlot(1)] ?? []
        let sealed = files[Paths.join(layout.snapshotDirectory, second.name)] ?? []
        return [
            (name: "two-generations", bytes: [0] + slotA + slotB + sealed),
            (name: "refused-truncated-snapshot", bytes: [0] + slotA + slotB + sealed.prefix(96)),
            (name: "refused-slot-b-only-no-file", bytes: [4] + slotA + slotB),
            (name: "refused-torn-slot-a-no-file", bytes: [0] + slotA.prefix(77) + [UInt8](repeating: 0, count: 51) + slotB),
        ]
    }

    // MARK: card.json

    static let passphrase = "Zażółć-гусля-2026"

    /// Input: card.json. Decoded, then unwrapped with the passphrase as `satchel restore` does
    /// after a wipe: the key's salt, nonce and cost all come from the card.
    static func cardJSON(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        return try refusing(.cardJSON, documented: documented) {
            let identity = try CardJSON.decode(input, path: layout.identityFile)
            let again = try CardJSON.decode(try CardJSON.encode(identity), path: layout.identityFile)
            try require(again == identity, .cardJSON, "card.json does not survive encode and decode")
            _ = try BackupKey.unwrap(identity, passphrase: passphrase, path: layout.identityFile)
        }
    }

    static func cardJSONSeeds() throws -> [(name: String, bytes: [UInt8])] {
        // Argon2id's least cost (1 pass over 8 KiB), so the fuzzer spends its time on the
        // decoding (the handheld's own cost is 3 passes over 8 MiB).
        let cheap = PasswordHash.Cost(opsLimit: 1, memLimit: 8 * 1024)
        let polish = try key.identity(device: "WAW07", rep: "Zofia Wójcik-Łęcka", passphrase: passphrase, cost: cheap, now: 1_795_428_000_000)
        let bulgarian = try key.identity(device: "SOF02", rep: "Иван Петров", passphrase: "Слънчев бряг 2026", cost: cheap, now: 1_795_428_000_000)
        return [(name: "polish-rep", bytes: try CardJSON.encode(polish)),
                (name: "refused-bulgarian-rep-another-passphrase", bytes: try CardJSON.encode(bulgarian))]
    }
}
