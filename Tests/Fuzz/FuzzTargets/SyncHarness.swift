import Deflate
import Field
import Seal
import Store
import Sync
import Transport
import SatchelTesting

enum SyncHarness {
    static let catalogue = Catalogue(parts: (0..<50).map { "PN-\(10_000 + $0)" })

    /// What the sync decoders document: the wire reader's refusals and the TABLE frame's own.
    static func documented(_ error: any Error) -> Bool { error is WireReader.Failure || error is TableFrame.Failure || error is SyncChannel.Failure }

    /// The rows a fuzzed device holds: one under every key, its integer columns a figure that
    /// follows from the key (so held differences have something to add to), NULL elsewhere.
    static func heldRows(_ table: WorkingSetTables.Table, keys: [WorkingSetRow]) -> [WorkingSetRow?] {
        keys.map { key in
            var row = key + WorkingSetRow(repeating: .null, count: max(0, table.columns.count - key.count))
            let spread = Int64(table.key(of: key).reduce(0) { ($0 * 31 + Int($1)) % 997 })
            for index in table.heldColumns { row[index] = .integer(1000 * spread + Int64(index)) }
            return row
        }
    }

    /// Input: catalogue choice (1 byte: even = the device's catalogue, odd = none) | TABLE body.
    static func table(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        var control = ControlBytes(input)
        let catalogue = control.byte() & 1 == 0 ? Self.catalogue : nil
        let body = Array(control.rest)
        return try refusing(.syncTable, documented: documented) {
            let frame = try TableFrame.decode(body, catalogue: catalogue, heldRows: heldRows)
            try require(frame.rows.count <= TableFrame.maxRows, .syncTable, "\(frame.rows.count) rows over the limit")
            for row in frame.rows {
                try require(row.count == frame.columns.count, .syncTable, "a row of \(row.count) values in a \(frame.columns.count)-column frame")
            }
            // What the device applies is what the hub meant: the frame re-encodes to the same frame.
            let again = try TableFrame.decode(try frame.encode(catalogue: catalogue), catalogue: catalogue, heldRows: heldRows)
            try require(again == frame, .syncTable, "an accepted frame does not survive encode and decode")
        }
    }

    /// Input: a BATCH body.
    static func batch(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        return try refusing(.syncBatch, documented: documented) {
            let batch = try Batch.decode(input)
            try require(batch.changes.count <= Batch.maxChanges, .syncBatch, "\(batch.changes.count) changes over the limit")
            // The hub stores what the device sent, byte for byte: re-encoding changes nothing.
            let again = try Batch.decode(batch.encode())
            try require(again == batch, .syncBatch, "an accepted batch does not survive encode and decode")
        }
    }

    /// Input: message choice (1 byte) | body.
    static func messages(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        var control = ControlBytes(input)
        let kind = control.byte() % 10
        let body = Array(control.rest)
        return try refusing(.syncMessages, documented: documented) {
            switch kind {
            case 0: let m = try Hello.decode(body); try roundTrip(m, try Hello.decode(m.encode()))
            case 1: let m = try Welcome.decode(body); try roundTrip(m, try Welcome.decode(m.encode()))
            case 2: let m = try Receipt.decode(body); try roundTrip(m, try Receipt.decode(m.encode()))
            case 3: let m = try ErrorMessage.decode(body); try roundTrip(m, try ErrorMessage.decode(m.encode()))
            case 4: let m = try Pull.decode(body); try roundTrip(m, try Pull.decode(m.encode()))
            case 5: let m = try DownloadHeader.decode(body); try roundTrip(m, try DownloadHeader.decode(m.encode()))
            case 6: let m = try DownloadDone.decode(body); try roundTrip(m, try DownloadDone.decode(m.encode()))
            case 7: let m = try DownloadAck.decode(body); try roundTrip(m, try DownloadAck.decode(m.encode()))
            // A frame of several messages (protocol 5), after inflate.
            case 9: let m = try SyncChannel.unpack(body); try roundTrip(m, try SyncChannel.unpack(SyncChannel.pack(m)))
            default: let m = try AuthResult.decode(body); try roundTrip(m, try AuthResult.decode(m.encode()))
            }
        }
    }

    static func roundTrip<Message: Equatable>(_ decoded: Message, _ again: Message) throws(FuzzFinding) {
        try require(decoded == again, .syncMessages, "\(Message.self) does not survive encode and decode")
    }

    // MARK: Frames and the handshake

    /// Fixed keys, so an input means the same thing in every run.
    static let hubKey = try! X25519.KeyPair(secretKey: SecretBytes([UInt8](repeating: 0x48, count: 32)))
    static let deviceKey = try! X25519.KeyPair(secretKey: SecretBytes([UInt8](repeating: 0x44, count: 32)))

    /// Input: side (1 byte: even = the hub reading a device's first message, odd = the device
    /// reading the hub's answer) | the bytes on the link (2-byte length | frame, ...).
    static func handshake(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        var control = ControlBytes(input)
        let hubSide = control.byte() & 1 == 0
        let port = ScriptedPort(control.rest, readSize: 4096)
        return try refusing(.syncHandshake, documented: { $0 is SyncChannel.Failure }) {
            if hubSide {
                _ = try SyncChannel.accept(port, hubKey: hubKey, dictionary: SyncDictionary.v3, deadline: .after(seconds: 1)) { _, hello in
                    _ = try? Hello.decode(hello)
                    return Welcome(status: .ok, session: [UInt8](repeating: 1, count: 16), hubTime: 1_795_428_000_000).encode()
                }
            } else {
                _ = try SyncChannel.connect(port, deviceKey: deviceKey, hubKey: hubKey.publicKey, hello: Hello(device: "WAW07", mode: .full).encode(),
                                            dictionary: SyncDictionary.v3, deadline: .after(seconds: 1))
            }
        }
    }

    // MARK: Seeds

    static func tableSeeds() throws -> [(name: String, bytes: [UInt8])] {
        let stock = WorkingSetTables.named("stock")!, customers = WorkingSetTables.named("customers")!
        let stockFrame = TableFrame(table: stock, phase: .upsert, firstPosition: 7, rows: (0..<12).map {
            [.text("van:WAW07"), .text("PN-\(10_000 + $0 * 2)"), .integer(Int64($0 * 3 - 5))]
        })
        let offCatalogue = TableFrame(table: stock, phase: .upsert, firstPosition: 0, rows: [
            [.text("van:SOF02"), .text("ЛП-25кг"), .integer(4)], [.text("van:SOF02"), .text("PN-10001"), .integer(-1)],
        ])
        let customerFrame = TableFrame(table: customers, phase: .upsert, firstPosition: 0, rows: (0..<4).map {
            [.text("CPL\($0)"), .text("Sklep „Żabka” — Магазин \($0)"), .text("ул. Витоша \($0)"), $0 % 2 == 0 ? .null : .text("PL-MAZ"), .text("PLN"),
             .integer(500_000), .integer(-12), .integer(0), .integer(3), .integer(1_795_000_000_000), .text("strict"), .text("customer"), .text("Pyta o rabat")]
        })
        let purge = TableFrame(table: stock, phase: .purge, firstPosition: 3, rows: [[.text("van:WAW07"), .text("PN-99")]])
        // Protocol 5's held differences: evening counts a little off the 1002 the device holds,
        // one row it does not hold (flag 0).
        let eveningKeys: [WorkingSetRow] = (0..<12).map { [.text("warehouse"), .text("PN-\(10_000 + $0 * 3)")] }
        var eveningHeld = heldRows(stock, keys: eveningKeys)
        let evening = zip(eveningKeys, eveningHeld).enumerated().map { index, pair -> WorkingSetRow in
            guard case .integer(let count) = pair.1![2] else { return pair.0 + [.integer(0)] }
            return pair.0 + [.integer(count + Int64(index % 5) - 2)]
        }
        eveningHeld[5] = nil
        let heldFrame = TableFrame(table: stock, phase: .upsert, firstPosition: 40, rows: evening, held: eveningHeld)
        var seeds = [
            (name: "stock-upsert-catalogue", bytes: [0] + (try stockFrame.encode(catalogue: catalogue))),
            (name: "stock-upsert-text-parts", bytes: [1] + (try offCatalogue.encode(catalogue: nil))),
            (name: "customers-upsert", bytes: [0] + (try customerFrame.encode(catalogue: catalogue))),
            (name: "stock-purge", bytes: [0] + (try purge.encode(catalogue: nil))),
            (name: "stock-upsert-held", bytes: [0] + (try heldFrame.encode(catalogue: catalogue))),
        ]
        // One empty frame of every table, so each table's columns are a mutation away.
        for id in WorkingSetTables.byID.keys.sorted() {
            let table = WorkingSetTables.byID[id]!
            seeds.append((name: "empty-\(table.name)", bytes: [0] + (try TableFrame(table: table, phase: .upsert, firstPosition: 0, rows: []).encode(catalogue: catalogue))))
        }
        return seeds
    }

    static let changes = (1...6).map { (index: Int) -> SyncChange in
        let id = "WAW07-o\(index)"
        let document: Document = index % 2 == 0 ? .order(SampleDocuments.order(id, lines: 3)) : .visit(SampleDocuments.visit(id))
        return SyncChange(seq: Int64(index), changeId: "WAW07-\(index)", at: 1_795_428_000_000 + Int64(index) * 60_000, entity: document.kind.entity,
                          entityId: id, action: index % 2 == 0 ? "confirmed" : "recorded", payload: SampleDocuments.payload(document))
    }

    static func batchSeeds() -> [(name: String, bytes: [UInt8])] {
        let mixed = [
            SyncChange(seq: 41, changeId: "SOF02-41", at: 1_795_428_000_000, entity: "payment", entityId: "SOF02-p9", action: "collected",
                       payload: SampleDocuments.payload(.payment(SampleDocuments.payment("SOF02-p9")))),
            SyncChange(seq: 42, changeId: "SOF02-42", at: 1_795_428_060_000, entity: "complaint", entityId: "SOF02-c1", action: "filed",
                       payload: SampleDocuments.payload(.complaint(SampleDocuments.complaint("SOF02-c1")))),
            SyncChange(seq: 43, changeId: "SOF02-43", at: 1_795_428_120_000, entity: "visit", entityId: "SOF02-v3", action: "recorded",
                       payload: Array("not a document at all — текст".utf8)),
        ]
        // One order drafted, its lines added, then confirmed: later versions copy the earlier one's lines.
        let versions = [(OrderState.draft, 2, "created"), (.draft, 4, "lines_added"), (.confirmed, 4, "confirmed")].enumerated().map { index, version in
            SyncChange(seq: Int64(50 + index), changeId: "WAW07-\(50 + index)", at: 1_795_428_000_000 + Int64(index) * 240_000, entity: "order",
                       entityId: "WAW07-o50", action: version.2,
                       payload: SampleDocuments.payload(.order(SampleDocuments.order("WAW07-o50", state: version.0, lines: version.1))))
        }
        return [
            (name: "orders-and-visits", bytes: Batch(id: "WAW07-1-6", changes: changes).encode()),
            (name: "draft-versions", bytes: Batch(id: "WAW07-50-52", changes: versions).encode()),
            (name: "mixed-forms", bytes: Batch(id: "SOF02-41-43", changes: mixed).encode()),
            (name: "empty", bytes: Batch(id: "WAW07-0-0", changes: []).encode()),
        ]
    }

    static func messageSeeds() -> [(name: String, bytes: [UInt8])] {
        [
            (name: "hello", bytes: [0] + Hello(device: "WAW07", mode: .full).encode()),
            (name: "welcome", bytes: [1] + Welcome(status: .ok, session: Array(repeating: 7, count: 16), hubTime: 1_795_428_000_000).encode()),
            (name: "receipt", bytes: [2] + Receipt(batchId: "WAW07-1-6", stored: 6, duplicates: 0, throughSeq: 6).encode()),
            (name: "error", bytes: [3] + ErrorMessage(code: .malformed, message: "zły komunikat — лошо съобщение").encode()),
            (name: "pull", bytes: [4] + Pull(lastPull: "WAW07-abc", applied: 120, complete: false, reset: false, budgets: [5: 3_000, 3: 6_000]).encode()),
            (name: "download", bytes: [5] + DownloadHeader(pull: "WAW07-abc", rows: 4_000, reset: true).encode()),
            (name: "done", bytes: [6] + DownloadDone(pull: "WAW07-abc", tables: [TableChecksum(table: 5, rows: 10, sum: 0xDEAD_BEEF)]).encode()),
            (name: "ack", bytes: [7] + DownloadAck(pull: "WAW07-abc", applied: 4_000).encode()),
            (name: "auth-result", bytes: [8] + AuthResult(status: .wrongPassword, attemptsLeft: 3).encode()),
            // Protocol 5: DONE with the tables the download wrote and the others summed; a frame of several messages.
            (name: "done-listed-and-others", bytes: [6] + DownloadDone(pull: "WAW07-abc", tables: [TableChecksum(table: 7, rows: 300, sum: 0xFEED), TableChecksum(table: 8, rows: 1_000, sum: 0xBEEF)],
                                                                      others: TableChecksum(table: 0, rows: 41_000, sum: 0x0123_4567_89AB_CDEF)).encode()),
            (name: "several-messages", bytes: [9] + SyncChannel.pack([
                .init(type: MessageType.authResult.rawValue, body: AuthResult(status: .ok, attemptsLeft: 5).encode()),
                .init(type: MessageType.receipt.rawValue, body: Receipt(batchId: "WAW07-1-6", stored: 6, duplicates: 0, throughSeq: 6).encode()),
                .init(type: MessageType.download.rawValue, body: DownloadHeader(pull: "WAW07-abc", rows: 2, reset: false).encode()),
                .init(type: MessageType.bye.rawValue, body: []),
            ])),
        ]
    }

    /// Real handshake messages: a device's first message (for the hub side) and the hub's answer
    /// to it (for the device side), captured from an in-process handshake with the fixed keys.
    static func handshakeSeeds() throws -> [(name: String, bytes: [UInt8])] {
        let recorder = RecordingPort()
        _ = try? SyncChannel.connect(recorder, deviceKey: deviceKey, hubKey: hubKey.publicKey, hello: Hello(device: "WAW07", mode: .full).encode(),
                                     dictionary: SyncDictionary.v3, deadline: .after(seconds: 1))
        let first = recorder.written
        let hubRecorder = RecordingPort(reading: first)
        _ = try? SyncChannel.accept(hubRecorder, hubKey: hubKey, dictionary: SyncDictionary.v3, deadline: .after(seconds: 1)) { _, _ in
            Welcome(status: .ok, session: [UInt8](repeating: 1, count: 16), hubTime: 1_795_428_000_000).encode()
        }
        return [(name: "device-first-message", bytes: [0] + first), (name: "refused-hub-answer-to-another-ephemeral", bytes: [1] + hubRecorder.written)]
    }
}

/// Keeps what is written; reads from a script, then times out.
final class RecordingPort: ByteStream {
    private(set) var written: [UInt8] = []
    private var script: ArraySlice<UInt8>
    init(reading script: [UInt8] = []) { self.script = script[...] }
    func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) { written += bytes }
    func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] {
        guard !script.isEmpty else { throw .timedOut(what: "recording port has nothing to read") }
        let chunk = Array(script.prefix(maxCount))
        script = script.dropFirst(chunk.count)
        return chunk
    }
    func close() {}
}
