import Agent
import ArgumentParser
import Field

struct OrderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order", abstract: "Capture and review orders.",
        subcommands: [New.self, AddLine.self, Confirm.self, List.self, Show.self, RequestInvoice.self])

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
        print("Order \(order.id) \(verb): \(order.stateSummary); \(order.lines.count) lines, total \(Money.format(order.totalMinor, order.currency))")
        if order.approval == .pending { print(Colour.paint("HELD FOR APPROVAL: \(order.holdReason ?? "")", "yellow")) }
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

        func run() throws {
            try capturing(home) { device in
                let requests = try OrderCommand.parseLines(lines)
                if let level, PriceLevel(rawValue: level) == nil {
                    throw FieldError.invalidInput(what: "price level", value: level, reason: "use customer, dealer or promo")
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
            try capturing(home) { device in
                let saved = try Capture(device).addLines(orderID: order, lines: try OrderCommand.parseLines(lines))
                return { try OrderCommand.report(saved, json: output.json, verb: "saved") }
            }
        }
    }

    struct Confirm: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Confirm a draft order; its lines are frozen from then on.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Order id.") var order: String

        func run() throws {
            try capturing(home) { device in
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
            try capturing(home) { device in
                let saved = try Capture(device).advanceOrder(order, to: .invoiceRequested)
                return { try OrderCommand.report(saved, json: output.json, verb: "updated") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Orders on this device, newest first.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only orders in this state (draft, confirmed, sent, accepted, rejected, invoice_requested, settled).") var state: String?

        func run() throws {
            try reportingErrors {
                var filter: OrderState?
                if let state {
                    guard let parsed = OrderState(rawValue: state) else {
                        throw FieldError.invalidInput(what: "state", value: state, reason: "use one of \(OrderState.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    filter = parsed
                }
                let orders = try Orders(try home.open()).list(state: filter)
                if output.json { return try printJSON(orders) }
                if orders.isEmpty { print("No orders.") }
                for order in orders {
                    let held = order.approval == .pending ? "  HELD: \(order.holdReason ?? "")" : ""
                    print("\(order.id)  \(order.state.rawValue)  \(order.customerName)  \(order.lineCount) lines  \(Money.format(order.totalMinor, order.currency))\(held)")
                }
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
                print("Order \(document.id) for \(document.customerId): \(document.stateSummary)")
                print("Price level \(document.priceLevel), created \(CalendarDay.minute(fromMilliseconds: document.createdAt))")
                for line in document.lines {
                    print("  \(line.lineNo). \(line.partNumber)  \(line.quantity) \(line.unit)  x \(Money.format(line.unitPriceMinor, document.currency))  = \(Money.format(line.amountMinor, document.currency))")
                }
                print("Total \(Money.format(document.totalMinor, document.currency))")
                if !document.note.isEmpty { print("Note: \(document.note)") }
            }
        }
    }
}
