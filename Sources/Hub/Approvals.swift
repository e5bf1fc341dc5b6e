public import Field
import Foundation
import Postgres
import Store

/// Approvals by hierarchy (issue 17, docs/office-guide.md#approval-limits): the office sets
/// limits per role (rep, supervisor, sales manager) and currency for discount and document value;
/// a quote or order over the rep's limits waits for the territory's supervisor, one over the
/// supervisor's goes on to the sales manager up the territory hierarchy, and orders held for
/// arrears start at the supervisor. The rule itself is `ApprovalRule` (Field), so the device,
/// which downloads the limits (`approval_limits`), names the same approver before saving.
enum ApprovalLimitsSchema {
    /// The hub's table: the wire table's columns (WorkingSetTables "approval_limits") and when each
    /// was set. Every role's limits travel to every device: the rep's say what needs approval,
    /// the others say by whom.
    static let sqlite = table(.sqlite) + " WITHOUT ROWID;"
    static let postgres = table(.postgres) + ";"

    static func table(_ types: HubColumnTypes) -> String {
        """
        CREATE TABLE approval_limits (
            role TEXT NOT NULL CHECK (role IN ('rep', 'supervisor', 'sales_manager')),
            currency TEXT NOT NULL CHECK (length(currency) = 3),
            max_discount_basis_points \(types.bigint) NOT NULL CHECK (max_discount_basis_points BETWEEN 0 AND 10000),
            max_total_minor \(types.bigint) CHECK (max_total_minor IS NULL OR max_total_minor >= 0),
            updated_at \(types.bigint) NOT NULL,
            PRIMARY KEY (role, currency)
        )
        """
    }
}

extension ApprovalLimit {
    /// The same bounds as both schemas' CHECKs, said by name before anything is written.
    func validated() throws -> ApprovalLimit {
        guard ApprovalLevel.limited.contains(role) else {
            throw HubError.invalid("approval limits are set for rep, supervisor or sales_manager, not \(role.rawValue) (the back office has no limit)")
        }
        guard currency.utf8.count == 3, currency.utf8.allSatisfy({ (65...90).contains($0) }) else {
            throw HubError.invalid("currency \(Displayed.text(currency)): an ISO code of three capital letters (PLN, BGN, RUB)")
        }
        guard (0...10_000).contains(maxDiscountBasisPoints) else {
            throw HubError.invalid("discount limit \(Percent.format(maxDiscountBasisPoints)): give 0% to 100%")
        }
        if let maxTotalMinor, maxTotalMinor < 0 { throw HubError.invalid("value limit \(Money.format(maxTotalMinor, currency)): must not be negative") }
        return self
    }
}

/// Why a user may not decide a document: its discount or value is over the user's limits. The
/// document is left as it was.
public struct ApprovalRefused: Error, Equatable, CustomStringConvertible {
    public var description: String
}

extension OfficeUser.Role {
    /// The approval level the role decides at: the office and admins have no limit.
    public var approvalLevel: ApprovalLevel {
        switch self {
        case .supervisor: return .supervisor
        case .salesManager: return .salesManager
        case .office, .admin: return .office
        }
    }
}

extension ApprovalRule {
    /// The level that must decide a pending document the hub received: a held order starts at
    /// the supervisor (the device held it for arrears, credit or value), a quote by its discount
    /// and value; either goes higher when its value or discount is over a level's limits.
    public func level(of document: OfficeDocument) -> ApprovalLevel {
        let level = self.level(discountBasisPoints: document.discountBasisPoints ?? 0, totalMinor: document.totalMinor ?? 0,
                               currency: document.currency ?? "", held: true)
        return level
    }

    /// Refuses `user` when the document needs a higher level than the user's role.
    public func check(_ user: OfficeUser, may document: OfficeDocument) throws {
        let needed = level(of: document)
        guard user.role.approvalLevel < needed else { return }
        let currency = document.currency ?? ""
        let mine = limit(user.role.approvalLevel, currency: currency)
        var over: [String] = []
        if let discount = document.discountBasisPoints, discount > mine.maxDiscountBasisPoints {
            over.append("discount \(Percent.format(discount)) is over the \(Percent.format(mine.maxDiscountBasisPoints)) a \(user.role.rawValue) may grant")
        }
        if let total = document.totalMinor, let maximum = mine.maxTotalMinor, total > maximum {
            over.append("value \(Money.format(total, currency)) is over the \(Money.format(maximum, currency)) a \(user.role.rawValue) may approve")
        }
        throw ApprovalRefused(description: """
            \(document.entity) \(Displayed.text(document.id)) needs \(needed.spoken): \(over.joined(separator: "; ")); \
            office user \(user.name) (\(user.role.rawValue)) may not decide it; nothing was changed
            """)
    }
}

/// Written once for both backends (HubSQL.swift).
extension HubSQL {
    public func approvalLimits() throws -> [ApprovalLimit] {
        try storageErrors {
            try rows("SELECT role, currency, max_discount_basis_points, max_total_minor FROM approval_limits ORDER BY role, currency", []) {
                ApprovalLimit(role: ApprovalLevel(rawValue: $0.text(0)) ?? .office, currency: $0.text(1),
                              maxDiscountBasisPoints: $0.int64(2), maxTotalMinor: $0.optionalInt64(3))
            }
        }
    }

    /// Sets one role's limits in one currency, replacing what was set. Devices get it with their
    /// next download; documents already waiting are routed by the new limits at once.
    public func setApprovalLimit(_ limit: ApprovalLimit, now: Int64) throws {
        let limit = try limit.validated()
        try storageErrors {
            try inWriteTransaction {
                try run("""
                    INSERT INTO approval_limits(role, currency, max_discount_basis_points, max_total_minor, updated_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(role, currency) DO UPDATE SET max_discount_basis_points = excluded.max_discount_basis_points,
                        max_total_minor = excluded.max_total_minor, updated_at = excluded.updated_at
                    """, [.text(limit.role.rawValue), .text(limit.currency), .integer(limit.maxDiscountBasisPoints),
                          HubSQLValue(limit.maxTotalMinor), .integer(now)])
            }
        }
    }
}
