import Deflate
import Sync

enum InflateHarness {
    /// Small limits, so a bomb reaches them within the fuzzer's input sizes.
    static let limits = InflateLimits(maxOutputBytes: 256 * 1024, maxRatio: 200)

    /// Input: format (1 byte: 0 raw with the sync dictionary, 1 raw, 2 zlib with the dictionary,
    /// 3 gzip; then the sync channel's own limits when bit 2 is set) | compressed bytes, cut into
    /// calls at each 0xFD 0xFD pair (one call per sync-flushed frame).
    static func inflate(_ input: [UInt8]) throws(FuzzFinding) -> FuzzOutcome {
        var control = ControlBytes(input)
        let choice = control.byte()
        let limits = choice & 4 == 0 ? Self.limits : SyncChannel.defaultLimits
        let (format, dictionary): (DeflateFormat, [UInt8]?) = switch choice & 3 {
        case 0: (.raw, SyncDictionary.v3)
        case 1: (.raw, nil)
        case 2: (.zlib, SyncDictionary.v3)
        default: (.gzip, nil)
        }
        return try refusing(.inflate, documented: { $0 is DeflateError }) {
            let inflater = try Inflater(format: format, dictionary: dictionary, limits: limits)
            for call in frames(Array(control.rest)) {
                let output = try inflater.decompress(call)
                try require(output.count <= limits.maxOutputBytes, .inflate, "\(output.count) bytes out of one call, over the \(limits.maxOutputBytes)-byte limit")
                try require(output.count <= max(limits.ratioFloor, call.count * limits.maxRatio), .inflate,
                            "\(output.count) bytes out of \(call.count), over the ratio \(limits.maxRatio)")
            }
        }
    }

    static func frames(_ bytes: [UInt8]) -> [[UInt8]] {
        var calls: [[UInt8]] = [], current: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0xFD, index + 1 < bytes.count, bytes[index + 1] == 0xFD {
                calls.append(current)
                current = []
                index += 2
                continue
            }
            current.append(bytes[index])
            index += 1
        }
        calls.append(current)
        return calls
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        let text = Array(#"{"customer_id":"CPL1","note":"Доставка до 10:00 — dostawa rano, Zażółć gęślą jaźń","total_minor":1200}"#.utf8)
        let frames = try { () throws -> [UInt8] in
            let deflater = try Deflater(format: .raw, dictionary: SyncDictionary.v3)
            let first = try deflater.compress(text, flush: .sync), second = try deflater.compress(text + text, flush: .sync)
            return first + [0xFD, 0xFD] + second
        }()
        let bomb = try Deflater(format: .raw).compress([UInt8](repeating: 0, count: 1 << 20), flush: .sync)
        return [
            (name: "raw-sync-dictionary-two-frames", bytes: [0] + frames),
            (name: "refused-raw-bomb", bytes: [1] + bomb),
            (name: "zlib-dictionary", bytes: [2] + (try Deflater(format: .zlib, dictionary: SyncDictionary.v3).compress(text, flush: .finish))),
            (name: "gzip", bytes: [3] + (try Deflater(format: .gzip).compress(text, flush: .finish))),
        ]
    }
}
