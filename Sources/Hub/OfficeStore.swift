/// What the back office asks and does between syncs (OfficeQueries.swift, OfficeUsers.swift),
/// behind one protocol so the admin API, the office web page and the office commands work the
/// same on the embedded SQLite hub and on PostgreSQL.
public protocol OfficeStore: HubStorage {
    func officeDevices() throws -> [OfficeDevice]
    func officeReps() throws -> [OfficeRep]
    /// Documents received, one line per document (its changes folded), newest first.
    func officeDocuments(_ filter: DocumentFilter) throws -> [OfficeDocument]
    /// Reps with a handheld in service and no successful sync in the last `hours`.
    func missedSyncs(now: Int64, hours: Int) throws -> [MissedSync]
    /// Adds (or, with `replace`, changes) an office user; a territory must exist.
    func addOfficeUser(_ user: OfficeUser, replace: Bool, now: Int64) throws
    func officeUsers() throws -> [OfficeUser]
    /// A new token for the user, valid for `days` days; earlier tokens stay valid.
    func issueOfficeToken(user name: String, days: Int, now: Int64) throws -> IssuedOfficeToken
    /// Ends every token of the user at once; returns how many there were.
    @discardableResult
    func revokeOfficeTokens(user name: String) throws -> Int
    /// The user a token belongs to, or why it is refused.
    func officeUser(token: String?, now: Int64) throws -> Result<OfficeUser, OfficeTokenRefusal>
    /// The reps a user sees: nil for the whole fleet, else those of the user's territory and below.
    func visibleReps(for user: OfficeUser) throws -> Set<String>?
    /// An approval or rejection: the document's state as the device will get it, and the decision
    /// in the append-only log, in one transaction, after the approval limits allow the user.
    func decide(_ decision: OfficeDecision, on document: OfficeDocument, by user: OfficeUser, reason: String?, now: Int64) throws
}

/// The company rule the office's missed-sync list follows.
public enum SyncRule {
    /// A rep syncs successfully at least once in this many hours.
    public static let hours = 24

    /// The start of the window of the last `hours` before `now` (Unix ms): a successful sync at
    /// or after it keeps the rep off the missed-syncs list, on either backend.
    static func windowStart(now: Int64, hours: Int) -> Int64 { now - Int64(hours) * 3_600_000 }
}

extension OfficeStore {
    public func missedSyncs(now: Int64) throws -> [MissedSync] { try missedSyncs(now: now, hours: SyncRule.hours) }
    public func addOfficeUser(_ user: OfficeUser, now: Int64) throws { try addOfficeUser(user, replace: false, now: now) }
}

extension SQLiteHubStorage: OfficeStore {}
