import Agent
import ArgumentParser
import Field

struct OrderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order", abstract: "Capture and review orders.",
        subcommands: [New.self, AddLine.self, RemoveLine.self, Confirm.self, Cancel.self, List.self, Show.self, RequestInvoice.self])

    /// What `--json` prints once an order change is acknowledged.
    struct Saved: Encodable {
        var acknowledged = true
        var id: String
        var changeId: String
        var order: OrderDocument
    }

    static func report(_ saved: Acknowledged<OrderDocument>, json: Bool, verb: String) throws {
        let order = saved.document
        if json { return try printJSON(Saved(id: order.id, changeId: saved.changeId, order: order)) }
        print("Order \(order.id) \(verb): \(TerminalText.safe(order.stateSummary)); \(order.lines.count) lines, total \(Money.format(order.totalMinor, TerminalText.safe(order.currency)))")
        if order.approval == .pending { print(Colour.paint("HELD FOR APPROVAL: \(TerminalText.safe(order.holdReason ?? ""))", "yellow")) }
    }

    /// What `--check` prints: the order as confirming it would make it, nothing saved.
    static func reportCheck(_ order: OrderDocument, json: Bool, draft: String? = nil) throws {
        if json { return try printJSON(order) }
        let which = draft.map { "Order \(TerminalText.safe($0)) (not confirmed)" } ?? "Order (not saved)"
        print("\(which): \(order.lines.count) lines, total \(Money.format(order.totalMinor, TerminalText.safe(order.currency)))")
        print(order.approval == .pending ? Colour.paint("WILL BE HELD FOR APPROVAL: \(TerminalText.safe(order.holdReason ?? ""))", "yellow") : "No approval needed")
    }

    static func parseLines(_ texts: [String]) throws -> [OrderLineRequest] {
        try texts.enumerated().map { try OrderLineRequest.parse($0.element, position: $0.offset + 1) }
    }

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start an order (a draft), or capture a whole order in one call with --line ... --confirm.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Customer id.") var customer: String
        @Option(help: "Price level: customer, dealer or promo (default: the customer's).") var level: String?
        @Option(name: .customLong("line"), help: "A line as PART:QTY or PART:QTY:UNIT; repeat for more lines.") var lines: [String] = []
        @Option(help: "A note for the office.") var note: String = ""
        @Flag(help: "Confirm the order at once.") var confirm = false
        @Flag(help: "Only price it and say whether confirming it will hold it for approval, and for whom; nothing is saved.") var check = false

        func run() throws {
            try capturing(home, .orders) { device in
                let requests = try OrderCommand.parseLines(lines)
                if let level, PriceLevel(rawValue: level) == nil {
                    throw FieldError.invalidInput(what: "price level", value: level, reason: "use customer, dealer or promo")
                }
                if check {
                    let order = try Capture(device).previewOrder(customerID: customer, priceLevel: level, lines: requests)
                    return { try OrderCommand.reportCheck(order, json: output.json) }
                }
                let saved = try Capture(device).createOrder(customerID: customer, priceLevel: level, lines: requests, confirm: confirm, note: note)
                return { try OrderCommand.report(saved, json: output.json, verb: "saved") }
            }
        }
    }

    struct AddLine: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add-line", abstract: "Add lines to a draft order.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Order id.") var order: String
        @Argument(help: "Lines as PART:QTY or PART:QTY:UNIT.") var lines: [String]

        func run() throws {
            try capturing(home, .orders) { device in
                let saved = try Capture(device).addLines(orderID: order, lines: try OrderCommand.parseLines(lines))
                return { try OrderCommand.report(saved, json: output.json, verb: "saved") }
            }
        }
    }

    struct RemoveLine: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-line", abstract: "Remove a line from a draft order; the lines after it move up one.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Order id.") var order: String
        @Argument(help: "Line number (`satchel order show ID` lists them).") var line: String

        func run() throws {
            try capturing(home, .orders) { device in
                let saved = try Capture(device).removeLine(orderID: order, lineNo: try Quantity.parse(line, what: "line number"))
                return { try OrderCommand.report(saved, json: output.json, verb: "saved") }
            }
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a draft order the customer no longer wants (a confirmed order cannot be cancelled here).")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Order id.") var order: String

        func run() throws {
            try capturing(home, .orders) { device in
                let saved = try Capture(device).cancelOrder(order)
                return { try OrderCommand.report(saved, json: output.json, verb: "cancelled") }
            }
        }
    }

    struct Confirm: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Confirm a draft order; its lines are frozen from then on.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Order id.") var order: String
        @Flag(help: "Only say whether confirming it will hold it for approval, and for whom; nothing is saved.") var check = false

        func run() throws {
            try capturing(home, .orders) { device in
                if check {
                    let preview = try Capture(device).previewConfirm(order)
                    return { try OrderCommand.reportCheck(preview, json: output.json, draft: order) }
                }
                let saved = try Capture(device).confirmOrder(order)
                return { try OrderCommand.report(saved, json: output.json, verb: "confirmed") }
            }
        }
    }

    struct RequestInvoice: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "request-invoice", abstract: "Ask finance to invoice an accepted order.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Order id.") var order: String

        func run() throws {
            try capturing(home, .orders) { device in
                let saved = try Capture(device).advanceOrder(order, to: .invoiceRequested)
                return { try OrderCommand.report(saved, json: output.json, verb: "updated") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Orders on this device, newest first; says how many more there are than it shows.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only orders in this state (draft, confirmed, sent, accepted, rejected, invoice_requested, settled).") var state: String?
        @Option(help: "Show at most this many (default \(List.defaultLimit)).") var limit: String?
        @Flag(help: "Show every order.") var all = false

        static let defaultLimit = 500

        func run() throws {
            try reportingErrors {
                var filter: OrderState?
                if let state {
                    guard let parsed = OrderState(rawValue: state) else {
                        throw FieldError.invalidInput(what: "state", value: state, reason: "use one of \(OrderState.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    filter = parsed
                }
                if all && limit != nil {
                    throw FieldError.invalidInput(what: "--limit", value: limit ?? "", reason: "give either --limit or --all")
                }
                let shown = all ? nil : Int(try limit.map { try Quantity.parse($0, what: "--limit") } ?? Int64(List.defaultLimit))
                let page = try Orders(try home.open()).page(state: filter, limit: shown)
                let more = page.notShown > 0
                    ? "\(page.notShown) more orders not shown (the newest \(page.orders.count) of \(page.total)): `satchel order list --all`, or --limit N"
                    : nil
                if output.json {
                    if let more { printNotice(more) }
                    return try printJSON(page.orders)
                }
                if page.orders.isEmpty { print("No orders.") }
                for order in page.orders {
                    let held = order.approval == .pending ? "HELD: \(TerminalText.safe(order.holdReason ?? ""))" : ""
                    let customer = order.customerName.map { TerminalText.safe($0) } ?? "\(TerminalText.safe(order.customerId)) (not in working set)"
                    print(entry(["\(order.id)  \(order.state.rawValue)", customer,
                                 "\(order.lineCount) lines  \(Money.format(order.totalMinor, TerminalText.safe(order.currency)))", held]))
                }
                if let more { print(more) }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One order with its lines.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Order id.") var order: String

        func run() throws {
            try reportingErrors {
                let document = try Orders(try home.open()).load(order)
                if output.json { return try printJSON(document) }
                print("Order \(TerminalText.safe(document.id)) for \(TerminalText.safe(document.customerId)): \(TerminalText.safe(document.stateSummary))")
                print("Price level \(TerminalText.safe(document.priceLevel)), created \(CalendarDay.minute(fromMilliseconds: document.createdAt))")
                for line in document.lines {
                    let currency = TerminalText.safe(document.currency)
                    print("  \(line.lineNo). \(TerminalText.safe(line.partNumber))  \(line.quantity) \(TerminalText.safe(line.unit))  x \(Money.format(line.unitPriceMinor, currency))  = \(Money.format(line.amountMinor, currency))")
                }
                print("Total \(Money.format(document.totalMinor, TerminalText.safe(document.currency)))")
                if !document.note.isEmpty { print("Note: \(TerminalText.safe(document.note, multiline: true))") }
            }
        }
    }
}
