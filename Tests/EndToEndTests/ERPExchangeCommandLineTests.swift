import Field
import Foundation
import Hub
import Sync
import SatchelTesting
import SimulatorKit
import Testing

/// `satchel-hub erp ...` as the office runs it: exit codes, messages, and the XSD the ERP's
/// developers write against (xmllint, Debian's libxml2-utils, as an independent validator).
@Suite("satchel-hub erp as a process", .serialized)
struct ERPExchangeCommandLineTests {
    let hubBinary = BuiltExecutable.path("satchel-hub")
    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs").path

    func hub(_ arguments: [String]) throws -> ChildProcess.Result {
        try ChildProcess.run(hubBinary, arguments, timeoutSeconds: 60)
    }

    @Test("the sample exchange file validates against docs/erp-exchange.xsd with xmllint")
    func sampleValidatesAgainstXSD() throws {
        let result = try ChildProcess.run("/usr/bin/xmllint", ["--noout", "--schema", Self.docs + "/erp-exchange.xsd", Self.docs + "/erp-sample.xml"],
                                          timeoutSeconds: 60)
        #expect(result.succeeded, "\(result.stderr)")
    }

    @Test("erp import: the sample imports (exit 0, counts, reps without a password named); a file with a DOCTYPE exits 65 naming line and reason, the hub file unchanged; a missing file exits 66")
    func importExitCodes() throws {
        let directory = TemporaryDirectory("erp-cli")
        let database = directory.file("hub.db")
        let good = try hub(["erp", "import", "--db", database, Self.docs + "/erp-sample.xml"])
        #expect(good.succeeded, "\(good.stderr)")
        #expect(good.stdout.contains("customers 3"))
        #expect(good.stdout.contains("New reps without a sync password (set one: satchel-hub rep password --rep ID): rep_kowalska, sup_nowak, rep_petrova"))

        let bad = directory.file("bad.xml")
        writeFile(bad, Array("""
            <?xml version="1.0"?>
            <!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>
            <erp-exchange version="1"><territories><territory id="T" name="&lol2;"/></territories></erp-exchange>
            """.utf8))
        let before = fileBytes(database)
        let refused = try hub(["erp", "import", "--db", database, bad])
        #expect(refused.status == 65)
        #expect(refused.stderr.contains("refused, nothing imported: 1 problem\n  line 2: a DOCTYPE is refused"))
        #expect(refused.stderr.contains("Fix it in the file and import it again."))
        #expect(fileBytes(database) == before)

        let missing = try hub(["erp", "import", "--db", database, directory.file("nie-ma.xml")])
        #expect(missing.status == 66)
    }

    @Test("erp export writes what devices sent and the file validates against docs/erp-export.xsd with xmllint; erp ack of an unknown cursor exits 66; after the ack the next export is empty")
    func exportValidatesAndAckMovesTheCursor() throws {
        let directory = TemporaryDirectory("erp-export-cli")
        let database = directory.file("hub.db")
        do {
            let storage = try SQLiteHubStorage(path: database)
            try storage.addRep(id: "rep_petrova", name: "Мария Петрова", passwordHash: "")
            try storage.addDevice(id: "H07", rep: "rep_petrova", publicKey: Array(repeating: 9, count: 32), now: 1, replaces: nil)
            let order = DocumentCodec.encode(.order(SampleDocuments.order("H07-1", customer: "CBG000001", note: "Доставка в петък")))
            let void = DocumentCodec.encode(.paymentVoid(SampleDocuments.paymentVoid("H07-2", payment: "H07-0", customer: "CBG000001")))
            _ = try storage.commit(Batch(id: "B1", changes: [
                SyncChange(seq: 1, changeId: "H07-1", at: 1_796_000_000_000, entity: "order", entityId: "H07-1", action: "confirmed", payload: order),
                SyncChange(seq: 2, changeId: "H07-2", at: 1_796_000_001_000, entity: "payment_void", entityId: "H07-2", action: "voided", payload: void),
            ]), device: "H07", now: 1_796_000_002_000)
        }
        let out = directory.file("export.xml")
        let export = try hub(["erp", "export", "--db", database, "--out", out])
        #expect(export.succeeded, "\(export.stderr)")
        #expect(export.stdout.contains("Exported 2 documents after cursor 0"))
        #expect(export.stdout.contains("satchel-hub erp ack 2"))
        let valid = try ChildProcess.run("/usr/bin/xmllint", ["--noout", "--schema", Self.docs + "/erp-export.xsd", out], timeoutSeconds: 60)
        #expect(valid.succeeded, "\(valid.stderr)")

        let unknown = try hub(["erp", "ack", "--db", database, "77"])
        #expect(unknown.status == 66)
        #expect(unknown.stderr.contains("export cursor 77: no export wrote it"))
        #expect(try hub(["erp", "ack", "--db", database, "2"]).succeeded)
        let next = try hub(["erp", "export", "--db", database, "--out", out])
        #expect(next.stdout.contains("Exported 0 documents after cursor 2"))
        let stillValid = try ChildProcess.run("/usr/bin/xmllint", ["--noout", "--schema", Self.docs + "/erp-export.xsd", out], timeoutSeconds: 60)
        #expect(stillValid.succeeded, "\(stillValid.stderr)")
    }
}

/// The office's queries as processes: readable times, outside text escaped, JSON.
@Suite("satchel-hub office queries as processes", .serialized)
struct OfficeQueriesCommandLineTests {
    let hubBinary = BuiltExecutable.path("satchel-hub")

    @Test("missed-syncs names the rep who never synced with an escaped name (no raw ESC reaches the terminal); devices prints readable times; --json parses")
    func missedSyncsAndDevices() throws {
        let directory = TemporaryDirectory("office-cli")
        let database = directory.file("hub.db")
        do {
            let storage = try SQLiteHubStorage(path: database)
            try storage.addRep(id: "rep-smirnov", name: "Иван \u{1B}[2JСмирнов", passwordHash: "x")
            try storage.addDevice(id: "H03", rep: "rep-smirnov", publicKey: Array(repeating: 3, count: 32), now: 1, replaces: nil)
            try storage.audit(AuditEntry(device: "H03", rep: "rep-smirnov", mode: "full", startedAt: 1_700_000_000_000, endedAt: 1_700_000_001_000,
                                         bytesUp: 1, bytesDown: 1, recordsUp: 0, recordsDown: 0, result: "failed", error: "modem: NO CARRIER"))
        }
        let missed = try ChildProcess.run(hubBinary, ["missed-syncs", "--db", database], timeoutSeconds: 60)
        #expect(missed.succeeded)
        #expect(missed.stdout.contains("rep-smirnov"))
        #expect(missed.stdout.contains("last ok sync never  last attempt 2023-11-14 22:13:20 UTC: modem: NO CARRIER"))
        #expect(!missed.stdout.contains("\u{1B}"))
        let devices = try ChildProcess.run(hubBinary, ["devices", "--db", database, "--json"], timeoutSeconds: 60)
        let parsed = try JSONSerialization.jsonObject(with: Data(devices.stdout.utf8)) as? [[String: Any]]
        #expect(parsed?.first?["lastError"] as? String == "modem: NO CARRIER")
        let audit = try ChildProcess.run(hubBinary, ["audit", "--db", database], timeoutSeconds: 60)
        #expect(audit.stdout.hasPrefix("2023-11-14 22:13:20 UTC  H03"))
    }
}
