import Field
import SatchelTesting
import Store
import Testing

@Suite("Capture: documents and their change-journal entries")
struct CaptureTests {
    @Test("a confirmed order is priced, totalled and journaled in one transaction with a client-generated id")
    func confirmedOrder() throws {
        let fixture = try Fixture()
        let saved = try fixture.capture.createOrder(
            customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 3), .init(partNumber: "P2", quantity: 2, unit: "box")], confirm: true)
        let order = saved.document
        #expect(order.id == "PL07-000001")
        #expect(saved.changeId == "PL07-000002")
        #expect(order.state == .confirmed && order.approval == .none)
        #expect(order.lines.map(\.amountMinor) == [30_00, 120_00])  // 3 x 10.00; 2 boxes x 12 x 5.00
        #expect(order.lines[1].baseQuantity == 24)
        #expect(order.totalMinor == 150_00)
        let stored = try Orders(fixture.device).load(order.id)
        #expect(stored == order)
        let payload = try #require(try fixture.device.database.first("SELECT payload FROM changes WHERE change_id = ?", [.text(saved.changeId)]) { $0.blob(0) })
        #expect(try DocumentCodec.decode(payload, entity: "order") == .order(order))
    }

    @Test("ids keep increasing across documents and reopenings")
    func monotonicIDs() throws {
        let fixture = try Fixture()
        let first = try fixture.capture.recordVisit(customerID: "CPL1", outcome: .noOrder)
        let reopened = try DeviceDatabase.open(home: fixture.home, clock: fixture.clock)
        let second = try Capture(reopened).recordVisit(customerID: "CBG1", outcome: .order)
        #expect(first.document.id == "PL07-000001" && first.changeId == "PL07-000002")
        #expect(second.document.id == "PL07-000003")
    }

    @Test("unknown customer: refused, nothing written")
    func unknownCustomer() throws {
        let fixture = try Fixture()
        let before = try fixture.snapshot()
        #expect(throws: FieldError.unknownCustomer("NOPE")) {
            try fixture.capture.createOrder(customerID: "NOPE", lines: [.init(partNumber: "P1", quantity: 1)], confirm: true)
        }
        #expect(try fixture.snapshot() == before)
    }

    @Test("an unknown part on line 3 refuses the whole order: no header, no earlier lines")
    func unknownProductMidOrder() throws {
        let fixture = try Fixture()
        let before = try fixture.snapshot()
        let lines: [OrderLineRequest] = [.init(partNumber: "P1", quantity: 1), .init(partNumber: "P2", quantity: 1), .init(partNumber: "PX-9", quantity: 1)]
        #expect(throws: FieldError.unknownProduct("PX-9", context: "on line 3")) {
            try fixture.capture.createOrder(customerID: "CPL1", lines: lines, confirm: true)
        }
        #expect(try fixture.snapshot() == before)
    }

    @Test("quantities must be whole and positive, and errors name the line", arguments: ["P1:0", "P1:-2", "P1:abc", "P1:1.5", "P1:", "P1", ":3", "P1:3:", "P1:99999999999"])
    func badQuantities(text: String) throws {
        let error = #expect(throws: FieldError.self) { try OrderLineRequest.parse(text, position: 2) }
        #expect(error?.description.contains("line 2") == true)
        #expect(error?.exitCode == 65)
    }

    @Test("a price level the customer does not have is refused with the ones it has")
    func priceLevel() throws {
        let fixture = try Fixture()
        let before = try fixture.snapshot()
        #expect(throws: FieldError.priceLevelUnavailable(customer: "CBG1", level: "dealer", available: ["customer"])) {
            try fixture.capture.createOrder(customerID: "CBG1", priceLevel: "dealer", lines: [.init(partNumber: "P1", quantity: 1)], confirm: true)
        }
        #expect(try fixture.snapshot() == before)
        let dealer = try fixture.capture.createOrder(customerID: "CPL1", priceLevel: "dealer", lines: [.init(partNumber: "P1", quantity: 2)], confirm: true)
        #expect(dealer.document.totalMinor == 17_00)
    }

    @Test("a part without a price in the customer's currency, or an unknown unit, is refused")
    func missingPriceAndUnit() throws {
        let fixture = try Fixture()
        #expect(throws: FieldError.noPrice(part: "P3", level: "customer", currency: "BGN")) {
            try fixture.capture.createOrder(customerID: "CBG1", lines: [.init(partNumber: "P3", quantity: 1)], confirm: true)
        }
        #expect(throws: FieldError.unknownUnit(part: "P2", unit: "pallet", known: ["pcs", "box"])) {
            try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P2", quantity: 1, unit: "pallet")], confirm: true)
        }
    }

    @Test("a confirmed order's lines are frozen, in the API and in the schema itself")
    func frozenLines() throws {
        let fixture = try Fixture()
        let order = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 1)], confirm: true).document
        let before = try fixture.snapshot()
        #expect(throws: FieldError.orderNotDraft(id: order.id, state: "confirmed")) {
            try fixture.capture.addLines(orderID: order.id, lines: [.init(partNumber: "P2", quantity: 1)])
        }
        #expect(throws: StoreError.self) {
            try fixture.device.database.execute("INSERT INTO order_lines VALUES (?, 9, 'P2', 'pcs', 1, 1, 1, 1)", [.text(order.id)])
        }
        #expect(throws: StoreError.self) { try fixture.device.database.execute("UPDATE order_lines SET quantity = 100") }
        #expect(try fixture.snapshot() == before)
    }

    @Test("draft, add lines, confirm: three journal entries, each carrying the whole order")
    func draftFlow() throws {
        let fixture = try Fixture()
        let draft = try fixture.capture.createOrder(customerID: "CPL1", lines: [], confirm: false).document
        #expect(draft.state == .draft)
        #expect(throws: FieldError.self) { try fixture.capture.confirmOrder(draft.id) }
        _ = try fixture.capture.addLines(orderID: draft.id, lines: [.init(partNumber: "P1", quantity: 4)])
        let confirmed = try fixture.capture.confirmOrder(draft.id).document
        #expect(confirmed.totalMinor == 40_00 && confirmed.state == .confirmed)
        let actions = try fixture.device.database.query("SELECT action FROM changes WHERE entity_id = ? ORDER BY seq", [.text(draft.id)]) { $0.text(0) }
        #expect(actions == ["created", "lines_added", "confirmed"])
    }

    @Test("the arrears rule: overdue debt holds an order, unless collected since the office's balance")
    func arrearsRule() throws {
        let fixture = try Fixture()
        let held = try fixture.capture.createOrder(customerID: "CBG1", lines: [.init(partNumber: "P2", quantity: 1)], confirm: true).document
        #expect(held.approval == .pending)
        #expect(held.holdReason == "customer has 300.00 BGN overdue (20 days); approval by the supervisor")
        _ = try fixture.capture.recordPayment(customerID: "CBG1", amountMinor: 300_00, method: .cash, receipt: "KP/1")
        let cleared = try fixture.capture.createOrder(customerID: "CBG1", lines: [.init(partNumber: "P2", quantity: 1)], confirm: true).document
        #expect(cleared.approval == .none && cleared.holdReason == nil)
    }

    @Test("the credit rule: an order taking exposure over the limit is held and says by how much")
    func creditLimit() throws {
        let fixture = try Fixture()
        let held = try fixture.capture.createOrder(customerID: "CRU1", lines: [.init(partNumber: "P1", quantity: 1)], confirm: true).document
        #expect(held.approval == .pending)
        #expect(held.holdReason == "order takes exposure to 200.00 RUB, over the credit limit of 100.00 RUB; approval by the supervisor")
        let within = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 799)], confirm: true).document
        #expect(within.approval == .none)  // 2 000 + 7 990 <= 10 000
        let over = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 2)], confirm: true).document
        #expect(over.approval == .pending)  // the confirmed order above counts as exposure
    }

    @Test("the lifecycle refuses moves it does not allow")
    func lifecycle() throws {
        let fixture = try Fixture()
        let order = try fixture.capture.createOrder(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 1)], confirm: true).document
        #expect(throws: FieldError.invalidTransition(id: order.id, from: "confirmed", to: "invoice_requested")) {
            try fixture.capture.advanceOrder(order.id, to: .invoiceRequested)
        }
        for state in [OrderState.sent, .accepted, .invoiceRequested, .settled] { _ = try fixture.capture.advanceOrder(order.id, to: state) }
        #expect(try Orders(fixture.device).load(order.id).state == .settled)
        #expect(!OrderState.settled.canMove(to: .draft))
    }

    @Test("a display request reserves the materials its type and size need, and reports shortfalls")
    func displayRequest() throws {
        let fixture = try Fixture()
        let request = try fixture.capture.requestDisplay(customerID: "CPL1", typeCode: "WALL", widthCm: 120, heightCm: 200, note: "Przy wejściu").document
        // 2.4 m2: boards ceil(2.4 x 1.39) = 4 (3 in stock), 1 frame, LEDs ceil(2.4) = 3 (none in stock).
        #expect(request.materials == [
            MaterialReservation(partNumber: "BOARD", location: "warehouse", quantity: 4, shortQuantity: 1),
            MaterialReservation(partNumber: "FRAME", location: "warehouse", quantity: 1, shortQuantity: 0),
            MaterialReservation(partNumber: "LED", location: "warehouse", quantity: 3, shortQuantity: 3),
        ])
        #expect(try fixture.device.database.int64("SELECT reserved FROM stock WHERE part_number = 'BOARD'") == 4)
        let before = try fixture.snapshot()
        #expect(throws: FieldError.unknownDisplayType("ARCH", known: ["WALL"])) {
            try fixture.capture.requestDisplay(customerID: "CPL1", typeCode: "ARCH", widthCm: 10, heightCm: 10)
        }
        #expect(throws: FieldError.self) { try fixture.capture.requestDisplay(customerID: "CPL1", typeCode: "WALL", widthCm: 0, heightCm: 10) }
        #expect(try fixture.snapshot() == before)
    }

    @Test("payments, complaints, quotes and maintenance validate what they refer to")
    func otherDocuments() throws {
        let fixture = try Fixture()
        let before = try fixture.snapshot()
        #expect(throws: FieldError.self) { try fixture.capture.recordPayment(customerID: "CPL1", amountMinor: 0, method: .cash) }
        #expect(throws: FieldError.self) { try fixture.capture.recordPayment(customerID: "CPL1", amountMinor: 10, currency: "zł", method: .cash) }
        #expect(throws: FieldError.self) { try fixture.capture.fileComplaint(customerID: "CPL1", category: .damaged, description: "  ") }
        #expect(throws: FieldError.self) { try fixture.capture.fileComplaint(customerID: "CPL1", category: .damaged, description: "x", orderRef: "ERP-404") }
        #expect(throws: FieldError.unknownProduct("PX", context: "in the complaint")) {
            try fixture.capture.fileComplaint(customerID: "CPL1", category: .damaged, description: "x", partNumber: "PX")
        }
        #expect(throws: FieldError.unknownEquipment("EQ9")) { try fixture.capture.recordMaintenance(equipmentID: "EQ9", kind: .repair) }
        #expect(throws: FieldError.self) { try fixture.capture.createQuote(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 1)], discountBasisPoints: 10_001) }
        #expect(try fixture.snapshot() == before)

        let complaint = try fixture.capture.fileComplaint(customerID: "CPL1", category: .damaged, description: "Pęknięte płytki — 3 кутии", orderRef: "ERP-1", partNumber: "P1")
        #expect(complaint.document.state == "open")
        let quote = try fixture.capture.createQuote(customerID: "CPL1", lines: [.init(partNumber: "P1", quantity: 10)], discountBasisPoints: 1_250).document
        #expect(quote.totalMinor == 87_50)
        #expect(quote.approval == .pending && quote.holdReason == "discount 12.50% is over the 10.00% a rep may grant; approval by the supervisor")
        #expect(try fixture.capture.recordMaintenance(equipmentID: "EQ1", kind: .cleaning, note: "Чистка кондензатора").document.equipmentId == "EQ1")
    }

    @Test("the change history is append-only: the database refuses edits and deletions")
    func appendOnlyHistory() throws {
        let fixture = try Fixture()
        _ = try fixture.capture.recordVisit(customerID: "CPL1", outcome: .order, note: "Rozmowa")
        let update = #expect(throws: StoreError.self) { try fixture.device.database.execute("UPDATE changes SET payload = '{}'") }
        #expect(update?.message.contains("append-only") == true)
        #expect(throws: StoreError.self) { try fixture.device.database.execute("DELETE FROM changes") }
        #expect(try fixture.device.database.int64("SELECT count(*) FROM changes") == 1)
    }

    @Test("a full disk (max_page_count) fails as storageFull and writes nothing")
    func diskFull() throws {
        let fixture = try Fixture()
        let database = fixture.device.database
        try database.execute("PRAGMA max_page_count=\(try database.int64("PRAGMA page_count"))")
        let before = try fixture.snapshot()
        let lines = (0..<40).map { _ in OrderLineRequest(partNumber: "P1", quantity: 1) }
        var failure: FieldError?
        do {
            for _ in 0..<50 { _ = try fixture.capture.createOrder(customerID: "CPL1", lines: lines, confirm: true, note: String(repeating: "Zażółć ", count: 100)) }
        } catch let error as FieldError {
            failure = error
        }
        #expect(failure == .storageFull(path: fixture.device.path))
        #expect(failure?.exitCode == 74)
        let after = try fixture.snapshot()
        // Every order that was acknowledged before the disk filled is complete: 40 lines and one change each.
        let orders = after[0] - before[0]
        #expect(after[1] - before[1] == orders * 40)
        #expect(after[2] - before[2] == orders)
        #expect(try database.quickCheck().isEmpty)
    }
}
