import CSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A database's bytes in memory (sqlite3_serialize / sqlite3_deserialize): a schema built once
/// by its migrations, attached to another connection as an in-memory copy, so that connection
/// can stage rows under that schema's constraints and move them with INSERT ... SELECT.
extension Database {
    /// The bytes of schema `schema` of this connection (a whole database file's image).
    public func image(schema: String = "main") throws -> [UInt8] {
        var size: sqlite3_int64 = 0
        guard let bytes = sqlite3_serialize(handle, schema, &size, 0) else {
            throw StoreError(extendedCode: SQLITE_NOMEM, message: "could not serialize schema \(schema)", path: path)
        }
        defer { sqlite3_free(bytes) }
        return Array(UnsafeBufferPointer(start: bytes, count: Int(size)))
    }

    /// Attaches `image` (from `image(schema:)`) to this connection as the in-memory database
    /// `schema`, writable and growing as needed; it is gone when detached or closed. Outside a
    /// transaction only (ATTACH's rule).
    public func attachImage(_ image: [UInt8], as schema: String) throws {
        try execute("ATTACH DATABASE ':memory:' AS \(schema)")
        guard let copy = sqlite3_malloc64(sqlite3_uint64(max(image.count, 1))) else {
            try? execute("DETACH DATABASE \(schema)")
            throw StoreError(extendedCode: SQLITE_NOMEM, message: "no memory for the image of \(schema)", path: path)
        }
        image.withUnsafeBytes { bytes in
            if let base = bytes.baseAddress { memcpy(copy, base, bytes.count) }
        }
        // FREEONCLOSE: SQLite owns the copy from here on, even when this call fails.
        let flags = UInt32(SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE)
        let code = sqlite3_deserialize(handle, schema, copy.assumingMemoryBound(to: UInt8.self),
                                       sqlite3_int64(image.count), sqlite3_int64(image.count), flags)
        guard code == SQLITE_OK else {
            let failure = error(code, sql: nil)
            try? execute("DETACH DATABASE \(schema)")
            throw failure
        }
    }
}
