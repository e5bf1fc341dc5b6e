import CZlib

/// The memory of one zlib stream and its output scratch buffer, shared by `Deflater` and
/// `Inflater`: the stream set up by their init call and primed with a preset dictionary (a
/// failure leaves nothing allocated), then ended and freed with its owner.
final class ZlibContext {
    /// The zlib calls that differ between compressing and decompressing.
    struct Calls {
        /// "deflate" or "inflate": errors name the call that failed (deflateInit2...).
        let name: String
        let initialize: (UnsafeMutablePointer<z_stream>) -> Int32
        let setDictionary: (UnsafeMutablePointer<z_stream>, UnsafePointer<Bytef>?, uInt) -> Int32
        let end: (UnsafeMutablePointer<z_stream>) -> Int32
    }

    let stream: UnsafeMutablePointer<z_stream>
    let scratch: UnsafeMutableBufferPointer<UInt8>
    /// True after any error: the context is not trusted again and the session should be dropped.
    private(set) var broken = false
    private let end: (UnsafeMutablePointer<z_stream>) -> Int32

    init(_ calls: Calls, dictionary: [UInt8]?) throws(DeflateError) {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let code = calls.initialize(stream)
        guard code == Z_OK else {
            let message = zlibMessage(stream)
            stream.deallocate()
            throw .zlibFailure(operation: "\(calls.name)Init2", code: code, message: message)
        }
        if let dictionary {
            let code = dictionary.withUnsafeBufferPointer { calls.setDictionary(stream, $0.baseAddress, uInt($0.count)) }
            guard code == Z_OK else {
                let message = zlibMessage(stream)
                _ = calls.end(stream)
                stream.deallocate()
                throw .zlibFailure(operation: "\(calls.name)SetDictionary", code: code, message: message)
            }
        }
        self.stream = stream
        self.end = calls.end
        self.scratch = .allocate(capacity: scratchSize)
    }

    /// Runs `body` (deflate's or inflate's loop) over `input`, given to the stream for the call
    /// only, so it never points at memory that is gone. Refuses input over
    /// `maxInputPerCall` (zlib counts in 32 bits) without breaking it; any error of `body` breaks it.
    /// The owner refuses a broken context first (`.streamBroken`), before its own checks.
    func feeding(_ input: [UInt8], _ body: () throws(DeflateError) -> [UInt8]) throws(DeflateError) -> [UInt8] {
        guard input.count <= maxInputPerCall else {
            throw .invalidArgument("\(input.count) bytes in one call; split the input below 2 GiB")
        }
        do throws(DeflateError) {
            return try input.withUnsafeBufferPointer { (input) throws(DeflateError) -> [UInt8] in
                stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.pointee.avail_in = uInt(input.count)
                defer {
                    stream.pointee.next_in = nil
                    stream.pointee.avail_in = 0
                }
                return try body()
            }
        } catch {
            broken = true
            throw error
        }
    }

    deinit {
        _ = end(stream)
        stream.deallocate()
        scratch.deallocate()
    }
}
