import Sync
import Testing

@Suite("Batch bodies: columnar changes, payloads without their JSON keys")
struct BatchTests {
    static let payloads = [
        #"{"currency":"PLN","customer_id":"CPL100001","lines":[{"amount_minor":3000,"line_no":1,"part_number":"PN-10001"},{"amount_minor":-5,"line_no":2,"part_number":"PN-1"}],"note":"Dostawa \"rano\" — доставка утром\nbrama 2","state":"confirmed","confirmed_at":null,"held":true}"#,
        #"{"id":"WAW07-000002","empty":{},"list":[],"flag":false}"#,
        #"{"price":12.5}"#,                        // a fraction: not ours to rewrite, goes as JSON
        #"{"name":"\u0141\u00f3d\u017a"}"#,        // \u escapes: goes as JSON
        #"{"a": 1}"#,                              // spaces: would not come back byte for byte
        "not json at all",
    ]

    func batch(_ payloads: [String]) -> Batch {
        Batch(id: "WAW07-1-\(payloads.count)", changes: payloads.enumerated().map { index, payload in
            SyncChange(seq: Int64(index + 1), changeId: "WAW07-\(index + 1)", at: 1_795_428_000_000 + Int64(index), entity: "order",
                       entityId: "WAW07-o\(index)", action: "confirmed", payload: payload)
        })
    }

    @Test("every payload comes back byte for byte, compacted or not")
    func roundTrip() throws {
        let original = batch(Self.payloads)
        #expect(try Batch.decode(original.encode()) == original)
    }

    @Test("keys are sent once per shape, so many similar documents shrink")
    func keysOnce() throws {
        let document = Self.payloads[0]
        let many = batch(Array(repeating: document, count: 50))
        let encoded = many.encode()
        #expect(encoded.count < 50 * document.utf8.count * 6 / 10)  // the keys are about half of this document
        #expect(try Batch.decode(encoded) == many)
    }

    @Test("a hostile body cannot point outside the shape table or nest without end", arguments: [
        [UInt8]([1, 0x30, 1, 0, 1, 0]),  // truncated everywhere
        [UInt8](repeating: 0xFF, count: 40),
    ])
    func hostile(bytes: [UInt8]) {
        #expect(throws: (any Error).self) { try Batch.decode(bytes) }
    }
}
