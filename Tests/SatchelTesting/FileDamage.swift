import Foundation

/// Size and FNV-1a hash of a database file and of what SQLite keeps beside it ("absent" when
/// missing): what a "refused files stay byte-identical" check compares before and after.
public func fileFingerprints(_ path: String) -> [String: String] {
    var state: [String: String] = [:]
    for suffix in ["", "-wal", "-shm", "-journal"] {
        guard FileManager.default.fileExists(atPath: path + suffix) else {
            state[suffix] = "absent"
            continue
        }
        let bytes = fileBytes(path + suffix)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        state[suffix] = "\(bytes.count) bytes, fnv \(String(hash, radix: 16))"
    }
    return state
}

/// Overwrites the b-tree page header of `page` (1-based) in the file on disk with bytes that are
/// no page type and nonsense cell counts: SQLite reports SQLITE_CORRUPT when it meets the page.
/// Checkpoint first, or the WAL still holds the page.
public func corruptPageHeader(_ path: String, page: Int64, pageSize: Int64) {
    var bytes = fileBytes(path)
    let start = Int((page - 1) * pageSize)
    for offset in start..<(start + 12) { bytes[offset] = 0x6B }
    writeFile(path, bytes)
}
