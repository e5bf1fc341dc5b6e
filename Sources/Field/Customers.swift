import Store

/// The customer check a rep does before selling: can they pay, do they pay on time, what did
/// they buy, what to talk about.
public struct Customers {
    let device: DeviceDatabase
    public init(_ device: DeviceDatabase) { self.device = device }

    public enum Discipline: String, Codable, Sendable, CaseIterable {
        case strict, hesitant, disloyal

        /// The colour the office uses for it (green pays on time, yellow late, red not at all).
        public var colour: String {
            switch self {
            case .strict: return "green"
            case .hesitant: return "yellow"
            case .disloyal: return "red"
            }
        }
    }

    public struct HistoryOrder: Codable, Sendable, Equatable {
        public var ref: String
        public var day: String
        public var totalMinor: Int64
        public var currency: String
        public var paidLate: Bool
    }

    public struct TopPart: Codable, Sendable, Equatable {
        public var partNumber: String
        public var name: String
        public var quantity: Int64
        public var amountMinor: Int64

        public init(partNumber: String, name: String, quantity: Int64, amountMinor: Int64) {
            self.partNumber = partNumber; self.name = name; self.quantity = quantity; self.amountMinor = amountMinor
        }
    }

    /// A payment collected on this device, with the void that cancelled it, if any.
    public struct DevicePayment: Codable, Sendable, Equatable {
        public var id: String
        public var amountMinor: Int64
        public var currency: String
        public var receipt: String
        public var collectedAt: Int64
        public var voidedBy: String?
    }

    public struct Card: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var address: String
        public var currency: String
        public var discipline: Discipline
        public var colour: String
        public var creditLimitMinor: Int64
        public var balanceMinor: Int64
        public var overdueMinor: Int64
        public var overdueDays: Int64
        /// Payments less voids since the office's balance (negative when a payment the office had
        /// already counted was voided since).
        public var collectedSinceBalanceMinor: Int64
        public var priceLevels: [String]
        public var talkingPoints: [String]
        public var recentOrders: [HistoryOrder]
        public var ordersLast365Days: Int64
        public var boughtLast365DaysMinor: Int64
        public var lateShareLast365Days: Int64
        public var topParts: [TopPart]
        public var openDocuments: Int64
        /// The newest payments on this device (so a rep can find the one to void).
        public var recentPayments: [DevicePayment] = []
        /// The ERP's open items, oldest due date first: payment reminders (overdue, due soon, later).
        public var openItems: [PaymentReminders.Item] = []
    }

    public enum SQL {
        public static let header = """
            SELECT id, name, address, currency, discipline, credit_limit_minor, balance_minor, overdue_minor, overdue_days, talking_points,
                   (SELECT COALESCE(SUM(amount_minor), 0) FROM payments p
                     WHERE p.customer_id = c.id AND p.collected_at > c.balance_as_of AND p.currency = c.currency)
                   - (SELECT COALESCE(SUM(amount_minor), 0) FROM payment_voids v
                     WHERE v.customer_id = c.id AND v.at > c.balance_as_of AND v.currency = c.currency),
                   (SELECT group_concat(level, ',') FROM customer_price_levels l WHERE l.customer_id = c.id),
                   (SELECT count(*) FROM orders o WHERE o.customer_id = c.id AND o.state IN ('draft','confirmed'))
            FROM customers c WHERE id = ?
            """
        public static let recentOrders = """
            SELECT ref, day, total_minor, currency, paid_late FROM history_orders
            WHERE customer_id = ? ORDER BY day DESC, ref DESC LIMIT 5
            """
        public static let yearSummary = """
            SELECT count(*), COALESCE(SUM(total_minor), 0), COALESCE(SUM(paid_late), 0) FROM history_orders
            WHERE customer_id = ? AND day >= ?
            """
        public static let recentPayments = """
            SELECT p.id, p.amount_minor, p.currency, p.receipt, p.collected_at, v.id
            FROM payments p LEFT JOIN payment_voids v ON v.payment_id = p.id
            WHERE p.customer_id = ? ORDER BY p.collected_at DESC, p.id DESC LIMIT 5
            """
        public static let topParts = """
            SELECT l.part_number, COALESCE(p.name, ''), SUM(l.quantity) AS bought, SUM(l.amount_minor)
            FROM history_lines l LEFT JOIN products p ON p.part_number = l.part_number
            WHERE l.customer_id = ?
            GROUP BY l.part_number ORDER BY bought DESC, l.part_number LIMIT 5
            """
    }

    public func card(_ customerID: String) throws -> Card {
        try device.guarded {
            let database = device.database
            guard var card = try database.first(SQL.header, [.text(customerID)], row: { row -> Card in
                let discipline = Discipline(rawValue: row.text(4)) ?? .disloyal
                return Card(
                    id: row.text(0), name: row.text(1), address: row.text(2), currency: row.text(3), discipline: discipline,
                    colour: discipline.colour, creditLimitMinor: row.int64(5), balanceMinor: row.int64(6), overdueMinor: row.int64(7),
                    overdueDays: row.int64(8), collectedSinceBalanceMinor: row.int64(10),
                    priceLevels: row.text(11).split(separator: ",").map(String.init).sorted(),
                    talkingPoints: row.text(9).split(separator: "\n").map(String.init),
                    recentOrders: [], ordersLast365Days: 0, boughtLast365DaysMinor: 0, lateShareLast365Days: 0, topParts: [],
                    openDocuments: row.int64(12))
            }) else { throw FieldError.unknownCustomer(customerID) }
            card.recentOrders = try database.query(SQL.recentOrders, [.text(customerID)]) { row in
                HistoryOrder(ref: row.text(0), day: row.text(1), totalMinor: row.int64(2), currency: row.text(3), paidLate: row.int64(4) != 0)
            }
            let yearAgo = CalendarDay.string(fromMilliseconds: device.clock.nowMilliseconds(), addingDays: -365)
            if let (count, total, late) = try database.first(SQL.yearSummary, [.text(customerID), .text(yearAgo)], row: { ($0.int64(0), $0.int64(1), $0.int64(2)) }) {
                card.ordersLast365Days = count
                card.boughtLast365DaysMinor = total
                card.lateShareLast365Days = count == 0 ? 0 : late * 100 / count
            }
            card.recentPayments = try database.query(SQL.recentPayments, [.text(customerID)]) { row in
                DevicePayment(id: row.text(0), amountMinor: row.int64(1), currency: row.text(2), receipt: row.text(3),
                              collectedAt: row.int64(4), voidedBy: row.optionalText(5))
            }
            card.openItems = try PaymentReminders(device).items(customerID: customerID,
                                                                today: CalendarDay.string(fromMilliseconds: device.clock.nowMilliseconds()))
            card.topParts = try database.query(SQL.topParts, [.text(customerID)]) { row in
                TopPart(partNumber: row.text(0), name: row.text(1), quantity: row.int64(2), amountMinor: row.int64(3))
            }
            return card
        }
    }

    public struct Match: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var address: String
        public var discipline: Discipline
    }

    /// Customers whose name contains `text`, ignoring case and diacritics ("lodz" finds "Łódź").
    public func find(_ text: String, limit: Int = 20) throws -> [Match] {
        let folded = SearchFolding.fold(text)
        let pattern = "%" + folded.replacingLikeWildcards() + "%"
        return try device.guarded {
            try device.database.query(
                "SELECT id, name, address, discipline FROM customers WHERE name_folded LIKE ? ESCAPE '\\' OR id = ? ORDER BY name_folded LIMIT ?",
                [.text(pattern), .text(text), .integer(Int64(limit))]) { row in
                Match(id: row.text(0), name: row.text(1), address: row.text(2), discipline: Discipline(rawValue: row.text(3)) ?? .disloyal)
            }
        }
    }
}

extension String {
    func replacingLikeWildcards() -> String {
        var out = ""
        for character in self {
            if character == "%" || character == "_" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
