import Agent
import Field

// MARK: Route (the first page)

/// Today's route with each stop's status: `.` not visited yet, `v` visited, `O` ordered,
/// `$` money collected; a red `!` marks overdue debt (a payment to remind the customer of), a
/// yellow `~` an open item falling due within a week.
final class RoutePage: Page {
    var stops: [DayPlan.Stop] = []
    var list = ListView()
    var loadError: String?

    init(app: ConsoleApp) { reappear(app: app) }

    var title: String { "Route \(stops.isEmpty ? "" : "\(stops.filter { $0.visitOutcome != nil || $0.ordersToday > 0 }.count)/\(stops.count) ")" }
    var hints: String { "Ent open 0 menu 2 find" }

    func reappear(app: ConsoleApp) {
        load(into: &loadError) {
            stops = try DayPlan(app.device).route(day: app.today)
        }
        list.clamp(count: stops.count)
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        if let loadError {
            for (offset, line) in wrap(loadError, width: screen.columns).prefix(body.count).enumerated() { screen.line(body.lowerBound + offset, line) }
            return
        }
        if stops.isEmpty {
            screen.line(body.lowerBound, "No route for \(app.today).")
            screen.line(body.lowerBound + 1, "2: find a customer")
            return
        }
        let lines = stops.map { stop -> (String, Style) in
            let mark = stop.paymentsToday > 0 ? "$" : stop.ordersToday > 0 ? "O" : stop.visitOutcome != nil ? "v" : "."
            // Payment reminders: `!` overdue (the office's balance or an open item past its due
            // date), `~` an open item due within a week.
            let overdue = stop.overdueMinor > 0 || !stop.reminders.overdue.isEmpty
            let warn = overdue ? "!" : stop.reminders.dueSoon.isEmpty ? " " : "~"
            return ("\(stop.position)\(mark)\(warn)\(stop.name)", overdue ? Style(colour: .red) : warn == "~" ? Style(colour: .yellow) : .plain)
        }
        list.draw(&screen, rows: body, lines: lines)
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if list.handle(key, count: stops.count) { return }
        switch key {
        case .enter:
            guard stops.indices.contains(list.selected) else { return }
            app.push(CustomerPage(app: app, customerID: stops[list.selected].customerId))
        case .character("0"), .escape, .function(1): app.push(MenuPage())
        case .character("2"): app.push(CustomerSearchPage())
        case .character(let digit) where digit.isNumber:
            // 1 and 3-9 jump to that stop.
            if let number = digit.wholeNumberValue, let index = stops.firstIndex(where: { $0.position == Int64(number) }) { list.selected = index }
        default: break
        }
    }
}

// MARK: Menu

final class MenuPage: Page {
    var menu = DigitMenu(items: ["1 Route", "2 Find customer", "3 Find product", "4 Status", "5 Day summary", "6 Sync", "7 Quotes today", "9 Quit"])
    var title: String { "Menu" }
    var hints: String { DigitMenu.hints }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) { menu.draw(&screen, rows: body) }

    func handle(_ key: Key, app: ConsoleApp) {
        let choice: Character
        switch menu.handle(key) {
        case .moved: return
        case .back: return app.pop()
        case .chosen(let digit): choice = digit
        }
        switch choice {
        case "1": app.pop()
        case "2": app.push(CustomerSearchPage())
        case "3": app.push(ProductLookupPage())
        case "4": app.push(StatusPage(app: app))
        case "5": app.push(SummaryPage(app: app))
        case "6": app.push(SyncPage())
        case "7": app.push(QuoteListPage(app: app))
        case "9": app.push(ConfirmPage(question: "Quit the console?") { app in app.running = false })
        default: break
        }
    }
}

/// Asks before something that cannot be undone from the screen (quit, discard an order).
final class ConfirmPage: Page {
    let question: String
    let yes: (ConsoleApp) -> Void
    init(question: String, yes: @escaping (ConsoleApp) -> Void) {
        self.question = question
        self.yes = yes
    }
    var title: String { "Confirm" }
    var hints: String { "Ent yes  Esc no" }

    /// Esc on an order or a quote being entered: leaves at once when it has no lines, else
    /// asks first, and a yes drops the unsaved note so the next start does not report it.
    static func discard(_ what: String, lines: Int, app: ConsoleApp) {
        if lines == 0 { return app.pop() }
        app.push(ConfirmPage(question: "Discard this \(what) of \(lines) lines? Nothing was saved.") { app in
            app.pop()
            app.noteUnsaved(nil)
            app.say("\(what.prefix(1).uppercased())\(what.dropFirst()) discarded, nothing saved")
        })
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        for (offset, line) in wrap(question, width: screen.columns).prefix(body.count).enumerated() {
            screen.line(body.lowerBound + offset, line, .strong)
        }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch key {
        case .enter:
            app.pop()
            yes(app)
        case .escape: app.pop()
        default: break
        }
    }
}

// MARK: Customer search and card

final class CustomerSearchPage: Page {
    var field = TextField()
    var found = Customers.Found(matches: [], total: 0)
    var list = ListView()
    var title: String { "Find customer" }
    var hints: String { "type Ent open Esc back" }

    /// Set when the text changed: the search runs once per frame, however many keys came in it.
    var stale = false

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        if stale {
            stale = false
            do {
                found = try app.customerIndex().search(field.text, limit: 30)
            } catch {
                app.say("\(error)", Style(colour: .red))
            }
        }
        field.draw(&screen, row: body.lowerBound, label: "? ")
        let more = found.notShown > 0 ? 1 : 0
        let rows = (body.lowerBound + 1)..<(body.upperBound - more)
        list.draw(&screen, rows: rows, lines: found.matches.map { ("\($0.name)", disciplineStyle($0.discipline)) })
        if more > 0 { screen.line(body.upperBound - 1, "Not shown (add a word): \(found.notShown)") }
        if field.text.isEmpty { screen.line(body.lowerBound + 1, "Name, id or address words") }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if list.handle(key, count: found.matches.count) { return }
        if field.handle(key) {
            stale = true
            list.selected = 0
            return
        }
        if stale {
            // Enter before the frame: search now, so Enter picks from what was typed.
            stale = false
            found = (try? app.customerIndex().search(field.text, limit: 30)) ?? found
        }
        switch key {
        case .enter:
            guard found.matches.indices.contains(list.selected) else { return }
            app.push(CustomerPage(app: app, customerID: found.matches[list.selected].id))
        case .escape: app.pop()
        default: break
        }
    }
}

/// The credit check: discipline as colour and word, overdue, limit and what is left of it, the
/// last orders and the talking points; from here the rep orders, collects, records the visit.
final class CustomerPage: Page {
    let customerID: String
    var card: Customers.Card?
    var credit: Capture.CreditPosition?
    var loadError: String?
    var scroll = 0

    init(app: ConsoleApp, customerID: String) {
        self.customerID = customerID
        reappear(app: app)
    }

    var title: String { card?.name ?? customerID }
    var hints: String { "1 order 2 pay 3 visit 0 more" }

    func reappear(app: ConsoleApp) {
        load(into: &loadError) {
            card = try Customers(app.device).card(customerID)
            credit = try Capture(app.device).creditPosition(customerID: customerID)
        }
    }

    func lines(width: Int) -> [(String, Style)] {
        guard let card, let credit else { return wrap(loadError ?? "", width: width).map { ($0, Style(colour: .red)) } }
        let money = { (minor: Int64) in Money.format(minor, card.currency) }
        var lines: [(String, Style)] = [
            (disciplineWord(card.discipline) + " (\(card.colour))", disciplineStyle(card.discipline)),
        ]
        if credit.overdueMinor > 0 {
            lines.append(("Overdue \(money(credit.overdueMinor))", Style(colour: .red, bold: true)))
            lines.append(("  \(credit.overdueDays) days", Style(colour: .red)))
        } else if card.openItems.contains(where: \.overdue) {
            // The office's figure can lag the ERP's open items: an item past its due date is
            // overdue whatever the balance says (its amounts are under "Remind to pay").
            lines.append(("Overdue: see below", Style(colour: .red, bold: true)))
        } else {
            lines.append(("Nothing overdue", .plain))
        }
        lines.append(("Limit \(money(credit.creditLimitMinor))", .plain))
        lines.append(("Left  \(money(credit.leftMinor))", credit.leftMinor > 0 ? .strong : Style(colour: .red, bold: true)))
        if !card.address.isEmpty { lines += wrap(card.address, width: width).map { ($0, .plain) } }
        if !card.recentOrders.isEmpty {
            lines.append(("Last orders:", .strong))
            for order in card.recentOrders {
                lines.append(("\(order.day) \(Money.format(order.totalMinor, order.currency))\(order.paidLate ? " late" : "")", order.paidLate ? Style(colour: .yellow) : .plain))
            }
        }
        if !card.talkingPoints.isEmpty {
            lines.append(("Talk about:", .strong))
            for point in card.talkingPoints { lines += wrap("- " + point, width: width).map { ($0, .plain) } }
        }
        let reminders = card.openItems.filter { $0.overdue || $0.dueSoon }
        if !reminders.isEmpty {
            lines.append(("Remind to pay:", .strong))
            for item in reminders {
                lines.append(("\(Money.format(item.amountMinor, item.currency)) \(item.overdue ? "\(item.daysOverdue)d late" : item.daysOverdue == 0 ? "today" : "in \(-item.daysOverdue)d")",
                              item.overdue ? Style(colour: .red, bold: true) : Style(colour: .yellow)))
                // Its own line: "5d late" says how long, the date is what the customer's books show.
                lines.append(("  due \(item.dueOn)", item.overdue ? Style(colour: .red) : .plain))
                lines += wrap("  " + item.ref, width: width).map { ($0, .plain) }
            }
        }
        if !card.recentPayments.isEmpty {
            lines.append(("Payments here:", .strong))
            for payment in card.recentPayments {
                lines.append(("\(Money.format(payment.amountMinor, payment.currency))\(payment.voidedBy == nil ? "" : " VOID")", .plain))
            }
        }
        return lines
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        let all = lines(width: screen.columns)
        scroll = max(0, min(scroll, all.count - body.count))
        for (offset, line) in all.dropFirst(scroll).prefix(body.count).enumerated() {
            screen.line(body.lowerBound + offset, line.0, line.1)
        }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch key {
        case .up: scroll = max(scroll - 1, 0)
        case .down: scroll += 1
        case .character("1"), .function(2):
            guard let card else { return }
            app.push(OrderPage(app: app, card: card))
        case .character("2"), .function(3):
            guard let card else { return }
            app.push(PaymentPage(card: card))
        case .character("3"), .function(4): app.push(VisitPage(customerID: customerID))
        case .character("4"): app.push(DisplayRequestPage(app: app, customerID: customerID))
        case .character("5"): app.push(ComplaintPage(customerID: customerID))
        case .character("6"):
            guard let card else { return }
            app.push(QuotePage(app: app, card: card))
        case .character("7"): app.push(EquipmentPage(app: app, customerID: customerID))
        case .character("0"), .function(1): app.push(CustomerActionsPage(customer: self))
        case .escape: app.pop()
        default: break
        }
    }
}
