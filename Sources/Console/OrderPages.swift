import Agent
import Field

/// Order entry, on one page: the order's lines stay on the screen while the rep searches for the
/// next product and types its quantity, so each key redraws the few rows it changed (on a
/// 9600-baud serial console a page change costs half a second, a changed row a few ms).
/// Lines stay on the screen until the rep saves: the order is saved whole, in one capture, so
/// Esc, a dead battery or a power cut mid-entry never leave half an order behind.
/// The credit rule runs on every change (`Capture.previewOrder`, the rule `createOrder` applies),
/// so the hold and its reason show before saving.
final class OrderPage: Page {
    enum Mode {
        case lines
        case picking(LinePicker.Step)
    }

    let card: Customers.Card
    var lines: [OrderLineRequest] = []
    var level: String
    var preview: OrderDocument?
    var problem: String?
    var list = ListView()
    var mode = Mode.lines
    var picker = LinePicker()

    init(app: ConsoleApp, card: Customers.Card) {
        self.card = card
        level = card.priceLevels.contains("customer") ? "customer" : (card.priceLevels.first ?? "customer")
        if let preview = try? Capture(app.device).previewOrder(customerID: card.id, lines: []) { level = preview.priceLevel }
        refresh(app)
    }

    var title: String { "Order " + card.name }
    var statisticsLabel: String {
        switch mode {
        case .lines: return "Order lines"
        case .picking(.search): return "Order search"
        case .picking(.quantity): return "Order quantity"
        }
    }
    var hints: String {
        switch mode {
        // The same words at the same places in every mode: a mode change resends a word, not
        // the line (the field's label says what to type: "Find:", "Qty:").
        // "1 adds" is said where it applies: the empty list, and the message of each line added.
        case .lines: return "Ent save Esc back 2 del"
        case .picking(.search): return "Ent pick Esc back"
        case .picking(.quantity): return "Ent add  Esc back"
        }
    }

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
        app.noteUnsaved(unsavedNote)
        app.say("Line \(lines.count) added; 1 adds another")
    }

    var unsavedNote: String { ConsoleApp.unsavedNote("order", for: card.name, lines: lines.count) }

    /// One skeleton in every mode (level, the newest lines, the total, then the lower area: the
    /// credit rule's verdict, the search, or the quantity), so moving between them redraws the
    /// lower area only.
    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        screen.line(body.lowerBound, "Level: \(level)" + (card.priceLevels.count > 1 ? " <>" : ""), .strong)
        let room = body.count - 2
        let lower = max(4, room * 3 / 5)
        let linesRows = (body.lowerBound + 1)..<max(body.lowerBound + 1, body.upperBound - lower - 1)
        drawLineList(&screen, rows: linesRows, empty: "No lines yet: 1 adds one")
        drawTotal(&screen, row: linesRows.upperBound)
        let area = (linesRows.upperBound + 1)..<body.upperBound
        switch mode {
        case .lines: drawVerdict(&screen, rows: area)
        case .picking(let step): picker.draw(&screen, rows: area, step: step, currency: card.currency, level: level, app: app)
        }
    }

    private func drawLineList(_ screen: inout ScreenBuffer, rows: Range<Int>, empty: String?) {
        guard !rows.isEmpty else { return }
        if lines.isEmpty {
            if let empty { screen.line(rows.lowerBound, empty) }
            return
        }
        let shown = preview?.lines ?? []
        let width = screen.columns
        list.draw(&screen, rows: rows, lines: lines.enumerated().map { index, request in
            let amount = shown.indices.contains(index) ? Money.format(shown[index].amountMinor, card.currency) : "?"
            let quantity = "\(request.quantity)\(request.unit.map { " " + $0 } ?? "")"
            let left = "\(index + 1) \(request.partNumber) \(quantity)"
            return (fit(left, max(width - amount.count - 1, 1)) + " " + amount, .plain)
        }, markOnly: true)
    }

    /// The total and the credit rule's verdict in a word: HOLD (the reason below it), or "in
    /// credit", on the one row that stays in every mode.
    private func drawTotal(_ screen: inout ScreenBuffer, row: Int) {
        guard let preview else { return }
        let hold = preview.approval == .pending
        let end = screen.put(row, 0, "Total \(Money.format(preview.totalMinor, card.currency))\(hold ? " HOLD" : "")",
                             hold ? Style(colour: .yellow, bold: true) : .strong)
        if !hold && !lines.isEmpty { screen.put(row, end, " in credit", Style(colour: .green)) }
    }

    /// Why the order would be held (all of it, as far as it fits; the review shows the rest),
    /// or why it cannot be priced (within credit is said on the total's row).
    private func drawVerdict(_ screen: inout ScreenBuffer, rows: Range<Int>) {
        var text: [(String, Style)] = []
        if let preview {
            if preview.approval == .pending {
                text = wrap("HOLD: " + (preview.holdReason ?? ""), width: screen.columns).map { ($0, Style(colour: .yellow, bold: true)) }
            }
        } else if let problem {
            text = wrap(problem, width: screen.columns).map { ($0, Style(colour: .red)) }
        }
        for (offset, line) in text.prefix(rows.count).enumerated() { screen.line(rows.lowerBound + offset, line.0, line.1) }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch mode {
        case .lines: handleLines(key, app: app)
        case .picking(let step):
            switch picker.handle(key, step: step, app: app) {
            case .step(let next): mode = .picking(next)
            case .back: mode = .lines
            case .entered(let line):
                mode = .lines
                add(line, app: app)
            }
        }
    }

    private func handleLines(_ key: Key, app: ConsoleApp) {
        if list.handle(key, count: lines.count) { return }
        switch key {
        case .character("1"), .function(2):
            // "Line 2 added" stays (one line, under the search): the next add changes one cell
            // of it instead of erasing it now and writing it again then. Anything else goes.
            if app.message?.text.hasPrefix("Line ") != true { app.message = nil }
            mode = .picking(picker.start())
        case .character("2"), .delete:
            guard list.removeSelected(from: &lines) else { return }
            refresh(app)
            app.noteUnsaved(lines.isEmpty ? nil : unsavedNote)
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
            ConfirmPage.discard("order", lines: lines.count, app: app)
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
            app.noteUnsaved(nil)
            app.pop(2)  // the review and the order entry
            app.saved(saved, document.id + (document.approval == .pending ? ", HELD" : ""))
        case .escape: app.pop()
        default: break
        }
    }
}

/// Product search by part number or words of the name, as typed: in the order page's lower half,
/// or on its own page (menu 3). The search runs once per frame, however many keys came in it.
struct ProductSearch {
    var field = TextField()
    var found = Products.Found(matches: [], total: 0)
    var list = ListView()
    var stale = false

    enum Outcome { case handled, back, picked(Products.Product) }

    /// One character matches nearly every product: the list waits for the second.
    static let minimumCharacters = 2

    mutating func run(_ app: ConsoleApp) {
        stale = false
        guard field.text.count >= Self.minimumCharacters else {
            found = Products.Found(matches: [], total: 0)
            return
        }
        do {
            found = try Products(app.device).find(field.text, limit: 30)
        } catch {
            app.say("\(error)", Style(colour: .red))
        }
    }

    mutating func draw(_ screen: inout ScreenBuffer, rows: Range<Int>, app: ConsoleApp) {
        guard !rows.isEmpty else { return }
        if stale { run(app) }
        field.draw(&screen, row: rows.lowerBound, label: "Find: ")
        let more = found.notShown > 0 && rows.count > 2 ? 1 : 0
        let width = screen.columns
        list.draw(&screen, rows: (rows.lowerBound + 1)..<(rows.upperBound - more), lines: found.matches.map { match in
            let stock = " \(match.available)"
            return (fit("\(match.partNumber) \(match.name)", max(width - stock.count, 1)) + stock, match.available > 0 ? .plain : Style(colour: .red))
        }, markOnly: true)
        if more > 0 { screen.line(rows.upperBound - 1, "Not shown (add a word): \(found.notShown)") }
    }

    mutating func handle(_ key: Key, app: ConsoleApp) -> Outcome {
        if list.handle(key, count: found.matches.count) { return .handled }
        if field.handle(key) {
            stale = true
            list.selected = 0
            return .handled
        }
        // Enter before the frame: search now, so Enter picks from what was typed.
        if stale { run(app) }
        switch key {
        case .enter:
            guard found.matches.indices.contains(list.selected) else { return .handled }
            do {
                return .picked(try Products(app.device).show(found.matches[list.selected].partNumber))
            } catch {
                app.say("\(error)", Style(colour: .red))
                return .handled
            }
        case .escape: return .back
        default: return .handled
        }
    }
}

/// The quantity and unit of the product picked for a line: its name, stock and price at the
/// order's level above the prompt.
struct QuantityEntry {
    var field = TextField(maximum: 7)
    var unit = 0

    enum Outcome { case handled, back, entered(OrderLineRequest) }

    init() {}
    init(product: Products.Product) {
        // A box first where there is one: reps sell boxes.
        unit = product.units.firstIndex(where: { $0.unit == "box" }) ?? 0
    }

    /// The prompt where the search field was and the product where its match was, so picking
    /// it redraws little: then the unit, the price at the order's level and the stock.
    func draw(_ screen: inout ScreenBuffer, rows: Range<Int>, product: Products.Product, currency: String, level: String) {
        guard rows.count >= 3 else { return }
        field.draw(&screen, row: rows.lowerBound, label: "Qty: ")
        let free = product.stock.reduce(Int64(0)) { $0 + $1.available }
        let stock = " \(free)"
        // As the search list showed it picked (its part number reversed), so picking redraws little.
        let style = free > 0 ? Style.plain : Style(colour: .red)
        screen.line(rows.lowerBound + 1, fit("\(product.partNumber) \(product.name)", max(screen.columns - stock.count, 1)) + stock, style)
        screen.put(rows.lowerBound + 1, 0, product.partNumber, Style(colour: style.colour, reverse: true))
        let chosen = product.units[unit]
        let per = chosen.factor == 1 ? "" : " =\(chosen.factor)\(product.baseUnit)"
        screen.line(rows.lowerBound + 2, "Unit < \(chosen.unit) >\(per)")
        var row = rows.lowerBound + 3
        let prices = product.prices.filter { $0.currency == currency }
        for price in prices.filter({ $0.level == level }) + prices.filter({ $0.level != level }) where row < rows.upperBound {
            let mark = price.level == level ? ">" : " "
            let until = price.validUntil.map { price.expired ? " EXPIRED" : " to \($0)" } ?? ""
            screen.line(row, "\(mark)\(price.level) \(Money.format(price.priceMinor, price.currency))\(until)", price.level == level ? .strong : .plain)
            row += 1
        }
        if row < rows.upperBound {
            screen.line(row, "Stock \(free) \(product.baseUnit) free", free > 0 ? .plain : Style(colour: .red, bold: true))
        }
    }

    mutating func handle(_ key: Key, product: Products.Product, app: ConsoleApp) -> Outcome {
        if field.handle(key, allowed: { $0.isASCII && $0.isNumber }) { return .handled }
        switch key {
        case .left: unit = (unit + product.units.count - 1) % product.units.count
        case .right, .up, .down: unit = (unit + 1) % product.units.count
        case .enter:
            guard let value = Int64(field.text), value > 0, value <= Quantity.maximum else {
                app.say("Type a quantity, 1 to \(Quantity.maximum)", Style(colour: .red))
                return .handled
            }
            let chosen = product.units[unit].unit
            return .entered(OrderLineRequest(partNumber: product.partNumber, quantity: value, unit: chosen == product.baseUnit ? nil : chosen))
        case .escape: return .back
        default: break
        }
        return .handled
    }
}

/// One order or quote line, picked in two steps: the product by search, then its quantity and
/// unit. The order and quote pages share it, so both pick the same way and a fix to one step
/// reaches both.
struct LinePicker {
    enum Step { case search, quantity(Products.Product) }
    /// `step`: stay in the picker at that step; `back`: Esc from the search; `entered`: the line.
    enum Outcome { case step(Step), back, entered(OrderLineRequest) }

    var search = ProductSearch()
    var quantity = QuantityEntry()

    /// A new search for the next line (the last one's words and list gone).
    mutating func start() -> Step {
        search = ProductSearch()
        return .search
    }

    mutating func draw(_ screen: inout ScreenBuffer, rows: Range<Int>, step: Step, currency: String, level: String, app: ConsoleApp) {
        switch step {
        case .search: search.draw(&screen, rows: rows, app: app)
        case .quantity(let product): quantity.draw(&screen, rows: rows, product: product, currency: currency, level: level)
        }
    }

    mutating func handle(_ key: Key, step: Step, app: ConsoleApp) -> Outcome {
        switch step {
        case .search:
            switch search.handle(key, app: app) {
            case .picked(let product):
                quantity = QuantityEntry(product: product)
                return .step(.quantity(product))
            case .back: return .back
            case .handled: return .step(step)
            }
        case .quantity(let product):
            switch quantity.handle(key, product: product, app: app) {
            case .entered(let line):
                search = ProductSearch()
                return .entered(line)
            case .back: return .step(.search)
            case .handled: return .step(step)
            }
        }
    }
}

/// A product's name, free stock and prices (those of `currency` when given, `level` marked),
/// as many rows as fit.
func drawProduct(_ screen: inout ScreenBuffer, rows: Range<Int>, product: Products.Product, currency: String?, level: String?) {
    var row = rows.lowerBound
    for line in wrap(product.partNumber + " " + product.name, width: screen.columns).prefix(2) where row < rows.upperBound {
        screen.line(row, line, .strong)
        row += 1
    }
    let free = product.stock.reduce(Int64(0)) { $0 + $1.available }
    if row < rows.upperBound {
        screen.line(row, "Stock \(free) \(product.baseUnit) free", free > 0 ? .plain : Style(colour: .red, bold: true))
        row += 1
    }
    let prices = product.prices.filter { price in currency.map { price.currency == $0 } ?? true }
    // The order's level first: on a small screen it is the one price that must show.
    let ordered = prices.filter { $0.level == level } + prices.filter { $0.level != level }
    for price in ordered where row < rows.upperBound {
        let mark = price.level == level ? ">" : " "
        let until = price.validUntil.map { price.expired ? " EXPIRED" : " to \($0)" } ?? ""
        screen.line(row, "\(mark)\(price.level) \(Money.format(price.priceMinor, price.currency))\(until)", price.level == level ? .strong : .plain)
        row += 1
    }
}

/// Menu 3: look a product up without ordering.
final class ProductLookupPage: Page {
    var search = ProductSearch()
    var title: String { "Find product" }
    var hints: String { "part/name Ent show Esc back" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        search.draw(&screen, rows: body, app: app)
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch search.handle(key, app: app) {
        case .picked(let product): app.push(ProductPage(product: product))
        case .back: app.pop()
        case .handled: break
        }
    }
}

/// One product: units, every price per level and currency, stock.
final class ProductPage: Page {
    let product: Products.Product
    init(product: Products.Product) { self.product = product }
    var title: String { product.partNumber }
    var hints: String { "Esc back" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        let units = product.units.dropFirst().map { "\($0.unit)=\($0.factor)" }.joined(separator: " ")
        let unitRows = units.isEmpty ? 0 : 1
        drawProduct(&screen, rows: body.lowerBound..<(body.upperBound - unitRows), product: product, currency: nil, level: nil)
        if unitRows > 0 { screen.line(body.upperBound - 1, "Units: \(units)") }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if key == .escape || key == .enter { app.pop() }
    }
}
