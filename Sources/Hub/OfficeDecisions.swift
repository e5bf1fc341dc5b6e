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

    func requireDevice(_ device: String) throws {
        guard try database.first("SELECT 1 FROM devices WHERE id = ?", [.text(device)], row: { _ in true }) != nil else {
            throw HubError.notFound("device \(Displayed.text(device))")
        }
    }
}
