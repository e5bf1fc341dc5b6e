import ArgumentParser
import Field

struct ProductCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "product", abstract: "Look up a product: find it by part number or name, show prices, units and stock.",
        subcommands: [Find.self, Show.self])

    struct Find: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find products by part number or words of the name, in any order, ignoring case and diacritics.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Words of the name, or (part of) the part number.") var words: [String]
        @Option(help: "Show at most this many (default 20).") var limit: String?

        func run() throws {
            try reportingErrors {
                let shown = Int(try limit.map { try Quantity.parse($0, what: "--limit") } ?? 20)
                let text = words.joined(separator: " ")
                let found = try Products(try home.open()).find(text, limit: shown)
                if output.json {
                    if found.notShown > 0 { printNotice("\(found.notShown) more products match; narrow the search or use --limit N") }
                    return try printJSON(found.matches)
                }
                if found.matches.isEmpty { print("No product matches '\(TerminalText.safe(text))'.") }
                for match in found.matches {
                    print("\(TerminalText.safe(match.partNumber))  \(TerminalText.safe(match.name))  \(match.available) \(TerminalText.safe(match.baseUnit)) free")
                }
                if found.notShown > 0 { print("\(found.notShown) more match: add a word, or --limit N") }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One product: units, prices per level and currency, stock per location.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "Part number.") var part: String

        func run() throws {
            try reportingErrors {
                let product = try Products(try home.open()).show(part)
                if output.json { return try printJSON(product) }
                let base = TerminalText.safe(product.baseUnit)
                print("\(TerminalText.safe(product.partNumber))  \(TerminalText.safe(product.name))")
                print("Units: " + product.units.map { $0.factor == 1 ? TerminalText.safe($0.unit) : "\(TerminalText.safe($0.unit)) = \($0.factor) \(base)" }.joined(separator: ", "))
                print("Prices per \(base):")
                if product.prices.isEmpty { print("  none") }
                for price in product.prices {
                    let until = price.validUntil.map { price.expired ? "  EXPIRED \(TerminalText.safe($0))" : "  until \(TerminalText.safe($0))" } ?? ""
                    print("  \(TerminalText.safe(price.level))  \(Money.format(price.priceMinor, TerminalText.safe(price.currency)))\(until)")
                }
                print("Stock (\(base)):")
                if product.stock.isEmpty { print("  none") }
                for stock in product.stock {
                    let reserved = stock.reserved > 0 ? " (\(stock.reserved) reserved)" : ""
                    print("  \(TerminalText.safe(stock.location))  \(stock.available) free\(reserved)")
                }
            }
        }
    }
}
