import Field
import Foundation
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// Issue 10, repros 7, 8, 11 and 13, through the real `satchel` as a rep or technician runs it.
@Suite("satchel refuses damage, bounds money, prints outside text safely, lists every order", .serialized)
struct IntegrityCommandLineTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")

    func run(_ arguments: [String]) throws -> ChildProcess.Result {
        try ChildProcess.run(satchel, arguments, timeoutSeconds: 120)
    }

    func seededHome(_ directory: TemporaryDirectory) throws -> (home: String, customer: String) {
        let home = directory.path + "/device"
        let seeded = try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "30", "--products", "40", "--seed", "3", "--json"], timeoutSeconds: 120)
        try #require(seeded.succeeded, "satchel-sim seed failed: \(seeded.stderr)")
        let database = try Database(path: home + "/satchel.db")
        let customer = try database.text("SELECT id FROM customers WHERE overdue_minor = 0 AND currency = 'PLN' ORDER BY id LIMIT 1")
        return (home, customer)
    }

    static func hasControl(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || (0x80...0x9F).contains($0.value) || $0.value == 0x202E }
    }

    @Test("terminal control sequences in master data and documents never reach stdout raw; Polish and Cyrillic letters print as they are")
    func controlSequencesEscaped() throws {
        let directory = TemporaryDirectory("e2e-tty")
        let (home, customer) = try seededHome(directory)
        let hostile = "Магазин Ёлка \u{1B}[2J\u{1B}]0;pwned\u{07} Żółw \u{202E}NLP 001\u{9B}31m"
        let ordered = try run(["order", "new", "--home", home, "--customer", customer, "--line", "PN-10000:2", "--confirm", "--json"])
        try #require(ordered.succeeded, "\(ordered.stderr)")
        let orderID = try #require((try JSONSerialization.jsonObject(with: Data(ordered.stdout.utf8)) as? [String: Any])?["id"] as? String)
        do {
            let database = try Database(path: home + "/satchel.db")
            try database.execute("UPDATE customers SET name = ?, address = ?, talking_points = ? WHERE id = ?",
                                 [.text(hostile), .text("ul. Łąkowa 3\u{1B}[1A"), .text("Бакалия Свети Георги\u{1B}[5m"), .text(customer)])
            try database.execute("UPDATE orders SET note = ? WHERE id = ?", [.text("Dostawa rano\u{1B}[2J\nвторой ряд"), .text(orderID)])
            try database.execute("INSERT INTO routes(id, rep_id, day) VALUES ('RT-TTY', 'R1', '2030-01-07')")
            try database.execute("INSERT INTO route_stops(route_id, position, customer_id) VALUES ('RT-TTY', 1, ?)", [.text(customer)])
        }
        // Each command, and what of the hostile text it must show (escaped, letters intact).
        let commands: [([String], String)] = [
            (["customer", "show", customer], "Магазин Ёлка \\u{1B}[2J\\u{1B}]0;pwned\\u{07} Żółw"),
            (["customer", "find", customer], "Магазин Ёлка \\u{1B}[2J"),
            (["route", "--day", "2030-01-07"], "Магазин Ёлка \\u{1B}[2J"),
            (["order", "show", orderID], "Dostawa rano\\u{1B}[2J"),
            (["order", "list"], "Магазин Ёлка \\u{1B}[2J"),
        ]
        for (command, visible) in commands {
            let result = try run(command + ["--home", home])
            #expect(result.succeeded, "\(command): \(result.stderr)")
            #expect(!Self.hasControl(result.stdout), "\(command) printed a raw control character: \(result.stdout.debugDescription)")
            #expect(result.stdout.contains(visible), "\(command): \(result.stdout)")
        }
        let show = try run(["order", "show", orderID, "--home", home])
        #expect(show.stdout.contains("Dostawa rano\\u{1B}[2J\nвторой ряд"), "a note keeps its line break: \(show.stdout)")
        let card = try run(["customer", "show", customer, "--home", home])
        #expect(card.stdout.contains("Żółw \\u{202E}NLP 001\\u{9B}31m"))
        #expect(card.stdout.contains("Бакалия Свети Георги\\u{1B}[5m"))
        // JSON is escaped by the encoder: the name comes back intact, with no raw ESC on the wire.
        let json = try run(["customer", "show", customer, "--home", home, "--json"])
        #expect(!Self.hasControl(json.stdout), "\(json.stdout.debugDescription)")  // C1 and bidi escaped too (the encoder leaves them raw)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["name"] as? String == hostile)
        // An error that quotes outside text is made safe too.
        let refused = try run(["order", "show", "X\u{1B}[2J", "--home", home])
        #expect(refused.status == 65 && !Self.hasControl(refused.stderr), "\(refused.stderr.debugDescription)")
    }

    @Test("order list shows an order whose customer is not in the working set, and says how many more there are than it shows")
    func orderListShowsEverything() throws {
        let directory = TemporaryDirectory("e2e-list")
        let (home, customer) = try seededHome(directory)
        var ids: [String] = []
        for quantity in 1...3 {
            let saved = try run(["order", "new", "--home", home, "--customer", customer, "--line", "PN-10000:\(quantity)", "--confirm", "--json"])
            try #require(saved.succeeded, "\(saved.stderr)")
            ids.append(try #require((try JSONSerialization.jsonObject(with: Data(saved.stdout.utf8)) as? [String: Any])?["id"] as? String))
        }
        do {
            // As after a restore from a snapshot taken before the customer came down.
            let database = try Database(path: home + "/satchel.db")
            try database.execute("PRAGMA foreign_keys=OFF")
            for table in ["customer_price_levels", "history_lines", "history_orders", "route_stops", "equipment"] {
                try database.execute("DELETE FROM \(table) WHERE customer_id = ?", [.text(customer)])
            }
            try database.execute("DELETE FROM customers WHERE id = ?", [.text(customer)])
        }
        let list = try run(["order", "list", "--home", home])
        #expect(list.succeeded, "\(list.stderr)")
        for id in ids { #expect(list.stdout.contains(id), "\(id) missing from\n\(list.stdout)") }
        #expect(list.stdout.contains("\(customer) (not in working set)"))
        #expect(!list.stdout.contains("more orders not shown"))

        let limited = try run(["order", "list", "--home", home, "--limit", "2"])
        #expect(limited.succeeded)
        #expect(limited.stdout.contains(ids[2]) && limited.stdout.contains(ids[1]) && !limited.stdout.contains(ids[0]))
        #expect(limited.stdout.contains("1 more orders not shown (the newest 2 of 3)"), "\(limited.stdout)")
        #expect(limited.stdout.contains("--all"))
        let all = try run(["order", "list", "--home", home, "--all"])
        for id in ids { #expect(all.stdout.contains(id)) }
        let json = try run(["order", "list", "--home", home, "--limit", "1", "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 1 && rows[0]["id"] as? String == ids[2])
        #expect(json.stderr.contains("2 more orders not shown"))
        let bad = try run(["order", "list", "--home", home, "--limit", "0"])
        #expect(bad.status == 65 && bad.stderr.contains("--limit"))
    }

    @Test("foreign, newer, empty and non-SQLite files are refused with exit 69 by reads and captures, and stay byte-identical")
    func refusedFilesUntouched() throws {
        let directory = TemporaryDirectory("e2e-refuse")
        let home = directory.path + "/device"
        let initialised = try run(["init", "--home", home, "--device", "PL09", "--rep", "R1"])
        try #require(initialised.succeeded, "\(initialised.stderr)")
        let path = home + "/satchel.db"
        func replace(_ make: () throws -> Void) rethrows {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            try make()
        }
        let cases: [(String, () throws -> Void, String)] = [
            ("a foreign SQLite file in rollback mode", {
                var options = Database.Options()
                options.walMode = false
                let other = try Database(path: path, options: options)
                try other.execute("CREATE TABLE klienci (nazwa TEXT)")
                try other.execute("INSERT INTO klienci VALUES ('Hurtownia Żółw')")
            }, "not a Satchel device database"),
            ("a newer satchel's database", {
                var options = Database.Options()
                options.walMode = false
                let newer = try Database(path: path, options: options)
                try newer.execute("CREATE TABLE x (y)")
                try newer.execute("PRAGMA application_id=\(0x5361_5463)")
                try newer.execute("PRAGMA user_version=77")
            }, "newer satchel"),
            ("a 0-byte file", { writeFile(path, []) }, "0 bytes"),
            ("a text file", { writeFile(path, Array("Бакалия Свети Георги\n".utf8)) }, "not an SQLite database"),
        ]
        for (what, make, message) in cases {
            try replace(make)
            let before = fileFingerprints(path)
            for command in [["status"], ["visit", "--customer", "C1", "--outcome", "closed"], ["order", "list"]] {
                let result = try run(command + ["--home", home])
                #expect(result.status == 69, "\(what), \(command): exit \(result.status) \(result.stderr)")
                #expect(result.stderr.contains(message), "\(what), \(command): \(result.stderr)")
            }
            #expect(fileFingerprints(path) == before, "\(what) was modified")
        }
    }

    @Test("a page-corrupt database refuses the capture that meets the damage and every capture after it, pointing to satchel restore")
    func corruptPageStopsCaptures() throws {
        let directory = TemporaryDirectory("e2e-corrupt")
        let (home, customer) = try seededHome(directory)
        let path = home + "/satchel.db"
        let visit = try run(["visit", "--home", home, "--customer", customer, "--outcome", "order", "--note", "Магазин Ёлка"])
        try #require(visit.succeeded, "\(visit.stderr)")
        do {
            let database = try Database(path: path)
            try database.checkpoint()
            let root = try database.int64("SELECT rootpage FROM sqlite_schema WHERE name = 'visits'")
            corruptPageHeader(path, page: root, pageSize: try database.int64("PRAGMA page_size"))
        }
        let refused = try run(["visit", "--home", home, "--customer", customer, "--outcome", "closed"])
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("damaged") && refused.stderr.contains("satchel restore"))
        let damaged = fileFingerprints(path)
        // The payments table is intact; the database is not, and nothing more goes into it.
        let payment = try run(["payment", "--home", home, "--customer", customer, "--amount", "50.00", "--receipt", "KP/1"])
        #expect(payment.status == 69, "\(payment.status) \(payment.stderr)")
        #expect(payment.stderr.contains("satchel restore"))
        let status = try run(["status", "--home", home])
        #expect(status.status == 69)
        #expect(fileFingerprints(path) == damaged)
    }

    @Test("satchel payment: a billion is refused naming the limit, a receipt is used once, a payment is voided by its own document")
    func paymentsBoundedAndVoidable() throws {
        let directory = TemporaryDirectory("e2e-money")
        let (home, customer) = try seededHome(directory)
        let changes = { try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM changes") }
        let start = try changes()
        let billion = try run(["payment", "--home", home, "--customer", customer, "--amount", "1000000000.00"])
        #expect(billion.status == 65 && billion.stderr.contains("1000000000.00 PLN") && billion.stderr.contains("200000.00 PLN"), "\(billion.stderr)")
        #expect(try changes() == start)

        let paid = try run(["payment", "--home", home, "--customer", customer, "--amount", "120,50", "--receipt", "KP/2026/7", "--json"])
        try #require(paid.succeeded, "\(paid.stderr)")
        let paymentID = try #require((try JSONSerialization.jsonObject(with: Data(paid.stdout.utf8)) as? [String: Any])?["id"] as? String)
        let again = try run(["payment", "--home", home, "--customer", customer, "--amount", "10", "--receipt", "kp/2026/7"])
        #expect(again.status == 65 && again.stderr.contains("already used by payment \(paymentID)"), "\(again.stderr)")

        let voided = try run(["payment", "void", paymentID, "--home", home, "--reason", "Pomyłka — zapłacono przelewem"])
        #expect(voided.succeeded, "\(voided.stderr)")
        #expect(voided.stdout.contains("Payment \(paymentID) voided by"))
        let twice = try run(["payment", "void", paymentID, "--home", home, "--reason", "again"])
        #expect(twice.status == 65 && twice.stderr.contains("already voided"))
        let unknown = try run(["payment", "void", "SIM1-999999", "--home", home, "--reason", "x"])
        #expect(unknown.status == 65 && unknown.stderr.contains("unknown payment"))
        let noReason = try run(["payment", "void", paymentID, "--home", home])
        #expect(noReason.status == 64)
        let card = try run(["customer", "show", customer, "--home", home])
        #expect(card.stdout.contains("\(paymentID)  120.50 PLN  receipt KP/2026/7  VOIDED by"), "\(card.stdout)")
        #expect(try changes() == start + 2)
    }

    @Test("a payment and its void reach a running hub as two documents, byte for byte")
    func voidSyncsToHub() throws {
        let directory = TemporaryDirectory("e2e-void-sync")
        let (home, customer) = try seededHome(directory)
        let database = directory.path + "/hub.db"
        let hubBinary = BuiltExecutable.path("satchel-hub")
        func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
        }
        let keys = try run(["keys", "--json", "--home", home])
        let deviceKey = try #require((try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])?["public_key"] as? String)
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Ганна Ёлкина"], stdin: "hasło-sync\n").succeeded)
        try #require(try hub(["device", "add", "--db", database, "--device", "SIM1", "--rep", "R01", "--key", deviceKey]).succeeded)
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let running = try SyncEndToEndTests.RunningHub(binary: hubBinary, database: database)
        defer { running.stop() }
        try #require(try run(["provision", "--home", home, "--hub", running.address, "--hub-key", hubKey]).succeeded)

        let paid = try run(["payment", "--home", home, "--customer", customer, "--amount", "99,90", "--receipt", "KP/5", "--json"])
        let paymentID = try #require((try JSONSerialization.jsonObject(with: Data(paid.stdout.utf8)) as? [String: Any])?["id"] as? String)
        let voided = try run(["payment", "void", paymentID, "--home", home, "--reason", "Zła kwota — грешна сума", "--json"])
        let voidID = try #require((try JSONSerialization.jsonObject(with: Data(voided.stdout.utf8)) as? [String: Any])?["id"] as? String)
        let synced = try ChildProcess.run(satchel, ["sync", "--mode", "fast", "--json", "--home", home], stdin: "hasło-sync\n", timeoutSeconds: 60)
        try #require(synced.succeeded, "\(synced.stderr)")
        #expect((try JSONSerialization.jsonObject(with: Data(synced.stdout.utf8)) as? [String: Any])?["uploaded"] as? Int == 2)
        let device = try Database(path: home + "/satchel.db")
        let office = try Database(path: database)
        for id in [paymentID, voidID] {
            // The device journals the codec's bytes; the hub keeps the same document as its JSON.
            let sent = try #require(try device.first("SELECT entity, payload FROM changes WHERE entity_id = ?", [.text(id)]) { ($0.text(0), $0.blob(1)) })
            let stored = try office.text("SELECT payload FROM device_changes WHERE entity_id = ?", [.text(id)])
            let document = try DocumentCodec.decode(sent.1, entity: sent.0).json()
            #expect(!sent.1.isEmpty && Array(stored.utf8) == Array(document.utf8))
        }
        #expect(try office.text("SELECT entity FROM device_changes WHERE entity_id = ?", [.text(voidID)]) == "payment_void")
    }
}
