/// CRC-32C (Castagnoli), the checksum that tells a torn or half-written record from a whole one.
/// Authenticity is the job of the encryption above; this only has to catch accidents.
public enum CRC32C {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = (value & 1) != 0 ? (value >> 1) ^ 0x82F6_3B78 : value >> 1 }
        return value
    }

    public static func checksum<C: Collection>(_ bytes: C, seed: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
        var crc = ~seed
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }
}

/// Little-endian integers in byte arrays, without unaligned loads (32-bit ARM is a target).
public enum LittleEndian {
    public static func append(_ value: UInt32, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    public static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    public static func append(_ value: UInt16, to bytes: inout [UInt8]) {
        bytes.append(UInt8(truncatingIfNeeded: value))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    }

    public static func uint32<C: Collection>(_ bytes: C, at offset: C.Index) -> UInt32 where C.Element == UInt8 { littleEndian(bytes, at: offset) }

    public static func uint64<C: Collection>(_ bytes: C, at offset: C.Index) -> UInt64 where C.Element == UInt8 { littleEndian(bytes, at: offset) }

    /// An unsigned integer of any width from its little-endian bytes at `offset`.
    static func littleEndian<T: FixedWidthInteger & UnsignedInteger, C: Collection>(_ bytes: C, at offset: C.Index) -> T where C.Element == UInt8 {
        var value: T = 0
        var index = offset
        for shift in stride(from: 0, to: T.bitWidth, by: 8) {
            value |= T(bytes[index]) << T(shift)
            index = bytes.index(after: index)
        }
        return value
    }

    public static func uint16<C: Collection>(_ bytes: C, at offset: C.Index) -> UInt16 where C.Element == UInt8 {
        UInt16(bytes[offset]) | UInt16(bytes[bytes.index(after: offset)]) << 8
    }
}
