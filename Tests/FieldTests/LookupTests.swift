import Field
import SatchelTesting
import Store
import Testing

@Suite("Field: the rep's lookups and lists, and draft edits")
struct LookupTests {
    @Test("product find matches words of the name in any order, folded, or the part number; counts what it does not show")
    func productFind() throws {
        let fixture = try Fixture()
        let products = Products(fixture.device)
        #expect(try products.find("szare 60×60 PŁYTKI").matches.map(\.partNumber) == ["P1"])
        #expect(try products.find("plytki gresowe").matches.map(\.partNumber) == ["P1"])
        #expect(try products.find("ЛЕПИЛО плочки").matches.map(\.partNumber) == ["P2"])
        #expect(try products.find("затирка БЕЛАЯ").matches.map(\.partNumber) == ["P3"])
        #expect(try products.find("p3").matches.first?.partNumber == "P3")
        let all = try products.find("p", limit: 2)
        #expect(all.matches.count == 2)
        #expect(all.total == (try fixture.device.database.int64("SELECT count(*) FROM products WHERE name_folded LIKE '%p%' OR part_number LIKE '%p%'")))
        #expect(try products.find("%").matches.isEmpty)
        #expect(try products.find("   ").total == 0)
    }

    @Test("product show lists units with factors, prices per level and currency, and free stock")
    func productShow() throws {
        let fixture = try Fixture()
        let product = try Products(fixture.device).show("P2")
        #expect(product.name == "Лепило за плочки 25 кг")
        #expect(product.units.map(\.unit) == [product.baseUnit, "box"])
        #expect(product.units.last?.factor == 12)
        #expect(product.prices.map(\.currency) == ["BGN", "PLN", "RUB"])
        let p1 = try Products(fixture.device).show("P1")
        #expect(p1.prices.filter { $0.currency == "PLN" }.map(\.level) == ["customer", "dealer"])
        #expect(p1.stock.map(\.available) == [100])
        _ = try fixture.capture.requestDisplay(customerID: "CPL1", typeCode: "WALL", widthCm: 100, heightCm: 100)
        let board = try Products(fixture.device).show("BOARD")
        #expect(board.stock.first.map { $0.available == $0.quantity - $0.reserved && $0.reserved > 0 } == true)
        #expect(throws: FieldError.self) { try Products(fixture.device).show("NOPE") }
    }

    @Test("customer search matches name, id and address words in any order and says how many matched")
    func customerSearch() throws {
        let fixture = try Fixture()
        let customers = Customers(fixture.device)
        #expect(try customers.search("lodz LAKOWA").matches.map(\.id) == ["CPL1"])
        #expect(try customers.search("витоша магазин").matches.map(\.id) == ["CBG1"])
        #expect(try customers.search("берёзка").matches.map(\.id) == ["CRU1"])
        #expect(try customers.search("cru1").matches.map(\.id) == ["CRU1"])
        let page = try customers.search("c", limit: 1)
        #expect(page.matches.count == 1 && page.total == 3 && page.notShown == 2)
        #expect(try customers.search("lodz витоша").total == 0)
    }

    @Test("cancel drops a draft and journals it; a confirmed order is refused and nothing changes")
    func cancelDraft() throws {
        let fixture = try Fixture()
        let draft = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 1)], confirm: false).document
        let saved = try fixture.capture.cancelOrder(draft.id)
        #expect(saved.document.state == .cancelled)
        #expect(try fixture.device.database.int64("SELECT count(*) FROM orders WHERE id = ?", [.text(draft.id)]) == 0)
        #expect(try fixture.device.database.int64("SELECT count(*) FROM order_lines WHERE order_id = ?", [.text(draft.id)]) == 0)
        #expect(try fixture.device.database.text("SELECT action FROM changes WHERE change_id = ?", [.text(saved.changeId)]) == "cancelled")
        let confirmed = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 1)], confirm: true).document
        let before = try fixture.snapshot()
        #expect(throws: FieldError.self) { try fixture.capture.cancelOrder(confirmed.id) }
        #expect(throws: FieldError.unknownOrder(draft.id)) { try fixture.capture.cancelOrder(draft.id) }
        #expect(try fixture.snapshot() == before)
    }

    @Test("remove-line renumbers the draft's lines and recomputes the total; a bad line number or a confirmed order changes nothing")
    func removeLine() throws {
        let fixture = try Fixture()
        let draft = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 1), .init(partNumber: "P2", quantity: 1, unit: "box"),
                                                                                .init(partNumber: "P3", quantity: 4)], confirm: false).document
        let saved = try fixture.capture.removeLine(orderID: draft.id, lineNo: 1).document
        #expect(saved.lines.map(\.partNumber) == ["P2", "P3"])
        #expect(saved.lines.map(\.lineNo) == [1, 2])
        #expect(saved.totalMinor == 12 * 5_00 + 4 * 1_00)
        #expect(try Orders(fixture.device).load(draft.id) == saved)
        let before = try fixture.snapshot()
        #expect(throws: FieldError.self) { try fixture.capture.removeLine(orderID: draft.id, lineNo: 3) }
        _ = try fixture.capture.confirmOrder(draft.id)
        let confirmed = try fixture.snapshot()
        #expect(confirmed != before)
        #expect(throws: FieldError.orderNotDraft(id: draft.id, state: "confirmed")) { try fixture.capture.removeLine(orderID: draft.id, lineNo: 1) }
        #expect(try fixture.snapshot() == confirmed)
    }

    @Test("the day's lists show what was captured today, newest first, with the customer's name")
    func dayLists() throws {
        let fixture = try Fixture()
        let payment = try fixture.capture.recordPayment(customerID: "CBG1", amountMinor: 100_00, method: .cash, receipt: "КП/1").document
        fixture.clock.advance(milliseconds: 60_000)
        _ = try fixture.capture.recordVisit(customerID: "CPL1", outcome: .order, note: "Zamówienie na płytki")
        _ = try fixture.capture.fileComplaint(customerID: "CRU1", category: .damaged, description: "Разбитая плитка")
        _ = try fixture.capture.createQuote(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 10)], discountBasisPoints: 1_500)
        let lists = DocumentLists(fixture.device)
        let today = CalendarDay.string(fromMilliseconds: fixture.clock.nowMilliseconds())
        let payments = try lists.payments(day: today)
        #expect(payments.rows.map(\.id) == [payment.id])
        #expect(payments.rows.first?.customerName == "Магазин „Витоша“ ЕООД")
        #expect(try lists.payments(day: "2020-01-01").total == 0)
        #expect(try lists.visits(day: today).rows.map(\.outcome) == ["order"])
        #expect(try lists.complaints(day: nil).rows.map(\.description) == ["Разбитая плитка"])
        let quotes = try lists.quotes(day: today)
        #expect(quotes.rows.first?.approval == "pending")
        #expect(try lists.quote(quotes.rows[0].id).lines.count == 1)
        #expect(try lists.displayRequests(day: today).total == 0)
        #expect(CalendarDay.isValid("2026-12-01") && !CalendarDay.isValid("2026-13-01") && !CalendarDay.isValid("01.12.2026"))
    }
}
