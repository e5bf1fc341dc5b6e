import Dispatch
import Foundation
import SatchelTesting
import SimulatorKit
import Store
import Testing

@Suite("The card with several satchel processes at once")
struct CardConcurrencyTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")

    @Test("concurrent captures all reach the card journal in order, and a wiped device restores them all")
    func concurrentCaptures() throws {
        let directory = TemporaryDirectory("cards")
        let home = directory.path + "/device", card = directory.path + "/card"
        try FileManager.default.createDirectory(atPath: card, withIntermediateDirectories: true)
        let seeded = try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "10", "--products", "10", "--seed", "4"], timeoutSeconds: 60)
        try #require(seeded.succeeded, "\(seeded.stderr)")
        let environment = ["SATCHEL_HOME": home, "SATCHEL_CARD": card, "SATCHEL_SNAPSHOT_EVERY": "7"]
        let initialised = try ChildProcess.run(satchel, ["card", "init"], environment: environment, stdin: "hasło-zapasowe\n", timeoutSeconds: 60)
        try #require(initialised.succeeded, "\(initialised.stderr)")
        let customer = try Database(path: home + "/satchel.db").text("SELECT id FROM customers ORDER BY id LIMIT 1")

        let results = Results()
        DispatchQueue.concurrentPerform(iterations: 24) { index in
            let result = try? ChildProcess.run(satchel, ["visit", "--customer", customer, "--outcome", "no_order", "--note", "Równolegle \(index) — паралелно"],
                                               environment: environment, timeoutSeconds: 120)
            results.add(result)
        }
        #expect(results.all.count == 24 && results.all.allSatisfy { $0?.succeeded == true })
        #expect(results.all.allSatisfy { $0?.stderr.contains("WARNING") == false }, "a capture fell behind the card: \(results.all.compactMap { $0?.stderr }.joined())")

        let status = try ChildProcess.run(satchel, ["card", "status", "--json"], environment: environment, timeoutSeconds: 60)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        #expect(report["state"] as? String == "ok" && report["behind"] as? Int == 0 && report["journal_through_seq"] as? Int == 24)

        try FileManager.default.removeItem(atPath: home)
        let restored = try ChildProcess.run(satchel, ["restore", "--passphrase-stdin", "--json"], environment: environment, stdin: "hasło-zapasowe\n", timeoutSeconds: 60)
        try #require(restored.succeeded, "\(restored.stderr)")
        #expect(try Database(path: home + "/satchel.db").int64("SELECT count(*) FROM visits") == 24)
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var all: [ChildProcess.Result?] = []
        func add(_ result: ChildProcess.Result?) { lock.lock(); all.append(result); lock.unlock() }
    }
}
