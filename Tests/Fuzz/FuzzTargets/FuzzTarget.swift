/// Every decoder of bytes that come from outside the handheld (the modem's serial port, the
/// sync link, the memory card), each behind one harness that takes arbitrary bytes.
///
/// A decoder may refuse its input with one of its documented error types; anything else is a
/// finding: a trap (libFuzzer reports it as a crash), an error of a type the decoder does not
/// document, or a broken invariant (a bound exceeded, a round trip that changes the value). The
/// harness throws `FuzzFinding` for the last two, and the libFuzzer entry point traps on it.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// The AT channel and every response parser: bytes as the modem's port delivers them.
    case atChannel = "at-channel"
    /// The end-of-session marker scanner on a transparent data stream.
    case carrierMarker = "carrier-marker"
    /// A TABLE frame (download), with and without the parts catalogue.
    case syncTable = "sync-table"
    /// A BATCH body (upload), compact JSON payloads included.
    case syncBatch = "sync-batch"
    /// The other message bodies: HELLO, WELCOME, RECEIPT, ERROR, PULL, DOWNLOAD, DONE, ACK, AUTH_RESULT.
    case syncMessages = "sync-messages"
    /// Length-prefixed frames and the Noise IK handshake messages, on both sides.
    case syncHandshake = "sync-handshake"
    /// The bounded inflater: raw deflate with the sync dictionary, zlib and gzip.
    case inflate = "inflate"
    /// The card journal: segment files, record framing, sealed change entries.
    case cardJournal = "card-journal"
    /// The two snapshot pointer slots and the snapshot file they name.
    case snapshotPointers = "snapshot-pointers"
    /// card.json, the card's identity file.
    case cardJSON = "card-json"

    /// Runs one input: whether the decoder accepted it or refused it as documented.
    @discardableResult
    public func run(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        switch self {
        case .atChannel: try ModemHarness.channel(input)
        case .carrierMarker: try ModemHarness.carrierMarker(input)
        case .syncTable: try SyncHarness.table(input)
        case .syncBatch: try SyncHarness.batch(input)
        case .syncMessages: try SyncHarness.messages(input)
        case .syncHandshake: try SyncHarness.handshake(input)
        case .inflate: try InflateHarness.inflate(input)
        case .cardJournal: try BackupHarness.cardJournal(input)
        case .snapshotPointers: try BackupHarness.snapshotPointers(input)
        case .cardJSON: try BackupHarness.cardJSON(input)
        }
    }

    /// Valid inputs made with the project's own encoders (and, for the modem, answers real
    /// modems give): the starting corpus, written to Tests/Fuzz/corpus by `satchel-fuzz seed`.
    public func seeds() throws -> [(name: String, bytes: [UInt8])] {
        switch self {
        case .atChannel: ModemHarness.channelSeeds()
        case .carrierMarker: ModemHarness.carrierMarkerSeeds()
        case .syncTable: try SyncHarness.tableSeeds()
        case .syncBatch: SyncHarness.batchSeeds()
        case .syncMessages: SyncHarness.messageSeeds()
        case .syncHandshake: try SyncHarness.handshakeSeeds()
        case .inflate: try InflateHarness.seeds()
        case .cardJournal: try BackupHarness.cardJournalSeeds()
        case .snapshotPointers: try BackupHarness.snapshotPointerSeeds()
        case .cardJSON: try BackupHarness.cardJSONSeeds()
        }
    }
}

/// What the fuzzer is looking for, other than a trap.
public enum FuzzFinding: Error, CustomStringConvertible {
    /// The decoder threw an error of a type it does not document.
    case unexpectedError(target: String, error: String)
    /// The decoder accepted the input but broke one of its promises.
    case brokenInvariant(target: String, what: String)

    public var description: String {
        switch self {
        case .unexpectedError(let target, let error): return "\(target): undocumented error \(error)"
        case .brokenInvariant(let target, let what): return "\(target): \(what)"
        }
    }
}

public enum FuzzOutcome: Equatable, Sendable {
    case accepted
    /// Refused with one of the decoder's documented errors (its description).
    case refused(String)
}

/// Runs `body`; an error is fine when `documented` says it is one of the decoder's own types.
func refusing(_ target: FuzzTarget, documented: (any Error) -> Bool, _ body: () throws -> Void) throws(FuzzFinding) -> FuzzOutcome {
    do {
        try body()
        return .accepted
    } catch let finding as FuzzFinding {
        throw finding
    } catch {
        guard documented(error) else { throw .unexpectedError(target: target.rawValue, error: "\(type(of: error)): \(error)") }
        return .refused("\(error)")
    }
}

func require(_ condition: Bool, _ target: FuzzTarget, _ what: @autoclosure () -> String) throws(FuzzFinding) {
    if !condition { throw .brokenInvariant(target: target.rawValue, what: what()) }
}

/// Reads a harness's control bytes off the front of an input (0 when the input is shorter).
struct ControlBytes {
    private(set) var rest: ArraySlice<UInt8>
    init(_ input: [UInt8]) { rest = input[...] }

    mutating func byte() -> UInt8 {
        guard let first = rest.first else { return 0 }
        rest = rest.dropFirst()
        return first
    }

    /// Up to `count` bytes (fewer at the end of the input).
    mutating func take(_ count: Int) -> [UInt8] {
        let taken = Array(rest.prefix(count))
        rest = rest.dropFirst(taken.count)
        return taken
    }
}
