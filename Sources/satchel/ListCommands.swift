import ArgumentParser
import Field

/// `--day`, `--all` and `--limit` of the document lists.
struct ListOptions: ParsableArguments {
    @Option(help: "Day as YYYY-MM-DD (default: today).") var day: String?
    @Flag(help: "Every day, not only one.") var all = false
    @Option(help: "Show at most this many (default 100).") var limit: String?

    func resolved(_ device: DeviceDatabase) throws -> (day: String?, limit: Int) {
        if all && day != nil { throw FieldError.invalidInput(what: "--day", value: day ?? "", reason: "give either --day or --all") }
        if let day, !CalendarDay.isValid(day) {
            throw FieldError.invalidInput(what: "--day", value: day, reason: "expected YYYY-MM-DD, e.g. 2026-03-14")
        }
        let limit = Int(try self.limit.map { try Quantity.parse($0, what: "--limit") } ?? 100)
        return (all ? nil : (day ?? CalendarDay.string(fromMilliseconds: device.clock.nowMilliseconds())), limit)
    }

    /// The body every day list shares: open read-only, resolve the day and limit, fetch a page,
    /// print it (`line` formats one row).
    func printList<Row>(_ home: HomeOptions, json: Bool, noun: String,
                        fetch: (DocumentLists, _ day: String?, _ limit: Int) throws -> DocumentLists.Page<Row>,
                        line: (Row) -> String) throws {
        try reportingErrors {
            let device = try home.open()
            let (day, limit) = try resolved(device)
            try printPage(try fetch(DocumentLists(device), day, limit), json: json, noun: noun, day: day, line: line)
        }
    }
}

/// Prints a page: JSON rows (the count of rows not shown on stderr), or one line per row and
/// how many more there are.
func printPage<Row>(_ page: DocumentLists.Page<Row>, json: Bool, noun: String, day: String?, line: (Row) -> String) throws {
    let more = page.notShown > 0 ? "\(page.notShown) more \(noun) not shown: --limit N" : nil
    if json {
        if let more { printNotice(more) }
        return try printJSON(page.rows)
    }
    if page.rows.isEmpty { print("No \(noun)\(day.map { " on \($0)" } ?? "").") }
    for row in page.rows { print(line(row)) }
    if let more { print(more) }
}

func customerLabel(_ id: String, _ name: String?) -> String {
    name.map { TerminalText.safe($0) } ?? "\(TerminalText.safe(id)) (not in working set)"
}

struct PaymentList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Payments collected on this device (today by default), newest first.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var list: ListOptions

    func run() throws {
        try list.printList(home, json: output.json, noun: "payments", fetch: { try $0.payments(day: $1, limit: $2) }) { payment in
            let receipt = payment.receipt.isEmpty ? "" : "receipt \(TerminalText.safe(payment.receipt))"
            let voided = payment.voidedBy.map { "  VOIDED by \(TerminalText.safe($0))" } ?? ""
            return entry(["\(payment.id)  \(Money.format(payment.amountMinor, TerminalText.safe(payment.currency))) \(TerminalText.safe(payment.method))",
                          customerLabel(payment.customerId, payment.customerName), receipt + voided])
        }
    }
}

struct VisitList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Visits recorded on this device (today by default), newest first.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var list: ListOptions

    func run() throws {
        try list.printList(home, json: output.json, noun: "visits", fetch: { try $0.visits(day: $1, limit: $2) }) { visit in
            entry(["\(CalendarDay.minute(fromMilliseconds: visit.at))  \(TerminalText.safe(visit.outcome))", visit.id,
                   customerLabel(visit.customerId, visit.customerName), TerminalText.safe(visit.note)])
        }
    }
}

struct QuoteList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Quotes on this device (today by default) with their approval state.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var list: ListOptions

    func run() throws {
        try list.printList(home, json: output.json, noun: "quotes", fetch: { try $0.quotes(day: $1, limit: $2) }) { quote in
            entry(["\(quote.id)  \(TerminalText.safe(quote.approval))", Money.format(quote.totalMinor, TerminalText.safe(quote.currency)),
                   customerLabel(quote.customerId, quote.customerName), quote.approval == "pending" ? "WAITS: \(TerminalText.safe(quote.holdReason ?? ""))" : ""])
        }
    }
}

struct QuoteShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One quote with its lines and approval state.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Argument(help: "Quote id.") var quote: String

    func run() throws {
        try reportingErrors {
            let document = try DocumentLists(try home.open()).quote(quote)
            if output.json { return try printJSON(document) }
            let currency = TerminalText.safe(document.currency)
            print("Quote \(document.id) for \(TerminalText.safe(document.customerId)): approval \(document.approval.rawValue)")
            if let reason = document.holdReason { print("Waits for approval: \(TerminalText.safe(reason))") }
            for line in document.lines {
                print("  \(line.lineNo). \(TerminalText.safe(line.partNumber))  \(line.quantity) x \(Money.format(line.unitPriceMinor, currency))  = \(Money.format(line.amountMinor, currency))")
            }
            print("Discount \(Percent.format(document.discountBasisPoints)), total \(Money.format(document.totalMinor, currency))")
        }
    }
}

struct ComplaintList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Complaints filed on this device (today by default) and their state.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var list: ListOptions

    func run() throws {
        try list.printList(home, json: output.json, noun: "complaints", fetch: { try $0.complaints(day: $1, limit: $2) }) { complaint in
            entry(["\(complaint.id)  \(TerminalText.safe(complaint.category))", TerminalText.safe(complaint.state),
                   customerLabel(complaint.customerId, complaint.customerName), TerminalText.safe(complaint.description)])
        }
    }
}

struct DisplayRequestList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Display requests on this device (today by default) and their state.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var list: ListOptions

    func run() throws {
        try list.printList(home, json: output.json, noun: "display requests", fetch: { try $0.displayRequests(day: $1, limit: $2) }) { request in
            entry(["\(request.id)  \(TerminalText.safe(request.state))", "\(TerminalText.safe(request.typeCode)) \(request.widthCm)x\(request.heightCm) cm",
                   customerLabel(request.customerId, request.customerName)])
        }
    }
}

// The document commands: capture is the default subcommand (`satchel visit --customer ...`
// as before), `list` (and `show` for quotes) read back what this device holds.

struct Visit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record a visit at a customer, or list the day's visits.",
        subcommands: [VisitRecord.self, VisitList.self], defaultSubcommand: VisitRecord.self)
}

struct DisplayRequest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "display-request", abstract: "Request a product display at a customer, or list the requests.",
        subcommands: [DisplayRequestRecord.self, DisplayRequestList.self], defaultSubcommand: DisplayRequestRecord.self)
}

struct Complaint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "File a customer's complaint, or list the complaints.",
        subcommands: [ComplaintRecord.self, ComplaintList.self], defaultSubcommand: ComplaintRecord.self)
}

struct Quote: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Calculate a quote (discounts over the rep's limit wait for approval), or list and show quotes.",
        subcommands: [QuoteRecord.self, QuoteList.self, QuoteShow.self], defaultSubcommand: QuoteRecord.self)
}
