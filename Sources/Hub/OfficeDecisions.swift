import Field
import Store
import Sync

/// A device's change that lost to the office's value, as `sync-errors` lists it.
public struct SyncErrorRecord: Codable, Equatable, Sendable {
    public var changeId: String
    public var entityId: String
    public var field: String
    public var deviceValue: String?
    public var hubValue: String?
}

/// What the office decides for the handhelds: document states (the office owns a document's
/// state once it has decided on it, document_states) and what a rep's handhelds carry. A device
/// change that moves the state along the lifecycle from there is taken; one that does not (an
/// invoice asked for an order the office has meanwhile rejected) loses: the office's value
/// stands, and the device's goes into sync_errors, which travel down to the rep. A change the
/// office's state is still ahead of (the office accepted an order before the device uploaded it
/// as confirmed) is no conflict: the office's value stands, without a sync error. The change
/// itself is kept in device_changes either way: nothing is dropped silently.
extension SQLiteHubStorage {
    /// The document a change carries, read with the device's codec: a payload that does not
    /// decode, or that is not the document the change names, refuses the whole batch (nothing
    /// of it is stored), with what is wrong and where.
    static func document(of change: SyncChange) throws -> Document {
        let document: Document
        do { document = try DocumentCodec.decode(change.payload, entity: change.entity) } catch {
            throw HubError.invalid("change \(change.changeId) (\(change.entity) \(change.entityId)): \(error)")
        }
        guard document.id == change.entityId else {
            throw HubError.invalid("change \(change.changeId) names \(change.entity) \(change.entityId) but carries \(document.id)")
        }
        return document
    }

    /// How device_changes keeps a document for the ERP export and duplicate mode: the JSON text
    /// devices sent before the codec (`Document.json`), so rows from before and after the codec
    /// read alike. The office's queries read its summary instead (DocumentSummaries.swift).
    func officeJSON(_ document: Document) throws -> String { try document.json() }

    func reconcileDocumentState(_ change: SyncChange, document: Document, device: String, now: Int64) throws {
        guard case .order(let order) = document else { return }
        let state = order.state.rawValue
        guard let office = try database.first("SELECT state FROM document_states WHERE device_id = ? AND entity = ? AND entity_id = ?",
                                               [.text(device), .text(change.entity), .text(change.entityId)], row: { $0.text(0) }),
              office != state else { return }
        if let from = OrderState(rawValue: office), let to = OrderState(rawValue: state), from.canMove(to: to) {
            try database.execute("UPDATE document_states SET state = ?, updated_at = ? WHERE device_id = ? AND entity = ? AND entity_id = ?",
                                 [.text(state), .integer(now), .text(device), .text(change.entity), .text(change.entityId)])
            return
        }
        // The office answered before this change reached it (it accepted an order the device
        // uploads as confirmed): the device is only behind, not in conflict. The office's value
        // stands and travels down; nothing for the rep to resolve.
        if let from = OrderState(rawValue: state), let to = OrderState(rawValue: office), Self.lifecycle(from, reaches: to) { return }
        try database.execute("""
            INSERT INTO sync_errors(device_id, id, change_id, entity, entity_id, field, device_value, hub_value, reason, at)
            VALUES (?, ?, ?, ?, ?, 'state', ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """, [.text(device), .text(change.changeId + "/state"), .text(change.changeId), .text(change.entity), .text(change.entityId),
                  .text(state), .text(office), .text("the office had already set this \(change.entity) to \(office); its value stands"), .integer(now)])
    }

    /// Whether the lifecycle leads from `from` to `to` in one or more moves.
    static func lifecycle(_ from: OrderState, reaches to: OrderState) -> Bool {
        var seen: Set<OrderState> = [from], frontier = [from]
        while let state = frontier.popLast() {
            for next in OrderState.allCases where state.canMove(to: next) && seen.insert(next).inserted {
                if next == to { return true }
                frontier.append(next)
            }
        }
        return false
    }

    /// The office's decision on one of a device's documents (accepted, rejected, approved...):
    /// it travels down with the next full sync and wins over the device's value.
    public func setDocumentState(device: String, entity: String, entityId: String, state: String, approval: String?, now: Int64) throws {
        try write { try putDocumentState(device: device, entity: entity, entityId: entityId, state: state, approval: approval, now: now) }
    }

    /// The body of `setDocumentState`, inside a write transaction the caller holds.
    func putDocumentState(device: String, entity: String, entityId: String, state: String, approval: String?, now: Int64) throws {
        do {
            try requireDevice(device)
            if entity == "order", OrderState(rawValue: state) == nil {
                throw HubError.invalid("order state \(state) is not one of \(OrderState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            try database.execute("""
                INSERT INTO document_states(device_id, entity, entity_id, state, approval, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(device_id, entity, entity_id) DO UPDATE SET state = excluded.state, approval = excluded.approval, updated_at = excluded.updated_at
                """, [.text(device), .text(entity), .text(entityId), .text(state), DatabaseValue(approval), .integer(now)])
        }
    }

    public typealias SyncErrorRecord = Hub.SyncErrorRecord

    public func syncErrors(device: String) throws -> [SyncErrorRecord] {
        try guarded {
            try requireDevice(device)
            return try database.query("SELECT change_id, entity_id, field, device_value, hub_value FROM sync_errors WHERE device_id = ? ORDER BY at, id", [.text(device)]) {
                SyncErrorRecord(changeId: $0.text(0), entityId: $0.text(1), field: $0.text(2), deviceValue: $0.optionalText(3), hubValue: $0.optionalText(4))
            }
        }
    }

    /// A rep's territory, catalogue channel and role; `channel` `.some(nil)` means every product.
    /// A supervisor's handheld carries the routes and customers of the whole territory below it.
    public func setRepScope(rep: String, territory: String?, channel: String??, role: String?) throws {
        try guarded {
            try writeTransaction {
                guard try self.rep(id: rep) != nil else { throw HubError.notFound("rep \(Displayed.text(rep))") }
                // A territory or channel the master data does not have would put a row on every
                // handheld of the rep that its schema refuses (a territory) or empty the catalogue
                // (a channel): refused by name, nothing changed.
                if let territory {
                    guard try database.first("SELECT 1 FROM territories WHERE id = ?", [.text(territory)], row: { _ in true }) != nil else {
                        throw HubError.notFound("territory \(Displayed.text(territory)) in the master data (known: \(try known("SELECT id FROM territories ORDER BY id")))")
                    }
                    try database.execute("UPDATE reps SET territory_id = ? WHERE id = ?", [.text(territory), .text(rep)])
                }
                if let channel {
                    if let channel, try database.first("SELECT 1 FROM products WHERE channel = ?", [.text(channel)], row: { _ in true }) == nil {
                        throw HubError.notFound("channel \(Displayed.text(channel)): no product of the master data is in it (channels: \(try known("SELECT DISTINCT channel FROM products ORDER BY channel")); 'all' for every product)")
                    }
                    try database.execute("UPDATE reps SET channel = ? WHERE id = ?", [DatabaseValue(channel), .text(rep)])
                }
                if let role {
                    try MasterDataSchema.requireRole(role)
                    try database.execute("UPDATE reps SET role = ? WHERE id = ?", [.text(role), .text(rep)])
                }
            }
        }
    }

    /// The first few values a query lists, for an error that names what exists.
    func known(_ sql: String) throws -> String {
        let values = try database.query(sql + " LIMIT 11") { $0.text(0) }
        if values.isEmpty { return "none: import the master data first, satchel-hub master import" }
        return values.prefix(10).map(Displayed.text).joined(separator: ", ") + (values.count > 10 ? ", ..." : "")
    }

    func requireDevice(_ device: String) throws {
        guard try database.first("SELECT 1 FROM devices WHERE id = ?", [.text(device)], row: { _ in true }) != nil else {
            throw HubError.notFound("device \(Displayed.text(device))")
        }
    }
}
