import Field
import Foundation
public import Hub

/// What the back office may ask and do, for one signed-in user, independent of HTTP: the admin
/// API and the office web page both call it, so they see exactly the same fleet and refuse the
/// same things. Each call opens the hub's storage for itself (a SQLite connection is cheap and
/// not shared between threads; a PostgreSQL one per request as each sync session has), and every list is cut to what the user's territory allows.
public struct OfficeDesk: Sendable {
    public typealias OpenStorage = @Sendable () throws -> any OfficeStore
    let openStorage: OpenStorage
    let now: @Sendable () -> Int64

    public init(openStorage: @escaping OpenStorage, now: @escaping @Sendable () -> Int64 = SyncServer.systemNow) {
        self.openStorage = openStorage
        self.now = now
    }

    /// Why a request was refused, with the HTTP status both faces answer with.
    public enum Refusal: Error, Equatable, CustomStringConvertible {
        /// No token, or one the hub does not accept (unknown, malformed, expired): all alike.
        case unauthenticated
        /// Signed in, but the document or device is in another territory.
        case forbidden(String)
        case notFound(String)
        case invalid(String)
        case storage(String)

        public var status: Int {
            switch self {
            case .unauthenticated: return 401
            case .forbidden: return 403
            case .notFound: return 404
            case .invalid: return 400
            case .storage: return 503
            }
        }

        public var code: String {
            switch self {
            case .unauthenticated: return "unauthenticated"
            case .forbidden: return "forbidden"
            case .notFound: return "not_found"
            case .invalid: return "invalid"
            case .storage: return "storage"
            }
        }

        public var description: String {
            switch self {
            case .unauthenticated: return "sign in with a valid office token (satchel-hub user token NAME issues one)"
            case .forbidden(let what): return what
            case .notFound(let what): return "not found: \(what)"
            case .invalid(let what): return what
            case .storage(let what): return "hub storage: \(what)"
            }
        }
    }

    /// The user a bearer token belongs to; every refusal reads the same to the caller.
    public func user(token: String?) throws(Refusal) -> OfficeUser {
        let result = try guarded { storage in try storage.officeUser(token: token, now: now()) }
        switch result {
        case .success(let user): return user
        case .failure: throw .unauthenticated
        }
    }

    public func devices(for user: OfficeUser) throws(Refusal) -> [OfficeDevice] {
        try guarded { storage in
            let visible = try storage.visibleReps(for: user)
            return try storage.officeDevices().filter { visible?.contains($0.rep) ?? true }
        }
    }

    public func reps(for user: OfficeUser) throws(Refusal) -> [OfficeRep] {
        try guarded { storage in
            let visible = try storage.visibleReps(for: user)
            return try storage.officeReps().filter { visible?.contains($0.id) ?? true }
        }
    }

    public func documents(for user: OfficeUser, filter: DocumentFilter) throws(Refusal) -> [OfficeDocument] {
        guard (1...5000).contains(filter.limit) else { throw .invalid("limit \(filter.limit): give 1 to 5000") }
        return try guarded { storage in
            let visible = try storage.visibleReps(for: user)
            if let rep = filter.rep, let visible, !visible.contains(rep) { return [] }
            return try storage.officeDocuments(filter).filter { document in visible.map { set in document.rep.map(set.contains) ?? false } ?? true }
        }
    }

    /// The approval queue: orders and quotes waiting for an approval that the user may decide
    /// (in the user's territory, within the role's limits), oldest first, each with the level
    /// that must decide it. `everything` lists the whole territory's queue, also what waits for
    /// a higher level.
    public func approvals(for user: OfficeUser, everything: Bool = false) throws(Refusal) -> [OfficeDocument] {
        let pending = try documents(for: user, filter: DocumentFilter(limit: 5000))
            .filter { ($0.entity == "order" || $0.entity == "quote") && $0.approval == "pending" }
        let rule = ApprovalRule(limits: try guarded { storage in try storage.approvalLimits() })
        return pending.compactMap { document in
            let needs = rule.level(of: document)
            guard everything || needs <= user.role.approvalLevel else { return nil }
            var routed = document
            routed.needs = needs.rawValue
            return routed
        }.sorted { $0.receivedAt < $1.receivedAt }
    }

    /// The office users a pending document goes to: those of the lowest level at or above the
    /// one it needs whose territory holds the rep (its supervisor, or the sales manager up the
    /// hierarchy), else the back office.
    public func approvers(of document: OfficeDocument) throws(Refusal) -> [String] {
        let needs = document.needs.flatMap(ApprovalLevel.init(rawValue:)) ?? .supervisor
        return try guarded { storage in
            var byLevel: [ApprovalLevel: [String]] = [:]
            for user in try storage.officeUsers() where user.role.approvalLevel >= needs {
                let visible = try storage.visibleReps(for: user)
                if visible == nil || (document.rep.map { visible!.contains($0) } ?? false) { byLevel[user.role.approvalLevel, default: []].append(user.name) }
            }
            return ApprovalLevel.allCases.lazy.compactMap { byLevel[$0] }.first ?? []
        }
    }

    public func missedSyncs(for user: OfficeUser) throws(Refusal) -> [MissedSync] {
        try guarded { storage in
            let visible = try storage.visibleReps(for: user)
            return try storage.missedSyncs(now: now()).filter { visible?.contains($0.rep) ?? true }
        }
    }

    /// The audit log, newest first. A territory's user sees the entries of its reps only; entries
    /// that name no rep (a refused stranger) are for the whole-fleet office.
    public func audit(for user: OfficeUser, limit: Int) throws(Refusal) -> [AuditEntry] {
        guard (1...5000).contains(limit) else { throw .invalid("limit \(limit): give 1 to 5000") }
        return try guarded { storage in
            let visible = try storage.visibleReps(for: user)
            guard let visible else { return try storage.auditLog(limit: limit) }
            // Read deeper than asked, so the territory still gets `limit` entries of its own.
            return Array(try storage.auditLog(limit: limit * 20).filter { $0.rep.map(visible.contains) ?? false }.prefix(limit))
        }
    }

    /// Approves or rejects an order or quote the hub received. It reaches the device with its
    /// next full sync.
    public func decide(_ decision: OfficeDecision, device: String, entity: String, id: String, reason: String?,
                       by user: OfficeUser) throws(Refusal) -> OfficeDocument {
        try guarded { storage in
            // The rep's documents only: the device names the rep, the rep narrows the search.
            guard let rep = try storage.officeDevices().first(where: { $0.id == device })?.rep else {
                throw Refusal.notFound("device \(device)")
            }
            let find = { try storage.officeDocuments(DocumentFilter(rep: rep, entity: entity, limit: 1_000_000)).first { $0.device == device && $0.id == id } }
            guard let document = try find() else {
                throw Refusal.notFound("\(entity) \(id) of device \(device) (the hub has not received it)")
            }
            let visible = try storage.visibleReps(for: user)
            if let visible, !(document.rep.map(visible.contains) ?? false) {
                throw Refusal.forbidden("\(entity) \(id) belongs to a rep outside territory \(user.territory ?? "-")")
            }
            guard document.approval == "pending" else {
                throw Refusal.invalid("\(entity) \(id) is not waiting for an approval (approval: \(document.approval ?? "none"))")
            }
            try storage.decide(decision, on: document, by: user, reason: reason, now: now())
            var decided = document
            decided.approval = decision == .approve ? "approved" : "rejected"
            return try find() ?? decided
        }
    }

    func guarded<T>(_ body: (any OfficeStore) throws -> T) throws(Refusal) -> T {
        do {
            return try body(try openStorage())
        } catch let refusal as Refusal {
            throw refusal
        } catch let refused as ApprovalRefused {
            throw .forbidden(refused.description)
        } catch let error as HubError {
            switch error {
            case .notFound(let what): throw .notFound(what)
            case .invalid(let what): throw .invalid(what)
            case .storage(let what): throw .storage(what)
            }
        } catch {
            throw .storage("\(error)")
        }
    }
}
