import Store

/// Captures the rep's documents. Every method is one write transaction holding the document
/// and its change-journal entry: when it returns, both are on stable storage (acknowledged);
/// when it throws, nothing was written. Input is checked inside the same transaction, so the
/// check and the write see the same working set.
public final class Capture {
    public let device: DeviceDatabase
    /// The bounds on amounts, per currency (repro 8 of issue 10: without them one mistyped
    /// payment clears every hold rule for a customer).
    public let limits: MoneyLimits
    var database: Database { device.database }

    public init(_ device: DeviceDatabase, limits: MoneyLimits = .standard) {
        self.device = device
        self.limits = limits
    }

    // MARK: SQL (public so the benchmark can issue exactly the same statements through raw C calls)

    public enum SQL {
        public static let customerForOrder = """
            SELECT c.currency, c.default_level, c.credit_limit_minor, c.balance_minor, c.overdue_minor, c.overdue_days,
                   (SELECT COALESCE(SUM(amount_minor), 0) FROM payments p
                     WHERE p.customer_id = c.id AND p.collected_at > c.balance_as_of AND p.currency = c.currency)
                   - (SELECT COALESCE(SUM(amount_minor), 0) FROM payment_voids v
                     WHERE v.customer_id = c.id AND v.at > c.balance_as_of AND v.currency = c.currency),
                   (SELECT COALESCE(SUM(total_minor), 0) FROM orders o
                     WHERE o.customer_id = c.id AND o.state IN ('confirmed','sent','accepted') AND o.confirmed_at > c.balance_as_of),
                   (SELECT group_concat(level, ',') FROM customer_price_levels l WHERE l.customer_id = c.id)
            FROM customers c WHERE c.id = ?
            """
        public static let priceLine = """
            SELECT p.base_unit, pr.price_minor, pr.valid_until,
                   (SELECT factor FROM product_units u WHERE u.part_number = p.part_number AND u.unit = ?2)
            FROM products p
            LEFT JOIN prices pr ON pr.part_number = p.part_number AND pr.level = ?3 AND pr.currency = ?4
            WHERE p.part_number = ?1
            """
        /// An order is (re)written as a draft first: lines may only change while it is one.
        public static let insertOrder = """
            INSERT INTO orders(id, customer_id, state, approval, hold_reason, price_level, currency, total_minor, note, created_at, confirmed_at)
            VALUES (?, ?, 'draft', 'none', NULL, ?, ?, 0, ?, ?, NULL)
            ON CONFLICT(id) DO UPDATE SET state = 'draft'
            """
        public static let clearLines = "DELETE FROM order_lines WHERE order_id = ?"
        public static let insertLine = """
            INSERT INTO order_lines(order_id, line_no, part_number, unit, quantity, base_quantity, unit_price_minor, amount_minor)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """
        public static let finishOrder = "UPDATE orders SET state = ?, approval = ?, hold_reason = ?, total_minor = ?, confirmed_at = ? WHERE id = ?"
    }

    // MARK: Orders

    /// Captures a whole order in one transaction; with `confirm`, it is confirmed too (and held
    /// for approval when the customer is in arrears or over the credit limit).
    public func createOrder(customerID: String, priceLevel: String? = nil, lines: [OrderLineRequest],
                            confirm: Bool, note: String = "") throws -> Acknowledged<OrderDocument> {
        if confirm && lines.isEmpty {
            throw FieldError.invalidInput(what: "order", value: customerID, reason: "a confirmed order needs at least one line (--line PART:QTY)")
        }
        try checkText(note, what: "note", maximum: 2_000)
        return try device.write {
            let draft = try pricedDraft(customerID: customerID, priceLevel: priceLevel, lines: lines, note: note)
            var order = draft.order
            order.id = try device.nextID()
            if confirm { decideApproval(&order, customer: draft.customer, rule: try approvalRule(), now: draft.now) }
            let changeID = try save(.order(order), action: confirm ? "confirmed" : "created", at: draft.now)
            return Acknowledged(document: order, changeId: changeID)
        }
    }

    /// The order `createOrder(..., confirm: true)` would save, priced and with the credit rule
    /// applied (held for approval, and why), without writing anything: the console shows it
    /// before the rep saves. Throws as `createOrder` would for a bad line or level.
    public func previewOrder(customerID: String, priceLevel: String? = nil, lines: [OrderLineRequest]) throws -> OrderDocument {
        try device.guarded {
            try database.transaction(.deferred) {
                let draft = try pricedDraft(customerID: customerID, priceLevel: priceLevel, lines: lines, note: "")
                var order = draft.order
                if !lines.isEmpty { decideApproval(&order, customer: draft.customer, rule: try approvalRule(), now: draft.now) }
                return order
            }
        }
    }

    /// A customer's credit as the hold rule sees it: what is overdue after the payments since the
    /// office's balance, the exposure (balance - collected + open orders) and what is left of the
    /// limit before an order would be held.
    public struct CreditPosition: Sendable, Equatable {
        public var currency: String
        public var creditLimitMinor: Int64
        public var exposureMinor: Int64
        public var overdueMinor: Int64
        public var overdueDays: Int64
        public var leftMinor: Int64 { creditLimitMinor - exposureMinor }
    }

    public func creditPosition(customerID: String) throws -> CreditPosition {
        try device.guarded {
            let terms = try customerTerms(customerID)
            return CreditPosition(
                currency: terms.currency, creditLimitMinor: terms.creditLimitMinor,
                exposureMinor: terms.balanceMinor - terms.collectedSinceBalanceMinor + terms.openOrdersMinor,
                overdueMinor: max(terms.overdueMinor - terms.collectedSinceBalanceMinor, 0), overdueDays: terms.overdueDays)
        }
    }

    /// Adds lines to a draft order.
    public func addLines(orderID: String, lines: [OrderLineRequest]) throws -> Acknowledged<OrderDocument> {
        guard !lines.isEmpty else {
            throw FieldError.invalidInput(what: "order \(orderID)", value: "", reason: "no line to add (PART:QTY)")
        }
        return try device.write {
            var order = try Orders(device).load(orderID)
            guard order.state == .draft else { throw FieldError.orderNotDraft(id: orderID, state: order.state.rawValue) }
            let now = device.clock.nowMilliseconds()
            let today = CalendarDay.string(fromMilliseconds: now)
            for request in lines {
                let line = try price(request, lineNo: Int64(order.lines.count + 1), level: order.priceLevel, currency: order.currency, today: today)
                order.lines.append(line)
                order.totalMinor = try limits.documentTotal(order.totalMinor, adding: line.amountMinor, currency: order.currency, what: "order \(orderID)")
            }
            let changeID = try save(.order(order), action: "lines_added", at: now)
            return Acknowledged(document: order, changeId: changeID)
        }
    }

    /// Confirms a draft: from now on its lines are frozen and it waits for sync.
    public func confirmOrder(_ orderID: String) throws -> Acknowledged<OrderDocument> {
        try device.write {
            let now = device.clock.nowMilliseconds()
            let order = try confirmedDraft(orderID, now: now)
            let changeID = try save(.order(order), action: "confirmed", at: now)
            return Acknowledged(document: order, changeId: changeID)
        }
    }

    /// The order `confirmOrder` would save, with the credit rule and the rep's limits applied
    /// (held for approval, and why and by whom), without writing anything: `satchel order
    /// confirm --check`. Throws as `confirmOrder` would for an unknown order, one that is not a
    /// draft or one without lines.
    public func previewConfirm(_ orderID: String) throws -> OrderDocument {
        try device.guarded {
            try database.transaction(.deferred) {
                try confirmedDraft(orderID, now: device.clock.nowMilliseconds())
            }
        }
    }

    /// The draft `orderID` as confirming it makes it, not saved: one rule for the confirm and its preview.
    private func confirmedDraft(_ orderID: String, now: Int64) throws -> OrderDocument {
        var order = try Orders(device).load(orderID)
        guard order.state == .draft else { throw FieldError.invalidTransition(id: orderID, from: order.state.rawValue, to: "confirmed") }
        guard !order.lines.isEmpty else {
            throw FieldError.invalidInput(what: "order", value: orderID, reason: "has no lines; add one with `satchel order add-line \(orderID) PART:QTY`")
        }
        decideApproval(&order, customer: try customerTerms(order.customerId), rule: try approvalRule(), now: now)
        return order
    }

    /// Moves an order along its lifecycle (sync records `sent`, the office's answers, and the
    /// rep's invoice request), refusing moves the lifecycle does not allow.
    public func advanceOrder(_ orderID: String, to next: OrderState) throws -> Acknowledged<OrderDocument> {
        try device.write {
            var order = try Orders(device).load(orderID)
            guard order.state.canMove(to: next) else {
                throw FieldError.invalidTransition(id: orderID, from: order.state.rawValue, to: next.rawValue)
            }
            if next == .invoiceRequested && order.approval == .pending {
                throw FieldError.invalidTransition(id: orderID, from: "\(order.state.rawValue) (held for approval)", to: next.rawValue)
            }
            order.state = next
            let now = device.clock.nowMilliseconds()
            let changeID = try save(.order(order), action: next.rawValue, at: now)
            return Acknowledged(document: order, changeId: changeID)
        }
    }

    /// Cancels a draft the customer no longer wants. The journal keeps the draft's last state
    /// with `state: cancelled` (the hub and a restore learn of it); the device drops the order and
    /// its lines, so it no longer counts towards the customer's open orders. A confirmed order
    /// is a promise to the customer and is never cancelled here (the office rejects it).
    public func cancelOrder(_ orderID: String) throws -> Acknowledged<OrderDocument> {
        try device.write {
            var order = try Orders(device).load(orderID)
            guard order.state.canMove(to: .cancelled) else {
                throw FieldError.invalidTransition(id: orderID, from: order.state.rawValue, to: "cancelled (only a draft can be cancelled; the office rejects a confirmed order)")
            }
            let now = device.clock.nowMilliseconds()
            order.state = .cancelled
            let changeID = try save(.order(order), action: "cancelled", at: now)
            return Acknowledged(document: order, changeId: changeID)
        }
    }

    /// Removes line `lineNo` of a draft; the lines after it move up one (line numbers stay
    /// 1...n, as the office expects) and the total is recomputed.
    public func removeLine(orderID: String, lineNo: Int64) throws -> Acknowledged<OrderDocument> {
        try device.write {
            var order = try Orders(device).load(orderID)
            guard order.state == .draft else { throw FieldError.orderNotDraft(id: orderID, state: order.state.rawValue) }
            guard let index = order.lines.firstIndex(where: { $0.lineNo == lineNo }) else {
                throw FieldError.invalidInput(what: "order \(orderID) line", value: "\(lineNo)",
                                              reason: order.lines.isEmpty ? "the order has no lines" : "use a line number from 1 to \(order.lines.count) (`satchel order show \(orderID)`)")
            }
            order.lines.remove(at: index)
            order.totalMinor = 0
            for position in order.lines.indices {
                order.lines[position].lineNo = Int64(position + 1)
                order.totalMinor = try limits.documentTotal(order.totalMinor, adding: order.lines[position].amountMinor, currency: order.currency, what: "order \(orderID)")
            }
            let changeID = try save(.order(order), action: "line_removed", at: device.clock.nowMilliseconds())
            return Acknowledged(document: order, changeId: changeID)
        }
    }

    /// Writes the document through the one write path replay uses too, and journals it: both in
    /// the caller's transaction.
    private func save(_ document: Document, action: String, at now: Int64) throws -> String {
        try DocumentStore(database: database).write(document)
        return try device.appendChange(document, action: action, at: now)
    }

    /// A draft order (no id yet) for the customer at `priceLevel` (the customer's default when
    /// nil), its lines priced and totalled as of now, inside the caller's transaction: what
    /// `createOrder` saves and `previewOrder` shows are priced alike. Throws for a level the
    /// customer does not have and for a bad line.
    private func pricedDraft(customerID: String, priceLevel: String?, lines: [OrderLineRequest], note: String)
        throws -> (order: OrderDocument, customer: CustomerTerms, now: Int64) {
        let customer = try customerTerms(customerID)
        let level = priceLevel ?? customer.defaultLevel
        guard customer.levels.contains(level) else {
            throw FieldError.priceLevelUnavailable(customer: customerID, level: level, available: customer.levels)
        }
        let now = device.clock.nowMilliseconds()
        let today = CalendarDay.string(fromMilliseconds: now)
        var order = OrderDocument(
            id: "", customerId: customerID, state: .draft, approval: .none, holdReason: nil, priceLevel: level,
            currency: customer.currency, totalMinor: 0, note: note, createdAt: now, confirmedAt: nil, lines: [])
        for (index, request) in lines.enumerated() {
            let line = try price(request, lineNo: Int64(index + 1), level: level, currency: customer.currency, today: today)
            order.lines.append(line)
            order.totalMinor = try limits.documentTotal(order.totalMinor, adding: line.amountMinor, currency: order.currency, what: "order")
        }
        return (order, customer, now)
    }

    struct CustomerTerms {
        var currency: String
        var defaultLevel: String
        var creditLimitMinor: Int64
        var balanceMinor: Int64
        var overdueMinor: Int64
        var overdueDays: Int64
        var collectedSinceBalanceMinor: Int64
        var openOrdersMinor: Int64
        var levels: [String]
    }

    private func customerTerms(_ customerID: String) throws -> CustomerTerms {
        let statement = try database.statement(SQL.customerForOrder)
        try statement.bind(customerID, at: 1)
        defer { statement.reset() }
        guard try statement.step() else { throw FieldError.unknownCustomer(customerID) }
        return CustomerTerms(
            currency: statement.text(0), defaultLevel: statement.text(1), creditLimitMinor: statement.int64(2),
            balanceMinor: statement.int64(3), overdueMinor: statement.int64(4), overdueDays: statement.int64(5),
            collectedSinceBalanceMinor: statement.int64(6), openOrdersMinor: statement.int64(7),
            levels: statement.text(8).split(separator: ",").map(String.init).sorted())
    }

    /// The arrears rule (docs/rep-guide.md#orders-held-for-approval): an order is held when the
    /// customer still has overdue debt after the payments collected since the office's last
    /// balance, or when it would take the customer's exposure (balance - collected + open
    /// orders + this order) over the credit limit, or when its value is over the rep's limit
    /// (`approval_limits`, from the office). The order is saved either way; held ones wait for
    /// the level the limits name (the supervisor, or the sales manager for a larger value)
    /// instead of going to the warehouse, and the reason says who.
    func decideApproval(_ order: inout OrderDocument, customer: CustomerTerms, rule: ApprovalRule, now: Int64) {
        var reasons: [String] = []
        let overdue = customer.overdueMinor - customer.collectedSinceBalanceMinor
        if overdue > 0 {
            reasons.append("customer has \(Money.format(overdue, customer.currency)) overdue (\(customer.overdueDays) days)")
        }
        let exposure = customer.balanceMinor - customer.collectedSinceBalanceMinor + customer.openOrdersMinor + order.totalMinor
        if exposure > customer.creditLimitMinor {
            reasons.append("order takes exposure to \(Money.format(exposure, customer.currency)), over the credit limit of \(Money.format(customer.creditLimitMinor, customer.currency))")
        }
        let held = !reasons.isEmpty
        if let overLimit = rule.overRepLimit(discountBasisPoints: 0, totalMinor: order.totalMinor, currency: order.currency, what: "order") {
            reasons.append(overLimit)
        }
        if !reasons.isEmpty {
            let level = rule.level(discountBasisPoints: 0, totalMinor: order.totalMinor, currency: order.currency, held: held)
            reasons[reasons.count - 1] += "; approval by \(level.spoken)"
        }
        order.state = .confirmed
        order.confirmedAt = now
        order.approval = reasons.isEmpty ? .none : .pending
        order.holdReason = reasons.isEmpty ? nil : reasons.joined(separator: "; ")
    }

    private func price(_ request: OrderLineRequest, lineNo: Int64, level: String, currency: String, today: String) throws -> OrderLine {
        let statement = try database.statement(SQL.priceLine)
        try statement.bind(request.partNumber, at: 1)
        try statement.bind(request.unit ?? "", at: 2)
        try statement.bind(level, at: 3)
        try statement.bind(currency, at: 4)
        defer { statement.reset() }
        guard try statement.step() else {
            throw FieldError.unknownProduct(request.partNumber, context: "on line \(lineNo)")
        }
        let baseUnit = statement.text(0)
        let unit = request.unit ?? baseUnit
        var factor: Int64 = 1
        if unit != baseUnit {
            guard !statement.isNull(3) else {
                statement.reset()
                let known = try database.query("SELECT unit FROM product_units WHERE part_number = ? ORDER BY unit", [.text(request.partNumber)]) { $0.text(0) }
                throw FieldError.unknownUnit(part: request.partNumber, unit: unit, known: [baseUnit] + known)
            }
            factor = statement.int64(3)
        }
        guard !statement.isNull(1), statement.optionalText(2).map({ $0 >= today }) ?? true else {
            throw FieldError.noPrice(part: request.partNumber, level: level, currency: currency)
        }
        let unitPrice = statement.int64(1)
        let baseQuantity = request.quantity * factor
        guard baseQuantity <= Quantity.maximum else {
            throw FieldError.invalidInput(what: "line \(lineNo) quantity", value: "\(request.quantity) \(unit)", reason: "more than \(Quantity.maximum) \(baseUnit)")
        }
        let amount = try limits.lineAmount(quantity: baseQuantity, unitPriceMinor: unitPrice, currency: currency,
                                           what: "line \(lineNo) (\(request.partNumber))")
        return OrderLine(
            lineNo: lineNo, partNumber: request.partNumber, unit: unit, quantity: request.quantity,
            baseQuantity: baseQuantity, unitPriceMinor: unitPrice, amountMinor: amount)
    }

    // MARK: Other documents

    public func recordVisit(customerID: String, outcome: VisitOutcome, note: String = "") throws -> Acknowledged<VisitDocument> {
        try checkText(note, what: "note", maximum: 2_000)
        return try device.write {
            try requireCustomer(customerID)
            let now = device.clock.nowMilliseconds()
            let visit = VisitDocument(id: try device.nextID(), customerId: customerID, at: now, outcome: outcome, note: note)
            let changeID = try save(.visit(visit), action: "recorded", at: now)
            return Acknowledged(document: visit, changeId: changeID)
        }
    }

    /// Records money collected from a customer. The currency defaults to the customer's. The
    /// amount is bounded per currency (`limits`), and a receipt number is taken once per device.
    public func recordPayment(customerID: String, amountMinor: Int64, currency: String? = nil,
                              method: PaymentMethod, receipt: String = "") throws -> Acknowledged<PaymentDocument> {
        guard amountMinor > 0 else {
            throw FieldError.invalidInput(what: "amount", value: Money.format(amountMinor, currency ?? ""), reason: "must be more than zero")
        }
        let receipt = receipt.trimmingASCIISpaces()
        try checkText(receipt, what: "receipt", maximum: 64)
        return try device.write {
            guard let customerCurrency = try database.first("SELECT currency FROM customers WHERE id = ?", [.text(customerID)], row: { $0.text(0) }) else {
                throw FieldError.unknownCustomer(customerID)
            }
            let currency = currency ?? customerCurrency
            guard currency.utf8.count == 3, currency.utf8.allSatisfy({ $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else {
                throw FieldError.invalidInput(what: "currency", value: currency, reason: "use a three-letter ISO code such as PLN, BGN, RUB, EUR")
            }
            try limits.checkPayment(amountMinor, currency: currency)
            try requireUnusedReceipt(receipt)
            let now = device.clock.nowMilliseconds()
            let payment = PaymentDocument(id: try device.nextID(), customerId: customerID, amountMinor: amountMinor, currency: currency,
                                          method: method, receipt: receipt, collectedAt: now)
            let changeID = try save(.payment(payment), action: "collected", at: now)
            return Acknowledged(document: payment, changeId: changeID)
        }
    }

    /// A receipt book's numbers are the rep's, not the customer's: one book, each leaf once, for
    /// whichever customer it went to. So a number is refused when any payment on this device
    /// already has it (voided ones too: a spoiled receipt stays in the book). Case and
    /// surrounding spaces do not make a number new. No number (a transfer) is never a repeat.
    private func requireUnusedReceipt(_ receipt: String) throws {
        guard !receipt.isEmpty else { return }
        if let (payment, customer, amount, currency) = try database.first(
            "SELECT id, customer_id, amount_minor, currency FROM payments WHERE receipt = ? COLLATE NOCASE AND receipt <> '' LIMIT 1",
            [.text(receipt)], row: { ($0.text(0), $0.text(1), $0.int64(2), $0.text(3)) }) {
            throw FieldError.duplicateReceipt(receipt: receipt, payment: payment, customer: customer, amount: Money.format(amount, currency))
        }
    }

    /// Voids a payment by a compensating document with its own id: the payment stays as it was
    /// collected, and the customer's balance and the hold rules count payments less voids from
    /// now on. A payment is voided once; the reason is required (the office reads it).
    public func voidPayment(_ paymentID: String, reason: String) throws -> Acknowledged<PaymentVoidDocument> {
        let reason = reason.trimmingASCIISpaces()
        guard !reason.isEmpty else {
            throw FieldError.invalidInput(what: "void of payment \(paymentID)", value: "", reason: "say why with --reason (the office reads it)")
        }
        try checkText(reason, what: "void reason", maximum: 500)
        return try device.write {
            guard let (customer, amount, currency, receipt) = try database.first(
                "SELECT customer_id, amount_minor, currency, receipt FROM payments WHERE id = ?", [.text(paymentID)],
                row: { ($0.text(0), $0.int64(1), $0.text(2), $0.text(3)) }) else {
                throw FieldError.unknownPayment(paymentID)
            }
            if let existing = try database.first("SELECT id FROM payment_voids WHERE payment_id = ?", [.text(paymentID)], row: { $0.text(0) }) {
                throw FieldError.paymentAlreadyVoided(id: paymentID, by: existing)
            }
            let now = device.clock.nowMilliseconds()
            let void = PaymentVoidDocument(id: try device.nextID(), paymentId: paymentID, customerId: customer, amountMinor: amount,
                                           currency: currency, receipt: receipt, reason: reason, at: now)
            let changeID = try save(.paymentVoid(void), action: "voided", at: now)
            return Acknowledged(document: void, changeId: changeID)
        }
    }

    /// Files a display request and reserves, at once, the materials its type needs for these
    /// dimensions from the warehouse stock. A shortfall is reserved anyway and reported, so the
    /// display department sees it instead of the request bouncing at the customer's door.
    public func requestDisplay(customerID: String, typeCode: String, widthCm: Int64, heightCm: Int64, depthCm: Int64? = nil,
                               note: String = "", location: String = "warehouse") throws -> Acknowledged<DisplayRequestDocument> {
        for (name, value) in [("width", widthCm), ("height", heightCm), ("depth", depthCm ?? 1)] where !(1...10_000).contains(value) {
            throw FieldError.invalidInput(what: "display \(name)", value: "\(value) cm", reason: "must be between 1 and 10000 cm")
        }
        try checkText(note, what: "note", maximum: 2_000)
        return try device.write {
            try requireCustomer(customerID)
            let materials = try database.query(
                "SELECT part_number, fixed_quantity, per_square_metre_milli FROM display_type_materials WHERE type_code = ? ORDER BY part_number",
                [.text(typeCode)]) { ($0.text(0), $0.int64(1), $0.int64(2)) }
            if materials.isEmpty {
                let known = try database.query("SELECT code FROM display_types ORDER BY code") { $0.text(0) }
                if !known.contains(typeCode) { throw FieldError.unknownDisplayType(typeCode, known: known) }
            }
            let now = device.clock.nowMilliseconds()
            var request = DisplayRequestDocument(id: try device.nextID(), customerId: customerID, typeCode: typeCode, widthCm: widthCm,
                                                 heightCm: heightCm, depthCm: depthCm, note: note, state: "requested", at: now, materials: [])
            for (part, fixed, perSquareMetreMilli) in materials {
                // pieces = fixed + ceil(per m2 x area); area in cm2 / 10^4, per m2 in thousandths.
                let scaled = perSquareMetreMilli * widthCm * heightCm
                let quantity = fixed + (scaled + 9_999_999) / 10_000_000
                guard quantity > 0 else { continue }
                let available = try database.first("SELECT quantity - reserved FROM stock WHERE location = ? AND part_number = ?",
                                                   [.text(location), .text(part)]) { $0.int64(0) } ?? 0
                let short = max(0, quantity - max(0, available))
                request.materials.append(MaterialReservation(partNumber: part, location: location, quantity: quantity, shortQuantity: short))
            }
            let changeID = try save(.displayRequest(request), action: "requested", at: now)
            return Acknowledged(document: request, changeId: changeID)
        }
    }

    public func fileComplaint(customerID: String, category: ComplaintCategory, description: String,
                              orderRef: String? = nil, partNumber: String? = nil) throws -> Acknowledged<ComplaintDocument> {
        guard !description.trimmingASCIISpaces().isEmpty else {
            throw FieldError.invalidInput(what: "complaint description", value: description, reason: "say what is wrong (--text)")
        }
        try checkText(description, what: "complaint description", maximum: 4_000)
        return try device.write {
            try requireCustomer(customerID)
            if let orderRef {
                let known = try database.int64("SELECT (SELECT count(*) FROM orders WHERE id = ?1 AND customer_id = ?2) + (SELECT count(*) FROM history_orders WHERE ref = ?1 AND customer_id = ?2)",
                                               [.text(orderRef), .text(customerID)])
                guard known > 0 else {
                    throw FieldError.invalidInput(what: "order", value: orderRef, reason: "is not an order of customer \(customerID) on this device")
                }
            }
            if let partNumber, try database.int64("SELECT count(*) FROM products WHERE part_number = ?", [.text(partNumber)]) == 0 {
                throw FieldError.unknownProduct(partNumber, context: "in the complaint")
            }
            let now = device.clock.nowMilliseconds()
            let complaint = ComplaintDocument(id: try device.nextID(), customerId: customerID, orderRef: orderRef, partNumber: partNumber,
                                              category: category, description: description, state: "open", at: now)
            let changeID = try save(.complaint(complaint), action: "filed", at: now)
            return Acknowledged(document: complaint, changeId: changeID)
        }
    }

    /// The office's approval limits as the last download brought them (none yet: the defaults).
    public func approvalRule() throws -> ApprovalRule {
        try device.guarded {
            ApprovalRule(limits: try database.query(
                "SELECT role, currency, max_discount_basis_points, max_total_minor FROM approval_limits ORDER BY role, currency") {
                ApprovalLimit(role: ApprovalLevel(rawValue: $0.text(0)) ?? .office, currency: $0.text(1),
                              maxDiscountBasisPoints: $0.int64(2), maxTotalMinor: $0.optionalInt64(3))
            })
        }
    }

    /// Why a quote with this discount and value (after the discount) waits for approval, and by
    /// whom, or nil when the rep may give it: the rule `createQuote` applies, for the console to
    /// show before saving.
    public static func quoteHoldReason(discountBasisPoints: Int64, totalMinor: Int64, currency: String, rule: ApprovalRule) -> String? {
        guard let reason = rule.overRepLimit(discountBasisPoints: discountBasisPoints, totalMinor: totalMinor, currency: currency, what: "quote") else {
            return nil
        }
        let level = rule.level(discountBasisPoints: discountBasisPoints, totalMinor: totalMinor, currency: currency)
        return reason + "; approval by \(level.spoken)"
    }

    /// The net total of a quote: the gross less the discount, rounded half up.
    public static func quoteTotal(grossMinor: Int64, discountBasisPoints: Int64) -> Int64 {
        grossMinor - (grossMinor * discountBasisPoints + 5_000) / 10_000
    }

    /// The quote `createQuote` would save, priced, with the approval it would need and by whom,
    /// without writing anything (`satchel quote new --check`, the console before saving).
    public func previewQuote(customerID: String, lines: [OrderLineRequest], discountBasisPoints: Int64) throws -> QuoteDocument {
        guard (0...10_000).contains(discountBasisPoints) else {
            throw FieldError.invalidInput(what: "discount", value: "\(discountBasisPoints) bp", reason: "must be between 0% and 100%")
        }
        let priced = try previewOrder(customerID: customerID, lines: lines)
        var quote = QuoteDocument(id: "", customerId: customerID, currency: priced.currency, discountBasisPoints: discountBasisPoints,
                                  totalMinor: Self.quoteTotal(grossMinor: priced.totalMinor, discountBasisPoints: discountBasisPoints),
                                  approval: .none, holdReason: nil, at: priced.createdAt,
                                  lines: priced.lines.map { QuoteLine(lineNo: $0.lineNo, partNumber: $0.partNumber, quantity: $0.baseQuantity,
                                                                      unitPriceMinor: $0.unitPriceMinor, amountMinor: $0.amountMinor) })
        if let reason = Self.quoteHoldReason(discountBasisPoints: discountBasisPoints, totalMinor: quote.totalMinor, currency: quote.currency,
                                             rule: try approvalRule()) {
            quote.approval = .pending
            quote.holdReason = reason
        }
        return quote
    }

    /// A quote at the customer's default price level less a discount; one over the rep's limits
    /// (discount or value) waits for the level that covers it.

    public func createQuote(customerID: String, lines: [OrderLineRequest], discountBasisPoints: Int64) throws -> Acknowledged<QuoteDocument> {
        guard (0...10_000).contains(discountBasisPoints) else {
            throw FieldError.invalidInput(what: "discount", value: "\(discountBasisPoints) bp", reason: "must be between 0% and 100%")
        }
        guard !lines.isEmpty else { throw FieldError.invalidInput(what: "quote", value: customerID, reason: "needs at least one line") }
        return try device.write {
            let customer = try customerTerms(customerID)
            let now = device.clock.nowMilliseconds()
            let today = CalendarDay.string(fromMilliseconds: now)
            var quote = QuoteDocument(id: try device.nextID(), customerId: customerID, currency: customer.currency,
                                      discountBasisPoints: discountBasisPoints, totalMinor: 0, approval: .none, holdReason: nil, at: now, lines: [])
            var gross: Int64 = 0
            for (index, request) in lines.enumerated() {
                let line = try price(request, lineNo: Int64(index + 1), level: customer.defaultLevel, currency: customer.currency, today: today)
                quote.lines.append(QuoteLine(lineNo: line.lineNo, partNumber: line.partNumber, quantity: line.baseQuantity,
                                             unitPriceMinor: line.unitPriceMinor, amountMinor: line.amountMinor))
                gross = try limits.documentTotal(gross, adding: line.amountMinor, currency: customer.currency, what: "quote")
            }
            quote.totalMinor = Self.quoteTotal(grossMinor: gross, discountBasisPoints: discountBasisPoints)
            if let reason = Self.quoteHoldReason(discountBasisPoints: discountBasisPoints, totalMinor: quote.totalMinor,
                                                 currency: customer.currency, rule: try approvalRule()) {
                quote.approval = .pending
                quote.holdReason = reason
            }
            let changeID = try save(.quote(quote), action: "created", at: now)
            return Acknowledged(document: quote, changeId: changeID)
        }
    }

    public func recordMaintenance(equipmentID: String, kind: MaintenanceKind, note: String = "") throws -> Acknowledged<MaintenanceDocument> {
        try checkText(note, what: "note", maximum: 2_000)
        return try device.write {
            guard try database.int64("SELECT count(*) FROM equipment WHERE id = ?", [.text(equipmentID)]) > 0 else {
                throw FieldError.unknownEquipment(equipmentID)
            }
            let now = device.clock.nowMilliseconds()
            let record = MaintenanceDocument(id: try device.nextID(), equipmentId: equipmentID, at: now, kind: kind, note: note)
            let changeID = try save(.maintenance(record), action: "recorded", at: now)
            return Acknowledged(document: record, changeId: changeID)
        }
    }

    private func requireCustomer(_ customerID: String) throws {
        guard try database.int64("SELECT count(*) FROM customers WHERE id = ?", [.text(customerID)]) > 0 else {
            throw FieldError.unknownCustomer(customerID)
        }
    }

    private func checkText(_ text: String, what: String, maximum: Int) throws {
        guard text.utf8.count <= maximum else {
            throw FieldError.invalidInput(what: what, value: String(text.prefix(40)) + "...", reason: "longer than \(maximum) bytes")
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) else {
            throw FieldError.invalidInput(what: what, value: String(text.prefix(40)), reason: "contains control characters")
        }
    }
}

public enum Percent {
    /// 1250 basis points -> "12.50%".
    public static func format(_ basisPoints: Int64) -> String {
        let hundredths = basisPoints % 100
        return "\(basisPoints / 100).\(hundredths < 10 ? "0" : "")\(hundredths)%"
    }

    /// "12.5" or "12,5" (percent) -> 1250 basis points.
    public static func parseBasisPoints(_ text: String) throws -> Int64 {
        try Money.parseMinor(text, what: "discount percent")
    }
}
