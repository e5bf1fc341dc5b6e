import Store

/// The rep's product lookups: find a product by part number or by words of its name (in any
/// order, folded like the customer search, so "lodz" finds "Łódź" and "ВОДА" finds "вода"),
/// and everything an order line needs to know about one: units, prices per level, stock.
public struct Products {
    let device: DeviceDatabase
    public init(_ device: DeviceDatabase) { self.device = device }

    public struct Match: Encodable, Sendable, Equatable {
        public var partNumber: String
        public var name: String
        public var baseUnit: String
        /// Stock at the van and the warehouse less what is reserved, in the base unit.
        public var available: Int64
    }

    /// The first matches of a search and how many matched in all.
    public struct Found: Encodable, Sendable, Equatable {
        public var matches: [Match]
        public var total: Int64
        public var notShown: Int64 { total - Int64(matches.count) }
        public init(matches: [Match], total: Int64) { self.matches = matches; self.total = total }
    }

    public struct Unit: Encodable, Sendable, Equatable {
        public var unit: String
        /// Base units in one of this unit (1 for the base unit itself).
        public var factor: Int64
    }

    public struct Price: Encodable, Sendable, Equatable {
        public var level: String
        public var currency: String
        public var priceMinor: Int64
        public var validUntil: String?
        /// A promo price past its last day: the order capture refuses it.
        public var expired: Bool
    }

    public struct Stock: Encodable, Sendable, Equatable {
        public var location: String
        public var quantity: Int64
        public var reserved: Int64
        /// On hand less reserved (displays, other orders the office knows of).
        public var available: Int64

        public init(location: String, quantity: Int64, reserved: Int64) {
            self.location = location; self.quantity = quantity; self.reserved = reserved; available = quantity - reserved
        }
    }

    public struct Product: Encodable, Sendable, Equatable {
        public var partNumber: String
        public var name: String
        public var baseUnit: String
        public var channel: String
        /// The base unit first, then the others by name.
        public var units: [Unit]
        public var prices: [Price]
        public var stock: [Stock]
    }

    /// The words of a search, folded; empty words dropped.
    static func words(_ text: String) -> [String] {
        SearchFolding.fold(text).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }).map(String.init)
    }

    /// Products whose part number or folded name contains every word of `text`, in any order;
    /// an exact part number comes first, then by name. At most `limit` are returned, `total`
    /// counts them all.
    public func find(_ text: String, limit: Int = 20) throws -> Found {
        let words = Self.words(text)
        guard !words.isEmpty else { return Found(matches: [], total: 0) }
        var conditions: [String] = []
        var arguments: [DatabaseValue] = []
        for word in words {
            conditions.append("(p.name_folded LIKE ? ESCAPE '\\' OR p.part_number LIKE ? ESCAPE '\\')")
            let pattern = "%" + word.replacingLikeWildcards() + "%"
            arguments.append(.text(pattern))
            arguments.append(.text(pattern))
        }
        let condition = conditions.joined(separator: " AND ")
        let exact = SearchFolding.fold(text.trimmingSpaces())
        return try device.guarded {
            let database = device.database
            let total = try database.int64("SELECT count(*) FROM products p WHERE \(condition)", arguments)
            // Stock is summed for the page only, and looked up by its key (location, part): the
            // few locations are listed once per query, so no product scans the stock table.
            let matches = try database.query("""
                SELECT p.part_number, p.name, p.base_unit,
                       (SELECT COALESCE(SUM(s.quantity - s.reserved), 0) FROM stock s
                         WHERE s.location IN (SELECT DISTINCT location FROM stock) AND s.part_number = p.part_number)
                FROM (SELECT part_number, name, base_unit, name_folded FROM products p WHERE \(condition)
                      ORDER BY lower(part_number) = ? DESC, name_folded, part_number LIMIT ?) p
                ORDER BY lower(p.part_number) = ? DESC, p.name_folded, p.part_number
                """, arguments + [.text(exact), .integer(Int64(limit)), .text(exact)]) { row in
                Match(partNumber: row.text(0), name: row.text(1), baseUnit: row.text(2), available: row.int64(3))
            }
            return Found(matches: matches, total: total)
        }
    }

    /// One product in full; `unknownProduct` when the working set does not have it.
    public func show(_ partNumber: String) throws -> Product {
        try device.guarded {
            let database = device.database
            guard var product = try database.first(
                "SELECT part_number, name, base_unit, channel FROM products WHERE part_number = ?", [.text(partNumber)], row: { row in
                    Product(partNumber: row.text(0), name: row.text(1), baseUnit: row.text(2), channel: row.text(3), units: [], prices: [], stock: [])
                }) else {
                throw FieldError.unknownProduct(partNumber, context: "in the working set (`satchel product find WORDS` searches by name)")
            }
            product.units = [Unit(unit: product.baseUnit, factor: 1)] + (try database.query(
                "SELECT unit, factor FROM product_units WHERE part_number = ? AND unit <> ? ORDER BY factor, unit",
                [.text(partNumber), .text(product.baseUnit)]) { Unit(unit: $0.text(0), factor: $0.int64(1)) })
            let today = CalendarDay.string(fromMilliseconds: device.clock.nowMilliseconds())
            product.prices = try database.query("""
                SELECT level, currency, price_minor, valid_until FROM prices WHERE part_number = ?
                ORDER BY currency, CASE level WHEN 'customer' THEN 0 WHEN 'dealer' THEN 1 ELSE 2 END
                """, [.text(partNumber)]) { row in
                let until = row.optionalText(3)
                return Price(level: row.text(0), currency: row.text(1), priceMinor: row.int64(2), validUntil: until,
                             expired: until.map { $0 < today } ?? false)
            }
            product.stock = try database.query(
                "SELECT location, quantity, reserved FROM stock WHERE part_number = ? ORDER BY location", [.text(partNumber)]) { row in
                Stock(location: row.text(0), quantity: row.int64(1), reserved: row.int64(2))
            }
            return product
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
