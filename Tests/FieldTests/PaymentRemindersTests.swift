import Field
import SatchelTesting
import Store
import Testing

/// Payment reminders on the device (issue 17): the ERP's open items as a download leaves them in
/// `open_items`, read as of a day: overdue, due within a week, later; per stop of the route.
@Suite("payment reminders: open items with due dates on the customer card and the route")
struct PaymentRemindersTests {
    /// Open items as the download writes them (the fixture's clock: 2026-11-23).
    func fixture() throws -> Fixture {
        let fixture = try Fixture()
        try fixture.device.write {
            for (customer, ref, issued, due, amount, currency) in [
                ("CPL1", "FV/2026/10/0042", Optional("2026-10-01"), "2026-11-09", Int64(234_50), "PLN"),  // 14 days overdue
                ("CPL1", "FV/2026/11/0077", "2026-11-20", "2026-11-26", 1_000_00, "PLN"),                 // due in 3 days
                ("CPL1", "FV/2026/11/0101", "2026-11-22", "2026-12-22", 50_00, "PLN"),                    // later
                ("CBG1", "Ф-0000123", nil, "2026-11-23", 300_00, "BGN"),                                   // due today
                ("CRU1", "СЧ-000123", nil, "2026-11-22", 15_000_00, "RUB"),                                // 1 day overdue
            ] {
                try fixture.device.database.execute(
                    "INSERT INTO open_items(customer_id, ref, issued_on, due_on, amount_minor, currency) VALUES (?, ?, ?, ?, ?, ?)",
                    [.text(customer), .text(ref), DatabaseValue(issued), .text(due), .integer(amount), .text(currency)])
            }
        }
        return fixture
    }

    @Test("the customer card lists the open items oldest due first, each overdue, due soon or later, with the days")
    func card() throws {
        let fixture = try fixture()
        let items = try Customers(fixture.device).card("CPL1").openItems
        #expect(items.map(\.ref) == ["FV/2026/10/0042", "FV/2026/11/0077", "FV/2026/11/0101"])
        #expect(items.map(\.daysOverdue) == [14, -3, -29])
        #expect(items.map(\.overdue) == [true, false, false] && items.map(\.dueSoon) == [false, true, false])
        #expect(items[0].when == "14 days overdue (due 2026-11-09)" && items[1].when == "due in 3 days (2026-11-26)")
        let bulgarian = try Customers(fixture.device).card("CBG1").openItems
        #expect(bulgarian.count == 1 && bulgarian[0].when == "due today" && bulgarian[0].dueSoon)
        let russian = try Customers(fixture.device).card("CRU1").openItems
        #expect(russian.map(\.ref) == ["СЧ-000123"] && russian[0].overdue && russian[0].when == "1 day overdue (due 2026-11-22)")
    }

    @Test("each stop of the route carries its overdue and due-soon totals as of the route's day; items due later stay off")
    func route() throws {
        let fixture = try fixture()
        let stops = try DayPlan(fixture.device).route(day: "2026-11-23")
        #expect(stops.map(\.customerId) == ["CPL1", "CBG1"])
        #expect(stops[0].reminders.overdue == [.init(currency: "PLN", minor: 234_50)])
        #expect(stops[0].reminders.dueSoon == [.init(currency: "PLN", minor: 1_000_00)])
        #expect(stops[1].reminders.overdue.isEmpty && stops[1].reminders.dueSoon == [.init(currency: "BGN", minor: 300_00)])
        // A week on, the item due on the 26th is overdue and the one of the 22nd of December not yet due soon.
        let later = try PaymentReminders(fixture.device).summary(customerID: "CPL1", today: "2026-11-30")
        #expect(later.overdue == [.init(currency: "PLN", minor: 1_234_50)] && later.dueSoon.isEmpty)
    }

    @Test("a customer without open items has no reminders")
    func none() throws {
        let fixture = try Fixture()
        #expect(try Customers(fixture.device).card("CPL1").openItems.isEmpty)
        #expect(try DayPlan(fixture.device).route(day: "2026-11-23").allSatisfy { $0.reminders.isEmpty })
    }
}

/// The approval limits as the device holds them (working-set table `approval_limits`).
@Suite("approval limits on the device: what needs approval, and by whom, before saving")
struct DeviceApprovalLimitsTests {
    @Test("without limits a rep grants 10%; with the office's limits the quote and the order name the supervisor or the sales manager")
    func limits() throws {
        let fixture = try Fixture()
        #expect(try fixture.capture.previewQuote(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 1)], discountBasisPoints: 1_000).approval == .none)
        try fixture.device.write {
            for (role, discount, total) in [("rep", Int64(500), Optional(Int64(100_00))), ("supervisor", 1_500, 1_000_00), ("sales_manager", 3_000, nil)] {
                try fixture.device.database.execute("INSERT INTO approval_limits(role, currency, max_discount_basis_points, max_total_minor) VALUES (?, 'PLN', ?, ?)",
                                                    [.text(role), .integer(discount), DatabaseValue(total)])
            }
        }
        let before = try fixture.snapshot()
        let small = try fixture.capture.previewQuote(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 1)], discountBasisPoints: 1_000)
        #expect(small.approval == .pending && small.holdReason == "discount 10.00% is over the 5.00% a rep may grant; approval by the supervisor")
        let large = try fixture.capture.previewQuote(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 1)], discountBasisPoints: 2_000)
        #expect(large.holdReason == "discount 20.00% is over the 5.00% a rep may grant; approval by the sales manager")
        #expect(try fixture.snapshot() == before)
        // Value: 150.00 PLN is over the rep's 100.00, within the supervisor's 1 000.00; 1 500.00 goes to the sales manager.
        let order = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 15)], confirm: true).document
        #expect(order.approval == .pending && order.holdReason == "order value 150.00 PLN is over the 100.00 PLN a rep may confirm; approval by the supervisor")
        // A draft's confirm, previewed: the reason confirming it gives, and nothing written.
        let draft = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 15)], confirm: false).document
        let beforeCheck = try fixture.snapshot()
        let checked = try fixture.capture.previewConfirm(draft.id)
        #expect(checked.approval == .pending && checked.holdReason?.hasSuffix("a rep may confirm; approval by the supervisor") == true, "\(checked.holdReason ?? "")")
        #expect(try fixture.snapshot() == beforeCheck && Orders(fixture.device).load(draft.id).state == .draft)
        #expect(try fixture.capture.confirmOrder(draft.id).document.holdReason == checked.holdReason)
        #expect(throws: FieldError.self) { try fixture.capture.previewConfirm(draft.id) }
        let big = try fixture.capture.previewOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 150)])
        #expect(big.holdReason?.hasSuffix("approval by the sales manager") == true, "\(big.holdReason ?? "")")
        // Limits in another currency leave BGN at the defaults: arrears alone go to the supervisor.
        let bulgarian = try fixture.capture.previewOrder(customerID: "CBG1", lines: [.init(partNumber: "P1", quantity: 1)])
        #expect(bulgarian.holdReason == "customer has 300.00 BGN overdue (20 days); approval by the supervisor")
    }
}
