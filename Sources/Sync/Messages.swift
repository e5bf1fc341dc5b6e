public import Field
import Seal

/// Sync messages (docs/protocol.md §5) and their bodies.
public enum MessageType: UInt8, Sendable {
    case hello = 1, welcome, auth, authResult, batch, receipt, pull, table, done, error, bye, download, ack
    /// Provision mode (docs/protocol.md §10): REGISTER, REGISTERED, ESCROW, ESCROWED.
    case register, registered, escrow, escrowed
}

public enum SyncMode: UInt8, Sendable, CaseIterable, Codable {
    case fast = 1, full, initialise, duplicate, upload
    /// A technician registers the device with the hub (`satchel provision`), not a sync.
    case provision

    public var name: String {
        switch self {
        case .fast: return "fast"
        case .full: return "full"
        case .initialise: return "init"
        case .duplicate: return "duplicate"
        case .upload: return "upload"
        case .provision: return "provision"
        }
    }

    public init?(name: String) {
        guard let mode = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = mode
    }
}

public struct Hello: Equatable, Sendable {
    /// 2: BATCH bodies as columns (docs/protocol.md §6) and the second preset dictionary.
    /// 3: document payloads in the binary document codec instead of JSON, and the third
    /// preset dictionary (`SyncDictionary.v3`).
    /// 4: BATCH payloads as columns of the codec's fields (`DocumentColumns`); TABLE columns in their own layouts (`TableColumns`: presence flags, integers scaled
    /// and as values or steps, text as text columns, prices as shares of the list price).
    /// 5: TABLE integers as differences to the rows the device holds (held flags, layout 2),
    /// and ACK ends the session (no BYE after it).
    public static let version: UInt64 = 5
    public var version: UInt64 = Hello.version
    public var device: String
    public var mode: SyncMode
    /// The epoch of the device's id space (docs/protocol.md §4): the hub answers with what it
    /// holds of it (`AuthResult.held`). A trailing field; 1 when absent (a device from before epochs).
    public var epoch: Int64 = 1

    public init(device: String, mode: SyncMode, epoch: Int64 = 1) {
        self.device = device
        self.mode = mode
        self.epoch = epoch
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.varint(version)
        writer.string(device)
        writer.varint(UInt64(mode.rawValue))
        writer.varint(UInt64(max(1, epoch)))
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> Hello {
        var reader = WireReader(bytes)
        let version = try reader.varint()
        let device = try reader.string(limit: 64)
        let raw = try reader.varint()
        guard let mode = SyncMode(rawValue: UInt8(truncatingIfNeeded: raw)), raw <= 255 else { throw WireReader.Failure.tooLarge(what: "mode", value: raw) }
        var hello = Hello(device: device, mode: mode)
        hello.version = version
        if !reader.isAtEnd {
            let epoch = try reader.varint()
            guard epoch >= 1, epoch <= UInt64(Int64.max) else { throw WireReader.Failure.tooLarge(what: "epoch", value: epoch) }
            hello.epoch = Int64(epoch)
        }
        return hello
    }
}

public struct Welcome: Equatable, Sendable {
    public enum Status: UInt64, Sendable {
        case ok = 0, unknownDevice, revoked, unsupportedVersion
        /// The office reported the device lost: it destroys its keys now (docs/protocol.md §10).
        case lost
    }
    public var status: Status
    public var session: [UInt8]
    public var hubTime: Int64

    public init(status: Status, session: [UInt8], hubTime: Int64) {
        self.status = status
        self.session = session
        self.hubTime = hubTime
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.varint(status.rawValue)
        writer.data(session)
        writer.int(hubTime)
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> Welcome {
        var reader = WireReader(bytes)
        let raw = try reader.varint()
        guard let status = Status(rawValue: raw) else { throw WireReader.Failure.tooLarge(what: "welcome status", value: raw) }
        return Welcome(status: status, session: try reader.data(limit: 32), hubTime: try reader.int())
    }
}

/// One acknowledged change from the device's journal, as it travels up: the journal's own entry
/// (Field's `ChangeEntry`), so the device sends what it journalled with no copy into a second
/// type. The payload is the document after the change in the binary document codec
/// (docs/protocol.md §6), which Sync carries without reading.
public typealias SyncChange = ChangeEntry

/// BATCH (docs/protocol.md §6): the change records as columns. Sequences and instants as
/// differences, entity and action names through a small table, change and entity ids as
/// prefix + number, and the document payloads (the device's binary document codec, as
/// journaled) taken apart into one column per field of the codec's layout (`DocumentColumns`),
/// rebuilt byte for byte on the other side.
public struct Batch: Equatable, Sendable {
    public var id: String
    public var changes: [SyncChange]
    public static let maxChanges = 10_000
    /// The largest payload the hub takes (the document codec's own bound).
    public static let maxPayloadBytes = 1 << 20

    static let idBytes = 64
    static let maxNames = 256
    static let nameBytes = 64

    public init(id: String, changes: [SyncChange]) {
        self.id = id
        self.changes = changes
    }

    /// Cuts changes into batches small enough for one frame (a frame carries at most 64 KiB
    /// compressed; the payloads' raw size keeps each batch well under that). Ids are
    /// `<prefix>-<first seq>-<last seq>`, the same for the same changes, so a retried upload
    /// sends batches the hub recognises. The device's prefix carries the epoch of its id space
    /// (`<device>` in epoch 1, `<device>~<epoch>` after a restore: `Field.ClientID.prefix`): a
    /// restored database numbers its changes again from where the card stood, and without the
    /// epoch its batches would reuse ids the hub already holds for other changes.
    public static func chunks(_ changes: [SyncChange], idPrefix: String, maxBytes: Int = 48 * 1024) -> [Batch] {
        var batches: [Batch] = []
        var current: [SyncChange] = []
        var bytes = 0
        func close() {
            guard let first = current.first, let last = current.last else { return }
            batches.append(Batch(id: "\(idPrefix)-\(first.seq)-\(last.seq)", changes: current))
            current = []
            bytes = 0
        }
        for change in changes {
            let size = change.payload.count + change.changeId.utf8.count + change.entityId.utf8.count + 24
            if !current.isEmpty && (bytes + size > maxBytes || current.count >= maxChanges) { close() }
            current.append(change)
            bytes += size
        }
        close()
        return batches
    }

    public func encode() -> [UInt8] {
        var out = DocumentColumns.Output()
        encode(into: &out, payloadsWhole: false)
        return out.writer.bytes
    }

    /// The envelope's columns, then the payloads: whole, one after another (the canonical
    /// form `contentHash` covers), or as `DocumentColumns` lay them out (what travels).
    func encode(into out: inout DocumentColumns.Output, payloadsWhole: Bool) {
        out.column("batch id and count") { writer in
            writer.string(id)
            writer.varint(UInt64(changes.count))
        }
        var names: [String] = [], nameIndex: [ByteKey: Int] = [:]
        func index(_ name: String) -> UInt64 {
            if let found = nameIndex[ByteKey(name)] { return UInt64(found) }
            nameIndex[ByteKey(name)] = names.count
            names.append(name)
            return UInt64(names.count - 1)
        }
        let entities = changes.map { index($0.entity) }, actions = changes.map { index($0.action) }
        out.column("name table") { writer in
            writer.varint(UInt64(names.count))
            for name in names { Self.writeName(name, into: &writer) }
        }
        out.column("change seq") { writer in for step in steps(changes.map(\.seq)) { writer.int(step) } }
        out.column("change at") { writer in for step in steps(changes.map(\.at)) { writer.int(step) } }
        out.column("change entity") { writer in for value in entities { writer.varint(value) } }
        out.column("change action") { writer in for value in actions { writer.varint(value) } }
        out.column("change id") { TextColumn.write(changes.map(\.changeId), into: &$0) }
        out.column("change entity id") { TextColumn.write(changes.map(\.entityId), into: &$0) }
        if payloadsWhole {
            out.column("payloads") { writer in for change in changes { writer.data(change.payload) } }
        } else {
            DocumentColumns.write(changes.map(\.payload), entities: changes.map(\.entity), context: .init(ints: [changes.map(\.at)], texts: [changes.map(\.entityId)]), into: &out)
        }
    }

    /// Each column of `encode()`'s bytes by name, for the per-column breakdown
    /// (`satchel-sim bench sync --columns`): which bytes of a body are which field's.
    public func columnSpans() -> [(name: String, range: Range<Int>)] {
        var out = DocumentColumns.Output()
        out.recording = true
        encode(into: &out, payloadsWhole: false)
        return out.spans
    }

    /// BLAKE2b-256 of the batch's canonical bytes: the envelope's columns and every payload
    /// whole (version 3's body), a function of the id and the changes alone and not of how
    /// the columns of version 4 chose to code them. The hub keeps it with the receipt, so a
    /// known batch id that comes back with other content is told apart from a replay, and a
    /// batch retried across the version 4 upgrade still matches the receipt kept for it.
    public var contentHash: [UInt8] {
        var out = DocumentColumns.Output()
        encode(into: &out, payloadsWhole: true)
        return Blake2b.hash(out.writer.bytes, outputLength: 32)
    }

    /// A name of the name table: 0 and the name, or `k + 1` for the registry's k-th name
    /// (`SyncDictionary.documentNames`), which both sides know.
    static func writeName(_ name: String, into writer: inout WireWriter) {
        if let known = SyncDictionary.documentNames.firstIndex(where: { ByteKey($0) == ByteKey(name) }) {
            writer.varint(UInt64(known) + 1)
        } else {
            writer.varint(0)
            writer.string(name)
        }
    }

    static func readName(from reader: inout WireReader) throws(WireReader.Failure) -> String {
        let code = try reader.varint()
        guard code > 0 else { return try reader.string(limit: nameBytes) }
        guard code <= UInt64(SyncDictionary.documentNames.count) else { throw .tooLarge(what: "known name", value: code) }
        return SyncDictionary.documentNames[Int(code - 1)]
    }

    /// Each payload is bounded by `maxPayloadBytes` and by what is left of the body, so what a
    /// batch makes the hub hold is bounded by its size.
    public static func decode(_ bytes: [UInt8]) throws -> Batch {
        var reader = WireReader(bytes)
        let id = try reader.string(limit: 128)
        let count = try reader.count("batch size", limit: maxChanges)
        let nameCount = try reader.count("name table size", limit: maxNames)
        var names: [String] = []
        for _ in 0..<nameCount { names.append(try readName(from: &reader)) }
        func name(_ index: UInt64) throws(WireReader.Failure) -> String {
            guard index < UInt64(names.count) else { throw .tooLarge(what: "name index", value: index) }
            return names[Int(index)]
        }
        func deltas() throws(WireReader.Failure) -> [Int64] {
            var values: [Int64] = [], previous: Int64 = 0
            for _ in 0..<count {
                previous &+= try reader.int()
                values.append(previous)
            }
            return values
        }
        let seqs = try deltas(), ats = try deltas()
        var entities: [String] = [], actions: [String] = []
        for _ in 0..<count { entities.append(try name(try reader.varint())) }
        for _ in 0..<count { actions.append(try name(try reader.varint())) }
        let ids = try TextColumn.read(count, maxBytes: idBytes, from: &reader)
        let entityIDs = try TextColumn.read(count, maxBytes: idBytes, from: &reader)
        let payloads = try DocumentColumns.read(count, entities: entities, context: .init(ints: [ats], texts: [entityIDs]), from: &reader)
        try reader.finish()
        let changes = (0..<count).map {
            SyncChange(seq: seqs[$0], changeId: ids[$0], at: ats[$0], entity: entities[$0], entityId: entityIDs[$0], action: actions[$0], payload: payloads[$0])
        }
        return Batch(id: id, changes: changes)
    }
}

public struct Receipt: Equatable, Sendable, Codable {
    public var batchId: String
    public var stored: Int
    public var duplicates: Int
    public var throughSeq: Int64

    public init(batchId: String, stored: Int, duplicates: Int, throughSeq: Int64) {
        self.batchId = batchId; self.stored = stored; self.duplicates = duplicates; self.throughSeq = throughSeq
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.string(batchId)
        writer.varint(UInt64(stored))
        writer.varint(UInt64(duplicates))
        writer.int(throughSeq)
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> Receipt {
        var reader = WireReader(bytes)
        return Receipt(batchId: try reader.string(limit: 128), stored: try reader.count("stored", limit: Batch.maxChanges),
                       duplicates: try reader.count("duplicates", limit: Batch.maxChanges), throughSeq: try reader.int())
    }
}

/// ERROR codes (docs/protocol.md §9).
public enum SyncErrorCode: UInt64, Sendable {
    case protocolVersion = 1, unknownDevice, revoked, wrongPassword, locked, malformed, batchRefused, internalError
    /// Device → hub: a TABLE frame held a row the device's schema refuses (the message names it).
    case rowRefused
    /// A batch id (or change id) the hub holds with other content: refused whole, never answered
    /// with the stored receipt.
    case batchConflict
    /// The office reported the device lost while the session ran: what was acknowledged stays
    /// acknowledged; the device destroys its keys.
    case deviceLost
    /// Provisioning refused: the technician credential, the rep, or the identity (the message says which).
    case registrationRefused
    /// The hub is at its session cap; the message ends `retry after N s` (docs/protocol.md §9).
    case hubBusy
}

public struct ErrorMessage: Equatable, Sendable {
    public var code: SyncErrorCode
    public var message: String

    public init(code: SyncErrorCode, message: String) {
        self.code = code
        self.message = message
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.varint(code.rawValue)
        writer.string(message)
        return writer.bytes
    }

    /// `text` cut at a character boundary to what `decode` accepts (1,024 bytes).
    public static func fitting(_ text: String) -> String {
        var out = "", bytes = 0
        for character in text {
            bytes += character.utf8.count
            if bytes > 1024 { break }
            out.append(character)
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> ErrorMessage {
        var reader = WireReader(bytes)
        let raw = try reader.varint()
        return ErrorMessage(code: SyncErrorCode(rawValue: raw) ?? .internalError, message: try reader.string(limit: 1024))
    }
}

extension SyncDictionary {
    /// Protocol version 3: version 2's words, then what a BATCH of binary documents is made of:
    /// every entity and action name in the bytes the name table carries them in (payment_void,
    /// voided, cancelled and line_removed, missing from version 2, among them), and the values
    /// that recur inside documents in the codec's form (a varint length, then the text).
    public static let v3: [UInt8] = v2 + documentWords

    /// Every entity and action of Field's `DocumentKind` (a test holds the two lists equal).
    /// Since version 4 a BATCH's name table names these by position: append, never reorder.
    public static let documentNames = [
        "order", "created", "confirmed", "lines_added", "line_removed", "cancelled", "sent", "accepted", "rejected",
        "invoice_requested", "settled", "visit", "recorded", "payment", "collected", "payment_void", "voided",
        "display_request", "requested", "complaint", "filed", "quote", "maintenance",
    ]

    static let documentValues = ["PLN", "BGN", "RUB", "EUR", "customer", "dealer", "promo", "pcs", "box", "m2", "PN-", "KP/", "warehouse", "open"]

    static var documentWords: [UInt8] {
        var writer = WireWriter()
        for value in documentValues { writer.string(value) }
        for name in documentNames { writer.string(name) }
        return writer.bytes
    }
}
