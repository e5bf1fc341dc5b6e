import CZlib

/// Decompresses a stream of frames through one zlib context, refusing output past its limits.
///
/// The input comes from the network or a memory card, so it is treated as hostile: output is
/// grown in bounded chunks and the call throws before it would exceed `limits`, never after.
public final class Inflater {
    public let format: DeflateFormat
    public let limits: InflateLimits
    /// True once the end of the compressed stream (Z_STREAM_END) has been decoded. A raw stream
    /// of sync-flushed frames never ends; gzip and zlib files do.
    public private(set) var finished = false
    private let dictionary: [UInt8]?
    private let context: ZlibContext
    private var stream: UnsafeMutablePointer<z_stream> { context.stream }
    private var scratch: UnsafeMutableBufferPointer<UInt8> { context.scratch }

    /// - Parameter dictionary: the same bytes the compressor was primed with. A raw stream has no
    ///   id for it, so a wrong dictionary there shows up as corrupt data or wrong bytes; the sync
    ///   channel's authentication of each frame, not deflate, is what catches the latter.
    public init(format: DeflateFormat = .raw, dictionary: [UInt8]? = nil, limits: InflateLimits) throws(DeflateError) {
        if dictionary != nil && format == .gzip {
            throw .invalidArgument("gzip cannot carry a preset dictionary; use .raw or .zlib")
        }
        // A raw stream cannot ask for its dictionary, so it must be in the window from the start.
        context = try ZlibContext(
            .init(name: "inflate", initialize: { satchel_inflateInit2($0, format.windowBits) },
                  setDictionary: { inflateSetDictionary($0, $1, $2) }, end: { inflateEnd($0) }),
            dictionary: format == .raw ? dictionary : nil)
        self.format = format
        self.dictionary = dictionary
        self.limits = limits
    }

    /// Decompresses one chunk (for example one sync-flushed frame) and returns all the output it
    /// yields. After any error the context is unusable: the session should be dropped.
    public func decompress(_ input: [UInt8]) throws(DeflateError) -> [UInt8] {
        guard !context.broken else { throw .streamBroken }
        if finished {
            if input.isEmpty { return [] }
            throw .streamFinished
        }
        return try context.feeding(input) { () throws(DeflateError) in try drain(inputCount: input.count) }
    }

    private func drain(inputCount: Int) throws(DeflateError) -> [UInt8] {
        var output: [UInt8] = []
        let limit = limits.maxOutputBytes
        while true {
            // Offer zlib at most one byte past the limit: if it uses that byte, the limit is
            // exceeded, and that byte is all that was written beyond it.
            let remaining = limit - output.count
            let room = remaining < scratch.count ? remaining + 1 : scratch.count
            stream.pointee.next_out = scratch.baseAddress
            stream.pointee.avail_out = uInt(room)
            let availableBefore = stream.pointee.avail_in

            let code = inflate(stream, Z_NO_FLUSH)
            switch code {
            case Z_OK, Z_BUF_ERROR:  // Z_BUF_ERROR: needs more input than this chunk holds
                break
            case Z_STREAM_END:
                finished = true
            case Z_NEED_DICT:
                try supplyDictionary()
                continue
            case Z_DATA_ERROR:
                throw .corruptData(message: zlibMessage(stream))
            default:
                throw .zlibFailure(operation: "inflate", code: code, message: zlibMessage(stream))
            }

            let produced = room - Int(stream.pointee.avail_out)
            let total = output.count + produced
            if total > limit {
                throw .outputLimitExceeded(limit: limit)
            }
            if total > limits.ratioFloor {
                let (allowed, overflow) = limits.maxRatio.multipliedReportingOverflow(by: inputCount)
                if !overflow && total > allowed {
                    throw .ratioExceeded(limit: limits.maxRatio, inputBytes: inputCount)
                }
            }
            appendBounded(scratch.prefix(produced), to: &output, limit: limit)

            if finished {
                let left = Int(stream.pointee.avail_in)
                if left > 0 { throw .trailingData(count: left) }
                return output
            }
            let consumed = availableBefore != stream.pointee.avail_in
            if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 { return output }
            if code == Z_BUF_ERROR && produced == 0 && !consumed { return output }
        }
    }

    private func supplyDictionary() throws(DeflateError) {
        let id = UInt32(truncatingIfNeeded: stream.pointee.adler)
        guard let dictionary else { throw .dictionaryRequired(id: id) }
        let code = dictionary.withUnsafeBufferPointer {
            inflateSetDictionary(stream, $0.baseAddress, uInt($0.count))
        }
        switch code {
        case Z_OK: return
        case Z_DATA_ERROR: throw .dictionaryMismatch(id: id)
        default: throw .zlibFailure(operation: "inflateSetDictionary", code: code, message: zlibMessage(stream))
        }
    }
}

/// Appends while keeping the array's capacity within `limit`, so the usual doubling growth
/// cannot reserve up to twice what the limits allow.
private func appendBounded(_ bytes: Slice<UnsafeMutableBufferPointer<UInt8>>, to output: inout [UInt8], limit: Int) {
    let needed = output.count + bytes.count
    if needed > output.capacity {
        let doubled = output.capacity + min(output.capacity, limit - output.capacity)
        output.reserveCapacity(max(needed, doubled))
    }
    output.append(contentsOf: bytes)
}
