import Foundation
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// The rep's lookups and lists as a rep runs them, and plain output on a 32-column screen.
@Suite("satchel lookups, lists and narrow output as processes", .serialized)
struct LookupCommandLineTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")

    func run(_ arguments: [String], columns: Int? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(satchel, arguments, environment: columns.map { ["COLUMNS": "\($0)"] } ?? [:], timeoutSeconds: 120)
    }

    func json(_ result: ChildProcess.Result) throws -> Any {
        try #require(result.succeeded, "\(result.stderr)")
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    func seeded(_ directory: TemporaryDirectory) throws -> (home: String, customer: String, held: String) {
        let home = directory.path + "/device"
        let seeded = try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "40", "--products", "60", "--seed", "2"], timeoutSeconds: 120)
        try #require(seeded.succeeded, "\(seeded.stderr)")
        let database = try Database(path: home + "/satchel.db")
        return (home, try database.text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1"),
                try database.text("SELECT id FROM customers WHERE overdue_minor > 0 ORDER BY id LIMIT 1"))
    }

    @Test("product find and show, customer find with how many more, and the day's lists answer in JSON")
    func lookupsAsJSON() throws {
        let directory = TemporaryDirectory("e2e-lookup")
        let (home, customer, _) = try seeded(directory)
        let database = try Database(path: home + "/satchel.db")
        let name = try database.text("SELECT name FROM products WHERE part_number = 'PN-10003'")
        // The name's words reversed, upper-cased: still found.
        let words = name.split(separator: " ").prefix(2).reversed().map { $0.uppercased() }
        let found = try #require(try json(run(["product", "find", "--home", home, "--json"] + words)) as? [[String: Any]])
        #expect(found.contains { $0["part_number"] as? String == "PN-10003" })
        let product = try #require(try json(run(["product", "show", "PN-10003", "--home", home, "--json"])) as? [String: Any])
        #expect((product["prices"] as? [[String: Any]])?.isEmpty == false)
        #expect((product["stock"] as? [[String: Any]])?.contains { $0["location"] as? String == "warehouse" } == true)
        let many = try run(["customer", "find", "c", "--limit", "3", "--home", home, "--json"])
        #expect((try json(many) as? [Any])?.count == 3)
        #expect(many.stderr.contains("37 more customers match"))
        _ = try json(run(["payment", "--customer", customer, "--amount", "12,50", "--receipt", "KP/Ł/1", "--home", home, "--json"]))
        let payments = try #require(try json(run(["payment", "list", "--home", home, "--json"])) as? [[String: Any]])
        #expect(payments.map { $0["amount_minor"] as? Int } == [1250])
        #expect((try json(run(["visit", "list", "--home", home, "--json"])) as? [Any])?.isEmpty == true)
        #expect((try json(run(["quote", "list", "--all", "--home", home, "--json"])) as? [Any])?.isEmpty == true)
        #expect((try json(run(["complaint", "list", "--home", home, "--json"])) as? [Any])?.isEmpty == true)
        #expect((try json(run(["display-request", "list", "--home", home, "--json"])) as? [Any])?.isEmpty == true)
        let bad = try run(["visit", "list", "--day", "1.12.2026", "--home", home])
        #expect(bad.status == 65 && bad.stderr.contains("--day"))
    }

    @Test("order remove-line and cancel change a draft through the capture path; a confirmed order is refused with exit 65")
    func draftEdits() throws {
        let directory = TemporaryDirectory("e2e-lookup")
        let (home, customer, _) = try seeded(directory)
        let draft = try #require(try json(run(["order", "new", "--customer", customer, "--line", "PN-10000:1", "--line", "PN-10001:2",
                                               "--home", home, "--json"])) as? [String: Any])
        let id = try #require(draft["id"] as? String)
        let trimmed = try #require(try json(run(["order", "remove-line", id, "1", "--home", home, "--json"])) as? [String: Any])
        let lines = try #require((trimmed["order"] as? [String: Any])?["lines"] as? [[String: Any]])
        #expect(lines.map { $0["part_number"] as? String } == ["PN-10001"])
        let cancelled = try #require(try json(run(["order", "cancel", id, "--home", home, "--json"])) as? [String: Any])
        #expect((cancelled["order"] as? [String: Any])?["state"] as? String == "cancelled")
        #expect((try json(run(["order", "list", "--home", home, "--json"])) as? [Any])?.isEmpty == true)
        let confirmed = try #require(try json(run(["order", "new", "--customer", customer, "--line", "PN-10000:1", "--confirm",
                                                   "--home", home, "--json"])) as? [String: Any])["id"] as? String
        let changes = try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM changes")
        let refused = try run(["order", "cancel", confirmed ?? "", "--home", home])
        #expect(refused.status == 65 && refused.stderr.contains("only a draft can be cancelled"))
        #expect(try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM changes") == changes)
    }

    @Test("with COLUMNS=32 every line of plain output, warnings and help fits 32 columns")
    func narrowScreen() throws {
        let directory = TemporaryDirectory("e2e-narrow")
        let (home, customer, held) = try seeded(directory)
        _ = try json(run(["order", "new", "--customer", held, "--line", "PN-10000:3", "--line", "PN-10002:1", "--note", "Dostawa rano",
                          "--confirm", "--home", home, "--json"]))
        _ = try json(run(["payment", "--customer", customer, "--amount", "100", "--receipt", "KP/1", "--home", home, "--json"]))
        let commands: [[String]] = [
            ["--help"], ["order", "--help"], ["order", "new", "--help"], ["payment", "--help"], ["sync", "--help"],
            ["order", "list", "--home", home], ["status", "--home", home], ["customer", "show", held, "--home", home],
            ["customer", "find", "c", "--home", home], ["product", "find", "pn", "--home", home], ["product", "show", "PN-10000", "--home", home],
            ["payment", "list", "--home", home], ["route", "--home", home],
            ["order", "new", "--customer", held, "--line", "PN-10000:1", "--confirm", "--home", home],
            ["order", "new", "--customer", "NOPE", "--line", "PN-10000:1", "--home", home],
            ["order", "new", "--bogus", "--home", home],
        ]
        for arguments in commands {
            let result = try run(arguments, columns: 32)
            let output = result.stdout + result.stderr
            #expect(!output.isEmpty, "\(arguments): no output")
            for line in output.split(separator: "\n") {
                #expect(line.count <= 32, "\(arguments): \(line.count) columns: \(line)")
            }
        }
        // The same output on a wide screen keeps an order on one line.
        let wide = try run(["order", "list", "--home", home], columns: 200)
        #expect(wide.stdout.split(separator: "\n").count == 2)
        // JSON is never wrapped.
        #expect((try json(run(["order", "list", "--home", home, "--json"], columns: 32)) as? [Any])?.count == 2)
    }
    /// The subcommands a command's help lists (read on a wide screen, where it is one per line).
    func subcommands(_ path: [String]) throws -> [String] {
        let help = try run(path + ["--help"], columns: 200).stdout
        guard let start = help.range(of: "SUBCOMMANDS:") else { return [] }
        return help[start.upperBound...].split(separator: "\n").prefix { !$0.isEmpty && $0.hasPrefix(" ") }
            .compactMap { $0.split(separator: " ").first.map(String.init) }.filter { $0 != "help" }
    }

    @Test("with COLUMNS=32 the help of every command and subcommand, and the plain output of every document command, its list and its errors, fit 32 columns")
    func everyCommandNarrow() throws {
        let directory = TemporaryDirectory("e2e-narrow-all")
        let (home, customer, held) = try seeded(directory)
        let type = try Database(path: home + "/satchel.db").text("SELECT code FROM display_types ORDER BY code LIMIT 1")
        var commands: [[String]] = []
        let top = try subcommands([])
        #expect(top.count >= 25, "\(top)")
        for name in top {
            commands.append([name, "--help"])
            for sub in try subcommands([name]) { commands.append([name, sub, "--help"]) }
        }
        let draft = try #require(try json(run(["order", "new", "--customer", customer, "--line", "PN-10000:1", "--line", "PN-10001:2",
                                               "--home", home, "--json"])) as? [String: Any])["id"] as? String ?? ""
        let payment = try #require(try json(run(["payment", "--customer", customer, "--amount", "12,50", "--receipt", "KP/9",
                                                 "--home", home, "--json"])) as? [String: Any])["id"] as? String ?? ""
        let quote = try #require(try json(run(["quote", "--customer", held, "--line", "PN-10002:40", "--discount", "12.5",
                                               "--home", home, "--json"])) as? [String: Any])["id"] as? String ?? ""
        commands += [
            ["order", "show", draft, "--home", home], ["order", "remove-line", draft, "1", "--home", home], ["order", "cancel", draft, "--home", home],
            ["order", "remove-line", "SIM1-999999", "1", "--home", home],
            ["visit", "--customer", customer, "--outcome", "order", "--note", "Rozmowa z właścicielem o nowej kolekcji płytek", "--home", home],
            ["visit", "list", "--home", home],
            ["payment", "void", payment, "--reason", "wpisano dwa razy, klient zapłacił przelewem", "--home", home],
            ["payment", "list", "--all", "--home", home],
            ["display-request", "--customer", customer, "--type", type, "--width", "120", "--height", "200", "--note", "Przy wejściu do sklepu", "--home", home],
            ["display-request", "list", "--home", home],
            ["complaint", "--customer", customer, "--category", "damaged", "--text", "3 кутии с пукнати плочки при доставката", "--part", "PN-10000", "--home", home],
            ["complaint", "list", "--home", home],
            ["complaint", "--customer", customer, "--category", "angry", "--text", "x", "--home", home],
            ["quote", "list", "--all", "--home", home], ["quote", "show", quote, "--home", home],
            ["customer", "find", "c", "--limit", "3", "--home", home], ["product", "find", "pn", "--limit", "3", "--home", home],
            ["route", "--home", home], ["status", "--home", home], ["doctor", "--home", home], ["sync-errors", "--home", home],
        ]
        for arguments in commands {
            let result = try run(arguments, columns: 32)
            let output = result.stdout + result.stderr
            #expect(!output.isEmpty, "\(arguments): no output")
            for line in output.split(separator: "\n") {
                #expect(line.count <= 32, "\(arguments): \(line.count) columns: \(line)")
            }
        }
        // customer find says how many more matched than it shows, in plain output too.
        let found = try run(["customer", "find", "c", "--limit", "3", "--home", home], columns: 32)
        #expect((found.stdout + found.stderr).contains("more customers match"), "\(found.stdout)\(found.stderr)")
    }
}
