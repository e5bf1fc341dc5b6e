/// One-shot compression for whole files and for the benchmark's comparison with `gzip -6`.
public enum Deflate {
    public static func compress(_ bytes: [UInt8], level: Int32 = 6, format: DeflateFormat = .gzip) throws(DeflateError) -> [UInt8] {
        try Deflater(level: level, format: format).compress(bytes, flush: .finish)
    }

    /// Decompresses a complete stream; unlike `Inflater.decompress`, input that stops before the
    /// end of the stream is an error here, since nothing more will come.
    public static func decompress(_ bytes: [UInt8], format: DeflateFormat = .gzip, limits: InflateLimits) throws(DeflateError) -> [UInt8] {
        let inflater = try Inflater(format: format, limits: limits)
        let output = try inflater.decompress(bytes)
        guard inflater.finished else { throw .truncated }
        return output
    }
}
