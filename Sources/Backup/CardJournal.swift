public import Field
import FoundationEssentials
public import Journal
import Seal

/// The change journal mirrored to the card: each `changes` row becomes one Journal record,
/// sealed with XChaCha20-Poly1305 under the journal subkey. The record's sequence is the row's
/// `seq`, and the device id and sequence are bound in as additional data, so a record cannot be
/// replayed under another sequence or on another device.
///
/// Record payload: nonce (24 bytes) | ciphertext (with its 16-byte tag) of the entry. Card
/// format 2 (record type 2) seals the entry's binary form (`ChangeEntry.record()`); format 1
/// (type 1, satchel before the document codec) sealed it as JSON, and restore still reads those
/// records (`LegacyJournalPayload`), so a card written by an older satchel restores as it was.
public final class CardJournal {
    static let changeRecordType: UInt8 = 2
    static let legacyJSONRecordType: UInt8 = 1

    public let layout: CardLayout
    let journal: SegmentedJournal
    let key: SecretBytes

    public init(layout: CardLayout, key: BackupKey, fileSystem: any FileSystem, segmentLimitBytes: Int64 = 256 * 1024) {
        self.layout = layout
        self.key = key.journalKey
        self.journal = SegmentedJournal(fileSystem: fileSystem, directory: layout.journalDirectory, segmentLimitBytes: segmentLimitBytes)
    }

    public var lastSequence: Int64 { Int64(journal.lastSequence) }

    /// Opens the journal, cutting off a torn tail. With `body`, decrypts and hands over every
    /// entry (restore); without, only finds where the card stands (the capture path).
    @discardableResult
    public func open(repair: Bool = true, _ body: ((ChangeEntry) throws -> Void)? = nil) throws -> SegmentedJournal.Recovery {
        do {
            return try journal.open(repair: repair) { record in
                guard let body else { return }
                try body(try decrypt(record))
            }
        } catch let failure as SegmentedJournal.Failure {
            throw BackupError.journal(failure.description)
        }
    }

    /// Makes the journal ready to append again after an earlier `open` or append in this process,
    /// reading the card only when something else changed it since (`SegmentedJournal.reopen`).
    @discardableResult
    public func reopen(repair: Bool = true) throws -> SegmentedJournal.Recovery {
        do {
            return try journal.reopen(repair: repair)
        } catch let failure as SegmentedJournal.Failure {
            throw BackupError.journal(failure.description)
        }
    }

    /// Appends the entries (already committed to the device database) and fsyncs them.
    public func append(_ entries: [ChangeEntry]) throws {
        let records = try entries.map { entry -> SegmentedJournal.Record in
            let plaintext = entry.record()
            let nonce = AEAD.randomNonce()
            let sealed = try AEAD.seal(plaintext, additionalData: additionalData(UInt64(entry.seq)), nonce: nonce, key: key)
            return .init(type: Self.changeRecordType, sequence: UInt64(entry.seq), payload: nonce + sealed)
        }
        do {
            try journal.append(records)
        } catch let failure as SegmentedJournal.Failure {
            if case .fileSystem(let error) = failure { throw BackupError.fileSystem(error) }
            throw BackupError.journal(failure.description)
        }
    }

    /// Removes segments a retained snapshot covers.
    public func trim(coveredThrough sequence: Int64) throws {
        do { try journal.removeSegments(coveredThrough: UInt64(max(0, sequence))) } catch let failure as SegmentedJournal.Failure {
            throw BackupError.journal(failure.description)
        }
    }

    /// Bytes of the encoded record for `entry` (for the card-wear figure).
    public static func recordBytes(for entry: ChangeEntry) throws -> Int {
        entry.record().count + AEAD.nonceBytes + AEAD.tagBytes + 17
    }

    private func additionalData(_ sequence: UInt64) -> [UInt8] {
        var bytes = Array("satchel change \(layout.device) ".utf8)
        LittleEndian.append(sequence, to: &bytes)
        return bytes
    }

    private func decrypt(_ record: SegmentedJournal.Record) throws -> ChangeEntry {
        guard record.type == Self.changeRecordType || record.type == Self.legacyJSONRecordType, record.payload.count > AEAD.nonceBytes else {
            throw BackupError.journal("record \(record.sequence) has unknown type \(record.type)")
        }
        let nonce = Array(record.payload[0..<AEAD.nonceBytes])
        let plaintext: [UInt8]
        do {
            plaintext = try AEAD.open(Array(record.payload[AEAD.nonceBytes...]), additionalData: additionalData(record.sequence), nonce: nonce, key: key)
        } catch {
            throw BackupError.wrongKey(path: layout.journalDirectory + " (record \(record.sequence))")
        }
        let sequence = Int64(bitPattern: record.sequence)
        let entry: ChangeEntry
        if record.type == Self.legacyJSONRecordType {
            entry = try LegacyJournalPayload.entry(json: String(decoding: plaintext, as: UTF8.self))
        } else {
            do { entry = try ChangeEntry(record: plaintext, seq: sequence) } catch {
                throw BackupError.journal("record \(record.sequence) is damaged: \(error)")
            }
        }
        guard entry.seq == Int64(record.sequence) else { throw BackupError.journal("record \(record.sequence) carries entry \(entry.seq)") }
        return entry
    }
}
