import Agent
import Field

/// Order entry. Lines stay on the screen until the rep saves: the order is saved whole, in one
/// capture, so Esc, a dead battery or a power cut mid-entry never leave half an order behind.
/// The credit rule runs on every change (`Capture.previewOrder`), so the hold and its reason
/// show before saving.
final class OrderPage: Page {
    let card: Customers.Card
    var lines: [OrderLineRequest] = []
    var level: String
    var preview: OrderDocument?
    var problem: String?
    var list = ListView()

    init(app: ConsoleApp, card: Customers.Card) {
        self.card = card
        level = card.priceLevels.contains("customer") ? "customer" : (card.priceLevels.first ?? "customer")
        if let preview = try? Capture(app.device).previewOrder(customerID: card.id, lines: []) { level = preview.priceLevel }
        refresh(app)
    }

    var title: String { "Order " + card.name }
    var hints: String { "1 add 2 del <> level Ent" }

    func refresh(_ app: ConsoleApp) {
        do {
            preview = try Capture(app.device).previewOrder(customerID: card.id, priceLevel: level, lines: lines)
            problem = nil
        } catch {
            preview = nil
            problem = "\(error)"
        }
    }

    func add(_ line: OrderLineRequest, app: ConsoleApp) {
        lines.append(line)
        refresh(app)
        if problem != nil {
            // A line the capture would refuse (no price at this level): not added, and why.
            lines.removeLast()
            let reason = problem ?? ""
            refresh(app)
            app.say(reason, Style(colour: .red))
            return
        }
        list.selected = lines.count - 1
        app.say("Line \(lines.count) added")
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        screen.line(body.lowerBound, "Level: \(level)", .strong)
        let footer = 3
        let rows = (body.lowerBound + 1)..<max(body.lowerBound + 1, body.upperBound - footer)
        if lines.isEmpty {
            screen.line(rows.lowerBound, "No lines yet: 1 adds one")
        } else {
            let shown = preview?.lines ?? []
            let width = screen.columns
            list.draw(&screen, rows: rows, lines: lines.enumerated().map { index, request in
                let amount = shown.indices.contains(index) ? Money.format(shown[index].amountMinor, card.currency) : "?"
                let quantity = "\(request.quantity)\(request.unit.map { " " + $0 } ?? "")"
                let left = "\(index + 1) \(request.partNumber) \(quantity)"
                return (fit(left, max(width - amount.count - 1, 1)) + " " + amount, .plain)
            })
        }
        if let preview {
            screen.line(body.upperBound - 3, "Total \(Money.format(preview.totalMinor, card.currency))", .strong)
            if preview.approval == .pending {
                // The reason, on two lines; the review page shows all of it.
                for (offset, line) in wrap("HOLD: " + (preview.holdReason ?? ""), width: screen.columns).prefix(2).enumerated() {
                    screen.line(body.upperBound - 2 + offset, line, Style(colour: .yellow, bold: true))
                }
            } else if !lines.isEmpty {
                screen.line(body.upperBound - 2, "Within credit", Style(colour: .green))
            }
        } else if let problem {
            for (offset, line) in wrap(problem, width: screen.columns).prefix(2).enumerated() {
                screen.line(body.upperBound - 2 + offset, line, Style(colour: .red))
            }
        }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if list.handle(key, count: lines.count) { return }
        switch key {
        case .character("1"), .function(2): app.push(ProductSearchPage(order: self))
        case .character("2"), .delete:
            guard lines.indices.contains(list.selected) else { return }
            lines.remove(at: list.selected)
            list.selected = min(list.selected, max(lines.count - 1, 0))
            refresh(app)
            app.say("Line removed")
        case .left, .right:
            let levels = card.priceLevels
            guard let index = levels.firstIndex(of: level), levels.count > 1 else { return }
            level = levels[(index + (key == .right ? 1 : levels.count - 1)) % levels.count]
            refresh(app)
        case .enter:
            guard !lines.isEmpty, let preview else {
                app.say(lines.isEmpty ? "Add a line first (1)" : (problem ?? ""), Style(colour: .red))
                return
            }
            app.push(ReviewPage(order: self, preview: preview))
        case .escape:
            if lines.isEmpty { return app.pop() }
            app.push(ConfirmPage(question: "Discard this order of \(lines.count) lines? Nothing was saved.") { app in
                app.pop()
                app.say("Order discarded, nothing saved")
            })
        default: break
        }
    }
}

/// The order as it will be saved, the credit rule's verdict and its reason; Enter saves.
final class ReviewPage: Page {
    let order: OrderPage
    let preview: OrderDocument
    var title: String { "Save order?" }
    var hints: String { "Ent SAVE  Esc back" }

    init(order: OrderPage, preview: OrderDocument) {
        self.order = order
        self.preview = preview
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        var rows: [(String, Style)] = [
            ("\(preview.lines.count) lines, \(preview.priceLevel)", .plain),
            ("Total \(Money.format(preview.totalMinor, preview.currency))", .strong),
        ]
        if preview.approval == .pending {
            rows.append(("HELD FOR APPROVAL:", Style(colour: .yellow, bold: true)))
            rows += wrap(preview.holdReason ?? "", width: screen.columns).map { ($0, Style(colour: .yellow)) }
            rows.append(("Saved, then waits for", .plain))
            rows.append(("the supervisor.", .plain))
        } else {
            rows.append(("Within credit: goes to", Style(colour: .green)))
            rows.append(("the warehouse on sync.", Style(colour: .green)))
        }
        for (offset, row) in rows.prefix(body.count).enumerated() { screen.line(body.lowerBound + offset, row.0, row.1) }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch key {
        case .enter:
            let order = self.order
            guard let saved = app.capture(.orders, { device in
                try Capture(device).createOrder(customerID: order.card.id, priceLevel: order.level, lines: order.lines, confirm: true)
            }) else { return }
            let document = saved.value.document
            app.pop(2)  // the review and the order entry
            let held = document.approval == .pending ? ", HELD" : ""
            app.say("SAVED \(document.id)\(held)" + (saved.warning == nil ? "" : " NOT ON CARD"),
                    Style(colour: saved.warning == nil ? .green : .yellow, bold: true))
        case .escape: app.pop()
        default: break
        }
    }
}

/// Product search by part number or words of the name, for an order line or on its own.
class ProductSearchPage: Page {
    weak var order: OrderPage?
    var field = TextField()
    var found = Products.Found(matches: [], total: 0)
    var list = ListView()

    init(order: OrderPage?) { self.order = order }

    var title: String { "Find product" }
    var hints: String { "type Ent pick Esc back" }

    /// Set when the text changed: the search runs once per frame, however many keys came in it.
    var stale = false

    func search(_ app: ConsoleApp) {
        stale = false
        do {
            found = try Products(app.device).find(field.text, limit: 30)
        } catch {
            app.say("\(error)", Style(colour: .red))
        }
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        if stale { search(app) }
        field.draw(&screen, row: body.lowerBound, label: "? ")
        if field.text.isEmpty { screen.line(body.lowerBound + 1, "Part number or name words") }
        let more = found.notShown > 0 ? 1 : 0
        let width = screen.columns
        list.draw(&screen, rows: (body.lowerBound + 1)..<(body.upperBound - more), lines: found.matches.map { match in
            let stock = " \(match.available)"
            return (fit("\(match.partNumber) \(match.name)", max(width - stock.count, 1)) + stock, match.available > 0 ? .plain : Style(colour: .red))
        })
        if more > 0 { screen.line(body.upperBound - 1, "+\(found.notShown) more: add a word") }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if list.handle(key, count: found.matches.count) { return }
        if field.handle(key) {
            stale = true
            list.selected = 0
            return
        }
        if stale { search(app) }
        switch key {
        case .enter:
            guard found.matches.indices.contains(list.selected) else { return }
            let part = found.matches[list.selected].partNumber
            do {
                let product = try Products(app.device).show(part)
                app.push(QuantityPage(order: order, product: product))
            } catch {
                app.say("\(error)", Style(colour: .red))
            }
        case .escape: app.pop()
        default: break
        }
    }
}

final class ProductLookupPage: ProductSearchPage {
    init() { super.init(order: nil) }
}

/// One product: its units, its price at the order's level, its stock; the rep types the
/// quantity and picks the unit with the arrows.
final class QuantityPage: Page {
    weak var order: OrderPage?
    let product: Products.Product
    var quantity = TextField(maximum: 7)
    var unit = 0

    init(order: OrderPage?, product: Products.Product) {
        self.order = order
        self.product = product
        // A box first where there is one: reps sell boxes.
        unit = product.units.firstIndex(where: { $0.unit == "box" }) ?? 0
    }

    var title: String { product.partNumber }
    var hints: String { order == nil ? "Esc back" : "digits <> unit Ent add" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        var row = body.lowerBound
        for line in wrap(product.name, width: screen.columns).prefix(2) {
            screen.line(row, line, .strong)
            row += 1
        }
        let free = product.stock.reduce(Int64(0)) { $0 + $1.available }
        screen.line(row, "Stock \(free) \(product.baseUnit) free", free > 0 ? .plain : Style(colour: .red, bold: true))
        row += 1
        let currency = order?.card.currency
        let level = order?.level
        let prices = product.prices.filter { price in currency.map { price.currency == $0 } ?? true }
        for price in prices.prefix(3) where row < body.upperBound - 2 {
            let mark = price.level == level ? ">" : " "
            let until = price.validUntil.map { price.expired ? " EXPIRED" : " to \($0)" } ?? ""
            screen.line(row, "\(mark)\(price.level) \(Money.format(price.priceMinor, price.currency))\(until)", price.level == level ? .strong : .plain)
            row += 1
        }
        guard order != nil, row < body.upperBound - 1 else { return }
        let chosen = product.units[unit]
        let per = chosen.factor == 1 ? "" : " =\(chosen.factor)\(product.baseUnit)"
        screen.line(body.upperBound - 2, "Unit < \(chosen.unit) >\(per)")
        quantity.draw(&screen, row: body.upperBound - 1, label: "Qty: ")
    }

    func handle(_ key: Key, app: ConsoleApp) {
        guard let order else {
            if key == .escape { app.pop() }
            return
        }
        if quantity.handle(key, allowed: { $0.isASCII && $0.isNumber }) { return }
        switch key {
        case .left: unit = (unit + product.units.count - 1) % product.units.count
        case .right, .up, .down: unit = (unit + 1) % product.units.count
        case .enter:
            guard let value = Int64(quantity.text), value > 0, value <= Quantity.maximum else {
                app.say("Type a quantity, 1 to \(Quantity.maximum)", Style(colour: .red))
                return
            }
            let chosen = product.units[unit].unit
            app.pop(2)  // this page and the search
            order.add(OrderLineRequest(partNumber: product.partNumber, quantity: value, unit: chosen == product.baseUnit ? nil : chosen), app: app)
        case .escape: app.pop()
        default: break
        }
    }
}
