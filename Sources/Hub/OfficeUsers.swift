import Field
import Foundation
import Seal
import Store

/// The back office's people: who may read the fleet's state and answer documents through the
/// admin API and the office web page, and how far they see. An office user with a territory sees
/// the reps of that territory and of every territory under it (the ERP's hierarchy,
/// `territories.parent_id`); one without a territory (role `office` or `admin`) sees everything.
/// Tokens are random, shown once when issued, and kept only as a BLAKE2b hash with an expiry, so
/// the hub's file never holds a usable credential.
public struct OfficeUser: Codable, Equatable, Sendable {
    public enum Role: String, Codable, CaseIterable, Sendable {
        /// Sees and answers the territory's documents (and those under it).
        case supervisor
        /// The next level up: a larger territory, larger limits.
        case salesManager = "sales_manager"
        /// The back office: every territory.
        case office
        /// As office, and may manage users.
        case admin
    }

    public var name: String
    public var role: Role
    /// The territory the user answers for; nil for office and admin (everything).
    public var territory: String?

    public init(name: String, role: Role, territory: String?) {
        self.name = name; self.role = role; self.territory = territory
    }

    /// Whether the user's view is the whole fleet.
    public var seesEverything: Bool { territory == nil }
}

public enum OfficeDecision: String, Codable, Sendable {
    case approve, reject
}

/// A token as issued: the secret text (shown once) and when it stops working.
public struct IssuedOfficeToken: Sendable {
    public var token: String
    public var expiresAt: Int64
}

/// Why a token was not accepted. The API answers every one of them with the same 401, so a
/// caller learns nothing about which tokens exist; the hub's log keeps the reason.
public enum OfficeTokenRefusal: Error, Equatable, Sendable {
    case missing
    case malformed
    case unknown
    case expired(user: String, at: Int64)
}

enum OfficeUsersSchema {
    static let v6 = """
        CREATE TABLE office_users (
            name TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('supervisor', 'sales_manager', 'office', 'admin')),
            territory_id TEXT, added_at INTEGER NOT NULL,
            CHECK ((role IN ('supervisor', 'sales_manager')) = (territory_id IS NOT NULL))
        );
        CREATE TABLE office_tokens (
            token_hash BLOB PRIMARY KEY, user_name TEXT NOT NULL REFERENCES office_users(name),
            issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL
        );
        -- Who decided what, and why: every approval or rejection made through the admin API or the
        -- office web page. Append-only, like the audit log.
        CREATE TABLE office_decisions (
            id INTEGER PRIMARY KEY, user_name TEXT NOT NULL, device_id TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL,
            decision TEXT NOT NULL, reason TEXT, at INTEGER NOT NULL
        );
        """ + SQLiteHubStorage.appendOnly(history)
    static let history = [(key: "office_decisions", value: "the office decisions")]
}

/// The rules of office users that do not depend on the backend: both SQLite and PostgreSQL check
/// a user, a token and a decision through these, so they refuse the same things alike.
extension OfficeUser {
    /// The user as stored: the name trimmed and on one line, a territory exactly for the roles
    /// that answer for one. Whether the territory exists is the backend's to check.
    func validated() throws -> OfficeUser {
        let name = self.name.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty, name.count <= 64, name.allSatisfy({ !$0.isNewline && $0 != "\u{0}" }) else {
            throw HubError.invalid("office user name \(Displayed.text(self.name)): 1 to 64 characters on one line")
        }
        switch role {
        case .supervisor, .salesManager:
            guard territory != nil else {
                throw HubError.invalid("office user \(name): a \(role.rawValue) answers for a territory: give --territory")
            }
        case .office, .admin:
            guard territory == nil else {
                throw HubError.invalid("office user \(name): role \(role.rawValue) sees every territory; leave out --territory")
            }
        }
        return OfficeUser(name: name, role: role, territory: territory)
    }

    static func unknownTerritory(_ territory: String) -> HubError {
        .notFound("territory \(Displayed.text(territory)) (import the ERP's territories first: satchel-hub erp import)")
    }

    static func exists(_ name: String) -> HubError {
        .invalid("office user \(name) exists already (give --replace to change its role or territory)")
    }

    static func unknown(_ name: String) -> HubError {
        .notFound("office user \(Displayed.text(name)) (add it: satchel-hub user add)")
    }
}

/// Office tokens: random, recognisable by their prefix, kept by the hub only as a hash.
enum OfficeToken {
    /// The prefix every office token starts with, so one found in a log or a paste is recognisable.
    static let prefix = "sto_"

    /// A new token valid for `days` days (1 to 366).
    static func issue(days: Int, now: Int64) throws -> IssuedOfficeToken {
        guard (1...366).contains(days) else { throw HubError.invalid("token lifetime \(days) days: give 1 to 366") }
        return IssuedOfficeToken(token: prefix + Hex.encode(Random.bytes(32)), expiresAt: now + Int64(days) * 86_400_000)
    }

    static func hash(_ token: String) -> [UInt8] {
        Blake2b.hash(Array("satchel office token v1\u{0}".utf8) + Array(token.utf8), outputLength: 32)
    }

    /// Why a token is refused before any lookup (none, or not the shape the hub issues), or nil.
    static func refusal(ofShape token: String?) -> OfficeTokenRefusal? {
        guard let token, !token.isEmpty else { return .missing }
        guard token.hasPrefix(prefix), token.utf8.count == prefix.utf8.count + 64,
              (try? Hex.decode(String(token.dropFirst(prefix.count)))) != nil else { return .malformed }
        return nil
    }

    /// The verdict on a token whose hash found `row` (the user and the token's expiry), or none.
    static func verdict(_ row: (OfficeUser, Int64)?, now: Int64) -> Result<OfficeUser, OfficeTokenRefusal> {
        guard let (user, expiresAt) = row else { return .failure(.unknown) }
        guard now < expiresAt else { return .failure(.expired(user: user.name, at: expiresAt)) }
        return .success(user)
    }
}

extension OfficeDecision {
    /// The document's state and approval after this decision; only orders and quotes wait for one.
    func outcome(for document: OfficeDocument, reason: String?) throws -> (state: String, approval: String) {
        if let reason, reason.count > 500 { throw HubError.invalid("reason: at most 500 characters (\(reason.count) given)") }
        switch (document.entity, self) {
        case ("quote", .approve): return ("approved", "approved")
        case ("quote", .reject): return ("rejected", "rejected")
        case ("order", .approve): return (document.state ?? OrderState.confirmed.rawValue, "approved")
        case ("order", .reject): return (OrderState.rejected.rawValue, "rejected")
        default:
            throw HubError.invalid("\(document.entity) \(Displayed.text(document.id)): only orders and quotes wait for approval")
        }
    }
}

/// Office users and their tokens, written once for both backends (HubSQL.swift).
extension HubSQL {
    /// Adds (or, with `replace`, changes) an office user. A supervisor or sales manager needs a
    /// territory the hub knows; office and admin have none.
    public func addOfficeUser(_ user: OfficeUser, replace: Bool = false, now: Int64) throws {
        let user = try user.validated()
        try storageErrors {
            if let territory = user.territory, try firstRow("SELECT 1 FROM territories WHERE id = ?", [.text(territory)], row: { _ in true }) == nil {
                throw OfficeUser.unknownTerritory(territory)
            }
            let values: [HubSQLValue] = [.text(user.name), .text(user.role.rawValue), HubSQLValue(user.territory), .integer(now)]
            try inWriteTransaction {
                if replace {
                    try run("""
                        INSERT INTO office_users(name, role, territory_id, added_at) VALUES (?, ?, ?, ?)
                        ON CONFLICT(name) DO UPDATE SET role = excluded.role, territory_id = excluded.territory_id
                        """, values)
                } else if try run("INSERT INTO office_users(name, role, territory_id, added_at) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO NOTHING", values) == 0 {
                    // Two offices adding one name at once: one adds it, the other is told it exists.
                    throw OfficeUser.exists(user.name)
                }
            }
        }
    }

    public func officeUsers() throws -> [OfficeUser] {
        try storageErrors {
            // Names in byte order on both backends, as SQLite's BINARY sorts them.
            try rows("SELECT name, role, territory_id FROM office_users", []) {
                OfficeUser(name: $0.text(0), role: OfficeUser.Role(rawValue: $0.text(1)) ?? .supervisor, territory: $0.optionalText(2))
            }.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
        }
    }

    /// A new token for the user, valid for `days` days. Earlier tokens stay valid until they
    /// expire or `revokeOfficeTokens` ends them.
    public func issueOfficeToken(user name: String, days: Int, now: Int64) throws -> IssuedOfficeToken {
        let issued = try OfficeToken.issue(days: days, now: now)
        try storageErrors {
            guard try firstRow("SELECT 1 FROM office_users WHERE name = ?", [.text(name)], row: { _ in true }) != nil else {
                throw OfficeUser.unknown(name)
            }
            try inWriteTransaction {
                try run("INSERT INTO office_tokens(token_hash, user_name, issued_at, expires_at) VALUES (?, ?, ?, ?)",
                        [.bytes(OfficeToken.hash(issued.token)), .text(name), .integer(now), .integer(issued.expiresAt)])
            }
        }
        return issued
    }

    /// Ends every token of the user at once (a lost laptop, someone leaving).
    @discardableResult
    public func revokeOfficeTokens(user name: String) throws -> Int {
        try storageErrors { try inWriteTransaction { try run("DELETE FROM office_tokens WHERE user_name = ?", [.text(name)]) } }
    }

    /// The user a token belongs to, or why it is refused.
    public func officeUser(token: String?, now: Int64) throws -> Result<OfficeUser, OfficeTokenRefusal> {
        if let refusal = OfficeToken.refusal(ofShape: token) { return .failure(refusal) }
        guard let token else { return .failure(.missing) }
        let row = try storageErrors {
            try firstRow("""
                SELECT u.name, u.role, u.territory_id, t.expires_at FROM office_tokens t JOIN office_users u ON u.name = t.user_name
                WHERE t.token_hash = ?
                """, [.bytes(OfficeToken.hash(token))]) {
                (OfficeUser(name: $0.text(0), role: OfficeUser.Role(rawValue: $0.text(1)) ?? .supervisor, territory: $0.optionalText(2)), $0.int64(3))
            }
        }
        return OfficeToken.verdict(row, now: now)
    }
}

extension SQLiteHubStorage {
    /// The reps a user sees: nil for the whole fleet, else the reps of the user's territory and
    /// of every territory under it.
    public func visibleReps(for user: OfficeUser) throws -> Set<String>? {
        guard let territory = user.territory else { return nil }
        return Set(try guarded {
            try database.query("""
                WITH RECURSIVE scope(id) AS (
                    SELECT ?1 UNION SELECT t.id FROM territories t JOIN scope s ON t.parent_id = s.id
                )
                SELECT r.id FROM reps r WHERE r.territory_id IN (SELECT id FROM scope)
                """, [.text(territory)]) { $0.text(0) }
        })
    }

    /// An approval or rejection by an office user: the document's state as the device will get
    /// it on its next full sync, and the decision in the append-only log, in one transaction.
    public func decide(_ decision: OfficeDecision, on document: OfficeDocument, by user: OfficeUser, reason: String?, now: Int64) throws {
        let (state, approval) = try decision.outcome(for: document, reason: reason)
        try write {
            do {
                // The limits as they are now, read in the decision's transaction: a user whose
                // role's limits are below the document's discount or value changes nothing.
                try ApprovalRule(limits: try approvalLimits()).check(user, may: document)
                try putDocumentState(device: document.device, entity: document.entity, entityId: document.id, state: state, approval: approval, now: now)
                try database.execute("""
                    INSERT INTO office_decisions(user_name, device_id, entity, entity_id, decision, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, [.text(user.name), .text(document.device), .text(document.entity), .text(document.id), .text(decision.rawValue),
                          DatabaseValue(reason), .integer(now)])
            }
        }
    }

}
