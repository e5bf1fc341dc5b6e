import Foundation
import SatchelTesting
import SimulatorKit
import Testing

/// Payment reminders end to end (issue 17): the ERP's open items imported on a real hub reach
/// the rep's handheld with a real sync, only for the customers in the rep's scope, and
/// `satchel customer show` and `satchel route` show what is overdue.
@Suite("payment reminders: ERP open items reach the rep's device in scope", .serialized)
struct PaymentReminderTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")

    @Test("the sample's Polish open items reach kowalska's device; the Russian customer's, outside her territory, do not; customer show and route remind of them")
    func openItemsReachTheDevice() throws {
        let directory = TemporaryDirectory("reminders")
        let home = directory.path + "/device", database = directory.path + "/hub.db"
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs").path
        func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            let run = try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
            try #require(run.succeeded, "satchel-hub \(arguments): \(run.stderr)")
            return run
        }
        let environment = ["SATCHEL_HOME": home]
        func device(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
            let run = try ChildProcess.run(satchel, arguments, environment: environment, stdin: stdin, timeoutSeconds: 60)
            try #require(run.succeeded, "satchel \(arguments): \(run.stderr)")
            return run
        }
        let sample = try String(contentsOfFile: docs + "/erp-sample.xml", encoding: .utf8)
        // Its route is moved to today: the hub sends routes from today on.
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX"); formatter.timeZone = TimeZone(identifier: "UTC"); formatter.dateFormat = "yyyy-MM-dd"
        let today = formatter.string(from: Date())
        // And the item that is not yet due stays not due whatever the date the test runs on: as
        // shipped it falls due on 2026-12-20, after which the route's overdue sum would include it.
        let notYetDue = formatter.string(from: Date().addingTimeInterval(60 * 86_400))
        try sample.replacingOccurrences(of: "day=\"2026-12-01\"", with: "day=\"\(today)\"")
            .replacingOccurrences(of: "due-on=\"2026-12-20\"", with: "due-on=\"\(notYetDue)\"")
            .write(toFile: directory.path + "/erp.xml", atomically: true, encoding: .utf8)
        _ = try hub(["erp", "import", "--db", database, directory.path + "/erp.xml"])
        _ = try hub(["rep", "password", "--db", database, "--rep", "rep_kowalska"], stdin: "hasło-sync\n")
        _ = try device(["init", "--device", "PL01", "--rep", "rep_kowalska"])
        let keys = try device(["keys", "--json"])
        let deviceKey = try #require((try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])?["public_key"] as? String)
        _ = try hub(["device", "add", "--db", database, "--device", "PL01", "--rep", "rep_kowalska", "--key", deviceKey])
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let server = try OfficeWebTests.Listening(hubBinary, ["serve", "--db", database, "--listen", "127.0.0.1:0"], marker: "satchel-hub listening on")
        defer { server.stop() }
        _ = try device(["provision", "--hub", server.address, "--hub-key", hubKey])
        _ = try device(["sync", "--mode", "full"], stdin: "hasło-sync\n")

        // The card: both of the Polish customer's open items, the one due 2026-11-18 overdue.
        let card = try device(["customer", "show", "CPL000001"]).stdout
        #expect(card.contains("Payments due (the ERP's open items):"), "\(card)")
        let overdue = try #require(card.split(separator: "\n").first { $0.contains("FV/2026/11/0042") }, "\(card)")
        #expect(overdue.contains("OVERDUE") && overdue.contains("234.50 PLN") && overdue.contains("days overdue (due 2026-11-18)"), "\(overdue)")
        #expect(card.contains("FV/2026/11/0077"), "\(card)")

        // Today's route: 234.50 PLN overdue at the first stop.
        let route = try device(["route"]).stdout
        #expect(route.contains("1. CPL000001") && route.contains("OVERDUE 234.50 PLN"), "\(route)")
        let json = try device(["route", "--json"]).stdout
        let stops = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        let payments = try #require(stops.first?["payments"] as? [String: Any])
        #expect((payments["overdue"] as? [[String: Any]])?.first?["minor"] as? Int == 234_50, "\(json)")

        // Outside her territory: the Russian customer (and so his open item) is not on the device.
        let foreign = try ChildProcess.run(satchel, ["customer", "show", "CRU000001"], environment: environment, timeoutSeconds: 30)
        #expect(!foreign.succeeded && !foreign.stdout.contains("СЧ-000123"))
    }
}
