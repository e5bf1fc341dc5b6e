import Store

/// The equipment the office placed at a customer (coolers, display fridges) and when each was
/// last looked after, for the equipment check on the console.
public struct EquipmentList {
    let device: DeviceDatabase
    public init(_ device: DeviceDatabase) { self.device = device }

    public struct Item: Encodable, Sendable, Equatable {
        public var id: String
        public var kind: String
        public var serial: String
        public var placedOn: String
        /// The newest maintenance recorded on this device, if any.
        public var lastKind: String?
        public var lastAt: Int64?
    }

    /// The customer's equipment by id, each with its newest maintenance on this device.
    public func at(customerID: String) throws -> [Item] {
        try device.guarded {
            try device.database.query("""
                SELECT e.id, e.kind, e.serial, e.placed_on, m.kind, m.at FROM equipment e
                LEFT JOIN maintenance m ON m.id = (SELECT id FROM maintenance WHERE equipment_id = e.id ORDER BY at DESC, id DESC LIMIT 1)
                WHERE e.customer_id = ? ORDER BY e.id
                """, [.text(customerID)]) { row in
                Item(id: row.text(0), kind: row.text(1), serial: row.text(2), placedOn: row.text(3), lastKind: row.optionalText(4), lastAt: row.optionalInt64(5))
            }
        }
    }
}
