import Store

/// The rep's lists of the documents on this device (the day's payments, visits, quotes,
/// complaints, display requests), newest first, each with the customer's name when the working
/// set has it, and the customer search by name, id and address.
public struct DocumentLists {
    let device: DeviceDatabase
    public init(_ device: DeviceDatabase) { self.device = device }

    /// Some rows, and how many matched in all.
    public struct Page<Row: Encodable & Sendable & Equatable>: Encodable, Sendable, Equatable {
        public var rows: [Row]
        public var total: Int64
        public var notShown: Int64 { total - Int64(rows.count) }
    }

    public struct PaymentRow: Encodable, Sendable, Equatable {
        public var id: String
        public var customerId: String
        public var customerName: String?
        public var amountMinor: Int64
        public var currency: String
        public var method: String
        public var receipt: String
        public var collectedAt: Int64
        public var voidedBy: String?
    }

    public struct VisitRow: Encodable, Sendable, Equatable {
        public var id: String
        public var customerId: String
        public var customerName: String?
        public var at: Int64
        public var outcome: String
        public var note: String
    }

    public struct QuoteRow: Encodable, Sendable, Equatable {
        public var id: String
        public var customerId: String
        public var customerName: String?
        public var totalMinor: Int64
        public var currency: String
        public var discountBasisPoints: Int64
        public var approval: String
        public var holdReason: String?
        public var at: Int64
    }

    public struct ComplaintRow: Encodable, Sendable, Equatable {
        public var id: String
        public var customerId: String
        public var customerName: String?
        public var category: String
        public var state: String
        public var description: String
        public var orderRef: String?
        public var partNumber: String?
        public var at: Int64
    }

    public struct DisplayRequestRow: Encodable, Sendable, Equatable {
        public var id: String
        public var customerId: String
        public var customerName: String?
        public var typeCode: String
        public var widthCm: Int64
        public var heightCm: Int64
        public var state: String
        public var at: Int64
    }

    /// Rows of one day (`day` as YYYY-MM-DD; nil: every day), newest first, at most `limit`.
    /// The day is the device's local calendar day, the same one `status` counts "today" in.
    func page<Row>(_ sql: String, day: String?, limit: Int?, at: (Row) -> Int64, row: (Statement) -> Row) throws -> Page<Row> {
        try device.guarded {
            let all = try device.database.query(sql, [], row: row)
            let matching = day.map { day in all.filter { CalendarDay.string(fromMilliseconds: at($0)) == day } } ?? all
            return Page(rows: limit.map { Array(matching.prefix($0)) } ?? matching, total: Int64(matching.count))
        }
    }

    public func payments(day: String?, limit: Int? = nil) throws -> Page<PaymentRow> {
        try page("""
            SELECT p.id, p.customer_id, c.name, p.amount_minor, p.currency, p.method, p.receipt, p.collected_at, v.id
            FROM payments p LEFT JOIN customers c ON c.id = p.customer_id LEFT JOIN payment_voids v ON v.payment_id = p.id
            ORDER BY p.collected_at DESC, p.id DESC
            """, day: day, limit: limit, at: \.collectedAt) { row in
            PaymentRow(id: row.text(0), customerId: row.text(1), customerName: row.optionalText(2), amountMinor: row.int64(3),
                       currency: row.text(4), method: row.text(5), receipt: row.text(6), collectedAt: row.int64(7), voidedBy: row.optionalText(8))
        }
    }

    public func visits(day: String?, limit: Int? = nil) throws -> Page<VisitRow> {
        try page("""
            SELECT v.id, v.customer_id, c.name, v.at, v.outcome, v.note
            FROM visits v LEFT JOIN customers c ON c.id = v.customer_id ORDER BY v.at DESC, v.id DESC
            """, day: day, limit: limit, at: \.at) { row in
            VisitRow(id: row.text(0), customerId: row.text(1), customerName: row.optionalText(2), at: row.int64(3),
                     outcome: row.text(4), note: row.text(5))
        }
    }

    public func quotes(day: String?, limit: Int? = nil) throws -> Page<QuoteRow> {
        try page("""
            SELECT q.id, q.customer_id, c.name, q.total_minor, q.currency, q.discount_basis_points, q.approval, q.hold_reason, q.at
            FROM quotes q LEFT JOIN customers c ON c.id = q.customer_id ORDER BY q.at DESC, q.id DESC
            """, day: day, limit: limit, at: \.at) { row in
            QuoteRow(id: row.text(0), customerId: row.text(1), customerName: row.optionalText(2), totalMinor: row.int64(3),
                     currency: row.text(4), discountBasisPoints: row.int64(5), approval: row.text(6), holdReason: row.optionalText(7),
                     at: row.int64(8))
        }
    }

    public func complaints(day: String?, limit: Int? = nil) throws -> Page<ComplaintRow> {
        try page("""
            SELECT k.id, k.customer_id, c.name, k.category, k.state, k.description, k.order_ref, k.part_number, k.at
            FROM complaints k LEFT JOIN customers c ON c.id = k.customer_id ORDER BY k.at DESC, k.id DESC
            """, day: day, limit: limit, at: \.at) { row in
            ComplaintRow(id: row.text(0), customerId: row.text(1), customerName: row.optionalText(2), category: row.text(3),
                         state: row.text(4), description: row.text(5), orderRef: row.optionalText(6), partNumber: row.optionalText(7),
                         at: row.int64(8))
        }
    }

    public func displayRequests(day: String?, limit: Int? = nil) throws -> Page<DisplayRequestRow> {
        try page("""
            SELECT d.id, d.customer_id, c.name, d.type_code, d.width_cm, d.height_cm, d.state, d.at
            FROM display_requests d LEFT JOIN customers c ON c.id = d.customer_id ORDER BY d.at DESC, d.id DESC
            """, day: day, limit: limit, at: \.at) { row in
            DisplayRequestRow(id: row.text(0), customerId: row.text(1), customerName: row.optionalText(2), typeCode: row.text(3),
                              widthCm: row.int64(4), heightCm: row.int64(5), state: row.text(6), at: row.int64(7))
        }
    }

    /// The display types a rep may request, by code.
    public func displayTypes() throws -> [(code: String, name: String)] {
        try device.guarded { try device.database.query("SELECT code, name FROM display_types ORDER BY code") { ($0.text(0), $0.text(1)) } }
    }

    /// One quote with its lines; `unknownQuote`-like error (invalid input naming the id) when absent.
    public func quote(_ id: String) throws -> QuoteDocument {
        try device.guarded {
            let database = device.database
            guard var quote = try database.first(
                "SELECT id, customer_id, currency, discount_basis_points, total_minor, approval, hold_reason, at FROM quotes WHERE id = ?",
                [.text(id)], row: { row in
                    QuoteDocument(id: row.text(0), customerId: row.text(1), currency: row.text(2), discountBasisPoints: row.int64(3),
                                  totalMinor: row.int64(4), approval: Approval(rawValue: row.text(5)) ?? .none,
                                  holdReason: row.optionalText(6), at: row.int64(7), lines: [])
                }) else {
                throw FieldError.invalidInput(what: "quote", value: id, reason: "no such quote on this device (`satchel quote list --all` lists them)")
            }
            quote.lines = try database.query(
                "SELECT line_no, part_number, quantity, unit_price_minor, amount_minor FROM quote_lines WHERE quote_id = ? ORDER BY line_no",
                [.text(id)]) { row in
                QuoteLine(lineNo: row.int64(0), partNumber: row.text(1), quantity: row.int64(2), unitPriceMinor: row.int64(3), amountMinor: row.int64(4))
            }
            return quote
        }
    }
}

extension Customers {
    /// The first matches of a customer search and how many matched in all.
    public struct Found: Encodable, Sendable, Equatable {
        public var matches: [Match]
        public var total: Int64
        public var notShown: Int64 { total - Int64(matches.count) }
        public init(matches: [Match], total: Int64) { self.matches = matches; self.total = total }
    }

    /// Customers whose name, id or address holds every word of `text`, in any order, ignoring
    /// case and diacritics ("lodz piotrkowska" finds "ul. Piotrkowska 12, Łódź"). An exact id
    /// comes first, then by name. Addresses have no folded column, so they are folded here.
    public func search(_ text: String, limit: Int = 20) throws -> Found {
        try SearchIndex(self).search(text, limit: limit)
    }

    /// Every customer folded once, for searching as the rep types (the console keeps one for its
    /// session; the working set does not change under it).
    public struct SearchIndex: Sendable {
        struct Entry: Sendable {
            var match: Match
            /// Folded name, id and address as UTF-8: searched byte-wise, thousands per keypress.
            var haystack: [UInt8]
        }
        let entries: [Entry]

        public init(_ customers: Customers) throws {
            entries = try customers.device.guarded {
                try customers.device.database.query("SELECT id, name, address, discipline, name_folded FROM customers ORDER BY name_folded, id") { row in
                    let id = row.text(0)
                    return Entry(match: Match(id: id, name: row.text(1), address: row.text(2), discipline: Discipline(rawValue: row.text(3)) ?? .disloyal),
                                 haystack: Array((row.text(4) + " " + SearchFolding.fold(id) + " " + SearchFolding.fold(row.text(2))).utf8))
                }
            }
        }

        public func search(_ text: String, limit: Int = 20) -> Found {
            let words = Products.words(text).map { Array($0.utf8) }
            guard !words.isEmpty else { return Found(matches: [], total: 0) }
            let exact = text.trimmingSpaces()
            var exactMatch: [Match] = []
            var matches: [Match] = []
            var total: Int64 = 0
            for entry in entries where words.allSatisfy({ Self.contains(entry.haystack, $0) }) {
                total += 1
                if entry.match.id == exact { exactMatch.append(entry.match) } else if matches.count < limit { matches.append(entry.match) }
            }
            return Found(matches: Array((exactMatch + matches).prefix(limit)), total: total)
        }

        /// Whether `needle` occurs in `haystack` (both folded UTF-8, so a byte match is a text match).
        static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
            guard needle.count <= haystack.count, let first = needle.first else { return needle.isEmpty }
            let last = haystack.count - needle.count
            var start = 0
            while start <= last {
                if haystack[start] == first {
                    var index = 1
                    while index < needle.count && haystack[start + index] == needle[index] { index += 1 }
                    if index == needle.count { return true }
                }
                start += 1
            }
            return false
        }
    }
}

extension CalendarDay {
    /// Whether `text` is a day as `YYYY-MM-DD` (month 01-12, day 01-31).
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-") else { return false }
        let digits = [0, 1, 2, 3, 5, 6, 8, 9]
        guard digits.allSatisfy({ bytes[$0] >= 48 && bytes[$0] <= 57 }) else { return false }
        let month = Int(bytes[5] - 48) * 10 + Int(bytes[6] - 48)
        let day = Int(bytes[8] - 48) * 10 + Int(bytes[9] - 48)
        return (1...12).contains(month) && (1...31).contains(day)
    }
}
