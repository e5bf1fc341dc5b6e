import SimulatorKit
import Testing

@Suite("Sync decoders and inflater under hostile input")
struct SyncFuzzTests {
    @Test("100,000 mutated bodies and 10,000 mutated deflate streams per seed: no crash, nothing past the inflate limit, the bomb refused",
          arguments: [UInt64(1), 2])
    func fuzz(seed: UInt64) throws {
        let result = try SyncFuzz.run(inputs: 100_000, seed: seed)
        #expect(result.inputs == 100_000)
        #expect(result.refused > 0 && result.accepted > 0)   // the mutations reach both outcomes
        #expect(result.inflateOverLimit == 0)
        #expect(result.bombRefused)
    }
}
