import Store

/// Payment reminders (FIELD-NOTES §4, issue 17): the customer's open items (unpaid invoices with
/// due dates) as the ERP last sent them, so the rep reminds the customer of what is overdue and
/// of what falls due soon. The hub sends the open items of the customers in the rep's scope
/// (working-set table `open_items`); the device never changes them.
public struct PaymentReminders {
    let device: DeviceDatabase
    public init(_ device: DeviceDatabase) { self.device = device }

    /// Items falling due within this many days are "due soon" (a week: the next visit).
    public static let upcomingDays: Int64 = 7

    public struct Item: Codable, Sendable, Equatable {
        public var ref: String
        public var issuedOn: String?
        public var dueOn: String
        public var amountMinor: Int64
        public var currency: String
        /// Days past the due date; negative: days until it (0: due today).
        public var daysOverdue: Int64
        public var overdue: Bool { daysOverdue > 0 }
        public var dueSoon: Bool { !overdue && -daysOverdue <= PaymentReminders.upcomingDays }

        /// "14 days overdue", "due today", "due in 3 days (2026-12-05)".
        public var when: String {
            if daysOverdue > 0 { return "\(daysOverdue) day\(daysOverdue == 1 ? "" : "s") overdue (due \(dueOn))" }
            if daysOverdue == 0 { return "due today" }
            return "due in \(-daysOverdue) day\(daysOverdue == -1 ? "" : "s") (\(dueOn))"
        }

        enum CodingKeys: String, CodingKey {
            case ref, currency
            case issuedOn = "issued_on"
            case dueOn = "due_on"
            case amountMinor = "amount_minor"
            case daysOverdue = "days_overdue"
        }
    }

    public struct Amount: Codable, Sendable, Equatable {
        public var currency: String
        public var minor: Int64
        public var formatted: String { Money.format(minor, currency) }
        public init(currency: String, minor: Int64) { self.currency = currency; self.minor = minor }
    }

    /// What a stop of the route has to remind of: totals per currency of the overdue items and of
    /// those due soon.
    public struct Summary: Codable, Sendable, Equatable {
        public var overdue: [Amount] = []
        public var dueSoon: [Amount] = []
        public var isEmpty: Bool { overdue.isEmpty && dueSoon.isEmpty }

        enum CodingKeys: String, CodingKey {
            case overdue
            case dueSoon = "due_soon"
        }
    }

    public enum SQL {
        public static let items = """
            SELECT ref, issued_on, due_on, amount_minor, currency, CAST(julianday(?2) - julianday(due_on) AS INTEGER)
            FROM open_items WHERE customer_id = ?1 ORDER BY due_on, ref
            """
    }

    /// The customer's open items, oldest due date first, as of `today` (YYYY-MM-DD).
    public func items(customerID: String, today: String) throws -> [Item] {
        try device.guarded {
            try device.database.query(SQL.items, [.text(customerID), .text(today)]) {
                Item(ref: $0.text(0), issuedOn: $0.optionalText(1), dueOn: $0.text(2), amountMinor: $0.int64(3), currency: $0.text(4), daysOverdue: $0.int64(5))
            }
        }
    }

    /// The overdue and due-soon totals of a customer (items due later are left out).
    public func summary(customerID: String, today: String) throws -> Summary {
        Self.summary(of: try items(customerID: customerID, today: today))
    }

    public static func summary(of items: [Item]) -> Summary {
        func totals(_ chosen: [Item]) -> [Amount] {
            var byCurrency: [String: Int64] = [:]
            for item in chosen { byCurrency[item.currency, default: 0] += item.amountMinor }
            return byCurrency.sorted { $0.key < $1.key }.map { Amount(currency: $0.key, minor: $0.value) }
        }
        return Summary(overdue: totals(items.filter(\.overdue)), dueSoon: totals(items.filter(\.dueSoon)))
    }
}
