import Foundation
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// The console's other screens and its bad input, driven in tmux as a rep's keypad would, the
/// database checked afterwards.
@Suite("satchel console in tmux: complaint, quote, equipment, sync, bad input", .serialized)
struct ConsoleScreensTests {
    let satchel = BuiltExecutable.path("satchel")
    let visits = ConsoleEndToEndTests()

    /// Opens `customer`'s card from the route.
    func openCustomer(_ console: ConsoleSession, _ customer: String) throws {
        try console.waitFor("Route")
        try console.keys("2")
        try console.waitFor("Find customer")
        try console.type(customer)
        try console.keys("Enter")
        try console.waitFor("Limit")
    }

    /// Adds one order line: search by part number, pick it, type the quantity.
    func addLine(_ console: ConsoleSession, part: String, quantity: Int, number: Int) throws {
        try console.keys("1")
        try console.waitFor("Find:")
        try console.type(part)
        try console.waitFor(part + " ")
        try console.keys("Enter")
        try console.waitFor("Qty:")
        try console.type("\(quantity)")
        try console.keys("Enter")
        try console.waitFor("Line \(number) added")
    }

    func count(_ home: String, _ sql: String) throws -> Int64 { try Database(path: home + "/satchel.db").int64(sql) }

    /// The SGR parameters (colours, reverse) set anywhere on the line of `styled` that shows `text`.
    func styles(_ styled: String, lineWith text: String) -> Set<Int> {
        guard let line = styled.split(separator: "\n").first(where: { $0.contains(text) }) else { return [] }
        var found = Set<Int>()
        var rest = Substring(line)
        while let start = rest.range(of: "\u{1B}[") {
            rest = rest[start.upperBound...]
            guard let end = rest.firstIndex(where: { $0.isLetter }) else { break }
            if rest[end] == "m" { found.formUnion(rest[..<end].split(separator: ";").compactMap { Int($0) }) }
            rest = rest[rest.index(after: end)...]
        }
        return found
    }

    @Test("payment reminders on 32x16: the route marks the Polish stop's overdue open item with a red !, the Bulgarian's due in 3 days with a yellow ~, the Russian's due in 3 weeks with nothing; the cards say how much in which currency and when")
    func paymentReminders() throws {
        let directory = TemporaryDirectory("console-reminders")
        let visit = try visits.seeded(directory)
        let database = try Database(path: visit.home + "/satchel.db")
        // The seeded route is today's (the console's day); its first three stops get the open
        // items as a download would write them, dated from that day.
        let day = try database.text("SELECT day FROM routes ORDER BY day DESC LIMIT 1")
        let stops = try database.query("SELECT customer_id FROM route_stops WHERE route_id = (SELECT id FROM routes WHERE day = ?) ORDER BY position LIMIT 3",
                                       [.text(day)]) { $0.text(0) }
        try #require(stops.count == 3)
        let customers = [("Hurtownia Żółw Łódź", "PLN", "FV/2026/11/0042", Int64(234_50), -5),
                         ("Склад Щастие ЕООД", "BGN", "ФК-0000123", Int64(1_200_00), 3),
                         ("Магазин Ёлочка", "RUB", "СЧ-000777", Int64(15_000_00), 21)]
        for (customer, (name, currency, ref, minor, days)) in zip(stops, customers) {
            // No office balance overdue and no address or talking points: the marks come from
            // the open items alone and the card stays short. (Opened from the route, so the
            // folded name the search uses is left as it was.)
            try database.execute("UPDATE customers SET name = ?, currency = ?, overdue_minor = 0, overdue_days = 0, address = '', talking_points = '' WHERE id = ?",
                                 [.text(name), .text(currency), .text(customer)])
            try database.execute("INSERT INTO open_items(customer_id, ref, issued_on, due_on, amount_minor, currency) VALUES (?, ?, date(?, '-30 days'), date(?, ? || ' days'), ?, ?)",
                                 [.text(customer), .text(ref), .text(day), .text(day), .text("\(days)"), .integer(minor), .text(currency)])
        }
        let console = try ConsoleSession(directory, command: "\(satchel) console --home \(visit.home)")
        let route = try console.waitFor("3. Магазин Ёлочка")
        #expect(route.contains("1.!Hurtownia Żółw Łódź") && route.contains("2.~Склад Щастие ЕООД"), "\(route)")
        // capture-pane ends each of the pane's rows with a newline.
        let lines = route.dropLast().split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count <= 16 && lines.allSatisfy { $0.count <= 32 }, "\(route)")
        let styled = try console.styledScreen()
        #expect(styles(styled, lineWith: "Hurtownia").contains(31), "red ! wanted: \(styled.debugDescription)")
        #expect(styles(styled, lineWith: "Склад").contains(33), "yellow ~ wanted: \(styled.debugDescription)")
        #expect(styles(styled, lineWith: "Ёлочка").isDisjoint(with: [31, 33]), "no colour wanted: \(styled.debugDescription)")

        // Each card, scrolled to its end (Down clamps there): the amount with its currency and when it falls due.
        func card(_ name: String, shows wanted: [String]) throws -> (top: String, end: String) {
            try console.keys("Enter")
            let top = try console.waitFor("Limit")
            try console.tmux(["send-keys", "-t", "visit"] + Array(repeating: "Down", count: 20))
            let shown = try console.waitUntilSettled("\(name)'s card with \(wanted)") { screen in screen.hasPrefix(name) && wanted.allSatisfy { screen.contains($0) } }
            let lines = shown.dropLast().split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.count <= 16 && lines.allSatisfy { $0.count <= 32 }, "\(shown)")
            try console.keys("Escape")
            try console.waitFor("3. Магазин Ёлочка")
            try console.keys("Down")
            return (top, shown)
        }
        let polishDue = try database.text("SELECT date(?, '-5 days')", [.text(day)])
        let bulgarianDue = try database.text("SELECT date(?, '3 days')", [.text(day)])
        let polish = try card("Hurtownia Żółw Łódź", shows: ["Remind to pay:", "234.50 PLN 5d late", "  due \(polishDue)", "FV/2026/11/0042"])
        // The due date on its own line, under the amount and above the invoice.
        let polishLines = polish.end.split(separator: "\n").map(String.init)
        let amountRow = try #require(polishLines.firstIndex { $0.hasPrefix("234.50 PLN 5d late") }, "\(polish.end)")
        #expect(polishLines.count > amountRow + 2 && polishLines[amountRow + 1].hasPrefix("  due \(polishDue)")
                && polishLines[amountRow + 2].contains("FV/2026/11/0042"), "\(polish.end)")
        #expect(!polish.end.contains("ФК-0000123") && !polish.end.contains("СЧ-000777"), "\(polish.end)")
        // The office's overdue figure is 0 here, but an open item is 5 days late: the card's top
        // must not tell the rep there is nothing overdue.
        #expect(!polish.top.contains("Nothing overdue") && polish.top.contains("Overdue: see below"), "\(polish.top)")
        let bulgarian = try card("Склад Щастие ЕООД", shows: ["Remind to pay:", "1200.00 BGN in 3d", "  due \(bulgarianDue)", "ФК-0000123"])
        #expect(!bulgarian.end.contains("d late"), "\(bulgarian.end)")
        #expect(bulgarian.top.contains("Nothing overdue"), "\(bulgarian.top)")
        // Due in three weeks: not a reminder yet, so no section at all (the settled screen is the card's end).
        let russian = try card("Магазин Ёлочка", shows: [])
        #expect(!russian.end.contains("Remind to pay") && !russian.end.contains("15000.00 RUB") && !russian.end.contains("СЧ-000777"), "\(russian.end)")
    }

    @Test("a complaint in Bulgarian, a quote held for its discount with the reason on the screen before saving, an equipment check refused to a rep and saved for a technician")
    func complaintQuoteEquipment() throws {
        let directory = TemporaryDirectory("console-screens")
        let visit = try visits.seeded(directory)
        let database = try Database(path: visit.home + "/satchel.db")
        let customer = try database.text("SELECT customer_id FROM equipment ORDER BY id LIMIT 1")
        let console = try ConsoleSession(directory, command: "\(satchel) console --home \(visit.home)")
        try openCustomer(console, customer)

        // Complaint: the kind by arrows, the part, the text.
        try console.keys("0")
        try console.waitFor("7 Equipment check")
        try console.keys("5")
        try console.waitFor("What is wrong")
        try console.keys("Right", "Down")
        try console.type(visit.parts[0])
        try console.keys("Down")
        try console.type("3 кутии с пукнати плочки")
        try console.keys("Enter")
        let filed = try console.waitFor("SAVED")
        let complaint = try #require(try database.first("SELECT id, category, description, part_number FROM complaints") { ($0.text(0), $0.text(1), $0.text(2), $0.text(3)) })
        #expect(filed.contains("SAVED \(complaint.0) \(complaint.1)"))
        #expect(complaint.1 == "damaged" && complaint.2 == "3 кутии с пукнати плочки" && complaint.3 == visit.parts[0])

        // Quote: one line, 12.5% typed with * for the point: over the rep's 10%, the reason shows before saving.
        try console.keys("6")
        try console.waitFor("Discount 0.00%")
        try addLine(console, part: visit.parts[1], quantity: 40, number: 1)
        try console.keys("3")
        try console.waitFor("Discount %:")
        try console.type("12*5")
        try console.keys("Enter")
        let before = try console.waitFor("NEEDS APPROVAL")
        #expect(try count(visit.home, "SELECT count(*) FROM quotes") == 0)
        #expect(before.contains("discount 12.50%") && before.contains("over the 10.00%"))
        try console.keys("Enter")
        let after = try console.waitFor("WAITS FOR APPROVAL")
        let quote = try #require(try database.first("SELECT id, approval, hold_reason, discount_basis_points FROM quotes") { ($0.text(0), $0.text(1), $0.text(2), $0.int64(3)) })
        #expect(quote.1 == "pending" && quote.3 == 1_250)
        #expect(quote.2 == "discount 12.50% is over the 10.00% a rep may grant; approval by the supervisor")
        #expect(after.contains("SAVED \(quote.0)"))
        try console.keys("Escape")
        try console.waitFor("Limit")

        // Equipment check on a rep's handheld: refused, the reason on the screen, nothing written.
        let changes = try count(visit.home, "SELECT count(*) FROM changes")
        try console.keys("7")
        try console.waitFor("not checked here yet")
        try console.keys("Enter")
        try console.waitFor("Done < inspection >")
        try console.keys("Down")
        try console.type("Czysty, 4°C")
        try console.keys("Enter")
        let refused = try console.waitFor("NOT SAVED")
        #expect(refused.contains("sales reps do not"))
        #expect(try count(visit.home, "SELECT count(*) FROM changes") == changes)
        try console.keys("Escape")
        try console.waitFor("Leave without saving")
        try console.keys("Enter")
        try console.waitFor("Equipment")
        try console.keys("Escape")
        try console.waitFor("Limit")
        try console.keys("Escape", "Escape")
        try console.waitFor("Route")
        try console.keys("0")
        try console.waitFor("9 Quit")
        try console.keys("7")
        let quotes = try console.waitFor("Quotes today 1")
        #expect(quotes.contains("WAIT"))

        // The same handheld given to a technician (the hub's role): the check is saved.
        try database.execute("UPDATE reps SET role = 'technician'")
        let technician = try ConsoleSession(TemporaryDirectory("console-technician"), command: "\(satchel) console --home \(visit.home)")
        try openCustomer(technician, customer)
        try technician.keys("7")
        try technician.waitFor("not checked here yet")
        try technician.keys("Enter", "Right")
        try technician.waitFor("Done < cleaning >")
        try technician.keys("Enter")
        let checked = try technician.waitFor("SAVED")
        let record = try #require(try database.first("SELECT id, kind FROM maintenance") { ($0.text(0), $0.text(1)) })
        #expect(checked.contains("SAVED \(record.0) cleaning") && record.1 == "cleaning")
        try technician.keys("7")
        try technician.waitFor("last cleaning")
    }

    @Test("an order for a customer in arrears shows HOLD and the credit rule's reason before saving, and is saved held with that reason")
    func heldOrder() throws {
        let directory = TemporaryDirectory("console-held")
        let visit = try visits.seeded(directory)
        let database = try Database(path: visit.home + "/satchel.db")
        let (customer, currency) = try #require(try database.first(
            "SELECT id, currency FROM customers WHERE overdue_minor > 0 ORDER BY id LIMIT 1", row: { ($0.text(0), $0.text(1)) }))
        let part = try database.text("SELECT part_number FROM prices WHERE level = 'customer' AND currency = ? ORDER BY part_number LIMIT 1", [.text(currency)])
        let console = try ConsoleSession(directory, command: "\(satchel) console --home \(visit.home)")
        try openCustomer(console, customer)
        try console.keys("1")
        try console.waitFor("Level:")
        try addLine(console, part: part, quantity: 1, number: 1)
        let order = try console.waitFor("HOLD: customer has")
        #expect(order.contains("overdue"))
        try console.keys("Enter")
        let review = try console.waitFor("HELD FOR APPROVAL")
        #expect(try count(visit.home, "SELECT count(*) FROM orders") == 0)
        try console.keys("Enter")
        try console.waitFor("SAVED")
        let (approval, reason) = try #require(try database.first("SELECT approval, hold_reason FROM orders") { ($0.text(0), $0.text(1)) })
        #expect(approval == "pending")
        // The reason on the review, wrapped at 32 columns, is the one saved.
        let shown = review.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        #expect(shown.contains(reason), "\(shown)\nsaved: \(reason)")
    }

    @Test("sync from the screen: a wrong password says NOT SYNCED and why; the right one syncs through DeviceAgent.sync, shows the link, the bytes and what went up, and the hub has it")
    func syncPage() throws {
        let directory = TemporaryDirectory("console-sync")
        let visit = try visits.seeded(directory)
        let hubBinary = BuiltExecutable.path("satchel-hub")
        let environment = ["SATCHEL_HOME": visit.home]
        let database = directory.path + "/hub.db"
        let keys = try ChildProcess.run(satchel, ["keys", "--json"], environment: environment, timeoutSeconds: 30)
        let deviceKey = try #require(try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])["public_key"] as? String
        try #require(try ChildProcess.run(hubBinary, ["rep", "add", "--db", database, "--rep", "R01", "--name", "Paweł Wróblewski"], stdin: "hasło-sync\n", timeoutSeconds: 60).succeeded)
        try #require(try ChildProcess.run(hubBinary, ["device", "add", "--db", database, "--device", "SIM1", "--rep", "R01", "--key", deviceKey ?? ""], timeoutSeconds: 60).succeeded)
        let hubKey = try ChildProcess.run(hubBinary, ["key", "--db", database], timeoutSeconds: 60).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let running = try SyncEndToEndTests.RunningHub(binary: hubBinary, database: database)
        defer { running.stop() }
        try #require(try ChildProcess.run(satchel, ["provision", "--hub", running.address, "--hub-key", hubKey], environment: environment, timeoutSeconds: 30).succeeded)
        try #require(try ChildProcess.run(satchel, ["visit", "--customer", visit.customer, "--outcome", "no_order", "--note", "Wizyta — посещение"],
                                          environment: environment, timeoutSeconds: 30).succeeded)

        let console = try ConsoleSession(directory, command: "\(satchel) console --home \(visit.home)")
        try console.waitFor("Route")
        try console.keys("0")
        try console.waitFor("6 Sync")
        try console.keys("6")
        try console.waitFor("Link < network >")
        try console.type("zgaduję")
        try console.keys("Enter")
        let refused = try console.waitFor("NOT SYNCED", seconds: 60)
        #expect(refused.contains("wrong sync password"), "\(refused)")
        #expect(!refused.contains("zgaduję"))
        try console.type("hasło-sync")
        // Ten keys typed are drawn when the console has read them: wait for the stars.
        let typed = try console.waitFor("Password: **********")
        #expect(!typed.contains("hasło"))
        try console.keys("Enter")
        let synced = try console.waitFor("SYNCED (fast)", seconds: 60)
        #expect(synced.contains("1 sent"))
        #expect(synced.contains(" B up, "))
        #expect(try Database(path: database).int64("SELECT count(*) FROM device_changes WHERE device_id = 'SIM1'") == 1)
        #expect(try Database(path: visit.home + "/satchel.db").text("SELECT value FROM sync_state WHERE key = 'uploaded_through_seq'") == "1")
    }

    @Test("the card pulled mid-order: the order is saved on the device, the screen says NOT ON CARD, and the status page says the card is missing")
    func cardPulledMidOrder() throws {
        let directory = TemporaryDirectory("console-card")
        let visit = try visits.seeded(directory)
        let card = directory.path + "/card"
        try FileManager.default.createDirectory(atPath: card, withIntermediateDirectories: true)
        let environment = ["SATCHEL_HOME": visit.home, "SATCHEL_CARD": card]
        let initialised = try ChildProcess.run(satchel, ["card", "init"], environment: environment, stdin: "hasło-zapasowe\n", timeoutSeconds: 60)
        try #require(initialised.succeeded, "\(initialised.stderr)")
        let console = try ConsoleSession(directory, command: "env SATCHEL_CARD=\(card) \(satchel) console --home \(visit.home)")
        try openCustomer(console, visit.customer)
        try console.keys("1")
        try console.waitFor("Level:")
        try addLine(console, part: visit.parts[1], quantity: 2, number: 1)
        // The card comes out while the rep is entering the second line.
        try FileManager.default.moveItem(atPath: card, toPath: directory.path + "/card-pulled")
        try addLine(console, part: visit.parts[2], quantity: 3, number: 2)
        try console.keys("Enter")
        try console.waitFor("Save order?")
        try console.keys("Enter")
        let saved = try console.waitFor("SAVED")
        #expect(saved.contains("NOT ON CARD"))
        #expect(try count(visit.home, "SELECT count(*) FROM order_lines") == 2)
        try console.keys("Escape", "Escape")
        try console.waitFor("Route")
        try console.keys("0")
        try console.waitFor("9 Quit")
        try console.keys("4")
        let status = try console.waitFor("Card:")
        #expect(!status.contains("Card: ok"), "\(status)")
        #expect(status.contains("not on it"), "\(status)")
    }

    @Test("power cut (SIGKILL) mid-order: no order and nothing journaled, the database intact; the next start says what was not saved")
    func killedMidOrder() throws {
        let directory = TemporaryDirectory("console-kill")
        let visit = try visits.seeded(directory)
        let console = try ConsoleSession(directory, command: "exec \(satchel) console --home \(visit.home)")
        try openCustomer(console, visit.customer)
        try console.keys("1")
        try console.waitFor("Level:")
        try addLine(console, part: visit.parts[1], quantity: 2, number: 1)
        try addLine(console, part: visit.parts[2], quantity: 5, number: 2)
        try console.keys("1")
        try console.type(visit.parts[3])
        try console.waitFor(visit.parts[3] + " ")
        let pid = try #require(Int32(try console.tmux(["display-message", "-p", "-t", "visit", "#{pane_pid}"]).trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, SIGKILL) == 0)
        let deadline = ChildProcess.monotonicSeconds() + 10
        while kill(pid, 0) == 0 && ChildProcess.monotonicSeconds() < deadline { usleep(20_000) }
        let database = try Database(path: visit.home + "/satchel.db")
        #expect(try database.int64("SELECT count(*) FROM orders") == 0)
        #expect(try database.int64("SELECT count(*) FROM order_lines") == 0)
        #expect(try database.int64("SELECT count(*) FROM changes") == 0)
        #expect(try database.integrityCheck().isEmpty)
        // Power back: the console starts on the route and says the order was lost.
        try console.tmux(["respawn-pane", "-k", "-t", "visit", "\(satchel) console --home \(visit.home)"])
        let restarted = try console.waitFor("LAST SESSION ENDED UNSAVED")
        #expect(restarted.hasPrefix("Route"))
        let said = restarted.split(separator: "\n").joined(separator: " ")
        #expect(said.contains("2 lines, was NOT saved"), "\(said)")
        // Said once: the next start is quiet.
        try console.keys("0")
        try console.waitFor("9 Quit")
        try console.keys("9", "Enter")
        try console.waitForExit()
        try console.tmux(["respawn-pane", "-k", "-t", "visit", "\(satchel) console --home \(visit.home)"])
        let quiet = try console.waitFor("Route")
        #expect(!quiet.contains("UNSAVED"))
    }

    @Test("Esc in the middle of an edit: a payment amount asks first and saves nothing; in a product search and a quantity it steps back and keeps the order's lines")
    func escapeMidEdit() throws {
        let directory = TemporaryDirectory("console-esc")
        let visit = try visits.seeded(directory)
        let console = try ConsoleSession(directory, command: "\(satchel) console --home \(visit.home)")
        try openCustomer(console, visit.customer)
        try console.keys("2")
        try console.waitFor("Amount")
        try console.type("150*2")
        try console.keys("Escape")
        try console.waitFor("Leave without saving this")
        try console.keys("Escape")
        let kept = try console.waitFor("Amount")
        #expect(kept.contains("150.2"))
        try console.keys("Escape")
        try console.waitFor("Leave without saving")
        try console.keys("Enter")
        try console.waitFor("Limit")
        #expect(try count(visit.home, "SELECT count(*) FROM payments") == 0)

        try console.keys("1")
        try console.waitFor("Level:")
        try addLine(console, part: visit.parts[1], quantity: 2, number: 1)
        try console.keys("1")
        try console.type(String(visit.parts[2].prefix(4)))
        try console.keys("Escape")
        let lines = try console.waitFor("Esc back 2 del")
        #expect(lines.contains("1 \(visit.parts[1]) 2"))
        try console.keys("1")
        try console.type(visit.parts[2])
        try console.waitFor(visit.parts[2] + " ")
        try console.keys("Enter")
        try console.waitFor("Qty:")
        try console.type("9")
        try console.keys("Escape")
        try console.waitFor("Find: \(visit.parts[2])")
        try console.keys("Escape")
        try console.waitFor("Esc back 2 del")
        try console.keys("Enter")
        try console.waitFor("Save order?")
        try console.keys("Escape")
        try console.waitFor("Esc back 2 del")
        #expect(try count(visit.home, "SELECT count(*) FROM changes") == 0)
        try console.keys("Enter")
        try console.waitFor("Save order?")
        try console.keys("Enter")
        try console.waitFor("SAVED")
        #expect(try count(visit.home, "SELECT count(*) FROM order_lines") == 1)
    }

    @Test("a resize mid-order to 24x10, then to 12x5 (too small) and back: the screen is redrawn whole each time, and the order's lines are still there and saved whole")
    func resizeMidOrder() throws {
        let directory = TemporaryDirectory("console-resize")
        let visit = try visits.seeded(directory)
        let console = try ConsoleSession(directory, command: "\(satchel) console --home \(visit.home)")
        try openCustomer(console, visit.customer)
        try console.keys("1")
        try console.waitFor("Level:")
        for (index, part) in visit.parts.prefix(3).enumerated() { try addLine(console, part: part, quantity: index + 1, number: index + 1) }
        try console.tmux(["resize-window", "-t", "visit", "-x", "24", "-y", "10"])
        let small = try console.waitFor("3 \(visit.parts[2]) 3")
        let rows = small.split(separator: "\n", omittingEmptySubsequences: false)
        for row in rows { #expect(row.count <= 24, "\(row)") }
        #expect(small.hasPrefix("Order ") && small.contains("Total"))
        try console.tmux(["resize-window", "-t", "visit", "-x", "12", "-y", "5"])
        try console.waitFor("Too small")
        try console.tmux(["resize-window", "-t", "visit", "-x", "32", "-y", "16"])
        let back = try console.waitFor("Total")
        #expect(back.contains("1 \(visit.parts[0])") && back.contains("3 \(visit.parts[2])"))
        try console.keys("Enter")
        try console.waitFor("Save order?")
        try console.keys("Enter")
        try console.waitFor("SAVED")
        #expect(try count(visit.home, "SELECT count(*) FROM order_lines") == 3)
    }

    @Test("a terminal that answers no queries: the console never asks one (only cursor, erase and style sequences go out), and with no window size it draws 32x16")
    func noTerminalQueries() throws {
        let directory = TemporaryDirectory("console-noquery")
        let visit = try visits.seeded(directory)
        let output = directory.path + "/output"
        // A 40x20 pane whose pty reports no size: the console falls back to the handheld's 32x16.
        let console = try ConsoleSession(directory, command: "sh -c 'stty rows 0 cols 0; exec env -u COLUMNS -u LINES \(satchel) console --home \(visit.home)'",
                                         columns: 40, rows: 20)
        try console.tmux(["pipe-pane", "-o", "-t", "visit", "cat >> \(output)"])
        try console.waitFor("Route")
        try openCustomer(console, visit.customer)
        try console.keys("1")
        try console.waitFor("Level:")
        try addLine(console, part: visit.parts[1], quantity: 2, number: 1)
        let screen = try console.screen().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(screen.count >= 16)
        #expect(screen[15].hasPrefix("Ent save Esc back 2 del"), "\(screen)")
        #expect(screen.dropFirst(16).allSatisfy { $0.trimmingCharacters(in: .whitespaces).isEmpty }, "\(screen)")
        try console.tmux(["pipe-pane", "-t", "visit"])
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: output)))
        #expect(bytes.count > 500)
        // Every escape sequence is a CSI whose final byte moves the cursor, erases, sets a style
        // or a mode (alternate screen, cursor, autowrap): no DSR (6n), DA (c), window report (t),
        // DECRQM ($p), OSC or DCS.
        var index = 0
        var finals = Set<UInt8>()
        while index < bytes.count {
            defer { index += 1 }
            guard bytes[index] == 0x1B else { continue }
            #expect(index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "["), "ESC \(index + 1 < bytes.count ? bytes[index + 1] : 0) at \(index)")
            var end = index + 2
            while end < bytes.count, (0x20...0x3F).contains(bytes[end]) { end += 1 }
            guard end < bytes.count else { break }
            finals.insert(bytes[end])
            let parameters = String(decoding: bytes[(index + 2)..<end], as: UTF8.self)
            #expect(!parameters.contains("$") && !(bytes[end] == UInt8(ascii: "n")) && !(bytes[end] == UInt8(ascii: "c")), "CSI \(parameters)\(Character(UnicodeScalar(bytes[end])))")
            index = end
        }
        #expect(finals.isSubset(of: Set("HABCDGKJmhl".utf8)), "\(finals.map { Character(UnicodeScalar($0)) })")
    }
}
