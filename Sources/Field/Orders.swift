import Store

/// Reads orders back: one in full, or a list for the day's screen.
public struct Orders {
    let device: DeviceDatabase
    public init(_ device: DeviceDatabase) { self.device = device }

    public struct Summary: Codable, Sendable, Equatable {
        public var id: String
        public var customerId: String
        /// nil when the customer is not in the working set (yet): the order is listed all the same,
        /// or the rep might enter it a second time.
        public var customerName: String?
        public var state: OrderState
        public var approval: Approval
        public var holdReason: String?
        public var totalMinor: Int64
        public var currency: String
        public var lineCount: Int64
        public var createdAt: Int64
    }

    /// Some of the orders, newest first, and how many there are in all.
    public struct Page: Sendable, Equatable {
        public var orders: [Summary]
        public var total: Int64
        /// Orders there are beyond the ones shown.
        public var notShown: Int64 { total - Int64(orders.count) }
    }

    public func load(_ orderID: String) throws -> OrderDocument {
        try device.guarded {
            let database = device.database
            guard var order = try database.first(
                """
                SELECT id, customer_id, state, approval, hold_reason, price_level, currency, total_minor, note, created_at, confirmed_at
                FROM orders WHERE id = ?
                """, [.text(orderID)], row: { row in
                    OrderDocument(
                        id: row.text(0), customerId: row.text(1), state: OrderState(rawValue: row.text(2)) ?? .draft,
                        approval: Approval(rawValue: row.text(3)) ?? .none, holdReason: row.optionalText(4), priceLevel: row.text(5),
                        currency: row.text(6), totalMinor: row.int64(7), note: row.text(8), createdAt: row.int64(9),
                        confirmedAt: row.optionalInt64(10), lines: [])
                })
            else { throw FieldError.unknownOrder(orderID) }
            order.lines = try database.query(
                """
                SELECT line_no, part_number, unit, quantity, base_quantity, unit_price_minor, amount_minor
                FROM order_lines WHERE order_id = ? ORDER BY line_no
                """, [.text(orderID)]) { row in
                OrderLine(lineNo: row.int64(0), partNumber: row.text(1), unit: row.text(2), quantity: row.int64(3),
                          baseQuantity: row.int64(4), unitPriceMinor: row.int64(5), amountMinor: row.int64(6))
            }
            return order
        }
    }

    /// Orders newest first, optionally only those in one state; nil `limit` lists them all.
    public func list(state: OrderState? = nil, limit: Int? = nil) throws -> [Summary] {
        try page(state: state, limit: limit).orders
    }

    /// The newest `limit` orders (all when nil) and the count of all that match. A left join: an
    /// order whose customer is not in the working set (restored before the customer came down
    /// again, or dropped from the rep's territory) is still the rep's order.
    public func page(state: OrderState? = nil, limit: Int? = nil) throws -> Page {
        try device.guarded {
            let database = device.database
            let orders = try database.query(
                """
                SELECT o.id, o.customer_id, c.name, o.state, o.approval, o.hold_reason, o.total_minor, o.currency,
                       (SELECT count(*) FROM order_lines l WHERE l.order_id = o.id), o.created_at
                FROM orders o LEFT JOIN customers c ON c.id = o.customer_id
                WHERE ?1 IS NULL OR o.state = ?1
                ORDER BY o.created_at DESC, o.id DESC LIMIT ?2
                """, [DatabaseValue(state?.rawValue), .integer(limit.map(Int64.init) ?? -1)]) { row in
                Summary(id: row.text(0), customerId: row.text(1), customerName: row.optionalText(2),
                        state: OrderState(rawValue: row.text(3)) ?? .draft, approval: Approval(rawValue: row.text(4)) ?? .none,
                        holdReason: row.optionalText(5), totalMinor: row.int64(6), currency: row.text(7),
                        lineCount: row.int64(8), createdAt: row.int64(9))
            }
            var total = Int64(orders.count)
            if let limit, orders.count >= limit {
                total = try database.int64("SELECT count(*) FROM orders WHERE ?1 IS NULL OR state = ?1", [DatabaseValue(state?.rawValue)])
            }
            return Page(orders: orders, total: total)
        }
    }
}
