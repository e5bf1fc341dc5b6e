import CZlib

/// The container around the deflate data, chosen by who reads it.
///
/// The sync protocol uses `.raw`: both ends know the framing, so a zlib or gzip header and
/// checksum would only cost bytes on GPRS (frames are authenticated by the channel anyway).
/// `.zlib` carries the preset dictionary's id, so a wrong dictionary is caught; `.gzip` is for
/// files and for comparing against `gzip -6` in the benchmark.
public enum DeflateFormat: Sendable, Hashable {
    case raw
    case zlib
    case gzip

    /// zlib selects the container through the sign and range of `windowBits`; always the
    /// largest window (32 KiB), since frames are small and the dictionary should fit.
    var windowBits: Int32 {
        switch self {
        case .raw: -15
        case .zlib: 15
        case .gzip: 31
        }
    }
}

/// How much one `Inflater.decompress` call may produce before it refuses the input.
///
/// A hostile or corrupt frame can expand a thousandfold; on a handheld with little RAM the
/// refusal has to come before the allocation, not after.
public struct InflateLimits: Sendable, Hashable {
    /// The most bytes one call may return; output never grows past this.
    public var maxOutputBytes: Int
    /// The most output bytes allowed per input byte of the call.
    public var maxRatio: Int
    /// Output below this size is never refused for its ratio: a short run of repeated
    /// characters legitimately compresses far better than `maxRatio`.
    public var ratioFloor: Int

    public init(maxOutputBytes: Int, maxRatio: Int, ratioFloor: Int = 4096) {
        precondition(maxOutputBytes >= 0, "maxOutputBytes must not be negative")
        precondition(maxRatio >= 1, "maxRatio must be at least 1")
        precondition(ratioFloor >= 0, "ratioFloor must not be negative")
        self.maxOutputBytes = maxOutputBytes
        self.maxRatio = maxRatio
        self.ratioFloor = ratioFloor
    }
}

/// Size of the scratch buffer each context reuses: big enough to keep calls into zlib few,
/// small enough to be the only fixed cost of a context on the handheld.
let scratchSize = 16 * 1024

/// `avail_in` is a 32-bit `uInt`; `Int32.max` also fits `Int` on 32-bit ARM.
let maxInputPerCall = Int(Int32.max)

func zlibMessage(_ stream: UnsafeMutablePointer<z_stream>) -> String? {
    stream.pointee.msg.map { String(cString: $0) }
}
