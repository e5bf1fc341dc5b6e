public import Seal
public import Transport

/// The words sync payloads are made of, preset into both deflate streams so even the first
/// frame of a session compresses. The dictionary is part of the protocol: both sides must use
/// the same one, so a new dictionary comes with a new `Hello.version`.
public enum SyncDictionary {
    /// Protocol version 2: the JSON vocabulary (for payloads that travel as JSON text), then
    /// entity and action names and the documents' key lists in the bytes a BATCH body carries
    /// them in (varint lengths and counts, docs/protocol.md §6), so the body's name and shape
    /// tables are mostly one back-reference each. Last, because deflate reaches nearer bytes
    /// with shorter distance codes.
    public static let v2: [UInt8] = vocabulary + batchTables

    static let vocabulary: [UInt8] = Array("""
        {"amount_minor":,"approval":"none","pending","at":,"base_quantity":,"change_id":"collected_at":,"confirmed_at":,\
        "created_at":,"currency":"PLN","BGN","RUB","EUR","customer_id":"entity_id":"id":"line_no":,"lines":[{"note":"",\
        "part_number":"PN-","price_level":"customer","dealer","promo","quantity":,"state":"confirmed","draft","sent",\
        "total_minor":,"unit":"pcs","box","m2","unit_price_minor":,"amount_minor":,"hold_reason":null,"outcome":"order",\
        "no_order","method":"cash","card","transfer","receipt":"KP/","category":"damaged","description":"type_code":\
        "width_cm":,"height_cm":,"materials":[],"order visit payment display_request complaint quote maintenance \
        created confirmed lines_added recorded collected requested filed
        """.utf8)

    static let names = ["order", "confirmed", "draft", "lines_added", "sent", "accepted", "rejected", "invoice_requested", "settled",
                        "visit", "recorded", "payment", "collected", "display_request", "requested", "complaint", "filed",
                        "quote", "created", "maintenance"]

    /// Key lists as the documents encode them (sorted), rarer documents first. The order comes
    /// both without `hold_reason` (the common case) and with it.
    static let shapes: [[String]] = [
        ["at", "equipment_id", "id", "kind", "note"],
        ["amount_minor", "line_no", "part_number", "quantity", "unit_price_minor"],
        ["approval", "at", "currency", "customer_id", "discount_basis_points", "hold_reason", "id", "lines", "total_minor"],
        ["at", "category", "customer_id", "description", "id", "order_ref", "part_number", "state"],
        ["location", "part_number", "quantity", "short_quantity"],
        ["at", "customer_id", "depth_cm", "height_cm", "id", "materials", "note", "state", "type_code", "width_cm"],
        ["approval", "confirmed_at", "created_at", "currency", "customer_id", "id", "lines", "note", "price_level", "state", "total_minor"],
        ["amount_minor", "base_quantity", "line_no", "part_number", "quantity", "unit", "unit_price_minor"],
        ["approval", "confirmed_at", "created_at", "currency", "customer_id", "hold_reason", "id", "lines", "note", "price_level", "state",
         "total_minor"],
        ["at", "customer_id", "id", "note", "outcome"],
        ["amount_minor", "collected_at", "currency", "customer_id", "id", "method", "receipt"],
    ]

    static var batchTables: [UInt8] {
        var writer = WireWriter()
        for name in names { writer.string(name) }
        for keys in shapes {
            writer.varint(UInt64(keys.count))
            for key in keys { writer.string(key) }
        }
        return writer.bytes
    }
}

/// AUTH_RESULT body: status varint (0 ok, 1 wrong password, 2 locked) | attempts left varint,
/// then, when ok, what the hub holds of the device (`HubHolding`): highest epoch varint | highest
/// sequence in the device's epoch (as HELLO named it) int.
public struct AuthResult: Equatable, Sendable {
    public enum Status: UInt64, Sendable { case ok = 0, wrongPassword, locked }
    public var status: Status
    public var attemptsLeft: Int
    public var held: HubHolding?
    /// When ok and the hub keeps devices' lifecycle: the device's signed assignment (role, offline
    /// policy, the hub's time now). A trailing field after `held`.
    public var assignment: SignedAssignment?

    public init(status: Status, attemptsLeft: Int, held: HubHolding? = nil, assignment: SignedAssignment? = nil) {
        self.status = status
        self.attemptsLeft = attemptsLeft
        self.held = held
        self.assignment = assignment
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.varint(status.rawValue)
        writer.varint(UInt64(attemptsLeft))
        if let held {
            writer.varint(UInt64(max(1, held.highestEpoch)))
            writer.int(held.sequenceInEpoch)
            if let assignment { writer.data(assignment.encode()) }
        }
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> AuthResult {
        var reader = WireReader(bytes)
        let raw = try reader.varint()
        guard let status = Status(rawValue: raw) else { throw WireReader.Failure.tooLarge(what: "auth status", value: raw) }
        var result = AuthResult(status: status, attemptsLeft: try reader.count("attempts", limit: 100))
        if !reader.isAtEnd {
            let epoch = try reader.varint()
            guard epoch >= 1, epoch <= UInt64(Int64.max) else { throw WireReader.Failure.tooLarge(what: "epoch", value: epoch) }
            result.held = HubHolding(highestEpoch: Int64(epoch), sequenceInEpoch: try reader.int())
            if !reader.isAtEnd { result.assignment = try SignedAssignment.decode(try reader.data(limit: 1024)) }
        }
        return result
    }
}

/// The hub's high-water mark for a device: the highest epoch of its id space the hub holds
/// changes of, and the highest sequence it holds in the epoch the device said it is in (0: none).
public struct HubHolding: Equatable, Sendable, Codable {
    public var highestEpoch: Int64
    public var sequenceInEpoch: Int64
    public init(highestEpoch: Int64, sequenceInEpoch: Int64) {
        self.highestEpoch = highestEpoch
        self.sequenceInEpoch = sequenceInEpoch
    }
    enum CodingKeys: String, CodingKey {
        case highestEpoch = "highest_epoch"
        case sequenceInEpoch = "sequence_in_epoch"
    }
}

/// A message the session did not expect at that point: the hub runs another protocol version,
/// or is broken. Each case names what came and what the session waited for.
public enum UnexpectedMessage: Equatable, Sendable, CustomStringConvertible {
    /// A RECEIPT for another batch than the one sent.
    case receiptForOtherBatch(received: String, sent: String)
    /// A DONE naming another pull than the download's header.
    case doneForOtherPull(received: String, downloading: String)
    /// A message of `type` inside a download (TABLE, BATCH, DONE or ERROR are what come there).
    case duringDownload(type: UInt8)
    /// A message of `type` where `expected` was due.
    case wrongType(UInt8, expected: MessageType)

    public var description: String {
        switch self {
        case .receiptForOtherBatch(let received, let sent): return "receipt for batch \(received) instead of \(sent)"
        case .doneForOtherPull(let received, let downloading): return "DONE for pull \(received) inside pull \(downloading)"
        case .duringDownload(let type): return "message type \(type) during a download"
        case .wrongType(let type, let expected): return "message type \(type), expected \(expected) (\(expected.rawValue))"
        }
    }
}

public enum SyncFailure: Error, Equatable, CustomStringConvertible {
    case refused(Welcome.Status)
    case authentication(AuthResult)
    /// The hub's ERROR message: its code and its text (the hub's words, shown as they came).
    case hubError(code: SyncErrorCode, message: String)
    case unexpected(UnexpectedMessage)
    /// A pull was asked for without a sink for the download (a caller's bug, found before any byte is read).
    case pullWithoutSink

    public var description: String {
        switch self {
        case .refused(.unknownDevice): return "the hub does not know this device: a technician registers it (satchel-hub device add)"
        case .refused(.revoked): return "the hub has revoked this device; call the office"
        case .refused(let status): return "the hub refused the session (\(status))"
        case .authentication(let result) where result.status == .locked:
            return "sync password locked after too many wrong attempts; call the office"
        case .authentication(let result): return "wrong sync password (\(result.attemptsLeft) attempts left before it locks)"
        case .hubError(let code, let message): return "hub error \(code.rawValue): \(message)"
        case .unexpected(let what): return "unexpected message from the hub: \(what); update satchel or the hub so both speak the same protocol"
        case .pullWithoutSink: return "a pull needs somewhere to put the download (this satchel is broken: report it)"
        }
    }
}

/// What one sync session did, for the device's record and the benchmark.
public struct SyncResult: Equatable, Sendable {
    public var receipt: Receipt?
    public var bytesSent: Int
    public var bytesReceived: Int
    /// Round trips after the handshake (the handshake itself is one more).
    public var roundTrips: Int
    /// The download this session received, if any: its id, rows applied, and the tables whose
    /// checksum did not match (the next pull starts the working set over).
    public var pull: String?
    public var downloaded: Int = 0
    public var mismatched: [String] = []
    /// Documents copied down from the device this one replaces (duplicate mode).
    public var documents: Int = 0
    /// The largest frame received, header included.
    public var largestFrame: Int = 0
    /// Bytes received per message type (`SyncChannel.bytesReceivedByType`); the handshake's are
    /// `bytesReceived` minus their sum.
    public var bytesReceivedByType: [UInt8: Int] = [:]
    /// The hub's signed assignment of the device, when it sent one (`AuthResult.assignment`).
    public var assignment: SignedAssignment? = nil
    /// What the hub held of this device when the session began.
    public var held: HubHolding?
}

public typealias FastSyncResult = SyncResult

/// A sink's refusal of a frame that the hub should hear about (an ERROR with code
/// `rowRefused` goes up before the error ends the session).
public protocol DownloadRefusal: Error, CustomStringConvertible {}

/// Where a download lands on the device. Each TABLE frame is applied whole, together with the
/// count of plan rows applied, so a dropped link resumes after the last applied frame.
public protocol DownloadSink {
    /// A new plan starts (after `reset`, the device clears its working set first).
    func begin(_ header: DownloadHeader) throws
    /// The device's product list as it stands now (frames refer to parts by position in it).
    func catalogue() throws -> Catalogue
    func apply(_ frame: TableFrame) throws
    /// Compares every table with the hub's checksum; returns the names that differ.
    func finish(_ done: DownloadDone) throws -> [String]
    /// Documents of the device this one replaces (duplicate mode), kept as history without
    /// entering this device's own journal. Returns how many were stored.
    func documents(_ batch: Batch) throws -> Int
    /// The rows the device holds under `keys` (key values, in the table's key order), nil for
    /// a key it holds no row under: what a frame's held differences add to (protocol 5).
    func heldRows(_ table: WorkingSetTables.Table, keys: [WorkingSetRow]) throws -> [WorkingSetRow?]
    /// A frame's held rows did not add up to the rows the hub meant (the device's working set is
    /// not what the hub's shadow says): the next pull asks to start the working set over.
    func heldRowsDiffer() throws
}

extension DownloadSink {
    /// A sink that keeps no working set holds nothing: a frame of held differences is refused.
    public func heldRows(_ table: WorkingSetTables.Table, keys: [WorkingSetRow]) throws -> [WorkingSetRow?] { keys.map { _ in nil } }
    public func heldRowsDiffer() throws {}
}

/// The device's side of a session (docs/protocol.md §7): handshake, then AUTH, BATCH and PULL
/// (or BYE) pipelined in one flight; the hub answers AUTH_RESULT, RECEIPT and the download in
/// one flight back; the device closes with BYE, or after a download with ACK (which ends the
/// session since protocol 5), neither answered.
public enum SyncClient {
    public static func run(_ stream: any ByteStream, deviceKey: X25519.KeyPair, hubKey: [UInt8], device: String, password: String,
                           mode: SyncMode = .fast, batch: Batch?, pull: Pull? = nil, sink: (any DownloadSink)? = nil,
                           deadline: Deadline) throws -> SyncResult {
        try run(stream, deviceKey: deviceKey, hubKey: hubKey, device: device, password: password, mode: mode,
                batches: batch.map { [$0] } ?? [], pull: pull, sink: sink, deadline: deadline)
    }

    /// `batches` go up in order in the same flight; each gets its RECEIPT. The result's
    /// `receipt` sums them (stored, duplicates) and names the last batch and the highest sequence.
    /// `reached` hears the session's phases as they complete (`.handshakeDone` to `.verified`;
    /// `.applied` after every TABLE frame): `satchel sync --json` times them.
    public static func run(_ stream: any ByteStream, deviceKey: X25519.KeyPair, hubKey: [UInt8], device: String, password: String,
                           mode: SyncMode = .fast, epoch: Int64 = 1, batches: [Batch], pull: Pull? = nil, sink: (any DownloadSink)? = nil,
                           deadline: Deadline, reached: (SyncPhase) -> Void = { _ in }) throws -> SyncResult {
        let (channel, welcomeBytes) = try SyncChannel.connect(stream, deviceKey: deviceKey, hubKey: hubKey,
                                                              hello: Hello(device: device, mode: mode, epoch: epoch).encode(),
                                                              dictionary: SyncDictionary.v3, deadline: deadline)
        reached(.handshakeDone)
        let welcome = try Welcome.decode(welcomeBytes)
        guard welcome.status == .ok else { throw SyncFailure.refused(welcome.status) }
        // One flight: AUTH, BATCH, PULL or BYE. A hub that refuses the password closes the link
        // while the rest is still on its way; its answer is already in our receive buffer, so a
        // failed send is only reported if that answer does not explain it.
        var sendFailure: (any Error)?
        do {
            // Queued: AUTH, the BATCHes and PULL (or BYE) share frames (protocol 5).
            try channel.queue(.init(type: MessageType.auth.rawValue, body: Array(password.utf8)), deadline: deadline)
            for batch in batches { try channel.queue(.init(type: MessageType.batch.rawValue, body: batch.encode()), deadline: deadline) }
            if let pull {
                try channel.send(.init(type: MessageType.pull.rawValue, body: pull.encode()), deadline: deadline)
            } else {
                try channel.send(.init(type: MessageType.bye.rawValue, body: []), deadline: deadline)
            }
            reached(.uploadSent)
        } catch {
            sendFailure = error
        }
        let auth: [UInt8]
        do {
            auth = try expect(.authResult, from: channel, deadline: deadline)
        } catch {
            throw sendFailure ?? error
        }
        let result = try AuthResult.decode(auth)
        guard result.status == .ok else { throw SyncFailure.authentication(result) }
        if let sendFailure {
            // Signed in, and the send still failed: a hub that refused a batch answers ERROR and
            // closes while the rest of the flight is on its way. That answer, when it came, is
            // the cause the device must hear; else the failed send is.
            if let message = try? channel.receive(deadline: deadline), message.type == MessageType.error.rawValue,
               let error = try? ErrorMessage.decode(message.body) {
                throw SyncFailure.hubError(code: error.code, message: error.message)
            }
            throw sendFailure
        }
        var outcome = SyncResult(receipt: nil, bytesSent: 0, bytesReceived: 0, roundTrips: 1)
        outcome.held = result.held
        outcome.assignment = result.assignment
        for batch in batches {
            let receipt = try Receipt.decode(try expect(.receipt, from: channel, deadline: deadline))
            guard receipt.batchId == batch.id else { throw SyncFailure.unexpected(.receiptForOtherBatch(received: receipt.batchId, sent: batch.id)) }
            outcome.receipt = Receipt(batchId: receipt.batchId, stored: (outcome.receipt?.stored ?? 0) + receipt.stored,
                                      duplicates: (outcome.receipt?.duplicates ?? 0) + receipt.duplicates,
                                      throughSeq: max(outcome.receipt?.throughSeq ?? 0, receipt.throughSeq))
        }
        if pull != nil {
            guard let sink else { throw SyncFailure.pullWithoutSink }
            let header = try DownloadHeader.decode(try expect(.download, from: channel, deadline: deadline))
            outcome.pull = header.pull
            try sink.begin(header)
            while true {
                let message = try channel.receive(deadline: deadline)
                switch MessageType(rawValue: message.type) {
                case .table:
                    let frame: TableFrame
                    do {
                        frame = try TableFrame.decode(message.body, catalogue: try sink.catalogue(), heldRows: sink.heldRows)
                    } catch let failure as TableFrame.Failure {
                        // Held differences that do not add up (a row missing, or one that is not
                        // what the hub's shadow says): this working set cannot be vouched for.
                        switch failure {
                        case .notHeld, .checksum: try sink.heldRowsDiffer()
                        default: break
                        }
                        throw failure
                    }
                    do {
                        try sink.apply(frame)
                    } catch let refusal as any DownloadRefusal {
                        // The hub hears which row and why before the link closes (and audits it).
                        try? channel.send(.init(type: MessageType.error.rawValue,
                                                body: ErrorMessage(code: .rowRefused, message: ErrorMessage.fitting(refusal.description)).encode()),
                                          deadline: deadline)
                        throw refusal
                    }
                    outcome.downloaded += frame.rows.count
                    reached(.applied)
                case .batch:
                    outcome.documents += try sink.documents(try Batch.decode(message.body))
                case .done:
                    let done = try DownloadDone.decode(message.body)
                    guard done.pull == header.pull else { throw SyncFailure.unexpected(.doneForOtherPull(received: done.pull, downloading: header.pull)) }
                    reached(.downloadDone)
                    outcome.mismatched = try sink.finish(done)
                    reached(.verified)
                    // ACK ends the session (protocol 5): no BYE after it.
                    try channel.send(.init(type: MessageType.ack.rawValue, body: DownloadAck(pull: header.pull, applied: header.rows).encode()),
                                     deadline: deadline)
                    outcome.bytesSent = channel.bytesSent
                    outcome.bytesReceived = channel.bytesReceived
                    outcome.largestFrame = channel.largestFrameReceived
                    outcome.bytesReceivedByType = channel.bytesReceivedByType
                    return outcome
                case .error:
                    let error = try ErrorMessage.decode(message.body)
                    throw SyncFailure.hubError(code: error.code, message: error.message)
                default:
                    throw SyncFailure.unexpected(.duringDownload(type: message.type))
                }
            }
        }
        outcome.bytesSent = channel.bytesSent
        outcome.bytesReceived = channel.bytesReceived
        outcome.bytesReceivedByType = channel.bytesReceivedByType
        return outcome
    }

    static func expect(_ type: MessageType, from channel: SyncChannel, deadline: Deadline) throws -> [UInt8] {
        let message = try channel.receive(deadline: deadline)
        if message.type == MessageType.error.rawValue {
            let error = try ErrorMessage.decode(message.body)
            throw SyncFailure.hubError(code: error.code, message: error.message)
        }
        guard message.type == type.rawValue else { throw SyncFailure.unexpected(.wrongType(message.type, expected: type)) }
        return message.body
    }
}

/// Fast mode: the device's changes up, nothing down.
public enum FastSyncClient {
    public static func run(_ stream: any ByteStream, deviceKey: X25519.KeyPair, hubKey: [UInt8], device: String, password: String,
                           batch: Batch?, deadline: Deadline) throws -> SyncResult {
        try SyncClient.run(stream, deviceKey: deviceKey, hubKey: hubKey, device: device, password: password, batch: batch, deadline: deadline)
    }
}
