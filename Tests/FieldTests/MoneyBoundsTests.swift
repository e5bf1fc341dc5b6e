import Field
import SatchelTesting
import Store
import Testing

/// Repro 8 of issue 10: money has bounds, payments can be voided, a receipt number is used once.
@Suite("Capture: amounts bounded per currency, payment voids, receipt numbers")
struct MoneyBoundsTests {
    func order(_ fixture: Fixture, _ customer: String, part: String = "P2") throws -> OrderDocument {
        try fixture.capture.createOrder(customerID: customer, lines: [.init(partNumber: part, quantity: 1)], confirm: true).document
    }

    @Test("a payment of 1,000,000,000.00 is refused, naming the limit, and the hold rules stay on")
    func billionRefused() throws {
        let fixture = try Fixture()
        let before = try fixture.snapshot()
        for (customer, currency, limit) in [("CBG1", "BGN", "100000.00 BGN"), ("CRU1", "RUB", "5000000.00 RUB"), ("CPL1", "PLN", "200000.00 PLN")] {
            let error = #expect(throws: FieldError.self) {
                try fixture.capture.recordPayment(customerID: customer, amountMinor: try Money.parseMinor("1000000000.00"), method: .cash, receipt: "KP/\(customer)")
            }
            #expect(error == .invalidInput(what: "amount", value: "1000000000.00 \(currency)",
                                           reason: "more than the \(limit) one payment may be on this device; check the amount (the office records larger payments)"))
            #expect(error?.exitCode == 65)
        }
        #expect(try fixture.snapshot() == before)
        #expect(try order(fixture, "CBG1").holdReason == "customer has 300.00 BGN overdue (20 days); approval by the supervisor")
        #expect(try order(fixture, "CRU1", part: "P1").approval == .pending)  // still over its 100.00 RUB limit
    }

    @Test("the bound is per currency: 150,000.00 is too much in leva, not in rubles; a currency without a bound is refused")
    func perCurrency() throws {
        let fixture = try Fixture()
        #expect(throws: FieldError.self) { try fixture.capture.recordPayment(customerID: "CBG1", amountMinor: 150_000_00, method: .transfer) }
        let rubles = try fixture.capture.recordPayment(customerID: "CRU1", amountMinor: 150_000_00, method: .transfer).document
        #expect(rubles.currency == "RUB")
        let euro = try fixture.capture.recordPayment(customerID: "CBG1", amountMinor: 50_000_00, currency: "EUR", method: .transfer).document
        #expect(euro.currency == "EUR")
        #expect(throws: FieldError.self) { try fixture.capture.recordPayment(customerID: "CBG1", amountMinor: 50_000_01, currency: "EUR", method: .transfer) }
        let unknown = #expect(throws: FieldError.self) { try fixture.capture.recordPayment(customerID: "CPL1", amountMinor: 10_00, currency: "CZK", method: .cash) }
        #expect(unknown?.description.contains("no amount limit for CZK") == true)
        // The device's configuration may set other bounds.
        let strict = Capture(fixture.device, limits: MoneyLimits(byCurrency: ["PLN": .init(paymentMinor: 15_000_00, documentMinor: 100_000_00)]))
        #expect(throws: FieldError.self) { try strict.recordPayment(customerID: "CPL1", amountMinor: 15_000_01, method: .cash) }
        _ = try strict.recordPayment(customerID: "CPL1", amountMinor: 15_000_00, method: .cash)
    }

    @Test("order lines and totals are bounded too, and a huge price never overflows")
    func orderBounds() throws {
        let fixture = try Fixture()
        try WorkingSet(fixture.device).apply { w in
            try w.product(.init(partNumber: "GOLD", name: "Złota płytka — золотая плитка"))
            try w.price(.init(partNumber: "GOLD", level: .customer, currency: "PLN", priceMinor: 1_500_000_00))
            try w.product(.init(partNumber: "HUGE", name: "Огромна цена"))
            try w.price(.init(partNumber: "HUGE", level: .customer, currency: "BGN", priceMinor: Int64.max / 3))
        }
        let before = try fixture.snapshot()
        _ = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "GOLD", quantity: 1)], confirm: true)
        let line = #expect(throws: FieldError.self) {
            try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "GOLD", quantity: 2)], confirm: true)
        }
        #expect(line?.description.contains("line 1 (GOLD)") == true && line?.description.contains("2000000.00 PLN") == true)
        let total = #expect(throws: FieldError.self) {
            try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "GOLD", quantity: 1), .init(partNumber: "GOLD", quantity: 1)], confirm: true)
        }
        #expect(total?.description.contains("order") == true)
        #expect(throws: FieldError.self) {
            try fixture.capture.createOrder(customerID: "CBG1", lines: [.init(partNumber: "HUGE", quantity: 12)], confirm: true)
        }
        #expect(throws: FieldError.self) {
            try fixture.capture.createQuote(customerID: "CBG1", lines: [.init(partNumber: "HUGE", quantity: 4)], discountBasisPoints: 0)
        }
        #expect(try fixture.snapshot()[0] == before[0] + 1)  // only the one order within bounds
    }

    @Test("a voided payment stays, gets a document of its own in the journal, and the hold rule comes back")
    func voidRestoresHoldRules() throws {
        let fixture = try Fixture()
        let payment = try fixture.capture.recordPayment(customerID: "CBG1", amountMinor: 300_00, method: .cash, receipt: "KP/1").document
        #expect(try order(fixture, "CBG1").approval == .none)
        let saved = try fixture.capture.voidPayment(payment.id, reason: "Грешна сума — wpisano dwa razy")
        let void = saved.document
        #expect(void.id != payment.id && void.paymentId == payment.id && void.amountMinor == 300_00 && void.currency == "BGN" && void.receipt == "KP/1")
        #expect(try fixture.device.database.int64("SELECT count(*) FROM payments WHERE id = ?", [.text(payment.id)]) == 1)
        let journaled = try fixture.device.database.first("SELECT entity, entity_id, action, change_id FROM changes ORDER BY seq DESC LIMIT 1") {
            [$0.text(0), $0.text(1), $0.text(2), $0.text(3)]
        }
        #expect(journaled == ["payment_void", void.id, "voided", saved.changeId])
        #expect(try order(fixture, "CBG1").holdReason == "customer has 300.00 BGN overdue (20 days); approval by the supervisor")
        let card = try Customers(fixture.device).card("CBG1")
        #expect(card.collectedSinceBalanceMinor == 0)
        #expect(card.recentPayments.first?.voidedBy == void.id)

        #expect(throws: FieldError.paymentAlreadyVoided(id: payment.id, by: void.id)) { try fixture.capture.voidPayment(payment.id, reason: "again") }
        #expect(throws: FieldError.unknownPayment("PL07-999999")) { try fixture.capture.voidPayment("PL07-999999", reason: "x") }
        #expect(throws: FieldError.self) { try fixture.capture.voidPayment(payment.id, reason: "  ") }
        // The receipt leaf is spent: voiding does not give the number back.
        #expect(throws: FieldError.self) { try fixture.capture.recordPayment(customerID: "CBG1", amountMinor: 300_00, method: .cash, receipt: "KP/1") }
    }

    @Test("voiding a payment the office's balance already counted raises the overdue the hold rule sees")
    func voidBeforeBalance() throws {
        let fixture = try Fixture()
        fixture.clock.set(1_794_900_000_000)  // before CBG1's balance_as_of: the office's 300.00 overdue already counts it
        let payment = try fixture.capture.recordPayment(customerID: "CBG1", amountMinor: 300_00, method: .cash, receipt: "KP/2").document
        fixture.clock.set(1_795_428_000_000)
        #expect(try order(fixture, "CBG1").holdReason == "customer has 300.00 BGN overdue (20 days); approval by the supervisor")
        _ = try fixture.capture.voidPayment(payment.id, reason: "Czek bez pokrycia — чек без покритие")
        #expect(try order(fixture, "CBG1").holdReason == "customer has 600.00 BGN overdue (20 days); approval by the supervisor")
        #expect(try Customers(fixture.device).card("CBG1").collectedSinceBalanceMinor == -300_00)
    }

    @Test("a receipt number is taken once per device, for any customer, ignoring case and spaces; no number is never a repeat")
    func receiptsOnce() throws {
        let fixture = try Fixture()
        let first = try fixture.capture.recordPayment(customerID: "CPL1", amountMinor: 120_00, method: .cash, receipt: "KP/2026/0012").document
        let before = try fixture.snapshot()
        for (customer, receipt) in [("CPL1", "KP/2026/0012"), ("CBG1", "kp/2026/0012"), ("CRU1", " KP/2026/0012 ")] {
            let error = #expect(throws: FieldError.self) { try fixture.capture.recordPayment(customerID: customer, amountMinor: 50_00, method: .cash, receipt: receipt) }
            guard case .duplicateReceipt(_, let payment, let owner, let amount) = error else { Issue.record("expected duplicateReceipt, got \(String(describing: error))"); continue }
            #expect(payment == first.id && owner == "CPL1" && amount == "120.00 PLN")
            #expect(error?.exitCode == 65)
        }
        #expect(try fixture.snapshot() == before)
        _ = try fixture.capture.recordPayment(customerID: "CPL1", amountMinor: 10_00, method: .transfer)
        _ = try fixture.capture.recordPayment(customerID: "CBG1", amountMinor: 10_00, method: .transfer)
        _ = try fixture.capture.recordPayment(customerID: "CPL1", amountMinor: 10_00, method: .cash, receipt: "KP/2026/0013")
    }
}

@Suite("Orders: the list hides nothing")
struct OrderListTests {
    @Test("an order whose customer left the working set is listed with its customer id; a page says how many there are in all")
    func leftJoinAndTotal() throws {
        let fixture = try Fixture()
        var ids: [String] = []
        for quantity in 1...3 {
            fixture.clock.advance(milliseconds: 1_000)
            ids.append(try fixture.capture.createOrder(customerID: "CRU1", lines: [.init(partNumber: "P2", quantity: Int64(quantity))], confirm: true).document.id)
        }
        fixture.clock.advance(milliseconds: 1_000)
        let polish = try fixture.capture.createOrder(customerID: "CPL1", lines: [], confirm: false).document.id
        try fixture.device.database.execute("PRAGMA foreign_keys=OFF")
        try fixture.device.database.execute("DELETE FROM customer_price_levels WHERE customer_id = 'CRU1'")
        try fixture.device.database.execute("DELETE FROM customers WHERE id = 'CRU1'")
        let all = try Orders(fixture.device).page()
        #expect(all.orders.map(\.id) == [polish] + ids.reversed() && all.total == 4 && all.notShown == 0)
        #expect(all.orders.first { $0.id == ids[0] }?.customerName == nil)
        #expect(all.orders.first?.customerName == "Hurtownia Żółw Sp. z o.o.")
        let page = try Orders(fixture.device).page(limit: 2)
        #expect(page.orders.map(\.id) == [polish, ids[2]] && page.total == 4 && page.notShown == 2)
        let confirmed = try Orders(fixture.device).page(state: .confirmed, limit: 1)
        #expect(confirmed.orders.map(\.id) == [ids[2]] && confirmed.total == 3)
    }
}
