import Foundation
import Hub
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// Approvals by hierarchy (issue 17) as the office and the rep live them: limits set on a real
/// hub with `satchel-hub approvals set-limit`, a real device that downloads them and says before
/// saving who must approve, the queue per office user, refusals over a user's limits on the
/// command line and the admin API (nothing changed), and the decisions back on the device.
@Suite("approvals by hierarchy: limits per role, routing up the territories, refusals over a user's limits", .serialized)
struct ApprovalHierarchyTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")
    let sim = BuiltExecutable.path("satchel-sim")
    let web = OfficeWebTests()

    func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
    }

    func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    @Test("a quote over the rep's limit goes to the supervisor, over the supervisor's to the sales manager; a supervisor may not decide the larger one, anywhere; the device names the approver before saving and gets the decisions")
    func routesUpTheHierarchy() throws {
        let directory = TemporaryDirectory("approvals")
        let home = directory.path + "/device", erp = directory.path + "/erp", database = directory.path + "/hub.db"
        for target in [home, erp] {
            try #require(try ChildProcess.run(sim, ["seed", "--home", target, "--customers", "20", "--products", "30", "--seed", "8"], timeoutSeconds: 60).succeeded)
        }
        let environment = ["SATCHEL_HOME": home]
        let keys = try ChildProcess.run(satchel, ["keys", "--json"], environment: environment, timeoutSeconds: 30)
        let deviceKey = try #require((json(keys.stdout) as? [String: Any])?["public_key"] as? String)
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Пётр Иванов"], stdin: "hasło-sync\n").succeeded)
        try #require(try hub(["master", "import", "--db", database, "--from", erp + "/satchel.db"]).succeeded)
        try #require(try hub(["device", "add", "--db", database, "--device", "SIM1", "--rep", "R01", "--key", deviceKey]).succeeded)
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // The limits, in złoty: a rep 5% and 1.00 PLN (every order of the test is over it), a
        // supervisor 15%, a sales manager 30%. Bad limits are refused by name and change nothing.
        for (role, discount, value) in [("rep", "5", Optional("1.00")), ("supervisor", "15", nil), ("sales_manager", "30", nil)] {
            let set = try hub(["approvals", "set-limit", "--db", database, "--role", role, "--currency", "PLN", "--discount", discount] + (value.map { ["--value", $0] } ?? []))
            try #require(set.succeeded, "\(set.stderr)")
        }
        let limitsBefore = try hub(["approvals", "limits", "--db", database]).stdout
        #expect(limitsBefore.contains("PLN supervisor: discount up to 15.00%"), "\(limitsBefore)")
        let lowercase = try hub(["approvals", "set-limit", "--db", database, "--role", "rep", "--currency", "pln", "--discount", "50"])
        #expect(lowercase.status == 65 && lowercase.stderr.contains("three capital letters"), "\(lowercase.stderr)")
        let tooMuch = try hub(["approvals", "set-limit", "--db", database, "--role", "rep", "--currency", "PLN", "--discount", "120"])
        #expect(tooMuch.status == 65 && tooMuch.stderr.contains("0% to 100%"), "\(tooMuch.stderr)")
        #expect(try hub(["approvals", "set-limit", "--db", database, "--role", "office", "--currency", "PLN", "--discount", "50"]).status != 0)
        #expect(try hub(["approvals", "limits", "--db", database]).stdout == limitsBefore)

        // The device downloads the limits with its first full sync.
        let syncServer = try OfficeWebTests.Listening(hubBinary, ["serve", "--db", database, "--listen", "127.0.0.1:0"], marker: "satchel-hub listening on")
        defer { syncServer.stop() }
        try #require(try ChildProcess.run(satchel, ["provision", "--hub", syncServer.address, "--hub-key", hubKey], environment: environment, timeoutSeconds: 30).succeeded)
        let first = try ChildProcess.run(satchel, ["sync", "--mode", "full"], environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        try #require(first.succeeded, "\(first.stderr)")

        // Before saving: who must approve, and nothing saved.
        func satchelRun(_ arguments: [String]) throws -> ChildProcess.Result {
            let run = try ChildProcess.run(satchel, arguments, environment: environment, timeoutSeconds: 30)
            try #require(run.succeeded, "satchel \(arguments): \(run.stderr)")
            return run
        }
        let check = try satchelRun(["quote", "new", "--customer", "CPL100001", "--line", "PN-10000:2", "--discount", "20", "--check"])
        #expect(check.stdout.contains("WILL NEED APPROVAL") && check.stdout.contains("discount 20.00% is over the 5.00% a rep may grant")
                && check.stdout.contains("approval by the sales manager"), "\(check.stdout)")
        let orderCheck = try satchelRun(["order", "new", "--customer", "CPL100001", "--line", "PN-10000:2", "--check"])
        #expect(orderCheck.stdout.contains("WILL BE HELD FOR APPROVAL") && orderCheck.stdout.contains("is over the 1.00 PLN a rep may confirm")
                && orderCheck.stdout.contains("approval by the supervisor"), "\(orderCheck.stdout)")
        #expect((json(try satchelRun(["quote", "list", "--json"]).stdout) as? [Any])?.isEmpty == true)
        // A draft's confirm, checked: the same rule names the approver, and the draft stays a draft.
        let draft = try #require((json(try satchelRun(["order", "new", "--customer", "CPL100001", "--line", "PN-10000:2", "--json"]).stdout) as? [String: Any])?["id"] as? String)
        let confirmCheck = try satchelRun(["order", "confirm", draft, "--check"])
        #expect(confirmCheck.stdout.contains("not confirmed") && confirmCheck.stdout.contains("WILL BE HELD FOR APPROVAL")
                && confirmCheck.stdout.contains("is over the 1.00 PLN a rep may confirm") && confirmCheck.stdout.contains("approval by the supervisor"), "\(confirmCheck.stdout)")
        #expect((json(try satchelRun(["order", "show", draft, "--json"]).stdout) as? [String: Any])?["state"] as? String == "draft")
        try #require(try satchelRun(["order", "cancel", draft]).succeeded)

        // Saved: two quotes and a held order, each naming its approver.
        func saved(_ arguments: [String]) throws -> (id: String, reason: String) {
            let run = try satchelRun(arguments + ["--json"])
            let object = try #require(json(run.stdout) as? [String: Any])
            let document = (object["document"] ?? object["order"]) as? [String: Any]
            return (try #require(object["id"] as? String), document?["hold_reason"] as? String ?? "")
        }
        let small = try saved(["quote", "new", "--customer", "CPL100001", "--line", "PN-10000:2", "--discount", "10"])
        #expect(small.reason.hasSuffix("approval by the supervisor"), "\(small.reason)")
        let large = try saved(["quote", "new", "--customer", "CPL100001", "--line", "PN-10000:2", "--discount", "20"])
        #expect(large.reason.hasSuffix("approval by the sales manager"), "\(large.reason)")
        let order = try saved(["order", "new", "--customer", "CPL100001", "--line", "PN-10000:2", "--confirm"])
        #expect(order.reason.contains("a rep may confirm") && order.reason.hasSuffix("approval by the supervisor"), "\(order.reason)")
        let upload = try ChildProcess.run(satchel, ["sync", "--mode", "fast"], environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        try #require(upload.succeeded, "\(upload.stderr)")

        // The rep's supervisor (PL-MAZ), the sales manager above (PL), another territory's supervisor.
        let (anna, krzysztof, dimitar) = ("Anna Wiśniewska", "Krzysztof Zając", "Димитър Георгиев")
        for (name, role, territory) in [(anna, "supervisor", "PL-MAZ"), (krzysztof, "sales_manager", "PL"), (dimitar, "supervisor", "BG")] {
            let added = try hub(["user", "add", "--db", database, name, "--role", role, "--territory", territory])
            try #require(added.succeeded, "\(added.stderr)")
        }
        func queue(_ user: String) throws -> Set<String> {
            let listed = try hub(["approvals", "list", "--db", database, "--for", user, "--json"])
            try #require(listed.succeeded, "\(listed.stderr)")
            return Set((json(listed.stdout) as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        }
        #expect(try queue(anna) == [small.id, order.id])
        #expect(try queue(krzysztof) == [small.id, large.id, order.id])
        #expect(try queue(dimitar) == [])
        let everything = try hub(["approvals", "list", "--db", database]).stdout
        #expect(everything.contains("needs sales_manager (goes to \(krzysztof))") && everything.contains("needs supervisor (goes to \(anna))"), "\(everything)")

        // The supervisor may not decide the larger quote: refused, said why, nothing changed.
        let decisions = { try Database(path: database).int64("SELECT count(*) FROM office_decisions") }
        let refused = try hub(["approvals", "approve", "--db", database, large.id, "--as", anna, "--reason", "ok"])
        #expect(refused.status == 77 && refused.stderr.contains("needs the sales manager")
                && refused.stderr.contains("discount 20.00% is over the 15.00% a supervisor may grant") && refused.stderr.contains("nothing was changed"), "\(refused.stderr)")
        #expect(try decisions() == 0)
        #expect(try hub(["approvals", "approve", "--db", database, small.id, "--as", dimitar, "--reason", "ok"]).status == 77)
        #expect(try queue(krzysztof) == [small.id, large.id, order.id])

        // The admin API applies the same rule.
        let issued = try hub(["user", "token", "--db", database, anna])
        try #require(issued.succeeded)
        let admin = try OfficeWebTests.Listening(hubBinary, ["admin", "--db", database, "--listen", "127.0.0.1:0"], marker: "admin listening on")
        defer { admin.stop() }
        let apiRefused = try web.http(admin.address, "POST", "/api/v1/documents/SIM1/quote/\(large.id)/decision",
                                      token: issued.stdout.trimmingCharacters(in: .whitespacesAndNewlines), body: #"{"decision":"approve","reason":"ok"}"#)
        #expect(apiRefused.status == 403 && apiRefused.body.contains("needs the sales manager"), "\(apiRefused.body)")
        #expect(try decisions() == 0)

        // Each level decides what is its own.
        for (verb, id, user, reason) in [("approve", large.id, krzysztof, "Rabat uzgodniony z dyrekcją"), ("approve", small.id, anna, "Согласовано"),
                                         ("reject", order.id, anna, "Клиентът има просрочие")] {
            let decided = try hub(["approvals", verb, "--db", database, id, "--as", user, "--reason", reason])
            #expect(decided.succeeded, "\(verb) \(id) as \(user): \(decided.stderr)")
        }
        #expect(try decisions() == 3)
        #expect(try queue(krzysztof) == [])

        // The device's next sync brings the decisions down.
        let full = try ChildProcess.run(satchel, ["sync", "--mode", "full"], environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        try #require(full.succeeded, "\(full.stderr)")
        let quotes = try #require(json(try satchelRun(["quote", "list", "--json"]).stdout) as? [[String: Any]])
        #expect(Set(quotes.filter { $0["approval"] as? String == "approved" }.compactMap { $0["id"] as? String }) == [small.id, large.id])
        let orders = try #require(json(try satchelRun(["order", "list", "--json"]).stdout) as? [[String: Any]])
        #expect(orders.first { $0["id"] as? String == order.id }?["state"] as? String == "rejected", "\(orders)")
    }
}
