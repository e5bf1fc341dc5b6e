import Field
import Store
import Sync

/// Where the ERP import checks its rows, set by set (issue 17): the handheld's own schema
/// (`DeviceSchemaCheck.deviceSchema`, the device's migrations) as an in-memory database attached
/// to the hub's connection under `erp_check`. Each row is inserted once, into its staging table,
/// where the device's CHECKs, NOT NULLs and keys judge it; a chunk of staged rows is then checked
/// against its parents with one anti-join per foreign key and moved into the hub's table with one
/// INSERT ... SELECT, instead of a second insert and a parent lookup per row.
///
/// The copy keeps what refuses rows (tables, keys, CHECKs, triggers that RAISE) and drops what
/// only serves a handheld's reads or bookkeeping (plain indexes, the checksum triggers). Each
/// staging table gets one more column, `erp_line`, the file line its row came from, so a set-based
/// refusal still names its line.
enum ERPStaging {
    static let schema = "erp_check"

    /// The working-set tables the exchange writes (the hub's master data and `reps`).
    static let tables: [WorkingSetTables.Table] = WorkingSetTables.all.filter { table in
        table.name == "reps" || MasterDataSchema.importedTables.contains { $0.name == table.name }
    }

    /// The element each staging table's rows come from, for the refusals.
    static let elements: [String: String] = [
        "territories": "territory", "reps": "rep", "products": "product", "product_units": "unit", "prices": "price",
        "customers": "customer", "customer_price_levels": "price-level", "stock": "item", "display_types": "display-type",
        "display_type_materials": "material", "routes": "route", "route_stops": "stop",
    ]

    /// The staging database's bytes, made once per process from the device's migrations.
    static let image: Result<[UInt8], HubError> = Result { () throws(HubError) -> [UInt8] in
        do {
            let database = try DeviceSchemaCheck.deviceSchema()
            let triggers = try database.query("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'") { ($0.text(0), $0.text(1)) }
            for (name, sql) in triggers where !sql.uppercased().contains("RAISE") { try database.execute("DROP TRIGGER \"\(name)\"") }
            let indexes = try database.query("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND upper(sql) NOT LIKE 'CREATE UNIQUE%'") { $0.text(0) }
            for name in indexes { try database.execute("DROP INDEX \"\(name)\"") }
            for table in tables { try database.execute("ALTER TABLE \(table.name) ADD COLUMN erp_line INTEGER NOT NULL DEFAULT 0") }
            return try database.image()
        } catch {
            throw HubError.storage("the ERP import's staging schema could not be made from the device's migrations: \(error)")
        }
    }

    /// Attaches a fresh staging copy to `database` (outside a transaction).
    static func attach(to database: Database) throws {
        if try database.first("SELECT 1 FROM pragma_database_list WHERE name = ?", [.text(schema)], row: { _ in true }) != nil {
            try database.execute("DETACH DATABASE \(schema)")
        }
        try database.attachImage(try image.get(), as: schema)
    }

    static func detach(from database: Database) {
        try? database.execute("DETACH DATABASE \(schema)")
    }
}
