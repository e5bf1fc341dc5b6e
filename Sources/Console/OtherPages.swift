import Agent
import Field

/// Money collected: amount (digits; `.`, `,` or `*` for the decimal point), method, receipt.
final class PaymentPage: Page {
    let card: Customers.Card
    var amount = TextField(maximum: 12)
    var receipt = TextField(maximum: 20)
    var method = 0
    var focus = 0
    let methods = PaymentMethod.allCases

    init(card: Customers.Card) { self.card = card }

    var title: String { "Payment " + card.name }
    var hints: String { "^v field <> method Ent" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        var row = body.lowerBound
        if card.overdueMinor > 0 {
            screen.line(row, "Overdue \(Money.format(card.overdueMinor, card.currency))", Style(colour: .red, bold: true))
            row += 1
        }
        amount.draw(&screen, row: row, label: "Amount \(card.currency): ", focused: focus == 0)
        screen.line(row + 1, "Method < \(methods[method].rawValue) >", focus == 1 ? Style(bold: true, reverse: true) : .plain)
        receipt.draw(&screen, row: row + 2, label: "Receipt: ", focused: focus == 2)
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch key {
        case .up: focus = (focus + 2) % 3
        case .down, .tab: focus = (focus + 1) % 3
        case .left where focus == 1: method = (method + methods.count - 1) % methods.count
        case .right where focus == 1: method = (method + 1) % methods.count
        case .enter: save(app)
        case .escape:
            if amount.text.isEmpty && receipt.text.isEmpty { return app.pop() }
            app.push(ConfirmPage(question: "Leave without saving this payment?") { app in app.pop() })
        default:
            if focus == 0 {
                var edited = key
                if case .character(let character) = key, character == "*" || character == "," { edited = .character(".") }
                _ = amount.handle(edited, allowed: { ($0.isASCII && $0.isNumber) || $0 == "." })
            } else if focus == 2 {
                _ = receipt.handle(key, allowed: { $0.isLetter || $0.isNumber || $0 == "/" || $0 == "-" })
            }
        }
    }

    func save(_ app: ConsoleApp) {
        let minor: Int64
        do {
            minor = try Money.parseMinor(amount.text)
        } catch {
            return app.say("\(error)", Style(colour: .red))
        }
        let method = methods[method]
        let receipt = receipt.text
        guard let saved = app.capture(.payments, { device in
            try Capture(device).recordPayment(customerID: card.id, amountMinor: minor, method: method, receipt: receipt)
        }) else { return }
        app.pop()
        app.saved(saved, "\(saved.value.document.id) \(Money.format(minor, saved.value.document.currency))")
    }
}

final class VisitPage: Page {
    let customerID: String
    var list = ListView()
    let outcomes = VisitOutcome.allCases
    init(customerID: String) { self.customerID = customerID }
    var title: String { "Visit outcome" }
    var hints: String { "^v choose Ent save" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        list.draw(&screen, rows: body, lines: outcomes.enumerated().map { ("\($0.offset + 1) \($0.element.rawValue)", .plain) })
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if list.handle(key, count: outcomes.count) { return }
        switch key {
        case .character(let digit) where digit.wholeNumberValue.map { (1...outcomes.count).contains($0) } ?? false:
            list.selected = digit.wholeNumberValue! - 1
        case .enter:
            let outcome = outcomes[list.selected]
            guard let saved = app.capture(.visits, { try Capture($0).recordVisit(customerID: customerID, outcome: outcome) }) else { return }
            app.pop()
            app.saved(saved, "\(saved.value.document.id) \(outcome.rawValue)")
        case .escape: app.pop()
        default: break
        }
    }
}

/// What the rep must know about the device: unsent changes, the card, the battery, the signal
/// (the last reading the agent recorded; the page never asks the modem), whether writing is
/// stopped, the last sync.
final class StatusPage: Page {
    var rows: [(String, Style)] = []
    init(app: ConsoleApp) { reappear(app: app) }
    var title: String { "Status" }
    var hints: String { "Ent refresh Esc back" }

    func reappear(app: ConsoleApp) {
        rows = []
        let writing = app.agent.writing()
        if writing.stopped {
            rows.append(("WRITING STOPPED", Style(colour: .red, bold: true)))
            rows.append((writing.reason ?? "", Style(colour: .red)))
        }
        do {
            let status = try DeviceStatus.read(app.device)
            rows.append(("Unsent: \(status.unsyncedChanges) changes", status.unsyncedChanges > 0 ? .strong : .plain))
            let last = status.lastSyncAt.map { CalendarDay.minute(fromMilliseconds: $0) } ?? "never"
            let stale = status.lastSyncAt.map { app.device.clock.nowMilliseconds() - $0 >= 86_400_000 } ?? true
            rows.append(("Last sync: \(last)", stale ? Style(colour: .yellow, bold: true) : .plain))
            if stale { rows.append(("SYNC TODAY", Style(colour: .yellow, bold: true))) }
            if status.syncErrors > 0 { rows.append(("Sync errors: \(status.syncErrors)", Style(colour: .yellow))) }
        } catch {
            rows.append(("\(error)", Style(colour: .red)))
        }
        let card = app.agent.cardReport(app.device)
        rows.append(("Card: \(card.state.rawValue)", card.isUsable ? .plain : Style(colour: .red, bold: true)))
        if card.state != .notConfigured, let behind = card.behind, behind > 0 { rows.append(("  \(behind) changes not on it", Style(colour: .red))) }
        if let battery = writing.battery {
            let style: Style = battery.level == .normal ? .plain : Style(colour: .red, bold: true)
            rows.append(("Battery \(battery.percent)%\(battery.charging ? " charging" : "")\(battery.level == .normal ? "" : " " + battery.level.rawValue.uppercased())", style))
        } else {
            rows.append(("Battery: not read", .plain))
        }
        rows.append(("Signal: \(SignalReading.describe(app.agent.lastSignal(), now: app.device.clock.nowMilliseconds()))", .plain))
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        var row = body.lowerBound
        for (text, style) in rows {
            for line in wrap(text, width: screen.columns) where row < body.upperBound {
                screen.line(row, line, style)
                row += 1
            }
        }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch key {
        case .enter: reappear(app: app)
        case .escape: app.pop()
        default: break
        }
    }
}

final class SummaryPage: Page {
    var rows: [(String, Style)] = []
    init(app: ConsoleApp) { reappear(app: app) }
    var title: String { "Day summary" }
    var hints: String { "Esc back" }

    func reappear(app: ConsoleApp) {
        do {
            let summary = try DayPlan(app.device).summary()
            rows = [("\(summary.day)", .strong), ("Orders: \(summary.orders)\(summary.ordersHeld > 0 ? ", \(summary.ordersHeld) held" : "")", .plain)]
            rows += summary.orderTotals.map { ("  \(Money.format($0.minor, $0.currency))", .plain) }
            rows.append(("Cash collected:", .strong))
            rows += summary.collectedCash.isEmpty ? [("  none", .plain)] : summary.collectedCash.map { ("  \(Money.format($0.minor, $0.currency))", .plain) }
            let other = summary.collected.filter { all in
                (summary.collectedCash.first { $0.currency == all.currency }?.minor ?? 0) != all.minor
            }
            if !other.isEmpty {
                rows.append(("All payments:", .strong))
                rows += summary.collected.map { ("  \(Money.format($0.minor, $0.currency))", .plain) }
            }
            rows.append(("Visits: \(summary.visits)", .plain))
            rows.append(("Unsent: \(summary.unsentChanges)", summary.unsentChanges > 0 ? .strong : .plain))
        } catch {
            rows = [("\(error)", Style(colour: .red))]
        }
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        for (offset, row) in rows.prefix(body.count).enumerated() { screen.line(body.lowerBound + offset, row.0, row.1) }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if key == .escape { app.pop() }
    }
}

/// A display request: type (Left/Right), width and height in cm on the keypad; saving reserves
/// the materials, and the next page shows what was reserved and what the warehouse is short of.
final class DisplayRequestPage: Page {
    let customerID: String
    var types: [(code: String, name: String)] = []
    var type = 0
    var width = TextField(maximum: 5)
    var height = TextField(maximum: 5)
    var focus = 0

    init(app: ConsoleApp, customerID: String) {
        self.customerID = customerID
        types = (try? DocumentLists(app.device).displayTypes()) ?? []
    }

    var title: String { "Display request" }
    var hints: String { "^v field <> type Ent save" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        guard !types.isEmpty else { return screen.line(body.lowerBound, "No display types on the device") }
        let chosen = types[type]
        screen.line(body.lowerBound, "Type < \(chosen.code) >", focus == 0 ? Style(bold: true, reverse: true) : .plain)
        screen.line(body.lowerBound + 1, "  " + chosen.name)
        width.draw(&screen, row: body.lowerBound + 2, label: "Width cm: ", focused: focus == 1)
        height.draw(&screen, row: body.lowerBound + 3, label: "Height cm: ", focused: focus == 2)
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch key {
        case .up: focus = (focus + 2) % 3
        case .down, .tab: focus = (focus + 1) % 3
        case .left where focus == 0 && !types.isEmpty: type = (type + types.count - 1) % types.count
        case .right where focus == 0 && !types.isEmpty: type = (type + 1) % types.count
        case .enter: save(app)
        case .escape:
            if width.text.isEmpty && height.text.isEmpty { return app.pop() }
            app.push(ConfirmPage(question: "Leave without saving this display request?") { app in app.pop() })
        default:
            let digits: (Character) -> Bool = { $0.isASCII && $0.isNumber }
            if focus == 1 { _ = width.handle(key, allowed: digits) } else if focus == 2 { _ = height.handle(key, allowed: digits) }
        }
    }

    func save(_ app: ConsoleApp) {
        guard !types.isEmpty, let widthCm = Int64(width.text), let heightCm = Int64(height.text) else {
            return app.say("Type the width and the height in cm", Style(colour: .red))
        }
        let code = types[type].code
        guard let saved = app.capture(.displayRequests, { try Capture($0).requestDisplay(customerID: customerID, typeCode: code, widthCm: widthCm, heightCm: heightCm) }) else { return }
        app.pop()
        app.push(ReservedPage(request: saved.value.document))
        app.saved(saved, saved.value.document.id)
    }
}

/// What a saved display request reserved, the shortfalls in red.
final class ReservedPage: Page {
    let request: DisplayRequestDocument
    init(request: DisplayRequestDocument) { self.request = request }
    var title: String { "Reserved \(request.typeCode) \(request.widthCm)x\(request.heightCm)" }
    var hints: String { "Esc back" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        for (offset, material) in request.materials.prefix(body.count).enumerated() {
            let short = material.shortQuantity > 0 ? " SHORT \(material.shortQuantity)" : ""
            screen.line(body.lowerBound + offset, "\(material.quantity) x \(material.partNumber)\(short)", material.shortQuantity > 0 ? Style(colour: .red, bold: true) : .plain)
        }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if key == .escape || key == .enter { app.pop() }
    }
}
