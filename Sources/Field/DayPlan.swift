import Store

/// The rep's day at a glance, for the console's route and day-summary screens: each stop of the
/// route with what happened there today, and what the day brought in.
public struct DayPlan {
    let device: DeviceDatabase
    public init(_ device: DeviceDatabase) { self.device = device }

    public struct Stop: Sendable, Equatable {
        public var position: Int64
        public var customerId: String
        public var name: String
        public var discipline: Customers.Discipline
        public var overdueMinor: Int64
        public var currency: String
        /// The outcome of today's last visit there; nil: not visited yet.
        public var visitOutcome: String?
        public var ordersToday: Int64
        public var paymentsToday: Int64
        /// The ERP's open items there: overdue, and due within `PaymentReminders.upcomingDays`.
        public var reminders = PaymentReminders.Summary()
    }

    public struct Summary: Sendable, Equatable {
        public struct Amount: Sendable, Equatable {
            public var currency: String
            public var minor: Int64
        }
        public var day: String
        public var orders: Int64
        public var ordersHeld: Int64
        public var orderTotals: [Amount]
        /// Payments less voids of the day, per currency: all methods, and cash alone.
        public var collected: [Amount]
        public var collectedCash: [Amount]
        public var visits: Int64
        public var unsentChanges: Int64
    }

    public func route(day: String) throws -> [Stop] {
        let start = CalendarDay.startOfDay(containing: device.clock.nowMilliseconds())
        let reminders = PaymentReminders(device)
        return try device.guarded {
            // The reminders as of the route's day: the day the rep stands at the customer's.
            try device.database.query("""
                SELECT s.position, c.id, c.name, c.discipline, c.overdue_minor, c.currency,
                       (SELECT v.outcome FROM visits v WHERE v.customer_id = c.id AND v.at >= ?2 ORDER BY v.at DESC LIMIT 1),
                       (SELECT count(*) FROM orders o WHERE o.customer_id = c.id AND o.created_at >= ?2),
                       (SELECT count(*) FROM payments p WHERE p.customer_id = c.id AND p.collected_at >= ?2)
                FROM routes r JOIN route_stops s ON s.route_id = r.id JOIN customers c ON c.id = s.customer_id
                WHERE r.day = ?1 ORDER BY s.position
                """, [.text(day), .integer(start)]) { row in
                Stop(position: row.int64(0), customerId: row.text(1), name: row.text(2),
                     discipline: Customers.Discipline(rawValue: row.text(3)) ?? .disloyal, overdueMinor: row.int64(4), currency: row.text(5),
                     visitOutcome: row.optionalText(6), ordersToday: row.int64(7), paymentsToday: row.int64(8))
            }.map { stop in
                var stop = stop
                stop.reminders = try reminders.summary(customerID: stop.customerId, today: day)
                return stop
            }
        }
    }

    /// Today's figures (the device's local day).
    public func summary() throws -> Summary {
        let now = device.clock.nowMilliseconds()
        let start = CalendarDay.startOfDay(containing: now)
        return try device.guarded {
            let database = device.database
            // Payments less the voids made today, per currency; ?2 narrows to one method.
            let collected = { (method: String?) in
                try database.query("""
                    SELECT currency, SUM(minor) FROM (
                      SELECT currency, amount_minor AS minor FROM payments WHERE collected_at >= ?1 AND (?2 IS NULL OR method = ?2)
                      UNION ALL
                      SELECT v.currency, -v.amount_minor FROM payment_voids v JOIN payments p ON p.id = v.payment_id
                      WHERE v.at >= ?1 AND (?2 IS NULL OR p.method = ?2)
                    ) GROUP BY currency ORDER BY currency
                    """, [.integer(start), DatabaseValue(method)]) { Summary.Amount(currency: $0.text(0), minor: $0.int64(1)) }
            }
            return Summary(
                day: CalendarDay.string(fromMilliseconds: now),
                orders: try database.int64("SELECT count(*) FROM orders WHERE created_at >= ?", [.integer(start)]),
                ordersHeld: try database.int64("SELECT count(*) FROM orders WHERE created_at >= ? AND approval = 'pending'", [.integer(start)]),
                orderTotals: try database.query(
                    "SELECT currency, SUM(total_minor) FROM orders WHERE created_at >= ? AND state <> 'draft' GROUP BY currency ORDER BY currency",
                    [.integer(start)]) { Summary.Amount(currency: $0.text(0), minor: $0.int64(1)) },
                collected: try collected(nil),
                collectedCash: try collected("cash"),
                visits: try database.int64("SELECT count(*) FROM visits WHERE at >= ?", [.integer(start)]),
                unsentChanges: try database.int64(
                    "SELECT count(*) FROM changes WHERE seq > (SELECT CAST(value AS INTEGER) FROM sync_state WHERE key = 'uploaded_through_seq')"))
        }
    }
}
