import Foundation
import Hub
import Postgres
import SatchelTesting
import Store
import Sync
import Testing

/// Issue 17 on the PostgreSQL hub: the same exchange file, the same checks and refusals as on
/// SQLite (ERPImportTests), all or nothing in one transaction: a refused file leaves every table
/// the import could write exactly as it was.
@Suite("ERP import on PostgreSQL: the same rows and refusals as on SQLite, a refused file changes nothing", .serialized)
struct ERPImportPostgresTests {
    /// Every table the import may write (SQLite's name, PostgreSQL's name, the columns compared).
    static let tables: [(sqlite: String, postgres: String, columns: [String])] =
        [("erp_currencies", "erp_currencies", ["code", "minor_units"]), ("reps", "reps", ["id", "name", "territory_id", "role", "password_hash"]),
         ("erp_open_items", "open_items", WorkingSetTables.named("open_items")!.columns.map(\.name))]
        + ["territories", "products", "product_units", "prices", "display_types", "display_type_materials", "customers", "customer_price_levels",
           "stock", "routes", "route_stops"].map { ($0, $0, WorkingSetTables.named($0)!.columns.map(\.name)) }

    /// One row as text, the same SQL on both backends (SQLite 3.40 has no concat_ws).
    static func rowText(_ columns: [String]) -> String {
        columns.map { "coalesce(CAST(\($0) AS TEXT), '-')" }.joined(separator: " || '|' || ")
    }

    final class PG {
        let database: TestPostgres.Database
        let storage: PostgresHubStorage
        let connection: PostgresConnection
        let directory = TemporaryDirectory("erp-pg")
        init() throws {
            database = try TestPostgres.newDatabase()
            storage = try PostgresHubStorage(url: database.url)
            connection = try PostgresConnection(url: database.url)
        }

        func write(_ name: String, _ text: String) -> String {
            let path = directory.file(name)
            writeFile(path, Array(text.utf8))
            return path
        }

        /// Each table's rows as text, in byte order.
        func dump() throws -> [String: [String]] {
            var tables: [String: [String]] = [:]
            for table in ERPImportPostgresTests.tables {
                tables[table.sqlite] = try connection.query("SELECT r FROM (SELECT \(rowText(table.columns)) AS r FROM \(table.postgres)) s ORDER BY r COLLATE \"C\"") { $0.text(0) }
            }
            return tables
        }

        /// The import's refusal: nothing the import could write may change.
        func refusal(_ file: String) throws -> String {
            let before = try dump()
            do {
                _ = try storage.importERP(path: file)
                Issue.record("\(file) was imported")
                return ""
            } catch HubError.invalid(let why) {
                #expect(try dump() == before, "the PostgreSQL hub's tables changed")
                #expect(why.contains("nothing imported"))
                return why
            }
        }
    }

    /// The same tables of an SQLite hub, rendered as `PG.dump` renders them.
    static func dump(sqlite path: String) throws -> [String: [String]] {
        let database = try Store.Database(path: path)
        var tables: [String: [String]] = [:]
        for table in Self.tables {
            tables[table.sqlite] = try database.query("SELECT \(rowText(table.columns)) FROM \(table.sqlite) ORDER BY 1") { $0.text(0) }
        }
        return tables
    }

    @Test("the sample file imports on PostgreSQL with the same summary and the same rows as on SQLite; a second file with only stock upserts it there too")
    func sampleMatchesSQLite() throws {
        let pg = try PG()
        let sqliteDirectory = TemporaryDirectory("erp-pg-sqlite")
        let sqlite = try SQLiteHubStorage(path: sqliteDirectory.file("hub.db"))
        let expected = try sqlite.importERP(path: ERPImportTests.sample)
        let summary = try pg.storage.importERP(path: ERPImportTests.sample)
        #expect(summary == expected)
        #expect(summary.rows["customers"] == 3 && summary.addedReps == ["rep_kowalska", "sup_nowak", "rep_petrova"])
        let rows = try pg.dump()
        #expect(rows == (try Self.dump(sqlite: sqliteDirectory.file("hub.db"))))
        #expect(rows["products"]?.count == 3 && rows["erp_open_items"]?.contains { $0.hasPrefix("CRU000001|СЧ-000123|") } == true)
        #expect(rows["reps"]?.contains { $0.hasPrefix("sup_nowak|") && $0.hasSuffix("|PL|supervisor|") } == true)

        let stock = ERPImportTests.exchange(#"<stock><item part-number="PN-PL-0001" quantity="7"/><item location="van:rep_petrova" part-number="PN-BG-0077" quantity="3"/></stock>"#)
        _ = try sqlite.importERP(path: pg.write("stock-sqlite.xml", stock))
        _ = try pg.storage.importERP(path: pg.write("stock.xml", stock))
        let after = try pg.dump()
        #expect(after["stock"] == ["van:rep_kowalska|PN-PL-0001|6", "van:rep_petrova|PN-BG-0077|3", "warehouse|PN-BG-0077|48", "warehouse|PN-PL-0001|7", "warehouse|PN-RU-0100|0"])
        #expect(after == (try Self.dump(sqlite: sqliteDirectory.file("hub.db"))))
        // A rep's sign-in stays the hub's: a password set after the first import survives the second.
        try pg.connection.execute("UPDATE reps SET password_hash = 'set-by-office' WHERE id = 'rep_petrova'")
        _ = try pg.storage.importERP(path: ERPImportTests.sample)
        #expect(try pg.connection.first("SELECT password_hash FROM reps WHERE id = 'rep_petrova'") { $0.text(0) } == "set-by-office")
    }

    @Test("bad rows are named by line and element exactly as on SQLite, a truncated file and a file dropping products that kept stock points at are refused; PostgreSQL's tables do not change; fixed, the file imports")
    func refusedFileChangesNothing() throws {
        let pg = try PG()
        _ = try pg.storage.importERP(path: ERPImportTests.sample)
        let body = """
            \(ERPImportTests.currencies)
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
        let why = try pg.refusal(pg.write("bad.xml", ERPImportTests.exchange(body)))
        #expect(why.contains("6 problems"), "\(why)")
        #expect(why.contains("line 5, <price>: currency EUR is unknown (known: BGN, PLN)"))
        #expect(why.contains("line 6, <product>: part-number is missing"))
        #expect(why.contains("line 8, <product>: duplicate key 'PN-BG-0077': products has it already"))
        #expect(why.contains("line 13, <item>: quantity -5 of PN-PL-0001 is negative"))
        #expect(why.contains("line 13, <item>: products has no part_number 'PN-XX-9999' in this file"))
        #expect(why.contains("line 14, <stop>: customers has no id 'CBG999999' in this file"))

        let whole = fileBytes(ERPImportTests.sample)
        let cut = pg.directory.file("cut.xml")
        writeFile(cut, Array(whole[..<(whole.count * 2 / 3)]))
        #expect(try pg.refusal(cut).contains("it is truncated; export it again"))
        // The kept stock is this hub's, copied into the check: dropping its products is refused.
        let orphans = try pg.refusal(pg.write("drop.xml", ERPImportTests.exchange(ERPImportTests.currencies + ERPImportTests.products)))
        #expect(orphans.contains("kept from the hub's data (the file has no section for it), points at products the file no longer has"), "\(orphans)")

        let fixed = body.replacingOccurrences(of: "currency=\"EUR\"", with: "currency=\"PLN\"")
            .replacingOccurrences(of: "<product name=\"Herbata bez numeru\"/>", with: "<product part-number=\"PN-PL-0002\" name=\"Herbata\"/><product part-number=\"PN-RU-0100\" name=\"Чай «Ёлочка»\"/>")
            .replacingOccurrences(of: "<product part-number=\"PN-BG-0077\" name=\"Кафе Родопа (дубликат)\"/>", with: "")
            .replacingOccurrences(of: "quantity=\"-5\"", with: "quantity=\"5\"").replacingOccurrences(of: "PN-XX-9999", with: "PN-PL-0002")
            .replacingOccurrences(of: "CBG999999", with: "CBG000001")
        _ = try pg.storage.importERP(path: pg.write("fixed.xml", ERPImportTests.exchange(fixed)))
        #expect(try pg.connection.query("SELECT part_number FROM products ORDER BY part_number COLLATE \"C\"") { $0.text(0) } == ["PN-BG-0077", "PN-PL-0001", "PN-PL-0002", "PN-RU-0100"])
    }
}
