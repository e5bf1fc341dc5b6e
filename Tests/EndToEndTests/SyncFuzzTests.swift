import Deflate
import SimulatorKit
import Sync
import Testing

@Suite("Sync decoders and inflater under hostile input")
struct SyncFuzzTests {
    @Test("100,000 mutated bodies and 10,000 mutated deflate streams per seed: only documented refusals, nothing past the inflate limit, the bomb stopped by the limit",
          arguments: [UInt64(1), 2])
    func fuzz(seed: UInt64) throws {
        let result = try SyncFuzz.run(inputs: 100_000, seed: seed)
        #expect(result.inputs == 100_000)
        #expect(result.refused > 0 && result.accepted > 0)   // the mutations reach both outcomes
        #expect(result.refused + result.accepted + result.unexpectedErrors == result.inputs)
        #expect(result.unexpectedErrors == 0, "\(result.unexpectedExamples)")
        #expect(result.inflateUnexpectedErrors == 0, "\(result.unexpectedExamples)")
        #expect(result.inflateRefused > 0)
        #expect(result.inflateOverLimit == 0)
        #expect(result.bombRefused)
        #expect(result.passed)
    }

    /// Errors a decoder must never answer hostile input with: an internal error of another
    /// layer, or the wrong error type.
    enum Foreign: Error { case internalInvariant }

    @Test("a decoder that throws an error the protocol does not document is a failure the fuzzer reports, never a refusal",
          arguments: [0, 1, 2])
    func undocumentedErrorsFail(variant: Int) throws {
        let thrown: any Error = switch variant {
        case 0: Foreign.internalInvariant
        case 1: DeflateError.streamBroken           // the wrong layer's error type
        default: SyncFailure.unexpected(.duringDownload(type: 99)) // a session error, not a body refusal
        }
        // The real decoders, except BATCH bodies (kind 1), which answer with the foreign error.
        let result = try SyncFuzz.run(inputs: 5_000, seed: 3) { kind, bytes in
            if kind == 1 { throw thrown }
            try SyncFuzz.decode(kind, bytes)
        }
        #expect(result.unexpectedErrors > 0)
        #expect(result.refused + result.accepted + result.unexpectedErrors == result.inputs)
        #expect(!result.passed)
        #expect(result.unexpectedExamples.first?.hasPrefix("decoder 1: ") == true, "\(result.unexpectedExamples)")
    }

    @Test("the documented refusals are the wire reader's and the TABLE frame's; an inflater refuses input only as corrupt, truncated or over a limit")
    func documentedRefusals() {
        #expect(SyncFuzz.isDocumentedRefusal(WireReader.Failure.truncated(at: 3)))
        #expect(SyncFuzz.isDocumentedRefusal(TableFrame.Failure.unknownTable(99)))
        #expect(!SyncFuzz.isDocumentedRefusal(Foreign.internalInvariant))
        #expect(!SyncFuzz.isDocumentedRefusal(DeflateError.corruptData(message: nil)))
        #expect(SyncFuzz.isInputRefusal(.corruptData(message: "invalid block type")))
        #expect(SyncFuzz.isInputRefusal(.outputLimitExceeded(limit: 4 << 20)))
        #expect(!SyncFuzz.isInputRefusal(.zlibFailure(operation: "inflate", code: -4, message: nil)))
        #expect(!SyncFuzz.isInputRefusal(.streamBroken))
    }
}
