/// Who may decide a quote or an order, from the limits the office sets per role (issue 17,
/// docs/office-guide.md#approval-limits). One rule for both ends: the hub routes and refuses
/// with it, and the device, which carries the limits in its working set (`approval_limits`),
/// says before saving what will need approval and by whom.
///
/// The levels go up the territory hierarchy: the rep, the territory's supervisor, the sales
/// manager above, and the back office (no limit) beyond every configured one.
public enum ApprovalLevel: String, Codable, CaseIterable, Comparable, Sendable {
    case rep
    case supervisor
    case salesManager = "sales_manager"
    case office

    /// The roles a limit can be set for (the office has none).
    public static let limited: [ApprovalLevel] = [.rep, .supervisor, .salesManager]

    public static func < (lhs: ApprovalLevel, rhs: ApprovalLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }

    /// As a person reads it in a hold reason: "the supervisor".
    public var spoken: String {
        switch self {
        case .rep: return "the rep"
        case .supervisor: return "the supervisor"
        case .salesManager: return "the sales manager"
        case .office: return "the back office"
        }
    }
}

/// One role's limits in one currency: the highest discount it may grant and the highest
/// document value (quote or order total) it may let through. Value limits are per currency
/// because 50 000 PLN, BGN and RUB are not the same money.
public struct ApprovalLimit: Codable, Equatable, Sendable {
    public var role: ApprovalLevel
    public var currency: String
    public var maxDiscountBasisPoints: Int64
    /// nil: no value limit for this role in this currency.
    public var maxTotalMinor: Int64?

    public init(role: ApprovalLevel, currency: String, maxDiscountBasisPoints: Int64, maxTotalMinor: Int64?) {
        self.role = role; self.currency = currency; self.maxDiscountBasisPoints = maxDiscountBasisPoints; self.maxTotalMinor = maxTotalMinor
    }
}

public struct ApprovalRule: Sendable, Equatable {
    public var limits: [ApprovalLimit]

    /// Without a limit set for a role and currency: a rep grants up to 10% (the rule before
    /// limits were configurable), supervisors and sales managers any discount; no value limit.
    public static let defaultDiscountBasisPoints: [ApprovalLevel: Int64] = [.rep: 1_000, .supervisor: 10_000, .salesManager: 10_000]

    public init(limits: [ApprovalLimit] = []) { self.limits = limits }

    public func limit(_ role: ApprovalLevel, currency: String) -> ApprovalLimit {
        if let set = limits.first(where: { $0.role == role && $0.currency == currency }) { return set }
        return ApprovalLimit(role: role, currency: currency, maxDiscountBasisPoints: Self.defaultDiscountBasisPoints[role] ?? 10_000, maxTotalMinor: nil)
    }

    /// Whether `role`'s limits cover a document with this discount and value.
    public func covers(_ role: ApprovalLevel, discountBasisPoints: Int64, totalMinor: Int64, currency: String) -> Bool {
        if role == .office { return true }
        let limit = limit(role, currency: currency)
        return discountBasisPoints <= limit.maxDiscountBasisPoints && limit.maxTotalMinor.map { totalMinor <= $0 } ?? true
    }

    /// The lowest level whose limits cover the document. `held` (an order held for arrears or
    /// credit) needs at least the supervisor whatever its value.
    public func level(discountBasisPoints: Int64, totalMinor: Int64, currency: String, held: Bool = false) -> ApprovalLevel {
        let lowest: ApprovalLevel = held ? .supervisor : .rep
        return ApprovalLevel.allCases.first { $0 >= lowest && covers($0, discountBasisPoints: discountBasisPoints, totalMinor: totalMinor, currency: currency) } ?? .office
    }

    /// Why the rep's limits do not cover the document (nil when they do), naming the limit passed.
    public func overRepLimit(discountBasisPoints: Int64, totalMinor: Int64, currency: String, what: String) -> String? {
        let rep = limit(.rep, currency: currency)
        var reasons: [String] = []
        if discountBasisPoints > rep.maxDiscountBasisPoints {
            reasons.append("discount \(Percent.format(discountBasisPoints)) is over the \(Percent.format(rep.maxDiscountBasisPoints)) a rep may grant")
        }
        if let maximum = rep.maxTotalMinor, totalMinor > maximum {
            reasons.append("\(what) value \(Money.format(totalMinor, currency)) is over the \(Money.format(maximum, currency)) a rep may \(what == "quote" ? "offer" : "confirm")")
        }
        return reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }
}
