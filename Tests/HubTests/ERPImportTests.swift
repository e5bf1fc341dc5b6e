import Foundation
import Hub
import SatchelTesting
import Store
import Sync
import Testing

/// Issue 17: the ERP exchange file (docs/erp-exchange.xsd) into the hub's master data. All or
/// nothing: a refused file names line, element and reason and leaves the hub file as it was.
@Suite("ERP import: the exchange file, its encodings, and what it refuses", .serialized)
struct ERPImportTests {
    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs").path
    static let sample = docs + "/erp-sample.xml"

    final class Hub {
        let directory = TemporaryDirectory("erp")
        let storage: SQLiteHubStorage
        var path: String { directory.file("hub.db") }
        init() throws { storage = try SQLiteHubStorage(path: directory.file("hub.db")) }

        func write(_ name: String, _ text: String) -> String {
            let path = directory.file(name)
            writeFile(path, Array(text.utf8))
            return path
        }

        func writeBytes(_ name: String, _ bytes: [UInt8]) -> String {
            let path = directory.file(name)
            writeFile(path, bytes)
            return path
        }

        func rows(_ sql: String) throws -> [[DatabaseValue]] {
            let database = try Database(path: path)
            return try database.query(sql) { statement in (0..<statement.columnCount).map { statement.value($0) } }
        }

        /// The import's refusal: the file must change nothing, byte for byte.
        func refusal(_ file: String) throws -> String {
            let before = fileBytes(path), wal = fileBytes(path + "-wal")
            do {
                _ = try storage.importERP(path: file)
                Issue.record("\(file) was imported")
                return ""
            } catch HubError.invalid(let why) {
                #expect(fileBytes(path) == before, "the hub file changed")
                #expect(fileBytes(path + "-wal") == wal, "the hub's WAL changed")
                #expect(why.contains("nothing imported"))
                return why
            }
        }
    }

    static func exchange(_ body: String, encoding: String = "UTF-8") -> String {
        """
        <?xml version="1.0" encoding="\(encoding)"?>
        <erp-exchange version="1">
        \(body)
        </erp-exchange>

        """
    }

    static let currencies = #"<currencies><currency code="PLN"/><currency code="BGN"/></currencies>"#
    static let products = """
        <products>
          <product part-number="PN-PL-0001" name="Kawa Żubr 1 kg"><price level="customer" currency="PLN" amount-minor="5999"/></product>
          <product part-number="PN-BG-0077" name="Кафе Родопа"><price level="customer" currency="BGN" amount-minor="689"/></product>
        </products>
        """

    @Test("the sample file imports whole: customers with credit limit, balance, overdue and discipline, open items with due dates, prices, units, stock, reps and routes, in Polish, Bulgarian and Russian")
    func sampleImports() throws {
        let hub = try Hub()
        let summary = try hub.storage.importERP(path: Self.sample)
        #expect(summary.rows["customers"] == 3)
        #expect(summary.addedReps == ["rep_kowalska", "sup_nowak", "rep_petrova"])
        #expect(try hub.rows("SELECT name, credit_limit_minor, balance_minor, overdue_minor, overdue_days, discipline, balance_as_of FROM customers WHERE id = 'CPL000001'")
                == [[.text("Sklep „Pod Lipą” Łęczyca"), .integer(500000), .integer(123450), .integer(23450), .integer(12), .text("hesitant"), .integer(1_795_996_800_000)]])
        #expect(try hub.rows("SELECT ref, due_on, amount_minor, currency FROM erp_open_items WHERE customer_id = 'CRU000001'")
                == [[.text("СЧ-000123"), .text("2026-12-05"), .integer(1500000), .text("RUB")]])
        #expect(try hub.rows("SELECT name FROM products WHERE part_number = 'PN-RU-0100'") == [[.text("Чай «Ёлочка» 100 пакетиков")]])
        #expect(try hub.rows("SELECT unit, factor FROM product_units WHERE part_number = 'PN-BG-0077'") == [[.text("кашон"), .integer(12)]])
        #expect(try hub.rows("SELECT territory_id, role, password_hash FROM reps WHERE id = 'sup_nowak'") == [[.text("PL"), .text("supervisor"), .text("")]])
        #expect(try hub.rows("SELECT count(*) FROM route_stops") == [[.integer(2)]])
    }

    @Test("stock is an upsert by location and part number: a file with only stock changes those lines and keeps the rest")
    func stockIsAnUpsert() throws {
        let hub = try Hub()
        _ = try hub.storage.importERP(path: Self.sample)
        let file = hub.write("stock.xml", Self.exchange(#"<stock><item part-number="PN-PL-0001" quantity="7"/><item location="van:rep_petrova" part-number="PN-BG-0077" quantity="3"/></stock>"#))
        _ = try hub.storage.importERP(path: file)
        #expect(try hub.rows("SELECT location, part_number, quantity FROM stock ORDER BY 1, 2") == [
            [.text("van:rep_kowalska"), .text("PN-PL-0001"), .integer(6)],
            [.text("van:rep_petrova"), .text("PN-BG-0077"), .integer(3)],
            [.text("warehouse"), .text("PN-BG-0077"), .integer(48)],
            [.text("warehouse"), .text("PN-PL-0001"), .integer(7)],
            [.text("warehouse"), .text("PN-RU-0100"), .integer(0)],
        ])
        #expect(try hub.rows("SELECT count(*) FROM customers") == [[.integer(3)]])
    }

    // Bytes from the code pages' published tables, not from the reader's own.
    @Test("windows-1250, ISO-8859-2 and windows-1251 files read as their declarations say; a UTF-8 BOM is accepted")
    func singleByteEncodingsRead() throws {
        let hub = try Hub()
        func file(_ name: String, _ encoding: String, _ territory: [UInt8], bom: Bool = false) -> String {
            let head = Array("<?xml version=\"1.0\" encoding=\"\(encoding)\"?>\n<erp-exchange version=\"1\">\n<territories><territory id=\"T\" name=\"".utf8)
            let tail = Array("\"/></territories>\n</erp-exchange>\n".utf8)
            return hub.writeBytes(name, (bom ? [0xEF, 0xBB, 0xBF] : []) + head + territory + tail)
        }
        let cases: [(String, String, [UInt8], String)] = [
            ("cp1250.xml", "windows-1250", [0xA3, 0xF3, 0x64, 0x9F], "Łódź"),
            ("latin2.xml", "ISO-8859-2", [0xA3, 0xF3, 0x64, 0xBC], "Łódź"),
            ("cp1251.xml", "windows-1251", [0xCC, 0xEE, 0xF1, 0xEA, 0xE2, 0xE0, 0x20, 0xA8, 0xB8], "Москва Ёё"),
            ("bom.xml", "UTF-8", Array("Пловдив".utf8), "Пловдив"),
        ]
        for (index, (name, encoding, bytes, expected)) in cases.enumerated() {
            let summary = try hub.storage.importERP(path: file(name, encoding, bytes, bom: index == 3))
            #expect(summary.encoding.lowercased() == encoding.lowercased())
            #expect(try hub.rows("SELECT name FROM territories") == [[.text(expected)]], "\(encoding)")
        }
    }

    @Test("an unknown encoding, UTF-16, a BOM that contradicts the declaration, and windows-1251 bytes declared UTF-8 are refused by name; nothing changes")
    func wrongEncodingsRefused() throws {
        let hub = try Hub()
        _ = try hub.storage.importERP(path: Self.sample)
        let koi = try hub.refusal(hub.write("koi.xml", Self.exchange("", encoding: "KOI8-R")))
        #expect(koi.contains("line 1: encoding KOI8-R is not one the exchange reads (UTF-8, windows-1250, windows-1251, ISO-8859-2)"))
        let utf16 = try hub.refusal(hub.writeBytes("utf16.xml", [0xFF, 0xFE, 0x3C, 0x00, 0x3F, 0x00]))
        #expect(utf16.contains("UTF-16 or UTF-32"))
        let mixed = try hub.refusal(hub.writeBytes("mixed.xml", [0xEF, 0xBB, 0xBF] + Array(Self.exchange("", encoding: "windows-1251").utf8)))
        #expect(mixed.contains("UTF-8 byte order mark but its declaration says windows-1251"))
        let head = Array("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<erp-exchange version=\"1\">\n<territories>\n<territory id=\"T\" name=\"".utf8)
        let lying = try hub.refusal(hub.writeBytes("lying.xml", head + [0xCC, 0xEE, 0xF1] + Array("\"/></territories></erp-exchange>".utf8)))
        #expect(lying.contains("line 4: attribute name of <territory> is not valid UTF-8"))
    }

    @Test("a DOCTYPE with an external entity, and an entity reference without one, are refused, never resolved; nothing changes")
    func doctypeAndEntitiesRefused() throws {
        let hub = try Hub()
        _ = try hub.storage.importERP(path: Self.sample)
        let secret = hub.write("secret.txt", "tajne hasło")
        let xxe = try hub.refusal(hub.write("xxe.xml", """
            <?xml version="1.0" encoding="UTF-8"?>
            <!DOCTYPE erp-exchange [ <!ENTITY xxe SYSTEM "file://\(secret)"> ]>
            <erp-exchange version="1"><territories><territory id="T" name="&xxe;"/></territories></erp-exchange>
            """))
        #expect(xxe.contains("line 2: a DOCTYPE is refused"))
        #expect(!xxe.contains("tajne"))
        let entity = try hub.refusal(hub.write("entity.xml", Self.exchange(#"<territories><territory id="T" name="&lol;"/></territories>"#)))
        #expect(entity.contains("line 3: entity &lol; in attribute name of <territory> is refused"))
        #expect(try hub.rows("SELECT count(*) FROM territories WHERE id = 'T'") == [[.integer(0)]])
    }

    @Test("unknown elements, a missing part number, negative stock, a price in an unknown currency, a stop for an unknown customer and duplicate keys are each named by line and element; nothing changes; fixed, the file imports")
    func badRowsNamedAndFixable() throws {
        let hub = try Hub()
        _ = try hub.storage.importERP(path: Self.sample)
        let body = """
            \(Self.currencies)
            <products>
              <product part-number="PN-PL-0001" name="Kawa Żubr 1 kg"><price level="customer" currency="EUR" amount-minor="5999"/></product>
              <product name="Herbata bez numeru"/>
              <product part-number="PN-BG-0077" name="Кафе Родопа"/>
              <product part-number="PN-BG-0077" name="Кафе Родопа (дубликат)"/>
            </products>
            <customers>
              <customer id="CBG000001" name="Магазин „Здравец“" currency="BGN"/>
            </customers>
            <stock><item part-number="PN-PL-0001" quantity="-5"/><item part-number="PN-XX-9999" quantity="1"/></stock>
            <routes><route id="R1" rep="rep_petrova" day="2026-12-02"><stop position="1" customer="CBG999999"/></route></routes>
            """
        let why = try hub.refusal(hub.write("bad.xml", Self.exchange(body)))
        #expect(why.contains("6 problems"))
        #expect(why.contains("line 5, <price>: currency EUR is unknown (known: BGN, PLN)"))
        #expect(why.contains("line 6, <product>: part-number is missing"))
        #expect(why.contains("line 8, <product>: duplicate key 'PN-BG-0077': products has it already"))
        #expect(why.contains("line 13, <item>: quantity -5 of PN-PL-0001 is negative"))
        #expect(why.contains("line 13, <item>: products has no part_number 'PN-XX-9999' in this file"))
        #expect(why.contains("line 14, <stop>: customers has no id 'CBG999999' in this file"))
        #expect(why.contains("Fix them in the file and import it again."))
        #expect(try hub.rows("SELECT count(*) FROM products") == [[.integer(3)]])

        let unknown = try hub.refusal(hub.write("unknown.xml", Self.exchange("<products><produkt part-number=\"X\"/></products>")))
        #expect(unknown.contains("line 3: unknown element <produkt> in <products> (expected <product>)"))

        // What the office does next: fix the file, import again.
        let fixed = body.replacingOccurrences(of: "currency=\"EUR\"", with: "currency=\"PLN\"")
            .replacingOccurrences(of: "<product name=\"Herbata bez numeru\"/>", with: "<product part-number=\"PN-PL-0002\" name=\"Herbata\"/><product part-number=\"PN-RU-0100\" name=\"Чай «Ёлочка»\"/>")
            .replacingOccurrences(of: "<product part-number=\"PN-BG-0077\" name=\"Кафе Родопа (дубликат)\"/>", with: "")
            .replacingOccurrences(of: "quantity=\"-5\"", with: "quantity=\"5\"").replacingOccurrences(of: "PN-XX-9999", with: "PN-PL-0002")
            .replacingOccurrences(of: "CBG999999", with: "CBG000001")
        _ = try hub.storage.importERP(path: hub.write("fixed.xml", Self.exchange(fixed)))
        #expect(try hub.rows("SELECT part_number FROM products ORDER BY 1") == [[.text("PN-BG-0077")], [.text("PN-PL-0001")], [.text("PN-PL-0002")], [.text("PN-RU-0100")]])
    }

    @Test("a row the handheld's schema refuses (a CHECK) is refused at import with the device schema's reason")
    func deviceSchemaRefusalNamed() throws {
        let hub = try Hub()
        _ = try hub.storage.importERP(path: Self.sample)
        let why = try hub.refusal(hub.write("check.xml", Self.exchange(Self.currencies + #"<customers><customer id="CPL9" name="Żabka" currency="PLN" discipline="zła"/></customers>"#)))
        #expect(why.contains("line 3, <customer>: a handheld would refuse this row: customers id 'CPL9', column discipline = 'zła': CHECK constraint failed"))
    }

    @Test("a rep id a handheld refuses (a hyphen: it becomes part of every document id) is refused at import, naming it; nothing changes")
    func repIdTheHandheldRefuses() throws {
        let hub = try Hub()
        _ = try hub.storage.importERP(path: Self.sample)
        let before = try hub.rows("SELECT id, name FROM reps ORDER BY id")
        let why = try hub.refusal(hub.write("reps.xml", Self.exchange(#"<reps><rep id="rep-wiśniewska" name="Anna Wiśniewska"/><rep id="rep_ivanov" name="Иван Иванов"/></reps>"#)))
        #expect(why.contains("line 3, <rep>: rep id rep-wiśniewska is one a handheld refuses"), "\(why)")
        #expect(try hub.rows("SELECT id, name FROM reps ORDER BY id") == before)
    }

    @Test("a truncated file is refused, saying where it ends; dropping products that kept stock points at is refused naming the kept row")
    func truncatedAndOrphans() throws {
        let hub = try Hub()
        _ = try hub.storage.importERP(path: Self.sample)
        let whole = fileBytes(Self.sample)
        let truncated = try hub.refusal(hub.writeBytes("cut.xml", Array(whole[..<(whole.count * 2 / 3)])))
        #expect(truncated.contains("it is truncated; export it again"))
        let orphans = try hub.refusal(hub.write("drop.xml", Self.exchange(Self.currencies + Self.products)))
        #expect(orphans.contains("kept from the hub's data (the file has no section for it), points at products the file no longer has"))
    }

    // The import checks its rows a chunk (8,192 staged rows) at a time; a key repeated in a later
    // chunk is found by the set-based move into the hub's table, not by the staging table's key.
    @Test("a product and a stock line repeated thousands of lines later (in another chunk of the check) are each named by line; nothing changes")
    func duplicatesAcrossChunksNamed() throws {
        let hub = try Hub()
        let count = 9_000
        var body = Self.currencies + "\n<products>\n"
        for index in 0..<count { body += "<product part-number=\"PN-\(index)\" name=\"Кафе Родопа \(index)\"/>\n" }
        body += "<product part-number=\"PN-0\" name=\"Kawa Żubr (znowu)\"/>\n</products>\n<stock>\n"
        for index in 0..<count { body += "<item part-number=\"PN-\(index)\" quantity=\"\(index % 50)\"/>\n" }
        body += "<item part-number=\"PN-0\" quantity=\"1\"/>\n</stock>"
        let why = try hub.refusal(hub.write("repeated.xml", Self.exchange(body)))
        #expect(why.contains("2 problems"), "\(why)")
        #expect(why.contains("line \(5 + count), <product>: duplicate key 'PN-0': products has it already"), "\(why)")
        #expect(why.contains("line \(8 + 2 * count), <item>: duplicate stock line for 'PN-0' at 'warehouse'"), "\(why)")
        #expect(try hub.rows("SELECT count(*) FROM products") == [[.integer(0)]])

        // Without the repeats the same file imports whole.
        let fixed = body.replacingOccurrences(of: "<product part-number=\"PN-0\" name=\"Kawa Żubr (znowu)\"/>\n", with: "")
            .replacingOccurrences(of: "<item part-number=\"PN-0\" quantity=\"1\"/>\n", with: "")
        let summary = try hub.storage.importERP(path: hub.write("fixed.xml", Self.exchange(fixed)))
        #expect(summary.rows["products"] == count)
        #expect(try hub.rows("SELECT count(*), sum(quantity) FROM stock WHERE location = 'warehouse'") == [[.integer(Int64(count)), .integer(Int64((0..<count).reduce(0) { $0 + $1 % 50 }))]])
    }

    @Test("hostile numbers in the XML: character references of 2^32-1, 2^32, 2^63-1 and 2^64 and one past Unicode, a reference longer than any, and an amount of 2^63 are refused with the line and what, nothing imported, no trap")
    func hostileNumbers() throws {
        let hub = try Hub()
        for reference in ["&#4294967295;", "&#4294967296;", "&#9223372036854775807;", "&#x7FFFFFFFFFFFFFFF;", "&#xFFFFFFFFFFFFFFFF0;", "&#x110000;"] {
            let body = Self.currencies + "\n<products><product part-number=\"PN-1\" name=\"K\(reference)\"><price level=\"customer\" currency=\"PLN\" amount-minor=\"1\"/></product></products>"
            let why = try hub.refusal(hub.write("reference.xml", Self.exchange(body)))
            #expect(why.contains("line 4") && (why.contains("no character") || why.contains("character reference")), "\(reference): \(why)")
            // A reference with too many digits is not a bare &: "&amp;" there would change the text.
            #expect(!why.contains("bare &"), "\(reference): \(why)")
        }
        let amount = Self.currencies + "\n<products><product part-number=\"PN-1\" name=\"K\"><price level=\"customer\" currency=\"PLN\" amount-minor=\"9223372036854775808\"/></product></products>"
        let why = try hub.refusal(hub.write("amount.xml", Self.exchange(amount)))
        #expect(why.contains("9223372036854775808' is not a whole number"), "\(why)")
    }
    @Test("one text, attribute value, comment or CDATA section of over 1 MiB, and an element with 300 attributes, are refused naming the line and the element; nothing changes")
    func oversizedValuesRefused() throws {
        let hub = try Hub()
        _ = try hub.storage.importERP(path: Self.sample)
        let before = try hub.rows("SELECT count(*) FROM products")
        let huge = String(repeating: "Ж", count: 600_000)  // 1.2 MB of UTF-8
        let cases: [(String, String, String)] = [
            ("text", Self.currencies + "\n<products><product part-number=\"PN-1\" name=\"K\">\(huge)</product></products>", "line 4: the text of <product> is longer than 1024 KiB"),
            ("attribute", Self.currencies + "\n<products><product part-number=\"PN-1\" name=\"\(huge)&amp;\"/></products>", "line 4: the value of name in <product> is longer than 1024 KiB"),
            ("comment", Self.currencies + "\n<!-- \(huge) -->", "line 4: a comment is longer than 1024 KiB"),
            ("cdata", Self.currencies + "\n<products><product part-number=\"PN-1\" name=\"K\"><![CDATA[\(huge)]]></product></products>", "line 4: a CDATA section is longer than 1024 KiB"),
            ("attributes", Self.currencies + "\n<products><product " + (0..<300).map { "a\($0)=\"1\"" }.joined(separator: " ") + "/></products>", "line 4: <product> has more than 256 attributes"),
        ]
        for (name, body, expected) in cases {
            let path = hub.write("\(name).xml", Self.exchange(body))
            let bytes = fileBytes(path)
            let why = try hub.refusal(path)
            #expect(why.contains(expected), "\(name): \(why.prefix(300))")
            #expect(fileBytes(path) == bytes, "the refused file changed")
            #expect(try hub.rows("SELECT count(*) FROM products") == before)
        }
    }
}
