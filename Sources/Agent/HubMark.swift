import Backup
import Field
import Sync
import Store

/// What a device does with the hub's high-water mark for it (`HubHolding`, in AUTH_RESULT):
/// the hub is the one place that has seen every epoch of the device's id space, so it catches
/// what the card cannot, a card rolled back to an older copy, or a hub restored from a backup.
enum HubMark {
    struct Plan: Equatable {
        /// The hub holds changes of a later epoch than this device's: its ids would collide, so it
        /// moves past them.
        var nextEpoch: Int64?
        /// The hub holds less of this epoch than the device believed it had sent: the upload
        /// position moves back so the next sync sends what the hub lacks (what it has comes back
        /// as duplicates, checked against the content it holds).
        var uploadPosition: Int64?
    }

    static func plan(_ held: HubHolding?, device: DeviceDatabase, epoch: Int64, uploadedBefore: Int64) throws -> Plan {
        guard let held else { return Plan() }
        var plan = Plan()
        if held.highestEpoch > epoch { plan.nextEpoch = held.highestEpoch + 1 }
        let prefix = ClientID.prefix(device: try device.deviceID(), epoch: epoch) + "-"
        let ours = try device.guarded {
            try device.database.first(
                "SELECT min(seq), max(seq) FILTER (WHERE seq <= ?2) FROM changes WHERE substr(change_id, 1, length(?1)) = ?1",
                [.text(prefix), .integer(uploadedBefore)]) { row in row.isNull(0) ? nil : (first: row.int64(0), sent: row.isNull(1) ? nil : row.int64(1)) }
        }
        if let ours = ours ?? nil, let sent = ours.sent, held.sequenceInEpoch < sent {
            plan.uploadPosition = max(held.sequenceInEpoch, ours.first - 1)
        }
        return plan
    }
}

extension DeviceAgent {
    /// Moves the device's id space to `epoch`: on the card first when it is there (a restore
    /// from it must go past this epoch too; otherwise the next snapshot records it), then in
    /// the database, before any id of the new epoch is issued.
    func moveEpoch(_ device: DeviceDatabase, to epoch: Int64) throws {
        if case .success(let attached) = attach(device: try device.deviceID()) {
            try? CardEpoch(layout: attached.layout, key: attached.key, card: card).record(epoch)
        }
        try device.write { try device.database.execute("UPDATE device SET epoch = max(epoch, ?)", [.integer(epoch)]) }
    }
}
