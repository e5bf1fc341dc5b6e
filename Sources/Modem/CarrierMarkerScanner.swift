/// Finds the line a modem sends when a transparent session ends (`\r\nNO CARRIER\r\n`, SIMCom's
/// `\r\nCLOSED\r\n`) in the data stream, also when a read boundary splits it: bytes at the end
/// of a read that could begin a marker are held back until the next read says what they are.
public struct CarrierMarkerScanner: Sendable {
    let markers: [[UInt8]]
    private var held: [UInt8] = []

    public init(markers: [String]) {
        self.markers = markers.map { Array(("\r\n" + $0 + "\r\n").utf8) }
    }

    public enum Outcome: Equatable, Sendable {
        /// Bytes that are certainly data (possibly none, when everything is held back).
        case data([UInt8])
        /// The session ended; the data that came before the marker.
        case ended(dataBefore: [UInt8])
    }

    public var isHolding: Bool { !held.isEmpty }

    public mutating func feed(_ bytes: [UInt8]) -> Outcome {
        let chunk = held + bytes
        held = []
        for marker in markers where chunk.count >= marker.count && chunk.suffix(marker.count).elementsEqual(marker) {
            return .ended(dataBefore: Array(chunk.dropLast(marker.count)))
        }
        var keep = 0
        for marker in markers {
            for length in stride(from: min(marker.count - 1, chunk.count), to: 0, by: -1)
            where length > keep && chunk.suffix(length).elementsEqual(marker.prefix(length)) {
                keep = length
                break
            }
        }
        held = Array(chunk.suffix(keep))
        return .data(Array(chunk.dropLast(keep)))
    }

    /// Nothing more came in time: what was held back was data after all.
    public mutating func flush() -> [UInt8] {
        defer { held = [] }
        return held
    }
}
