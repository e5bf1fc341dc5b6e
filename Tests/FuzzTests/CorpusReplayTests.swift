import Foundation
@testable import FuzzTargets
import Testing

/// The fuzzing corpora in a normal build: every committed input and every crash regression goes
/// through its decoder again on each `swift test`, so a fix cannot quietly come undone, and the
/// seeds made by today's encoders must still reach past the first check of each decoder.
@Suite struct CorpusReplayTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func files(_ folder: String, _ target: FuzzTarget) -> [URL] {
        let directory = fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test("every target has a committed corpus, and every input in it replays without a finding", arguments: FuzzTarget.allCases)
    func committedCorpusReplays(_ target: FuzzTarget) throws {
        let inputs = Self.files("corpus", target)
        #expect(!inputs.isEmpty, "Tests/Fuzz/corpus/\(target.rawValue) is empty: `satchel-fuzz seed Tests/Fuzz/corpus` writes it")
        for file in inputs {
            #expect(throws: Never.self, "\(file.lastPathComponent)") { try target.run(Array(try Data(contentsOf: file))) }
        }
    }

    @Test("every crash regression input replays without a finding", arguments: FuzzTarget.allCases)
    func regressionsReplay(_ target: FuzzTarget) throws {
        for file in Self.files("regressions", target) {
            #expect(throws: Never.self, "\(file.lastPathComponent)") { try target.run(Array(try Data(contentsOf: file))) }
        }
    }

    @Test("regression folders are named after targets, so none is skipped")
    func regressionFoldersNameTargets() throws {
        let directory = Self.fuzzDirectory.appendingPathComponent("regressions")
        let folders = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { !$0.hasPrefix(".") }
        for folder in folders { #expect(FuzzTarget(rawValue: folder) != nil, "Tests/Fuzz/regressions/\(folder) is not a target") }
    }

    /// A seed the decoder refuses tells the fuzzer nothing about what lies behind the refusal:
    /// when an encoder changes (a new field, another key derivation), this fails until the
    /// harness and the corpus follow.
    @Test("the seeds today's encoders make are accepted, except those named refused-", arguments: FuzzTarget.allCases)
    func seedsReachTheDecoders(_ target: FuzzTarget) throws {
        let seeds = try target.seeds()
        #expect(!seeds.isEmpty)
        for seed in seeds {
            let outcome = try target.run(seed.bytes)
            if seed.name.hasPrefix("refused-") {
                #expect(outcome != .accepted, "\(target.rawValue)/\(seed.name) was accepted")
            } else {
                #expect(outcome == .accepted, "\(target.rawValue)/\(seed.name): \(outcome)")
            }
        }
    }

    struct Undocumented: Error {}

    @Test("a harness flags an undocumented error type and a broken invariant, and lets a documented refusal through")
    func findingsAreFindings() throws {
        #expect(throws: FuzzFinding.self) { try refusing(.syncBatch, documented: { $0 is DecodingError }) { throw Undocumented() } }
        #expect(throws: FuzzFinding.self) { try require(false, .syncBatch, "a bound exceeded") }
        let outcome = try refusing(.syncBatch, documented: { $0 is Undocumented }) { throw Undocumented() }
        #expect(outcome == .refused("Undocumented()"))
    }

    @Test("a truncated BATCH or card.json is refused as documented, not accepted")
    func truncatedInputsAreRefused() throws {
        let batch = try #require(try FuzzTarget.syncBatch.seeds().first { $0.name == "orders-and-visits" })
        guard case .refused = try FuzzTarget.syncBatch.run(Array(batch.bytes.dropLast(3))) else {
            Issue.record("a truncated BATCH was accepted")
            return
        }
        let json = try #require(try FuzzTarget.cardJSON.seeds().first)
        guard case .refused = try FuzzTarget.cardJSON.run(Array(json.bytes.dropLast(2))) else {
            Issue.record("a truncated card.json was accepted")
            return
        }
    }
}
