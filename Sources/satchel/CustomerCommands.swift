import ArgumentParser
import Field

struct CustomerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "customer", abstract: "Check a customer before selling, or find one by name.",
        subcommands: [Show.self, Find.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The credit check: payment discipline (colour), overdue, limit, recent orders, talking points.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Customer id.") var id: String

        func run() throws {
            try reportingErrors {
                let card = try Customers(try home.open()).card(id)
                if output.json { return try printJSON(card) }
                let money = { (minor: Int64) in Money.format(minor, TerminalText.safe(card.currency)) }
                print("\(TerminalText.safe(card.name))  [\(TerminalText.safe(card.id))]")
                if !card.address.isEmpty { print(TerminalText.safe(card.address)) }
                print("Payment discipline: \(Colour.paint("\(card.discipline.rawValue) (\(card.colour))", card.colour))")
                print("Credit limit \(money(card.creditLimitMinor)), balance \(money(card.balanceMinor)), overdue \(money(card.overdueMinor)) (\(card.overdueDays) days)")
                if card.collectedSinceBalanceMinor != 0 {
                    print("Collected since the office's balance (payments less voids): \(money(card.collectedSinceBalanceMinor))")
                }
                print("Price levels: \(TerminalText.safe(card.priceLevels.joined(separator: ", ")))")
                print("Last 365 days: \(card.ordersLast365Days) orders, \(money(card.boughtLast365DaysMinor)), \(card.lateShareLast365Days)% paid late")
                if !card.recentOrders.isEmpty {
                    print("Recent orders:")
                    for order in card.recentOrders {
                        print("  \(TerminalText.safe(order.day))  \(TerminalText.safe(order.ref))  \(Money.format(order.totalMinor, TerminalText.safe(order.currency)))\(order.paidLate ? "  paid late" : "")")
                    }
                }
                if !card.topParts.isEmpty {
                    print("Buys most:")
                    for part in card.topParts { print("  \(TerminalText.safe(part.partNumber))  \(TerminalText.safe(part.name))  x\(part.quantity)") }
                }
                if !card.talkingPoints.isEmpty {
                    print("Talking points:")
                    for point in card.talkingPoints { print("  - \(TerminalText.safe(point))") }
                }
                if !card.recentPayments.isEmpty {
                    print("Payments on this device:")
                    for payment in card.recentPayments {
                        let receipt = payment.receipt.isEmpty ? "" : "  receipt \(TerminalText.safe(payment.receipt))"
                        let voided = payment.voidedBy.map { "  VOIDED by \($0)" } ?? ""
                        print("  \(CalendarDay.minute(fromMilliseconds: payment.collectedAt))  \(payment.id)  \(Money.format(payment.amountMinor, TerminalText.safe(payment.currency)))\(receipt)\(voided)")
                    }
                }
                if !card.openItems.isEmpty {
                    print("Payments due (the ERP's open items):")
                    for item in card.openItems {
                        let mark = item.overdue ? "OVERDUE " : item.dueSoon ? "DUE SOON" : "        "
                        let line = "  \(mark)  \(TerminalText.safe(item.ref))  \(Money.format(item.amountMinor, TerminalText.safe(item.currency)))  \(TerminalText.safe(item.when))"
                        print(item.overdue ? Colour.paint(line, "red") : item.dueSoon ? Colour.paint(line, "yellow") : line)
                    }
                }
                if card.openDocuments > 0 { print("Open orders on this device: \(card.openDocuments)") }
            }
        }
    }

    struct Find: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find customers by words of the name, id or address in any order, ignoring case and diacritics (lodz finds Łódź).")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Words of the name or address, or the id.") var words: [String]
        @Option(help: "Show at most this many (default 20).") var limit: String?

        func run() throws {
            try reportingErrors {
                let text = words.joined(separator: " ")
                let shown = Int(try limit.map { try Quantity.parse($0, what: "--limit") } ?? 20)
                let found = try Customers(try home.open()).search(text, limit: shown)
                let more = found.notShown > 0 ? "\(found.notShown) more customers match: add a word, or --limit N" : nil
                if output.json {
                    if let more { printNotice(more) }
                    return try printJSON(found.matches)
                }
                if found.matches.isEmpty { print("No customer matches '\(TerminalText.safe(text))'.") }
                for match in found.matches {
                    print("\(TerminalText.safe(match.id))  \(Colour.paint(TerminalText.safe(match.name), match.discipline.colour))  \(TerminalText.safe(match.address))")
                }
                if let more { print(more) }
            }
        }
    }
}
