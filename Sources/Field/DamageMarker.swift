#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
public import SystemCalls

/// The record, beside the database, that SQLite once reported it damaged (`SQLITE_CORRUPT`, or a
/// failed `quick_check`). Once damage is seen, every later open refuses the file, so no capture
/// goes into a database that may lose it, until `satchel restore` puts a rebuilt file in place.
/// The marker names the damaged file by device and inode: a restored (renamed-in) database is a
/// different file, so the marker stops applying to it by itself, and the damaged one is kept
/// aside for the technician. The damaged file itself is never written to.
public struct DamageMarker {
    public static let fileName = "satchel.db.damaged"

    public let home: String
    public var path: String { DeviceDatabase.join(home, Self.fileName) }

    public init(home: String) { self.home = home }

    /// Writes the marker durably (`SystemCalls.replaceFile`: temp file never through a link,
    /// fsync, rename, directory fsync). The callers treat it as best effort: when even this fails,
    /// the error that found the damage is still reported to them.
    public func record(database: String, detail: String) throws(ReplaceFileError) {
        var info = stat()
        guard stat(database, &info) == 0 else { return }
        try SystemCalls.replaceFile(path, with: Array("device \(info.st_dev) inode \(info.st_ino)\n\(detail)\n".utf8))
    }

    /// What the marker says about `database`, or nil when there is none or it names another file
    /// (the database was replaced since: a stale marker is removed).
    public func finding(for database: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: 4_096)
        let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        guard count > 0 else { return nil }
        let text = String(decoding: bytes[0..<count], as: UTF8.self)
        let lines = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
        var info = stat()
        guard stat(database, &info) == 0 else { return nil }
        guard lines.first.map(String.init) == "device \(info.st_dev) inode \(info.st_ino)" else {
            clear()
            return nil
        }
        let detail = lines.count > 1 ? String(lines[1]) : ""
        return detail.hasSuffix("\n") ? String(detail.dropLast()) : detail
    }

    /// Throws `damagedDatabase` when damage was recorded for this very file.
    public func refuseIfMarked(_ database: String) throws {
        guard let finding = finding(for: database) else { return }
        throw FieldError.damagedDatabase(path: database, detail: "found earlier and recorded in \(path): \(finding)")
    }

    public func clear() {
        guard unlink(path) == 0 else { return }
        let directory = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            fsync(directory)
            close(directory)
        }
    }
}
