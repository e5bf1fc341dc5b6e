import CZlib

/// Why compression or decompression was refused, with zlib's return code where there is one.
public enum DeflateError: Error, Equatable, CustomStringConvertible {
    /// The caller asked for something zlib cannot do, such as a dictionary with gzip.
    case invalidArgument(String)
    /// zlib failed for a reason other than bad input (usually Z_MEM_ERROR).
    case zlibFailure(operation: String, code: Int32, message: String?)
    /// The compressed bytes are not valid (Z_DATA_ERROR); `message` is zlib's explanation.
    case corruptData(message: String?)
    /// A zlib stream names a preset dictionary (by Adler-32) and none was given.
    case dictionaryRequired(id: UInt32)
    /// The given dictionary is not the one the zlib stream was compressed with.
    case dictionaryMismatch(id: UInt32)
    /// One call would have produced more than `limit` bytes.
    case outputLimitExceeded(limit: Int)
    /// One call would have produced more than `limit` times its input size.
    case ratioExceeded(limit: Int, inputBytes: Int)
    /// The input ended before the compressed stream did.
    case truncated
    /// Bytes followed the end of the compressed stream.
    case trailingData(count: Int)
    /// The stream already ended (Z_STREAM_END); this context takes no more data.
    case streamFinished
    /// An earlier call failed midway, so zlib's state is unknown.
    case streamBroken

    public var description: String {
        switch self {
        case .invalidArgument(let what):
            return "deflate: invalid argument: \(what)"
        case .zlibFailure(let operation, let code, let message):
            let next = code == Z_MEM_ERROR ? "; the device is out of memory, free some and retry" : ""
            return "zlib \(operation) failed with \(zlibCodeName(code)) (\(code))\(message.map { ": \($0)" } ?? "")\(next)"
        case .corruptData(let message):
            return "compressed data is corrupt: \(message ?? "no detail") (Z_DATA_ERROR, -3); drop the frame and the session"
        case .dictionaryRequired(let id):
            return "the stream needs a preset dictionary (Adler-32 \(hex32(id))) and none was given; pass the schema's dictionary"
        case .dictionaryMismatch(let id):
            return "the preset dictionary does not match the stream's (Adler-32 \(hex32(id))); both ends must use the same schema version"
        case .outputLimitExceeded(let limit):
            return "decompressed output would exceed \(limit) bytes; refused as corrupt or hostile, drop the session"
        case .ratioExceeded(let limit, let inputBytes):
            return "decompressed output would exceed \(limit)x its \(inputBytes) input bytes; refused as a likely decompression bomb, drop the session"
        case .truncated:
            return "compressed data ended before the end of the stream; the input is truncated"
        case .trailingData(let count):
            return "\(count) bytes follow the end of the compressed stream; refused"
        case .streamFinished:
            return "the compressed stream already ended (Z_STREAM_END); use a new context for new data"
        case .streamBroken:
            return "an earlier call on this context failed and left zlib's state unknown; start a new session"
        }
    }
}

func zlibCodeName(_ code: Int32) -> String {
    switch code {
    case Z_OK: "Z_OK"
    case Z_STREAM_END: "Z_STREAM_END"
    case Z_NEED_DICT: "Z_NEED_DICT"
    case Z_ERRNO: "Z_ERRNO"
    case Z_STREAM_ERROR: "Z_STREAM_ERROR"
    case Z_DATA_ERROR: "Z_DATA_ERROR"
    case Z_MEM_ERROR: "Z_MEM_ERROR"
    case Z_BUF_ERROR: "Z_BUF_ERROR"
    case Z_VERSION_ERROR: "Z_VERSION_ERROR"
    default: "unknown zlib code"
    }
}

private func hex32(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
