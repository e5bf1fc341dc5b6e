public import Agent
import Field
import Sync

// MARK: What the rep can do at a customer

/// Every action at the customer, by digit (the card's hints name only the first three).
final class CustomerActionsPage: Page {
    let customer: CustomerPage
    var menu = DigitMenu(items: ["1 Order", "2 Payment", "3 Visit outcome", "4 Display request", "5 Complaint", "6 Quote", "7 Equipment check"])
    init(customer: CustomerPage) { self.customer = customer }
    var title: String { "Actions" }
    var hints: String { DigitMenu.hints }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) { menu.draw(&screen, rows: body) }

    /// A chosen action closes this page and does what its digit does on the customer's card.
    func handle(_ key: Key, app: ConsoleApp) {
        switch menu.handle(key) {
        case .moved: return
        case .back: app.pop()
        case .chosen(let digit):
            app.pop()
            customer.handle(.character(digit), app: app)
        }
    }
}

// MARK: Complaint

/// A complaint: its category, the product it is about (optional), and what is wrong.
final class ComplaintPage: Page {
    let customerID: String
    let categories = ComplaintCategory.allCases
    var category = 0
    var part = TextField(maximum: 20)
    var text = TextField(maximum: 400)
    var focus = 0

    init(customerID: String) { self.customerID = customerID }
    var title: String { "Complaint" }
    var hints: String { "^v field <> kind Ent save" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        screen.line(body.lowerBound, "Kind < \(categories[category].rawValue) >", focus == 0 ? Style(bold: true, reverse: true) : .plain)
        part.draw(&screen, row: body.lowerBound + 1, label: "Part: ", focused: focus == 1)
        screen.line(body.lowerBound + 2, "What is wrong:", focus == 2 ? .strong : .plain)
        // The description wrapped over the rows left, its end in view while typing.
        let rows = (body.lowerBound + 3)..<body.upperBound
        let wrapped = wrap(text.text, width: screen.columns - 1)
        for (offset, line) in wrapped.suffix(rows.count).enumerated() { screen.line(rows.lowerBound + offset, line) }
        if focus == 2 {
            let row = rows.lowerBound + max(min(wrapped.count, rows.count) - 1, 0)
            let end = text.text.last == " " || wrapped.isEmpty ? (wrapped.last.map { $0.count + 1 } ?? 0) : (wrapped.last?.count ?? 0)
            screen.put(row, min(end, screen.columns - 1), "_", Style(reverse: true))
        }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch key {
        case .up: focus = (focus + 2) % 3
        case .down, .tab: focus = (focus + 1) % 3
        case .left where focus == 0: category = (category + categories.count - 1) % categories.count
        case .right where focus == 0: category = (category + 1) % categories.count
        case .enter: save(app)
        case .escape:
            if part.text.isEmpty && text.text.isEmpty { return app.pop() }
            app.push(ConfirmPage(question: "Leave without saving this complaint?") { app in app.pop() })
        default:
            if focus == 1 { _ = part.handle(key, allowed: { $0.isLetter || $0.isNumber || $0 == "-" }) }
            if focus == 2 { _ = text.handle(key) }
        }
    }

    func save(_ app: ConsoleApp) {
        let category = categories[category]
        let part = part.text.isEmpty ? nil : part.text
        let description = text.text
        guard let saved = app.capture(.complaints, {
            try Capture($0).fileComplaint(customerID: customerID, category: category, description: description, partNumber: part)
        }) else { return }
        app.pop()
        app.saved(saved, "\(saved.value.document.id) \(category.rawValue)")
    }
}

// MARK: Quote

/// A quote: lines found as in order entry, priced at the customer's own level, and a discount;
/// whether it needs the supervisor's approval, and why, shows before saving (the rule
/// `createQuote` applies).
final class QuotePage: Page {
    enum Mode {
        case lines, discount
        case picking(LinePicker.Step)
    }

    let card: Customers.Card
    var lines: [OrderLineRequest] = []
    var preview: OrderDocument?
    var problem: String?
    var discount = TextField(maximum: 6)
    var discountBasisPoints: Int64 = 0
    var list = ListView()
    var mode = Mode.lines
    var picker = LinePicker()
    var unsavedNote: String { ConsoleApp.unsavedNote("quote", for: card.name, lines: lines.count) }

    init(app: ConsoleApp, card: Customers.Card) {
        self.card = card
        refresh(app)
    }

    var title: String { "Quote " + card.name }
    var hints: String {
        switch mode {
        case .lines: return "1 add 2 del 3 disc Ent SAVE"
        case .discount: return "digits . Ent ok"
        case .picking(.search): return "part/name Ent pick Esc back"
        case .picking(.quantity): return "digits <> unit Ent add"
        }
    }
    var level: String { preview?.priceLevel ?? "" }

    func refresh(_ app: ConsoleApp) {
        do {
            preview = try Capture(app.device).previewOrder(customerID: card.id, lines: lines)
            problem = nil
        } catch {
            preview = nil
            problem = "\(error)"
        }
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        if case .discount = mode {
            discount.draw(&screen, row: body.lowerBound, label: "Discount %: ")
        } else {
            screen.line(body.lowerBound, "Discount \(Percent.format(discountBasisPoints)), \(level)", .strong)
        }
        let room = body.count - 2
        let lower = max(4, room * 3 / 5)
        let linesRows = (body.lowerBound + 1)..<max(body.lowerBound + 1, body.upperBound - lower - 1)
        if lines.isEmpty {
            screen.line(linesRows.lowerBound, "No lines yet: 1 adds one")
        } else {
            let priced = preview?.lines ?? []
            list.draw(&screen, rows: linesRows, lines: lines.enumerated().map { index, request in
                let amount = priced.indices.contains(index) ? Money.format(priced[index].amountMinor, card.currency) : "?"
                let left = "\(index + 1) \(request.partNumber) \(request.quantity)\(request.unit.map { " " + $0 } ?? "")"
                return (fit(left, max(screen.columns - amount.count - 1, 1)) + " " + amount, .plain)
            })
        }
        let totalRow = linesRows.upperBound
        if let preview { screen.line(totalRow, "Before discount \(Money.format(preview.totalMinor, card.currency))", .strong) }
        let area = (totalRow + 1)..<body.upperBound
        switch mode {
        case .picking(let step): picker.draw(&screen, rows: area, step: step, currency: card.currency, level: level, app: app)
        case .lines, .discount:
            var text: [(String, Style)]
            if let problem {
                text = wrap(problem, width: screen.columns).map { ($0, Style(colour: .red)) }
            } else if let reason = Capture.quoteHoldReason(
                discountBasisPoints: discountBasisPoints, totalMinor: Capture.quoteTotal(grossMinor: preview?.totalMinor ?? 0, discountBasisPoints: discountBasisPoints),
                currency: card.currency, rule: (try? Capture(app.device).approvalRule()) ?? ApprovalRule()) {
                text = wrap("NEEDS APPROVAL: " + reason, width: screen.columns).map { ($0, Style(colour: .yellow, bold: true)) }
            } else {
                text = [("No approval needed", Style(colour: .green))]
            }
            for (offset, line) in text.prefix(area.count).enumerated() { screen.line(area.lowerBound + offset, line.0, line.1) }
        }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch mode {
        case .lines: handleLines(key, app: app)
        case .discount:
            var edited = key
            if case .character(let character) = key, character == "*" || character == "," { edited = .character(".") }
            if discount.handle(edited, allowed: { ($0.isASCII && $0.isNumber) || $0 == "." }) { return }
            switch key {
            case .enter:
                do {
                    let basisPoints = discount.text.isEmpty ? 0 : try Percent.parseBasisPoints(discount.text)
                    guard (0...10_000).contains(basisPoints) else { return app.say("A discount is 0 to 100%", Style(colour: .red)) }
                    discountBasisPoints = basisPoints
                    mode = .lines
                } catch {
                    app.say("\(error)", Style(colour: .red))
                }
            case .escape: mode = .lines
            default: break
            }
        case .picking(let step):
            switch picker.handle(key, step: step, app: app) {
            case .step(let next): mode = .picking(next)
            case .back: mode = .lines
            case .entered(let line):
                mode = .lines
                lines.append(line)
                refresh(app)
                if let problem {
                    lines.removeLast()
                    refresh(app)
                    return app.say(problem, Style(colour: .red))
                }
                list.selected = lines.count - 1
                app.noteUnsaved(unsavedNote)
                app.say("Line \(lines.count) added")
            }
        }
    }

    private func handleLines(_ key: Key, app: ConsoleApp) {
        if list.handle(key, count: lines.count) { return }
        switch key {
        case .character("1"):
            app.message = nil
            mode = .picking(picker.start())
        case .character("2"), .delete:
            guard list.removeSelected(from: &lines) else { return }
            refresh(app)
            app.noteUnsaved(lines.isEmpty ? nil : unsavedNote)
        case .character("3"):
            discount = TextField(maximum: 6)
            mode = .discount
        case .enter:
            guard !lines.isEmpty else { return app.say("Add a line first (1)", Style(colour: .red)) }
            let (customer, lines, discount) = (card.id, lines, discountBasisPoints)
            guard let saved = app.capture(.quotes, { try Capture($0).createQuote(customerID: customer, lines: lines, discountBasisPoints: discount) }) else { return }
            app.noteUnsaved(nil)
            app.pop()
            app.push(QuoteShowPage(quote: saved.value.document, name: card.name))
            app.saved(saved, saved.value.document.id)
        case .escape:
            ConfirmPage.discard("quote", lines: lines.count, app: app)
        default: break
        }
    }
}

/// A quote as saved: total after the discount and its approval state (waiting, approved or
/// rejected by the office once a sync brings the answer), with the reason it waits.
final class QuoteShowPage: Page {
    let quote: QuoteDocument
    let name: String
    init(quote: QuoteDocument, name: String) {
        self.quote = quote
        self.name = name
    }
    var title: String { "Quote \(quote.id)" }
    var hints: String { "Esc back" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        var rows: [(String, Style)] = [(name, .plain),
                                       ("\(quote.lines.count) lines, -\(Percent.format(quote.discountBasisPoints))", .plain),
                                       ("Total \(Money.format(quote.totalMinor, quote.currency))", .strong)]
        rows += approvalRows(quote.approval, reason: quote.holdReason, width: screen.columns)
        for (offset, row) in rows.prefix(body.count).enumerated() { screen.line(body.lowerBound + offset, row.0, row.1) }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if key == .escape || key == .enter { app.pop() }
    }
}

func approvalRows(_ approval: Approval, reason: String?, width: Int) -> [(String, Style)] {
    switch approval {
    case .none: return [("No approval needed", Style(colour: .green))]
    case .approved: return [("APPROVED", Style(colour: .green, bold: true))]
    case .rejected: return [("REJECTED", Style(colour: .red, bold: true))] + wrap(reason ?? "", width: width).map { ($0, Style(colour: .red)) }
    case .pending: return [("WAITS FOR APPROVAL:", Style(colour: .yellow, bold: true))] + wrap(reason ?? "", width: width).map { ($0, Style(colour: .yellow)) }
    }
}

/// Today's quotes, each with its approval state; Enter shows one.
final class QuoteListPage: Page {
    var rows: [DocumentLists.QuoteRow] = []
    var list = ListView()
    var loadError: String?
    init(app: ConsoleApp) { reappear(app: app) }
    var title: String { "Quotes today \(rows.count)" }
    var hints: String { "Ent show Esc back" }

    func reappear(app: ConsoleApp) {
        load(into: &loadError) {
            rows = try DocumentLists(app.device).quotes(day: app.today).rows
        }
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        if let loadError { return screen.line(body.lowerBound, loadError, Style(colour: .red)) }
        if rows.isEmpty { return screen.line(body.lowerBound, "No quotes today") }
        list.draw(&screen, rows: body, lines: rows.map { row in
            let mark = row.approval == "pending" ? "WAIT" : row.approval == "approved" ? "OK" : row.approval == "rejected" ? "NO" : ""
            let total = " \(Money.format(row.totalMinor, row.currency)) \(mark)"
            let style: Style = row.approval == "pending" ? Style(colour: .yellow) : row.approval == "rejected" ? Style(colour: .red) : .plain
            return (fit(row.customerName ?? row.customerId, max(screen.columns - total.count, 1)) + total, style)
        })
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if list.handle(key, count: rows.count) { return }
        switch key {
        case .enter:
            guard rows.indices.contains(list.selected) else { return }
            let row = rows[list.selected]
            do {
                app.push(QuoteShowPage(quote: try DocumentLists(app.device).quote(row.id), name: row.customerName ?? row.customerId))
            } catch {
                app.say("\(error)", Style(colour: .red))
            }
        case .escape: app.pop()
        default: break
        }
    }
}

// MARK: Equipment check

/// The equipment at the customer and when each was last looked after; Enter records a check.
final class EquipmentPage: Page {
    let customerID: String
    var items: [EquipmentList.Item] = []
    var list = ListView()
    var loadError: String?
    init(app: ConsoleApp, customerID: String) {
        self.customerID = customerID
        reappear(app: app)
    }
    var title: String { "Equipment" }
    var hints: String { "Ent check Esc back" }

    func reappear(app: ConsoleApp) {
        load(into: &loadError) {
            items = try EquipmentList(app.device).at(customerID: customerID)
        }
    }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        if let loadError { return screen.line(body.lowerBound, loadError, Style(colour: .red)) }
        if items.isEmpty { return screen.line(body.lowerBound, "No equipment at this customer") }
        // Two rows each: what and where from, then the last check.
        var lines: [(String, Style)] = []
        for item in items {
            lines.append(("\(item.kind) \(item.serial) \(item.placedOn)", .plain))
            let last = item.lastAt.map { "  last \(item.lastKind ?? "") \(CalendarDay.string(fromMilliseconds: $0))" } ?? "  not checked here yet"
            lines.append((last, item.lastAt == nil ? Style(colour: .yellow) : .plain))
        }
        var view = ListView()
        view.selected = list.selected * 2
        view.draw(&screen, rows: body, lines: lines)
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if list.handle(key, count: items.count) { return }
        switch key {
        case .enter:
            guard items.indices.contains(list.selected) else { return }
            app.push(MaintenancePage(item: items[list.selected]))
        case .escape: app.pop()
        default: break
        }
    }
}

/// One check of one piece of equipment: what was done, and a note.
final class MaintenancePage: Page {
    let item: EquipmentList.Item
    let kinds = MaintenanceKind.allCases
    var kind = 0
    var note = TextField(maximum: 200)
    var focus = 0
    init(item: EquipmentList.Item) { self.item = item }
    var title: String { "Check \(item.serial)" }
    var hints: String { "^v field <> kind Ent save" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        screen.line(body.lowerBound, "\(item.kind) \(item.id)")
        screen.line(body.lowerBound + 1, "Done < \(kinds[kind].rawValue) >", focus == 0 ? Style(bold: true, reverse: true) : .plain)
        note.draw(&screen, row: body.lowerBound + 2, label: "Note: ", focused: focus == 1)
    }

    func handle(_ key: Key, app: ConsoleApp) {
        switch key {
        case .up, .down, .tab: focus = 1 - focus
        case .left where focus == 0: kind = (kind + kinds.count - 1) % kinds.count
        case .right where focus == 0: kind = (kind + 1) % kinds.count
        case .enter:
            let (id, kind, text) = (item.id, kinds[kind], note.text)
            guard let saved = app.capture(.maintenance, { try Capture($0).recordMaintenance(equipmentID: id, kind: kind, note: text) }) else { return }
            app.pop()
            app.saved(saved, "\(saved.value.document.id) \(kind.rawValue)")
        case .escape:
            if note.text.isEmpty { return app.pop() }
            app.push(ConfirmPage(question: "Leave without saving this check?") { app in app.pop() })
        default:
            if focus == 1 { _ = note.handle(key) }
        }
    }
}

// MARK: Sync

/// A sync from the screen: the mode, the link (the network, or the modem when this handheld has
/// one configured), the sync password; then a progress bar with the bytes each way and the
/// link, and the result. The sync is `DeviceAgent.sync`, the same as `satchel sync`.
final class SyncPage: Page {
    let modes: [SyncMode] = [.fast, .full]
    var mode = 0
    var link = 0
    var password = TextField(maximum: 64)
    var focus = 2
    var running: SyncProgress?
    /// What the bar measures the upload against: the unsent changes' payloads (compressed on the
    /// wire, so the upload usually ends before the bar is full; the bytes shown are exact).
    var expectedUp = 0
    var result: [(String, Style)] = []

    var title: String { "Sync" }
    var hints: String { running == nil ? "^v field <> choose Ent go" : "syncing, please wait" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        let links = app.syncLinks
        var row = body.lowerBound
        screen.line(row, "Mode < \(modes[mode].name) >", focus == 0 ? Style(bold: true, reverse: true) : .plain)
        row += 1
        screen.line(row, "Link < \(links.isEmpty ? "none" : links[link].name) >", focus == 1 ? Style(bold: true, reverse: true) : .plain)
        row += 1
        let start = screen.put(row, 0, "Password: ")
        screen.put(row, start, String(repeating: "*", count: min(password.text.count, screen.columns - start - 1)), focus == 2 ? .strong : .plain)
        if focus == 2 && running == nil { screen.put(row, start + min(password.text.count, screen.columns - start - 1), "_", Style(reverse: true)) }
        row += 2
        if let running {
            screen.line(row, running.phase == .connecting ? "Connecting (\(running.link))..." : "Talking to the hub (\(running.link))", .strong)
            let width = screen.columns - 2
            let filled = expectedUp == 0 ? width : min(width, running.bytesUp * width / max(expectedUp, 1))
            screen.line(row + 1, "[" + String(repeating: "#", count: running.phase == .connecting ? 0 : filled) + String(repeating: ".", count: width - (running.phase == .connecting ? 0 : filled)) + "]")
            screen.line(row + 2, "up \(running.bytesUp) B of ~\(expectedUp)")
            screen.line(row + 3, "down \(running.bytesDown) B")
            return
        }
        for (offset, line) in result.prefix(max(body.upperBound - row, 0)).enumerated() { screen.line(row + offset, line.0, line.1) }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        guard running == nil else { return }
        switch key {
        case .up: focus = (focus + 2) % 3
        case .down, .tab: focus = (focus + 1) % 3
        case .left where focus == 0, .right where focus == 0: mode = (mode + 1) % modes.count
        case .left where focus == 1, .right where focus == 1: link = app.syncLinks.isEmpty ? 0 : (link + 1) % app.syncLinks.count
        case .enter: run(app)
        case .escape: app.pop()
        default:
            if focus == 2 { _ = password.handle(key, allowed: { !$0.isWhitespace || $0 == " " }) }
        }
    }

    func run(_ app: ConsoleApp) {
        let links = app.syncLinks
        guard !links.isEmpty else { return app.say("No link to the hub configured", Style(colour: .red)) }
        guard !password.text.isEmpty else { return app.say("Type the sync password", Style(colour: .red)) }
        expectedUp = ((try? app.device.changes(after: app.device.uploadedThroughSeq())) ?? []).reduce(0) { $0 + $1.payload.count }
        result = []
        app.message = nil
        var last = 0
        running = SyncProgress(link: links[link].name, phase: .connecting)
        app.redraw()
        do {
            let report = try app.agent.sync(modes[mode], password: password.text, over: links[link].link, progress: { progress in
                self.running = progress
                // At most ten frames a second: a serial console must keep up with the link.
                let now = monotonicMicroseconds()
                guard now - last >= 100_000 || progress.phase == .connecting else { return }
                last = now
                app.redraw()
            })
            running = nil
            result = [("SYNCED (\(report.mode))", Style(colour: .green, bold: true)),
                      ("\(report.uploaded) sent\(report.duplicates > 0 ? ", \(report.duplicates) had" : "")", .plain)]
            if report.pull != nil { result.append(("\(report.downloaded) rows received", .plain)) }
            result.append(("\(report.bytesUp) B up, \(report.bytesDown) down", .plain))
            if !report.mismatched.isEmpty { result.append(("Working set to reload: next sync", Style(colour: .yellow))) }
        } catch {
            running = nil
            result = [("NOT SYNCED", Style(colour: .red, bold: true))] + wrap("\(error)", width: 32).map { ($0, Style(colour: .red)) }
        }
        password = TextField(maximum: 64)
    }
}

// MARK: Unlock

/// The app password, as the console needs it: whether the device is locked now, and unlocking
/// it. The agent's (`DeviceAgent.unlock(password:)`) once the device has one; nil: no app
/// password on this device, nothing to unlock.
public struct ConsoleLock {
    public var isLocked: () -> Bool
    public var unlock: (String) throws -> Void
    /// How long a wrong password will make the rep wait (it grows with each wrong one).
    public var delayAfterNextFailureMilliseconds: () -> Int64
    /// The session used now: restarts its idle timer (`idle_lock_minutes`).
    public var touch: () -> Void
    /// The SIM PIN at unlock, the agent's (`DeviceAgent.unlockSIM`, whose safety rules apply:
    /// state and attempts read first, never sent at the attempts floor, at most once): called once
    /// the password is right with nil, which sends nothing and says whether the SIM asks
    /// (`.notGiven`), then with the PIN the rep typed. Without a modem: `.noModem`.
    public var unlockSIM: (_ pin: String?) -> SIMAtUnlock
    public init(isLocked: @escaping () -> Bool, unlock: @escaping (String) throws -> Void,
                delayAfterNextFailureMilliseconds: @escaping () -> Int64 = { 0 }, touch: @escaping () -> Void = {},
                unlockSIM: @escaping (_ pin: String?) -> SIMAtUnlock = { _ in .noModem }) {
        self.isLocked = isLocked
        self.unlock = unlock
        self.delayAfterNextFailureMilliseconds = delayAfterNextFailureMilliseconds
        self.touch = touch
        self.unlockSIM = unlockSIM
    }
}

/// The first page of a locked device, and the page a capture brings back when the device locked
/// itself meanwhile (idle): the password, hidden; a wrong one says how many tries are left and
/// how long the next wrong one will wait. While the password is checked the screen says so, and
/// for how long at most: the wait after a wrong one grows, and the keypad is not read meanwhile.
/// Once it is right, when the handheld's SIM asks for its PIN (and has more attempts left than
/// the floor), the page asks for the PIN, hidden the same way; Esc skips it (nothing sent). The
/// device is unlocked whatever the SIM answers, as with `satchel unlock`; what it answered is said.
final class UnlockPage: Page {
    let lock: ConsoleLock
    var password = TextField(maximum: 64)
    var problem: String?
    var checking: String?
    /// Set once the password was right and the SIM asks for its PIN: the attempts it has left.
    var simAttemptsLeft: Int?? = nil
    /// Brought up by a save that found the device locked: once unlocked, the rep saves again.
    let afterSave: Bool
    init(lock: ConsoleLock, afterSave: Bool = false) {
        self.lock = lock
        self.afterSave = afterSave
    }
    var title: String { "Satchel locked" }
    var hints: String { simAttemptsLeft == nil ? "type password Ent unlock" : "type PIN Ent send Esc skip" }
    var statisticsLabel: String { simAttemptsLeft == nil ? title : "SIM PIN" }

    func draw(_ screen: inout ScreenBuffer, body: Range<Int>, app: ConsoleApp) {
        var label = "App password:"
        if let left = simAttemptsLeft {
            label = "SIM PIN" + (left.map { " (\($0) attempt\($0 == 1 ? "" : "s") left)" } ?? "") + ":"
        }
        screen.line(body.lowerBound, label)
        screen.put(body.lowerBound + 1, 0, String(repeating: "*", count: min(password.text.count, screen.columns - 1)), .strong)
        if checking == nil { screen.put(body.lowerBound + 1, min(password.text.count, screen.columns - 1), "_", Style(reverse: true)) }
        let text: (String, Style)? = checking.map { ($0, Style(colour: .yellow, bold: true)) } ?? problem.map { ($0, Style(colour: .red, bold: true)) }
        if let text {
            for (offset, line) in wrap(text.0, width: screen.columns).prefix(body.count - 3).enumerated() {
                screen.line(body.lowerBound + 3 + offset, line, text.1)
            }
        }
    }

    func handle(_ key: Key, app: ConsoleApp) {
        if simAttemptsLeft != nil { return handleSIMPIN(key, app: app) }
        if password.handle(key, allowed: { !$0.isWhitespace || $0 == " " }) { return }
        guard key == .enter, !password.text.isEmpty else { return }
        let typed = password.text
        let wait = lock.delayAfterNextFailureMilliseconds()
        // Said before the check, which blocks: a wrong password sleeps before it returns.
        checking = "Checking the password..." + (wait > 0 ? " if wrong, wait \(seconds(wait)) s" : "")
        app.redraw()
        checking = nil
        password = TextField(maximum: 64)
        do {
            try lock.unlock(typed)
            problem = nil
        } catch {
            let next = lock.delayAfterNextFailureMilliseconds()
            problem = "\(error)" + (next > 0 && lock.isLocked() ? ". Next wrong one: wait \(seconds(next)) s" : "")
            return
        }
        // The SIM asked, nothing sent: the modem's probe is bounded (`DoctorModemOptions`), said meanwhile.
        checking = "Asking the SIM..."
        app.redraw()
        checking = nil
        let sim = lock.unlockSIM(nil)
        if case .notGiven(let left) = sim {
            simAttemptsLeft = .some(left)
            return
        }
        finish(sim, app: app)
    }

    func handleSIMPIN(_ key: Key, app: ConsoleApp) {
        if password.handle(key, allowed: { $0.isASCII && $0.isNumber }) { return }
        switch key {
        case .escape:
            password = TextField(maximum: 64)
            finish(.notGiven(attemptsLeft: simAttemptsLeft ?? nil), app: app)
        case .enter where !password.text.isEmpty:
            let typed = password.text
            checking = "Sending the SIM PIN..."
            app.redraw()
            checking = nil
            password = TextField(maximum: 64)
            finish(lock.unlockSIM(typed), app: app)
        default:
            return
        }
    }

    /// Unlocked, whatever the SIM said: the route (or the page under this one), and the SIM's answer.
    private func finish(_ sim: SIMAtUnlock, app: ConsoleApp) {
        simAttemptsLeft = nil
        let said: (String, Style)?
        switch sim {
        case .noModem, .ready: said = nil
        case .unlocked: said = (sim.message, Style(colour: .green, bold: true))
        case .notGiven, .problem: said = (sim.message, Style(colour: .red, bold: true))
        }
        app.unlocked(afterSave: afterSave, sim: said)
    }

    /// 250 ms as "0.25", 2000 as "2".
    private func seconds(_ milliseconds: Int64) -> String {
        let fraction = milliseconds % 1000
        guard fraction != 0 else { return String(milliseconds / 1000) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 3 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(milliseconds / 1000).\(digits)"
    }
}
