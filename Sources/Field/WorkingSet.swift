import Store

/// Master data as the hub sends it: the rep's slice of customers, catalogue, prices, stock,
/// routes and history. Applied as upserts (stock "by part number: insert or update", as the
/// office's ERP does), never touching documents the rep created.
public struct WorkingSet {
    let device: DeviceDatabase
    var database: Database { device.database }
    public init(_ device: DeviceDatabase) { self.device = device }

    public struct Customer: Sendable {
        public var id: String
        public var name: String
        public var address: String
        public var territoryID: String?
        public var currency: String
        public var creditLimitMinor: Int64
        public var balanceMinor: Int64
        public var overdueMinor: Int64
        public var overdueDays: Int64
        public var balanceAsOf: Int64
        public var discipline: Customers.Discipline
        public var defaultLevel: PriceLevel
        public var levels: [PriceLevel]
        public var talkingPoints: [String]

        public init(id: String, name: String, address: String = "", territoryID: String? = nil, currency: String,
                    creditLimitMinor: Int64 = 0, balanceMinor: Int64 = 0, overdueMinor: Int64 = 0, overdueDays: Int64 = 0,
                    balanceAsOf: Int64 = 0, discipline: Customers.Discipline = .strict, defaultLevel: PriceLevel = .customer,
                    levels: [PriceLevel] = [.customer], talkingPoints: [String] = []) {
            self.id = id; self.name = name; self.address = address; self.territoryID = territoryID; self.currency = currency
            self.creditLimitMinor = creditLimitMinor; self.balanceMinor = balanceMinor; self.overdueMinor = overdueMinor
            self.overdueDays = overdueDays; self.balanceAsOf = balanceAsOf; self.discipline = discipline
            self.defaultLevel = defaultLevel; self.levels = levels; self.talkingPoints = talkingPoints
        }
    }

    public struct Product: Sendable {
        public var partNumber: String
        public var name: String
        public var baseUnit: String
        public var channel: String
        /// Larger units and how many base units each holds (box = 12).
        public var units: [(unit: String, factor: Int64)]

        public init(partNumber: String, name: String, baseUnit: String = "pcs", channel: String = "retail", units: [(unit: String, factor: Int64)] = []) {
            self.partNumber = partNumber; self.name = name; self.baseUnit = baseUnit; self.channel = channel; self.units = units
        }
    }

    public struct Price: Sendable {
        public var partNumber: String
        public var level: PriceLevel
        public var currency: String
        public var priceMinor: Int64
        public var validUntil: String?
        public init(partNumber: String, level: PriceLevel, currency: String, priceMinor: Int64, validUntil: String? = nil) {
            self.partNumber = partNumber; self.level = level; self.currency = currency; self.priceMinor = priceMinor; self.validUntil = validUntil
        }
    }

    public struct HistoryOrder: Sendable {
        public var ref: String
        public var customerID: String
        public var day: String
        public var currency: String
        public var paidLate: Bool
        public var lines: [(partNumber: String, quantity: Int64, amountMinor: Int64)]
        public init(ref: String, customerID: String, day: String, currency: String, paidLate: Bool, lines: [(partNumber: String, quantity: Int64, amountMinor: Int64)]) {
            self.ref = ref; self.customerID = customerID; self.day = day; self.currency = currency; self.paidLate = paidLate; self.lines = lines
        }
    }

    public struct DisplayType: Sendable {
        public var code: String
        public var name: String
        public var materials: [(partNumber: String, fixedQuantity: Int64, perSquareMetreMilli: Int64)]
        public init(code: String, name: String, materials: [(partNumber: String, fixedQuantity: Int64, perSquareMetreMilli: Int64)]) {
            self.code = code; self.name = name; self.materials = materials
        }
    }

    /// Applies everything in one transaction: the rep never sees half a catalogue.
    public func apply(_ body: (Writer) throws -> Void) throws {
        try device.write { try body(Writer(database: database)) }
    }

    /// Upserts inside `apply`. Each call is one row; statements are cached.
    public struct Writer {
        let database: Database

        public func territory(id: String, name: String, parentID: String? = nil) throws {
            try database.execute("INSERT INTO territories(id, name, parent_id) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id",
                                 [.text(id), .text(name), DatabaseValue(parentID)])
        }

        public func rep(id: String, name: String, territoryID: String?) throws {
            try database.execute("INSERT INTO reps(id, name, territory_id) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = excluded.name, territory_id = excluded.territory_id",
                                 [.text(id), .text(name), DatabaseValue(territoryID)])
        }

        public func customer(_ c: Customer) throws {
            try database.execute("""
                INSERT INTO customers(id, name, name_folded, address, territory_id, currency, credit_limit_minor, balance_minor,
                                      overdue_minor, overdue_days, balance_as_of, discipline, default_level, talking_points)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET name = excluded.name, name_folded = excluded.name_folded, address = excluded.address,
                    territory_id = excluded.territory_id, currency = excluded.currency, credit_limit_minor = excluded.credit_limit_minor,
                    balance_minor = excluded.balance_minor, overdue_minor = excluded.overdue_minor, overdue_days = excluded.overdue_days,
                    balance_as_of = excluded.balance_as_of, discipline = excluded.discipline, default_level = excluded.default_level,
                    talking_points = excluded.talking_points
                """, [.text(c.id), .text(c.name), .text(SearchFolding.fold(c.name)), .text(c.address), DatabaseValue(c.territoryID),
                      .text(c.currency), .integer(c.creditLimitMinor), .integer(c.balanceMinor), .integer(c.overdueMinor),
                      .integer(c.overdueDays), .integer(c.balanceAsOf), .text(c.discipline.rawValue), .text(c.defaultLevel.rawValue),
                      .text(c.talkingPoints.joined(separator: "\n"))])
            try database.execute("DELETE FROM customer_price_levels WHERE customer_id = ?", [.text(c.id)])
            for level in Set(c.levels + [c.defaultLevel]) {
                try database.execute("INSERT INTO customer_price_levels(customer_id, level) VALUES (?, ?)", [.text(c.id), .text(level.rawValue)])
            }
        }

        public func product(_ p: Product) throws {
            try database.execute("""
                INSERT INTO products(part_number, name, name_folded, base_unit, channel) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(part_number) DO UPDATE SET name = excluded.name, name_folded = excluded.name_folded,
                    base_unit = excluded.base_unit, channel = excluded.channel
                """, [.text(p.partNumber), .text(p.name), .text(SearchFolding.fold(p.name)), .text(p.baseUnit), .text(p.channel)])
            for unit in p.units {
                try database.execute("INSERT INTO product_units(part_number, unit, factor) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET factor = excluded.factor",
                                     [.text(p.partNumber), .text(unit.unit), .integer(unit.factor)])
            }
        }

        public func price(_ p: Price) throws {
            try database.execute("""
                INSERT INTO prices(part_number, level, currency, price_minor, valid_until) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT DO UPDATE SET price_minor = excluded.price_minor, valid_until = excluded.valid_until
                """, [.text(p.partNumber), .text(p.level.rawValue), .text(p.currency), .integer(p.priceMinor), DatabaseValue(p.validUntil)])
        }

        /// Stock of a part at a location ("warehouse", "van:<id>"), insert or update by part number.
        /// Reservations made on the device are kept.
        public func stock(location: String, partNumber: String, quantity: Int64) throws {
            try database.execute("""
                INSERT INTO stock(location, part_number, quantity) VALUES (?, ?, ?)
                ON CONFLICT(location, part_number) DO UPDATE SET quantity = excluded.quantity
                """, [.text(location), .text(partNumber), .integer(quantity)])
        }

        public func route(id: String, repID: String, day: String, customerIDs: [String]) throws {
            try database.execute("INSERT INTO routes(id, rep_id, day) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET rep_id = excluded.rep_id, day = excluded.day",
                                 [.text(id), .text(repID), .text(day)])
            try database.execute("DELETE FROM route_stops WHERE route_id = ?", [.text(id)])
            for (position, customerID) in customerIDs.enumerated() {
                try database.execute("INSERT INTO route_stops(route_id, position, customer_id) VALUES (?, ?, ?)",
                                     [.text(id), .integer(Int64(position + 1)), .text(customerID)])
            }
        }

        public func history(_ order: HistoryOrder) throws {
            let total = order.lines.reduce(Int64(0)) { $0 + $1.amountMinor }
            try database.execute("""
                INSERT INTO history_orders(ref, customer_id, day, total_minor, currency, paid_late) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(ref) DO UPDATE SET total_minor = excluded.total_minor, paid_late = excluded.paid_late
                """, [.text(order.ref), .text(order.customerID), .text(order.day), .integer(total), .text(order.currency), DatabaseValue(order.paidLate)])
            for (index, line) in order.lines.enumerated() {
                try database.execute("""
                    INSERT INTO history_lines(ref, line_no, customer_id, part_number, quantity, amount_minor) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT DO UPDATE SET quantity = excluded.quantity, amount_minor = excluded.amount_minor
                    """, [.text(order.ref), .integer(Int64(index + 1)), .text(order.customerID), .text(line.partNumber),
                          .integer(line.quantity), .integer(line.amountMinor)])
            }
        }

        public func displayType(_ type: DisplayType) throws {
            try database.execute("INSERT INTO display_types(code, name) VALUES (?, ?) ON CONFLICT(code) DO UPDATE SET name = excluded.name",
                                 [.text(type.code), .text(type.name)])
            try database.execute("DELETE FROM display_type_materials WHERE type_code = ?", [.text(type.code)])
            for material in type.materials {
                try database.execute("INSERT INTO display_type_materials(type_code, part_number, fixed_quantity, per_square_metre_milli) VALUES (?, ?, ?, ?)",
                                     [.text(type.code), .text(material.partNumber), .integer(material.fixedQuantity), .integer(material.perSquareMetreMilli)])
            }
        }

        public func equipment(id: String, customerID: String, kind: String, serial: String, placedOn: String) throws {
            try database.execute("""
                INSERT INTO equipment(id, customer_id, kind, serial, placed_on) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET customer_id = excluded.customer_id, kind = excluded.kind, serial = excluded.serial, placed_on = excluded.placed_on
                """, [.text(id), .text(customerID), .text(kind), .text(serial), .text(placedOn)])
        }
    }

    /// Today's route (the stops in order), for the rep's day screen.
    public func route(day: String) throws -> [(position: Int64, customerID: String, name: String)] {
        try device.guarded {
            try database.query("""
                SELECT s.position, s.customer_id, c.name FROM routes r JOIN route_stops s ON s.route_id = r.id
                JOIN customers c ON c.id = s.customer_id WHERE r.day = ? ORDER BY r.id, s.position
                """, [.text(day)]) { ($0.int64(0), $0.text(1), $0.text(2)) }
        }
    }
}
