/// The body encoding of sync messages: unsigned LEB128 varints, zig-zag for signed values,
/// strings and byte strings as varint length + bytes. Readers are bounded by the body they read
/// from and throw on anything short, overlong or out of range; nothing is trusted.
public struct WireWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func varint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    public mutating func int(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }
    public mutating func string(_ value: String) { data(Array(value.utf8)) }

    public mutating func data(_ value: [UInt8]) {
        varint(UInt64(value.count))
        bytes += value
    }

    public mutating func raw(_ value: [UInt8]) { bytes += value }
    public mutating func byte(_ value: UInt8) { bytes.append(value) }
}

public struct WireReader {
    let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset == bytes.count }

    /// The end of a body: bytes after what was read are refused (not a body this version wrote).
    public func finish() throws(Failure) {
        guard isAtEnd else { throw .tooLarge(what: "trailing bytes", value: UInt64(bytes.count - offset)) }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case truncated(at: Int)
        case overlong(at: Int)
        case tooLarge(what: String, value: UInt64)
        case invalidUTF8(at: Int)

        public var description: String {
            switch self {
            case .truncated(let at): return "body ends early at byte \(at)"
            case .overlong(let at): return "varint at byte \(at) is longer than 10 bytes"
            case .tooLarge(let what, let value): return "\(what) of \(value) is out of range"
            case .invalidUTF8(let at): return "string at byte \(at) is not UTF-8"
            }
        }
    }

    public mutating func varint() throws(Failure) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            guard offset < bytes.count else { throw .truncated(at: offset) }
            let byte = bytes[offset]
            offset += 1
            guard shift < 64 else { throw .overlong(at: start) }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    public mutating func int() throws(Failure) -> Int64 {
        let raw = try varint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    public mutating func count(_ what: String, limit: Int) throws(Failure) -> Int {
        let value = try varint()
        guard value <= UInt64(limit) else { throw .tooLarge(what: what, value: value) }
        return Int(value)
    }

    public mutating func data(limit: Int = 1 << 20) throws(Failure) -> [UInt8] {
        let length = try count("byte string length", limit: limit)
        guard bytes.count - offset >= length else { throw .truncated(at: offset) }
        defer { offset += length }
        return Array(bytes[offset..<(offset + length)])
    }

    public mutating func string(limit: Int = 64 * 1024) throws(Failure) -> String {
        let start = offset
        let raw = try data(limit: limit)
        guard let text = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8(at: start) }
        return text
    }

    public mutating func byte() throws(Failure) -> UInt8 {
        guard offset < bytes.count else { throw .truncated(at: offset) }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func bytes(_ count: Int) throws(Failure) -> [UInt8] {
        guard bytes.count - offset >= count else { throw .truncated(at: offset) }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }
}
