import CSQLite

/// A failure reported by SQLite, with what is needed to act on it: the result code (extended,
/// so `SQLITE_IOERR_FSYNC` and friends survive), SQLite's own message, the SQL that failed and
/// the database file. Statement arguments are deliberately left out: they hold customer data,
/// and errors end up in logs and on the rep's screen.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    /// Extended result code (see https://sqlite.org/rescode.html).
    public let extendedCode: Int32
    public let message: String
    public let sql: String?
    public let path: String?

    public init(extendedCode: Int32, message: String, sql: String? = nil, path: String? = nil) {
        self.extendedCode = extendedCode
        self.message = message
        self.sql = sql
        self.path = path
    }

    /// Primary result code: the low byte of the extended code (sqlite.org/rescode.html#primary_result_code_list).
    public var code: Int32 { extendedCode & 0xff }

    public var kind: Kind { Kind(primaryCode: code) }

    /// The families of failure callers handle differently.
    public enum Kind: Sendable, Equatable {
        /// SQLITE_FULL: the disk (or `max_page_count`) is full.
        case full
        /// SQLITE_CORRUPT / SQLITE_NOTADB: the file is damaged or not a database at all.
        case corrupt
        /// SQLITE_CANTOPEN / SQLITE_PERM / SQLITE_READONLY / SQLITE_AUTH: no access to the file.
        case noAccess
        /// SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock past our timeout.
        case busy
        /// SQLITE_CONSTRAINT: a CHECK, UNIQUE, FOREIGN KEY or trigger refused the change.
        case constraint
        /// SQLITE_IOERR: the storage failed under us.
        case io
        case other

        init(primaryCode: Int32) {
            switch primaryCode {
            case SQLITE_FULL: self = .full
            case SQLITE_CORRUPT, SQLITE_NOTADB: self = .corrupt
            case SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_READONLY, SQLITE_AUTH: self = .noAccess
            case SQLITE_BUSY, SQLITE_LOCKED: self = .busy
            case SQLITE_CONSTRAINT: self = .constraint
            case SQLITE_IOERR: self = .io
            default: self = .other
            }
        }
    }

    public var description: String {
        var text = "SQLite error \(extendedCode) (\(String(cString: sqlite3_errstr(extendedCode)))): \(message)"
        if let path { text += " [file \(path)]" }
        if let sql { text += " [sql: \(sql)]" }
        return text
    }
}
