import Foundation
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
        #expect(good.stdout.contains("New reps without a sync password (set one: satchel-hub rep password --rep ID): rep-kowalska, sup-nowak, rep-petrova"))

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
}
