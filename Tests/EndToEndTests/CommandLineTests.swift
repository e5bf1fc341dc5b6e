import Foundation
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// These run the real executables, as a rep's console or a technician would.
@Suite("satchel and satchel-sim as processes", .serialized)
struct CommandLineTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")

    func run(_ path: String, _ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(path, arguments, stdin: stdin, timeoutSeconds: 120)
    }

    /// A seeded device home and one customer/product pair that can be ordered.
    func seededHome(_ directory: TemporaryDirectory) throws -> (home: String, customer: String, part: String) {
        let home = directory.path + "/device"
        let seeded = try run(sim, ["seed", "--home", home, "--customers", "40", "--products", "60", "--seed", "2", "--json"])
        try #require(seeded.succeeded, "satchel-sim seed failed: \(seeded.stderr)")
        let database = try Database(path: home + "/satchel.db")
        let customer = try database.text("SELECT id FROM customers WHERE overdue_minor = 0 ORDER BY id LIMIT 1")
        return (home, customer, "PN-10000")
    }

    func changeCount(_ home: String) throws -> Int64 {
        try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM changes")
    }

    @Test("the executables are built next to the tests")
    func executablesExist() {
        #expect(FileManager.default.isExecutableFile(atPath: satchel), "\(satchel) missing: run `swift build` before `swift test`")
        #expect(FileManager.default.isExecutableFile(atPath: sim))
    }

    @Test("order new --line ... --confirm --json prints the id once acknowledged, and order list shows it")
    func wholeOrderInOneCall() throws {
        let directory = TemporaryDirectory("e2e")
        let (home, customer, part) = try seededHome(directory)
        let saved = try run(satchel, ["order", "new", "--home", home, "--customer", customer, "--line", "\(part):3", "--line", "PN-10001:1",
                                      "--note", "Dostawa rano — доставка утром", "--confirm", "--json"])
        try #require(saved.succeeded, "\(saved.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(saved.stdout.utf8)) as? [String: Any])
        let id = try #require(object["id"] as? String)
        #expect(object["acknowledged"] as? Bool == true)
        #expect(id.hasPrefix("SIM1-"))
        let list = try run(satchel, ["order", "list", "--home", home, "--json"])
        let orders = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        #expect(orders.contains { $0["id"] as? String == id && $0["state"] as? String == "confirmed" })
        let show = try run(satchel, ["order", "show", id, "--home", home])
        #expect(show.succeeded && show.stdout.contains("Dostawa rano — доставка утром"))
        let card = try run(satchel, ["customer", "show", customer, "--home", home, "--json"])
        #expect(card.succeeded && card.stdout.contains("\"colour\""))
    }

    @Test("bad input exits with its documented code, names what and where, and writes nothing")
    func badInput() throws {
        let directory = TemporaryDirectory("e2e")
        let (home, customer, part) = try seededHome(directory)
        let draft = try run(satchel, ["order", "new", "--home", home, "--customer", customer, "--line", "\(part):1", "--confirm", "--json"])
        let confirmedID = try #require(try JSONSerialization.jsonObject(with: Data(draft.stdout.utf8)) as? [String: Any])["id"] as? String
        let before = try changeCount(home)
        let cases: [([String], Int32, String)] = [
            (["order", "new", "--customer", "NOPE", "--line", "\(part):1", "--confirm"], 65, "unknown customer 'NOPE'"),
            (["order", "new", "--customer", customer, "--line", "PN-NOPE:1", "--confirm"], 65, "unknown part number 'PN-NOPE' on line 1"),
            (["order", "new", "--customer", customer, "--line", "\(part):1", "--line", "\(part):0", "--confirm"], 65, "line 2"),
            (["order", "new", "--customer", customer, "--line", "\(part):-4", "--confirm"], 65, "positive whole number"),
            (["order", "new", "--customer", customer, "--line", "\(part):dwa", "--confirm"], 65, "not a whole number"),
            (["order", "new", "--customer", customer, "--level", "vip", "--line", "\(part):1"], 65, "price level 'vip'"),
            (["order", "add-line", confirmedID ?? "", "\(part):1"], 65, "not a draft"),
            (["payment", "--customer", customer, "--amount", "-5"], 65, "amount '-5'"),
            (["display-request", "--customer", customer, "--type", "WALL", "--width", "0", "--height", "100"], 65, "display width"),
            (["complaint", "--customer", customer, "--category", "angry", "--text", "x"], 65, "complaint category 'angry'"),
            (["order", "new", "--customer", customer, "--bogus"], 64, "Unknown option '--bogus'"),
        ]
        for (arguments, code, message) in cases {
            let result = try run(satchel, arguments + ["--home", home])
            #expect(result.status == code, "\(arguments): exit \(result.status), stderr \(result.stderr)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(try changeCount(home) == before)
        let missing = try run(satchel, ["status", "--home", directory.path + "/nowhere"])
        #expect(missing.status == 66 && missing.stderr.contains("satchel init"))
    }

    @Test("a damaged database is refused with exit 69 and left untouched")
    func damagedDatabase() throws {
        let directory = TemporaryDirectory("e2e")
        let (home, _, _) = try seededHome(directory)
        let path = home + "/satchel.db"
        try Database(path: path).checkpoint()
        var bytes = fileBytes(path)
        for offset in 0..<64 { bytes[offset] = 0xEE }
        writeFile(path, bytes)
        let result = try run(satchel, ["status", "--home", home])
        #expect(result.status == 69)
        #expect(result.stderr.contains("damaged") && result.stderr.contains(path))
        #expect(fileBytes(path) == bytes)
    }

    @Test("a data directory the user may not use is refused with exit 77")
    func noPermission() throws {
        let directory = TemporaryDirectory("e2e")
        let (home, _, _) = try seededHome(directory)
        let result: ChildProcess.Result
        if getuid() == 0 {
            // root passes every permission check, so ask as the unprivileged user the device runs satchel as.
            chmod(home, 0o700)
            result = try run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", satchel, "status", "--home", home])
        } else {
            chmod(home, 0o000)
            defer { chmod(home, 0o700) }
            result = try run(satchel, ["status", "--home", home])
        }
        #expect(result.status == 77, "\(result.stderr)")
        #expect(result.stderr.contains("no permission"))
    }

    @Test("satchel-sim day runs a rep's day through satchel and loses nothing")
    func simulatedDay() throws {
        let directory = TemporaryDirectory("e2e")
        let result = try run(sim, ["day", "--seed", "5", "--keep", directory.path + "/day", "--json"])
        try #require(result.succeeded, "\(result.stderr)\n\(result.stdout)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["lost"] as? Int == 0)
        #expect(report["integrity_ok"] as? Bool == true)
        // The office answered orders it had not received yet: the normal lifecycle, no sync error
        // on either end, and the report says so (it names any problem it found).
        #expect(report["sync_errors_on_hub"] as? Int == 0)
        #expect(report["sync_errors_on_device"] as? Int == 0)
        #expect((report["orders_accepted_by_office"] as? Int ?? 0) > 0)
        #expect(report["problems"] as? [String] == [])
        let visits = try #require(report["visits"] as? Int)
        #expect((20...40).contains(visits))
        #expect((report["orders_confirmed"] as? Int ?? 0) > 0)
        #expect(report["display_requests"] as? Int == 1 && report["complaints"] as? Int == 1)
        #expect(report["bad_inputs_refused"] as? Int == 2)
        let database = try Database(path: directory.path + "/day/device/satchel.db")
        // A draft completed later is three changes (new, add-line, confirm), four when a line was removed.
        #expect(try database.int64("SELECT count(*) FROM changes") == Int64(report["acknowledged"] as? Int ?? -1) + 2 * Int64(report["drafts_completed_later"] as? Int ?? 0)
                + Int64(report["draft_lines_removed"] as? Int ?? -1))
        #expect(FileManager.default.fileExists(atPath: directory.path + "/day/card"))
        // The day ran with a card: everything acknowledged is in the card journal, and the
        // end-of-day snapshot covers the last change.
        let changes = try database.int64("SELECT COALESCE(max(seq), 0) FROM changes")
        #expect(report["card_state"] as? String == "ok")
        #expect(report["card_behind"] as? Int == 0)
        #expect(report["card_journal_through_seq"] as? Int == Int(changes))
        #expect((report["snapshot_generation"] as? Int ?? 0) >= 2)
        #expect(report["snapshot_covers_seq"] as? Int == Int(changes))
        // And it ended with a fast sync: the hub holds every change, and the device knows it.
        #expect(report["sync_uploaded"] as? Int == Int(changes))
        #expect(report["hub_changes"] as? Int == Int(changes))
        #expect(try database.text("SELECT value FROM sync_state WHERE key = 'uploaded_through_seq'") == String(changes))
        #expect(FileManager.default.fileExists(atPath: directory.path + "/day/hub/hub.db"))
    }
}
