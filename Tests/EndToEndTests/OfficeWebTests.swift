import Foundation
import Hub
import SatchelTesting
import SimulatorKit
import Store
import Testing
import Transport

/// The back office's HTTP face as the office uses it: a real hub with a real device's quote,
/// `satchel-hub admin` as a process, raw HTTP for the API, and a real headless Chromium for the
/// office web page; then the device's next sync shows the decision (issue 17).
@Suite("the admin API and the office web page against a real hub and a real device", .serialized)
struct OfficeWebTests {
    let satchel = BuiltExecutable.path("satchel")
    let hubBinary = BuiltExecutable.path("satchel-hub")
    let sim = BuiltExecutable.path("satchel-sim")

    /// A server process that prints "... listening on HOST:PORT" when ready.
    final class Listening {
        let process = Process()
        let address: String
        init(_ binary: String, _ arguments: [String], marker: String) throws {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            var text = ""
            let handle = output.fileHandleForReading
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline {
                if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }), let found = line.split(separator: " ").last {
                    address = String(found).trimmingCharacters(in: .whitespaces)
                    return
                }
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                text += String(decoding: chunk, as: UTF8.self)
            }
            kill(process.processIdentifier, SIGKILL)
            throw HTTPFailure("\(binary) \(arguments.joined(separator: " ")) never said \(marker); it printed: \(text)")
        }
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    }

    struct HTTPFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    struct HTTPAnswer {
        var status: Int
        var headers: [String: String]
        var body: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) }
    }

    /// One HTTP/1.1 request on a fresh loopback connection, read to the end (Connection: close):
    /// the bytes a client sends, with no library between the test and the server.
    func http(_ address: String, _ method: String, _ path: String, token: String? = nil, body: String? = nil) throws -> HTTPAnswer {
        let deadline = Deadline.after(seconds: 30)
        let stream = try TCP.connect(address, deadline: deadline)
        defer { stream.close() }
        var request = "\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\n"
        if let token { request += "Authorization: Bearer \(token)\r\n" }
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        try stream.write(Array(request.utf8), deadline: deadline)
        var bytes: [UInt8] = []
        while true {
            let chunk = try stream.read(maxCount: 65536, deadline: deadline)
            if chunk.isEmpty { break }
            bytes += chunk
        }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw HTTPFailure("no HTTP header in: \(text.prefix(300))") }
        let head = text[..<split.lowerBound].split(separator: "\r\n")
        guard let statusLine = head.first, let status = Int(statusLine.split(separator: " ")[1]) else { throw HTTPFailure("bad status line: \(head.first ?? "")") }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces) }
        }
        var body = String(text[split.upperBound...])
        if headers["transfer-encoding"] == "chunked" { body = Self.unchunk(body) }
        return HTTPAnswer(status: status, headers: headers, body: body)
    }

    static func unchunk(_ text: String) -> String {
        var rest = Substring(text), out = ""
        while let line = rest.range(of: "\r\n"), let size = Int(rest[..<line.lowerBound], radix: 16), size > 0 {
            let start = line.upperBound
            let end = rest.utf8.index(start, offsetBy: size)
            out += rest[start..<end]
            rest = rest[end...].dropFirst(2)
        }
        return out
    }

    func hub(_ arguments: [String], stdin: String? = nil) throws -> ChildProcess.Result {
        try ChildProcess.run(hubBinary, arguments, stdin: stdin, timeoutSeconds: 60)
    }

    func ids(_ answer: HTTPAnswer) -> [String] {
        (answer.json as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
    }

    @Test("a supervisor sees and decides only within the territory; no, a wrong or a revoked token gets 401; the office approves a quote in Chromium and the device's next sync shows it approved")
    func approveAQuoteInTheBrowser() throws {
        let directory = TemporaryDirectory("office-web")
        let home = directory.path + "/device", erp = directory.path + "/erp", database = directory.path + "/hub.db"
        for target in [home, erp] {
            try #require(try ChildProcess.run(sim, ["seed", "--home", target, "--customers", "20", "--products", "30", "--seed", "8"], timeoutSeconds: 60).succeeded)
        }
        let environment = ["SATCHEL_HOME": home]
        let keys = try ChildProcess.run(satchel, ["keys", "--json"], environment: environment, timeoutSeconds: 30)
        let deviceKey = try #require((try JSONSerialization.jsonObject(with: Data(keys.stdout.utf8)) as? [String: Any])?["public_key"] as? String)
        try #require(try hub(["rep", "add", "--db", database, "--rep", "R01", "--name", "Йордан Стоянов"], stdin: "hasło-sync\n").succeeded)
        try #require(try hub(["master", "import", "--db", database, "--from", erp + "/satchel.db"]).succeeded)
        try #require(try hub(["device", "add", "--db", database, "--device", "SIM1", "--rep", "R01", "--key", deviceKey]).succeeded)
        let hubKey = try hub(["key", "--db", database]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        // The rep (territory PL-MAZ) quotes 15% off: over the 10% a rep may grant, so it waits.
        let syncServer = try Listening(hubBinary, ["serve", "--db", database, "--listen", "127.0.0.1:0"], marker: "satchel-hub listening on")
        defer { syncServer.stop() }
        try #require(try ChildProcess.run(satchel, ["provision", "--hub", syncServer.address, "--hub-key", hubKey], environment: environment, timeoutSeconds: 30).succeeded)
        let quote = try ChildProcess.run(satchel, ["quote", "new", "--customer", "CPL100001", "--line", "PN-10000:2", "--discount", "15", "--json"],
                                         environment: environment, timeoutSeconds: 30)
        try #require(quote.succeeded, "\(quote.stderr)")
        let quoteID = try #require((try JSONSerialization.jsonObject(with: Data(quote.stdout.utf8)) as? [String: Any])?["id"] as? String)
        let upload = try ChildProcess.run(satchel, ["sync", "--mode", "fast"], environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        try #require(upload.succeeded, "\(upload.stderr)")

        // The office's people: the rep's supervisor, another territory's, the manager above, the office.
        for (name, role, territory) in [("Anna Wiśniewska", "supervisor", "PL-MAZ"), ("Димитър Георгиев", "supervisor", "BG"),
                                        ("Krzysztof Zając", "sales_manager", "PL"), ("biuro", "office", nil)] {
            let added = try hub(["user", "add", "--db", database, name, "--role", role] + (territory.map { ["--territory", $0] } ?? []))
            try #require(added.succeeded, "\(added.stderr)")
        }
        let unknownTerritory = try hub(["user", "add", "--db", database, "Ivan", "--role", "supervisor", "--territory", "RU-NOPE"])
        #expect(unknownTerritory.status == 66 && unknownTerritory.stderr.contains("territory RU-NOPE"))
        func token(_ name: String) throws -> String {
            let issued = try hub(["user", "token", "--db", database, name])
            try #require(issued.succeeded, "\(issued.stderr)")
            return issued.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let mazowsze = try token("Anna Wiśniewska"), bulgaria = try token("Димитър Георгиев"), poland = try token("Krzysztof Zając")
        let revoked = try token("biuro")

        let admin = try Listening(hubBinary, ["admin", "--db", database, "--listen", "127.0.0.1:0"], marker: "admin listening on")
        defer { admin.stop() }
        let address = admin.address

        // Who may ask.
        let anonymous = try http(address, "GET", "/api/v1/approvals")
        #expect(anonymous.status == 401 && anonymous.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
        #expect(try http(address, "GET", "/api/v1/approvals", token: "sto_" + String(repeating: "ab", count: 32)).status == 401)
        #expect(try http(address, "GET", "/api/v1/approvals", token: "' OR 1=1 --").status == 401)
        try #require(try hub(["user", "revoke", "--db", database, "biuro"]).succeeded)
        #expect(try http(address, "GET", "/api/v1/approvals", token: revoked).status == 401)
        let officeToken = try token("biuro")

        // Who sees what: the quote is PL-MAZ's, under PL; Bulgaria's supervisor sees nothing of it.
        #expect(ids(try http(address, "GET", "/api/v1/approvals", token: mazowsze)) == [quoteID])
        #expect(ids(try http(address, "GET", "/api/v1/approvals", token: poland)) == [quoteID])
        #expect(ids(try http(address, "GET", "/api/v1/approvals", token: bulgaria)) == [])
        #expect(ids(try http(address, "GET", "/api/v1/reps", token: bulgaria)) == [])
        #expect(ids(try http(address, "GET", "/api/v1/devices", token: mazowsze)) == ["SIM1"])
        let decisionPath = "/api/v1/documents/SIM1/quote/\(quoteID)/decision"
        let foreign = try http(address, "POST", decisionPath, token: bulgaria, body: #"{"decision":"approve"}"#)
        #expect(foreign.status == 403, "\(foreign.body)")
        let garbled = try http(address, "POST", decisionPath, token: mazowsze, body: #"{"decision":"maybe"}"#)
        #expect(garbled.status == 400 && garbled.body.contains("approve"))
        #expect(try http(address, "POST", "/api/v1/documents/SIM1/quote/SIM1-999999/decision", token: mazowsze, body: #"{"decision":"approve"}"#).status == 404)
        #expect(try http(address, "DELETE", "/api/v1/approvals", token: mazowsze).status == 405)
        #expect(try http(address, "GET", "/api/v1/audit?limit=0", token: officeToken).status == 400)
        // Nothing of the refusals changed the quote.
        #expect(ids(try http(address, "GET", "/api/v1/approvals", token: officeToken)) == [quoteID])

        // The office approves it in a real browser.
        let browser = Process()
        browser.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("OfficeWeb/approve_in_browser.py").path
        browser.arguments = ["python3", script, "http://\(address)", officeToken, quoteID, "Rabat uzgodniony — отстъпка одобрена", directory.path + "/office.png"]
        var environmentWithoutProxy = ProcessInfo.processInfo.environment
        for name in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"] { environmentWithoutProxy[name] = nil }
        environmentWithoutProxy["NO_PROXY"] = "*"; environmentWithoutProxy["no_proxy"] = "*"
        browser.environment = environmentWithoutProxy
        let browserOutput = Pipe()
        browser.standardOutput = browserOutput
        browser.standardError = browserOutput
        try browser.run()
        let said = String(decoding: browserOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        browser.waitUntilExit()
        #expect(browser.terminationStatus == 0, "the browser run: \(said)")
        #expect(FileManager.default.fileExists(atPath: directory.path + "/office.png"))
        // docs/office-web.png is this screenshot: SATCHEL_SCREENSHOTS=docs swift test --filter OfficeWebTests
        if let keep = ProcessInfo.processInfo.environment["SATCHEL_SCREENSHOTS"] {
            _ = try? FileManager.default.removeItem(atPath: keep + "/office-web.png")
            try FileManager.default.copyItem(atPath: directory.path + "/office.png", toPath: keep + "/office-web.png")
        }

        // The decision is the hub's: the queue is empty, a second decision is refused, and the log says who and why.
        #expect(ids(try http(address, "GET", "/api/v1/approvals", token: officeToken)) == [])
        #expect(try http(address, "POST", decisionPath, token: mazowsze, body: #"{"decision":"reject"}"#).status == 400)
        let log = try Database(path: database).query("SELECT user_name, decision, reason FROM office_decisions") { [$0.text(0), $0.text(1), $0.text(2)] }
        #expect(log == [["biuro", "approve", "Rabat uzgodniony — отстъпка одобрена"]])

        // The device's next full sync brings it down.
        let full = try ChildProcess.run(satchel, ["sync", "--mode", "full"], environment: environment, stdin: "hasło-sync\n", timeoutSeconds: 60)
        try #require(full.succeeded, "\(full.stderr)")
        let shown = try ChildProcess.run(satchel, ["quote", "list", "--json"], environment: environment, timeoutSeconds: 30)
        let quotes = try #require(try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [[String: Any]])
        #expect(quotes.first { $0["id"] as? String == quoteID }?["approval"] as? String == "approved")
    }

    @Test("a token stops working when it expires, and an office user's name, role and territory are checked when added")
    func tokensExpireAndUsersAreChecked() throws {
        let directory = TemporaryDirectory("office-tokens")
        let storage = try SQLiteHubStorage(path: directory.path + "/hub.db")
        try storage.addOfficeUser(OfficeUser(name: "Ольга Смирнова", role: .office, territory: nil), now: 0)
        let issued = try storage.issueOfficeToken(user: "Ольга Смирнова", days: 1, now: 1_000)
        #expect(try storage.officeUser(token: issued.token, now: 1_000 + 86_399_999) == .success(OfficeUser(name: "Ольга Смирнова", role: .office, territory: nil)))
        #expect(try storage.officeUser(token: issued.token, now: 1_000 + 86_400_000) == .failure(.expired(user: "Ольга Смирнова", at: issued.expiresAt)))
        #expect(try storage.officeUser(token: nil, now: 0) == .failure(.missing))
        #expect(try storage.officeUser(token: "sto_zz", now: 0) == .failure(.malformed))
        // The hub keeps a hash, never the token.
        let stored = try Database(path: directory.path + "/hub.db").query("SELECT hex(token_hash) FROM office_tokens") { $0.text(0) }
        #expect(stored.count == 1 && !issued.token.uppercased().contains(stored[0]))
        #expect(throws: HubError.self) { try storage.addOfficeUser(OfficeUser(name: "Ольга Смирнова", role: .admin, territory: nil), now: 0) }
        #expect(throws: HubError.self) { try storage.addOfficeUser(OfficeUser(name: "Jan", role: .supervisor, territory: nil), now: 0) }
        #expect(throws: HubError.self) { try storage.addOfficeUser(OfficeUser(name: "Jan", role: .office, territory: "PL"), now: 0) }
        #expect(throws: HubError.self) { try storage.issueOfficeToken(user: "nikt", days: 1, now: 0) }
        #expect(throws: HubError.self) { try storage.issueOfficeToken(user: "Ольга Смирнова", days: 0, now: 0) }
    }

    @Test("the admin API conforms to docs/admin-api.yaml: schemathesis, every check, against a running hub with master data, users and an audit log")
    func conformsToItsOpenAPIFile() throws {
        let directory = TemporaryDirectory("office-openapi")
        let database = directory.path + "/hub.db"
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs").path
        try #require(try hub(["erp", "import", "--db", database, docs + "/erp-sample.xml"]).succeeded)
        try #require(try hub(["user", "add", "--db", database, "biuro", "--role", "office"]).succeeded)
        try #require(try hub(["user", "add", "--db", database, "Łucja Mazur", "--role", "supervisor", "--territory", "PL"]).succeeded)
        let issued = try hub(["user", "token", "--db", database, "biuro"])
        try #require(issued.succeeded)
        let admin = try Listening(hubBinary, ["admin", "--db", database, "--listen", "127.0.0.1:0"], marker: "admin listening on")
        defer { admin.stop() }
        // Loopback, never through a proxy the machine may name.
        let environment = ["NO_PROXY": "*", "no_proxy": "*"]
        let run = try ChildProcess.run("/usr/bin/env", ["python3", "-m", "schemathesis.cli", "run", docs + "/admin-api.yaml", "--url", "http://\(admin.address)",
                                                        "-H", "Authorization: Bearer \(issued.stdout.trimmingCharacters(in: .whitespacesAndNewlines))",
                                                        "--checks", "all", "--max-examples", "30", "--seed", "17"],
                                       environment: environment, timeoutSeconds: 300)
        #expect(run.succeeded, "schemathesis: \(run.stdout.suffix(4000)) \(run.stderr.suffix(2000))")
        #expect(run.stdout.contains("passed"))
    }
}
