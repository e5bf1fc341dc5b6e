public import Deflate
import Field
import Seal
import Store
import Sync

/// `satchel-sim sync-fuzz`: hostile input for everything the hub and the device decode from the
/// other side: message bodies (TABLE frames, BATCH, PULL, DOWNLOAD, DONE, ACK, HELLO, WELCOME,
/// RECEIPT, AUTH_RESULT, ERROR) and the inflater under them. Inputs are valid bodies mutated
/// (bit flips, truncation, insertion, repeated slices, varint runs) and plain noise; a decoder
/// may refuse, never crash, hang or return more than its limits allow. A crash ends the process,
/// which is the failure this target exists to find. A refusal counts only if it is one the
/// protocol documents (a `WireReader.Failure` or `TableFrame.Failure` from a decoder; a corrupt,
/// truncated or over-limit stream from the inflater): any other error is a bug the fuzzer found.
public struct SyncFuzz {
    public struct Result: Codable, Sendable {
        public var inputs: Int
        public var refused: Int
        public var accepted: Int
        /// Inputs a decoder answered with an error that is not a documented refusal: must be 0.
        public var unexpectedErrors: Int
        public var inflateInputs: Int
        public var inflateRefused: Int
        /// Inflater errors that are not refusals of bad input (zlib failures, a broken or finished
        /// stream on a fresh inflater): must be 0.
        public var inflateUnexpectedErrors: Int
        /// Outputs longer than the inflater's limit: must be 0.
        public var inflateOverLimit: Int
        /// A 64 MiB run of zeros compressed to a few KiB: must be refused by the output limit.
        public var bombRefused: Bool
        /// The first few unexpected errors: decoder, error, input in hex (to replay them).
        public var unexpectedExamples: [String]

        /// Nothing crashed (or this would not exist), every error was a documented refusal,
        /// nothing passed the inflater's limit and the bomb was stopped by it.
        public var passed: Bool { unexpectedErrors == 0 && inflateUnexpectedErrors == 0 && inflateOverLimit == 0 && bombRefused }
    }

    /// A decoder under test: index of the message kind and its bytes; throws to refuse.
    public typealias Decoder = @Sendable (Int, [UInt8]) throws -> Void

    /// The refusals the protocol documents for hostile bodies (docs/protocol.md): the wire
    /// reader's and the TABLE frame's. Anything else from a decoder is a bug.
    public static func isDocumentedRefusal(_ error: any Error) -> Bool {
        error is WireReader.Failure || error is TableFrame.Failure
    }

    /// The inflater's refusals of bad input. `zlibFailure`, `invalidArgument`, `streamBroken` and
    /// `streamFinished` cannot come from input to a fresh inflater: they are bugs.
    public static func isInputRefusal(_ error: DeflateError) -> Bool {
        switch error {
        case .corruptData, .dictionaryRequired, .dictionaryMismatch, .outputLimitExceeded, .ratioExceeded, .truncated, .trailingData: return true
        case .invalidArgument, .zlibFailure, .streamFinished, .streamBroken: return false
        }
    }

    static let catalogue = Catalogue(parts: (0..<50).map { "PN-\(10_000 + $0)" })

    /// Valid bodies of every kind, as (decoder index, bytes).
    static func seeds() throws -> [(Int, [UInt8])] {
        let stock = WorkingSetTables.named("stock")!, customers = WorkingSetTables.named("customers")!
        let stockFrame = TableFrame(table: stock, phase: .upsert, firstPosition: 7, rows: (0..<20).map {
            [.text("van:WAW07"), .text("PN-\(10_000 + $0 * 2)"), .integer(Int64($0 * 3 - 5))]
        })
        let customerFrame = TableFrame(table: customers, phase: .upsert, firstPosition: 0, rows: (0..<5).map {
            [.text("CPL\($0)"), .text("Sklep „Żabka” — Магазин \($0)"), .text("ул. Витоша \($0)"), $0 % 2 == 0 ? .null : .text("PL-MAZ"), .text("PLN"),
             .integer(500_000), .integer(-12), .integer(0), .integer(3), .integer(1_795_000_000_000), .text("strict"), .text("customer"), .text("Pyta o rabat")]
        })
        let purge = TableFrame(table: stock, phase: .purge, firstPosition: 3, rows: [[.text("van:WAW07"), .text("PN-99")]])
        let changes = (1...6).map { (index: Int) -> SyncChange in
            let visit = VisitDocument(id: "WAW07-o\(index)", customerId: "CPL1", at: 1_795_428_000_000, outcome: .order, note: "Доставка — dostawa")
            return SyncChange(seq: Int64(index), changeId: "WAW07-\(index)", at: 1_795_428_000_000 + Int64(index) * 60_000, entity: "visit",
                              entityId: "WAW07-o\(index)", action: "recorded", payload: DocumentCodec.encode(.visit(visit)))
        }
        return [
            (0, try stockFrame.encode(catalogue: catalogue)), (0, try customerFrame.encode(catalogue: catalogue)), (0, try purge.encode(catalogue: nil)),
            (1, Batch(id: "WAW07-1-6", changes: changes).encode()),
            (2, Pull(lastPull: "WAW07-abc", applied: 120, complete: false, reset: false, budgets: [5: 3_000, 3: 6_000]).encode()),
            (3, DownloadHeader(pull: "WAW07-abc", rows: 4_000, reset: true).encode()),
            (4, DownloadDone(pull: "WAW07-abc", tables: [TableChecksum(table: 5, rows: 10, sum: 0xDEAD_BEEF)]).encode()),
            (5, DownloadAck(pull: "WAW07-abc", applied: 4_000).encode()),
            (6, Hello(device: "WAW07", mode: .full).encode()),
            (7, Welcome(status: .ok, session: Array(repeating: 7, count: 16), hubTime: 1_795_428_000_000).encode()),
            (8, Receipt(batchId: "WAW07-1-6", stored: 6, duplicates: 0, throughSeq: 6).encode()),
            (9, AuthResult(status: .wrongPassword, attemptsLeft: 3).encode()),
            (10, ErrorMessage(code: .malformed, message: "zły komunikat").encode()),
        ]
    }

    public static func decode(_ kind: Int, _ bytes: [UInt8]) throws {
        switch kind {
        case 0: _ = try TableFrame.decode(bytes, catalogue: catalogue)
        case 1: _ = try Batch.decode(bytes)
        case 2: _ = try Pull.decode(bytes)
        case 3: _ = try DownloadHeader.decode(bytes)
        case 4: _ = try DownloadDone.decode(bytes)
        case 5: _ = try DownloadAck.decode(bytes)
        case 6: _ = try Hello.decode(bytes)
        case 7: _ = try Welcome.decode(bytes)
        case 8: _ = try Receipt.decode(bytes)
        case 9: _ = try AuthResult.decode(bytes)
        default: _ = try ErrorMessage.decode(bytes)
        }
    }

    static func mutate(_ input: [UInt8], _ random: inout SeededRandom) -> [UInt8] {
        var bytes = input
        for _ in 0...random.below(3) {
            switch random.below(7) {
            case 0 where !bytes.isEmpty: bytes[random.below(bytes.count)] ^= UInt8(1 << random.below(8))
            case 1 where !bytes.isEmpty: bytes = Array(bytes.prefix(random.below(bytes.count)))
            case 2: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: random.below(bytes.count + 1))
            case 3 where bytes.count > 2:
                let start = random.below(bytes.count - 1), length = 1 + random.below(min(64, bytes.count - start))
                bytes.insert(contentsOf: bytes[start..<(start + length)], at: random.below(bytes.count + 1))
            case 4 where !bytes.isEmpty:
                let at = random.below(bytes.count)
                bytes.replaceSubrange(at..<min(bytes.count, at + 5), with: [0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
            case 5 where !bytes.isEmpty: bytes[random.below(bytes.count)] = UInt8(truncatingIfNeeded: random.next())
            default: bytes = (0..<random.below(64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
        }
        return bytes
    }

    /// `decoder` is the seam the tests use to check that a wrong error counts as a failure.
    public static func run(inputs: Int, seed: UInt64, decoder decodeInput: Decoder = { try SyncFuzz.decode($0, $1) }) throws -> Result {
        var random = SeededRandom(seed: seed)
        let seeds = try seeds()
        var result = Result(inputs: 0, refused: 0, accepted: 0, unexpectedErrors: 0, inflateInputs: 0, inflateRefused: 0, inflateUnexpectedErrors: 0,
                            inflateOverLimit: 0, bombRefused: false, unexpectedExamples: [])
        func unexpected(_ what: String, _ error: any Error, _ input: [UInt8]) {
            guard result.unexpectedExamples.count < 5 else { return }
            result.unexpectedExamples.append("\(what): \(type(of: error)) \(error); input \(Hex.encode(Array(input.prefix(256))))")
        }
        for _ in 0..<inputs {
            let (kind, valid) = seeds[random.below(seeds.count)]
            let input = mutate(valid, &random)
            // Most inputs go to their own decoder; some to another one, as a misrouted message would.
            let decoder = random.below(8) == 0 ? random.below(11) : kind
            result.inputs += 1
            do {
                try decodeInput(decoder, input)
                result.accepted += 1
            } catch where isDocumentedRefusal(error) {
                result.refused += 1
            } catch {
                result.unexpectedErrors += 1
                unexpected("decoder \(decoder)", error, input)
            }
        }
        // The inflater: compressed bodies, mutated, through the same limits the channel uses.
        let limits = SyncChannel.defaultLimits
        let compressed = try seeds.map { try Deflater(format: .raw, dictionary: SyncDictionary.v3).compress($0.1, flush: .sync) }
        for _ in 0..<max(1, inputs / 10) {
            let input = mutate(compressed[random.below(compressed.count)], &random)
            result.inflateInputs += 1
            let inflater = try Inflater(format: .raw, dictionary: SyncDictionary.v3, limits: limits)
            do {
                let output = try inflater.decompress(input)
                if output.count > limits.maxOutputBytes { result.inflateOverLimit += 1 }
            } catch where isInputRefusal(error) {
                result.inflateRefused += 1
            } catch {
                result.inflateUnexpectedErrors += 1
                unexpected("inflater", error, input)
            }
        }
        // The bomb must be stopped by a limit, not by any error at all.
        let bomb = try Deflater(format: .raw, dictionary: SyncDictionary.v3).compress([UInt8](repeating: 0, count: 64 << 20), flush: .sync)
        do {
            _ = try Inflater(format: .raw, dictionary: SyncDictionary.v3, limits: limits).decompress(bomb)
        } catch .outputLimitExceeded, .ratioExceeded {
            result.bombRefused = true
        } catch {
            unexpected("inflater (the 64 MiB bomb)", error, [])
        }
        return result
    }
}

extension SeededRandom {
    /// 0..<bound (0 when bound <= 1).
    mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : Int(next() % UInt64(bound)) }
}
