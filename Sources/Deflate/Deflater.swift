import CZlib

/// Compresses a stream of frames through one zlib context.
///
/// The sync protocol keeps one `Deflater` per session direction and sync-flushes every frame:
/// later frames can refer back to earlier ones and to the preset dictionary, yet each frame
/// ends on a byte boundary, so the peer can decode it as soon as it arrives.
public final class Deflater {
    public enum Flush: Sendable, Hashable {
        /// Let zlib buffer; output may lag behind input.
        case none
        /// Emit everything so far, ending on a byte boundary (the frame ends with 00 00 ff ff).
        case sync
        /// End the stream; the context accepts nothing afterwards.
        case finish

        var zlibValue: Int32 {
            switch self {
            case .none: Z_NO_FLUSH
            case .sync: Z_SYNC_FLUSH
            case .finish: Z_FINISH
            }
        }
    }

    public let format: DeflateFormat
    /// True once `.finish` has ended the stream.
    public private(set) var finished = false
    private let context: ZlibContext
    private var stream: UnsafeMutablePointer<z_stream> { context.stream }
    private var scratch: UnsafeMutableBufferPointer<UInt8> { context.scratch }

    /// - Parameter dictionary: bytes likely to recur (the schema's vocabulary); they prime the
    ///   window so even the first small frame compresses. Not available with gzip.
    public init(level: Int32 = 6, format: DeflateFormat = .raw, dictionary: [UInt8]? = nil) throws(DeflateError) {
        guard (-1...9).contains(level) else {
            throw .invalidArgument("compression level \(level) is outside -1...9")
        }
        if dictionary != nil && format == .gzip {
            throw .invalidArgument("gzip cannot carry a preset dictionary; use .raw or .zlib")
        }
        context = try ZlibContext(
            .init(name: "deflate", initialize: { satchel_deflateInit2($0, level, Z_DEFLATED, format.windowBits, 8, Z_DEFAULT_STRATEGY) },
                  setDictionary: { deflateSetDictionary($0, $1, $2) }, end: { deflateEnd($0) }),
            dictionary: dictionary)
        self.format = format
    }

    /// Compresses `input` and returns what zlib emitted. With `.sync` (the default) that is the
    /// whole frame; with `.none` it may be less, and the rest comes with a later call.
    public func compress(_ input: [UInt8], flush: Flush = .sync) throws(DeflateError) -> [UInt8] {
        guard !context.broken else { throw .streamBroken }
        guard !finished else { throw .streamFinished }
        return try context.feeding(input) { () throws(DeflateError) in try drain(flush: flush) }
    }

    /// Calls deflate until it stops filling the whole scratch buffer, as zlib's zpipe.c does.
    private func drain(flush: Flush) throws(DeflateError) -> [UInt8] {
        var output: [UInt8] = []
        repeat {
            stream.pointee.next_out = scratch.baseAddress
            stream.pointee.avail_out = uInt(scratch.count)
            let code = deflate(stream, flush.zlibValue)
            switch code {
            case Z_OK, Z_BUF_ERROR:  // Z_BUF_ERROR: nothing new to emit, not a failure
                break
            case Z_STREAM_END:
                finished = true
            default:
                throw .zlibFailure(operation: "deflate", code: code, message: zlibMessage(stream))
            }
            let produced = scratch.count - Int(stream.pointee.avail_out)
            output.append(contentsOf: scratch.prefix(produced))
        } while stream.pointee.avail_out == 0 && !finished
        if flush == .finish && !finished {
            throw .zlibFailure(operation: "deflate(Z_FINISH)", code: Z_BUF_ERROR, message: "stream did not end")
        }
        return output
    }
}
