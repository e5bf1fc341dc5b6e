import Modem
import Testing

@Suite("The end-of-session line found in the data stream, however the reads split it")
struct CarrierMarkerTests {
    func run(_ pieces: [[UInt8]]) -> (data: [UInt8], ended: Bool) {
        var scanner = CarrierMarkerScanner(markers: ["NO CARRIER", "CLOSED"])
        var data: [UInt8] = []
        for piece in pieces {
            switch scanner.feed(piece) {
            case .data(let bytes): data += bytes
            case .ended(let before): return (data + before, true)
            }
        }
        return (data + scanner.flush(), false)
    }

    @Test("every split of data + CLOSED, and of data + NO CARRIER, is found with the data intact", arguments: ["CLOSED", "NO CARRIER"])
    func everySplit(marker: String) {
        let payload = Array("Zamówienie 7\r\nзаказ".utf8)
        let stream = payload + Array("\r\n\(marker)\r\n".utf8)
        for cut in 1..<stream.count {
            let result = run([Array(stream[..<cut]), Array(stream[cut...])])
            #expect(result.ended && result.data == payload, "split at \(cut)")
        }
        let byteByByte = run(stream.map { [$0] })
        #expect(byteByByte.ended && byteByByte.data == payload)
    }

    @Test("data that only looks like the start of the line is delivered, never swallowed")
    func lookalikes() {
        let tricky: [[UInt8]] = [Array("abc\r\n".utf8), Array("NO CARRot\r\n".utf8), Array("\r\nCLOSE".utf8), Array("D?".utf8)]
        let result = run(tricky)
        #expect(!result.ended)
        #expect(result.data == tricky.flatMap { $0 })
    }

    @Test("bytes held back are given up when nothing follows")
    func flushOnSilence() {
        var scanner = CarrierMarkerScanner(markers: ["NO CARRIER"])
        #expect(scanner.feed(Array("frame\r\nNO CAR".utf8)) == .data(Array("frame".utf8)))
        #expect(scanner.isHolding)
        #expect(scanner.flush() == Array("\r\nNO CAR".utf8))
        #expect(!scanner.isHolding)
    }
}
