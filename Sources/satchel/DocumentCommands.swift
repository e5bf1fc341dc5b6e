import Agent
import ArgumentParser
import Field

/// What `--json` prints once a document is acknowledged.
struct Saved<Document: Encodable>: Encodable {
    var acknowledged = true
    var id: String
    var changeId: String
    var document: Document
}

extension OutputOptions {
    /// Prints an acknowledged document: as `Saved` with --json, else `text`.
    func printSaved<Document: Encodable>(_ saved: Acknowledged<Document>, id: String, _ text: @autoclosure () -> String) throws {
        if json { return try printJSON(Saved(id: id, changeId: saved.changeId, document: saved.document)) }
        print(text())
    }
}

func choice<T: RawRepresentable & CaseIterable>(_ text: String, _ what: String, as type: T.Type) throws -> T where T.RawValue == String {
    guard let value = T(rawValue: text) else {
        throw FieldError.invalidInput(what: what, value: text, reason: "use one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return value
}

struct VisitRecord: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record", abstract: "Record a visit at a customer.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Customer id.") var customer: String
    @Option(help: "order, no_order, closed, not_met, merchandising or service.") var outcome: String
    @Option(help: "What happened.") var note: String = ""

    func run() throws {
        try capturing(home, .visits) { device in
            let outcome = try choice(outcome, "visit outcome", as: VisitOutcome.self)
            let saved = try Capture(device).recordVisit(customerID: customer, outcome: outcome, note: note)
            return {
                try output.printSaved(saved, id: saved.document.id, "Visit \(saved.document.id) saved: \(TerminalText.safe(customer)), \(outcome.rawValue)")
            }
        }
    }
}

struct Payment: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record money collected from a customer, void a payment saved by mistake, or list the payments.",
        subcommands: [Record.self, VoidPayment.self, PaymentList.self], defaultSubcommand: Record.self)

    struct Record: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record money collected from a customer (the default: `satchel payment --customer ...`).",
            discussion: "Amounts are bounded per currency (one payment at most 200000.00 PLN, 100000.00 BGN, 50000.00 EUR, 5000000.00 RUB); a receipt number is used once per device.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Customer id.") var customer: String
        @Option(parsing: .unconditional, help: "Amount, e.g. 120.50 (a comma works too).") var amount: String
        @Option(help: "Currency (default: the customer's).") var currency: String?
        @Option(help: "cash, card, transfer or cheque.") var method: String = "cash"
        @Option(help: "Receipt number written on the paper receipt.") var receipt: String = ""

        func run() throws {
            try capturing(home, .payments) { device in
                let method = try choice(method, "payment method", as: PaymentMethod.self)
                let minor = try Money.parseMinor(amount)
                let saved = try Capture(device).recordPayment(customerID: customer, amountMinor: minor, currency: currency, method: method, receipt: receipt)
                return {
                    try output.printSaved(saved, id: saved.document.id, "Payment \(saved.document.id) saved: \(Money.format(minor, TerminalText.safe(saved.document.currency))) \(method.rawValue) from \(TerminalText.safe(customer))")
                }
            }
        }
    }

    struct VoidPayment: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "void",
            abstract: "Void a payment saved by mistake: a document of its own; the payment stays, and stops counting.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The payment's id (printed when it was saved; `satchel customer show ID` lists the latest).") var payment: String
        @Option(help: "Why it is voided (the office reads it).") var reason: String

        func run() throws {
            try capturing(home, .payments) { device in
                let saved = try Capture(device).voidPayment(payment, reason: reason)
                let void = saved.document
                return {
                    if output.json { return try printJSON(Saved(id: void.id, changeId: saved.changeId, document: void)) }
                    print("Payment \(TerminalText.safe(void.paymentId)) voided by \(void.id): \(Money.format(void.amountMinor, TerminalText.safe(void.currency))) from \(TerminalText.safe(void.customerId)) no longer counts")
                }
            }
        }
    }
}

struct DisplayRequestRecord: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "request",
        abstract: "Request a product display at a customer; reserves the materials its type and size need.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Customer id.") var customer: String
    @Option(help: "Display type code.") var type: String
    @Option(parsing: .unconditional, help: "Width in cm.") var width: String
    @Option(parsing: .unconditional, help: "Height in cm.") var height: String
    @Option(parsing: .unconditional, help: "Depth in cm.") var depth: String?
    @Option(help: "Agreed terms, placement.") var note: String = ""

    func run() throws {
        try capturing(home, .displayRequests) { device in
            let saved = try Capture(device).requestDisplay(
                customerID: customer, typeCode: type, widthCm: try positive(width, "display width (cm)"),
                heightCm: try positive(height, "display height (cm)"), depthCm: try depth.map { try positive($0, "display depth (cm)") }, note: note)
            let request = saved.document
            return {
                if output.json { return try printJSON(Saved(id: request.id, changeId: saved.changeId, document: request)) }
                print("Display request \(request.id) saved: \(TerminalText.safe(request.typeCode)) \(request.widthCm)x\(request.heightCm) cm at \(TerminalText.safe(customer))")
                for material in request.materials {
                    let short = material.shortQuantity > 0 ? "  (SHORT by \(material.shortQuantity))" : ""
                    print("  reserved \(material.quantity) x \(TerminalText.safe(material.partNumber)) from \(TerminalText.safe(material.location))\(short)")
                }
            }
        }
    }
}

struct ComplaintRecord: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "file", abstract: "File a customer's complaint.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Customer id.") var customer: String
    @Option(help: "quality, damaged, missing, wrong_item, delivery, invoice or other.") var category: String
    @Option(help: "What the customer says is wrong.") var text: String
    @Option(help: "The order it is about (a device order id or an ERP order ref).") var order: String?
    @Option(help: "The part it is about.") var part: String?

    func run() throws {
        try capturing(home, .complaints) { device in
            let category = try choice(category, "complaint category", as: ComplaintCategory.self)
            let saved = try Capture(device).fileComplaint(customerID: customer, category: category, description: text, orderRef: order, partNumber: part)
            return {
                try output.printSaved(saved, id: saved.document.id, "Complaint \(saved.document.id) saved: \(category.rawValue) for \(TerminalText.safe(customer))")
            }
        }
    }
}

struct QuoteRecord: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new", abstract: "Calculate a quote; discounts over the rep's limit wait for approval.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Customer id.") var customer: String
    @Option(name: .customLong("line"), help: "PART:QTY or PART:QTY:UNIT; repeat.") var lines: [String] = []
    @Option(parsing: .unconditional, help: "Discount in percent, e.g. 7.5.") var discount: String = "0"
    @Flag(help: "Only price it and say whether it will need approval, and by whom; nothing is saved.") var check = false

    func run() throws {
        try capturing(home, .quotes) { device in
            if check {
                let quote = try Capture(device).previewQuote(customerID: customer, lines: try OrderCommand.parseLines(lines),
                                                             discountBasisPoints: try Percent.parseBasisPoints(discount))
                return {
                    if output.json { return try printJSON(quote) }
                    print("Quote (not saved): \(Money.format(quote.totalMinor, TerminalText.safe(quote.currency))) after \(Percent.format(quote.discountBasisPoints)) discount")
                    print(quote.approval == .pending ? Colour.paint("WILL NEED APPROVAL: \(TerminalText.safe(quote.holdReason ?? ""))", "yellow") : "No approval needed")
                }
            }
            let saved = try Capture(device).createQuote(
                customerID: customer, lines: try OrderCommand.parseLines(lines), discountBasisPoints: try Percent.parseBasisPoints(discount))
            let quote = saved.document
            return {
                if output.json { return try printJSON(Saved(id: quote.id, changeId: saved.changeId, document: quote)) }
                print("Quote \(quote.id) saved: \(Money.format(quote.totalMinor, TerminalText.safe(quote.currency))) after \(Percent.format(quote.discountBasisPoints)) discount")
                if quote.approval == .pending { print(Colour.paint("WAITS FOR APPROVAL: \(TerminalText.safe(quote.holdReason ?? ""))", "yellow")) }
            }
        }
    }
}

struct Maintenance: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Record maintenance of equipment at an outlet (e.g. a cooler).")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Equipment id.") var equipment: String
    @Option(help: "inspection, cleaning, repair, replacement or removal.") var kind: String
    @Option(help: "What was done.") var note: String = ""

    func run() throws {
        try capturing(home, .maintenance) { device in
            let kind = try choice(kind, "maintenance kind", as: MaintenanceKind.self)
            let saved = try Capture(device).recordMaintenance(equipmentID: equipment, kind: kind, note: note)
            return {
                try output.printSaved(saved, id: saved.document.id, "Maintenance \(saved.document.id) saved: \(kind.rawValue) of \(TerminalText.safe(equipment))")
            }
        }
    }
}
