import Store
public import Sync

/// The hub's master data: the working-set tables with the columns the wire carries
/// (WorkingSetTables), so a download is a SELECT and nothing is renamed on the way. The ERP
/// exchange writes these tables; the device receives its slice of them.
enum MasterDataSchema {
    /// The wire tables that are plain master data (an ERP extract replaces them whole); the
    /// others are the sign-in table (`reps`) and per-device tables the hub writes itself.
    static let importedTables = WorkingSetTables.all.filter { !["reps", "document_states", "sync_errors", "approval_limits", "open_items"].contains($0.name) }

    /// `reps` already exists (sign-in); the rest is one table per wire table, plus the hub-only
    /// columns the scope needs (a rep's channel) and the per-device tables of downloads.
    static let v2: String = {
        var sql = """
            ALTER TABLE reps ADD COLUMN territory_id TEXT;
            ALTER TABLE reps ADD COLUMN role TEXT NOT NULL DEFAULT 'rep';
            -- The catalogue channel a rep sells (retail, trade); NULL sells everything.
            ALTER TABLE reps ADD COLUMN channel TEXT;
            -- A replacement handheld names the one it replaces (duplicate and upload modes).
            ALTER TABLE devices ADD COLUMN replaces TEXT REFERENCES devices(id);

            CREATE TABLE document_states (
                device_id TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL, state TEXT NOT NULL,
                approval TEXT, updated_at INTEGER NOT NULL, PRIMARY KEY (device_id, entity, entity_id)
            ) WITHOUT ROWID;
            CREATE TABLE sync_errors (
                device_id TEXT NOT NULL, id TEXT NOT NULL, change_id TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL,
                field TEXT NOT NULL, device_value TEXT, hub_value TEXT, reason TEXT NOT NULL, at INTEGER NOT NULL,
                PRIMARY KEY (device_id, id)
            ) WITHOUT ROWID;

            -- The customers the office assigned to a rep (beyond their territory and routes).
            CREATE TABLE rep_customers (
                rep_id TEXT NOT NULL, customer_id TEXT NOT NULL, PRIMARY KEY (rep_id, customer_id)
            ) WITHOUT ROWID;

            -- What the hub knows each device holds: key and row hash, as acknowledged by the device.
            CREATE TABLE device_shadow (
                device_id TEXT NOT NULL, tbl INTEGER NOT NULL, key BLOB NOT NULL, hash INTEGER NOT NULL,
                PRIMARY KEY (device_id, tbl, key)
            ) WITHOUT ROWID;
            -- The download under way per device: its rows in send order (hash NULL = purge).
            CREATE TABLE downloads (
                device_id TEXT PRIMARY KEY, pull_id TEXT NOT NULL, rows INTEGER NOT NULL,
                committed INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL
            );
            CREATE TABLE download_plan (
                device_id TEXT NOT NULL, position INTEGER NOT NULL, tbl INTEGER NOT NULL, key BLOB NOT NULL, hash INTEGER,
                PRIMARY KEY (device_id, position)
            ) WITHOUT ROWID;

            """
        for table in importedTables {
            let columns = table.columns.map { column -> String in
                switch column.kind {
                case .integer: return "\(column.name) INTEGER NOT NULL"
                case .optionalInteger: return "\(column.name) INTEGER"
                case .text: return "\(column.name) TEXT NOT NULL"
                case .optionalText: return "\(column.name) TEXT"
                }
            }
            sql += "CREATE TABLE \(table.name) (\(columns.joined(separator: ", ")), PRIMARY KEY (\(table.keyList))) WITHOUT ROWID;\n"
        }
        sql += indexes
        return sql
    }()
}

extension MasterDataSchema {
    /// The working-set indexes, the same SQL on SQLite and PostgreSQL (PostgresDownloads.swift).
    static let indexes = """
        CREATE INDEX customers_by_territory ON customers(territory_id);
        CREATE INDEX routes_by_rep ON routes(rep_id, day);
        CREATE INDEX history_orders_by_customer ON history_orders(customer_id, day);
        CREATE INDEX device_changes_by_device ON device_changes(device_id, at);
        """
}

extension MasterDataSchema {
    static let roles = ["rep", "merchandiser", "technician", "supervisor", "van_seller"]

    static func requireRole(_ role: String) throws {
        guard roles.contains(role) else { throw HubError.invalid("role \(role) is not one of \(roles.joined(separator: ", "))") }
    }

    /// An extract holding a row a handheld's schema refuses is refused whole, every such row
    /// named (DeviceSchemaCheck), before anything changes, on either backend: one bad row would
    /// otherwise stop every device whose scope holds it. `rows`: one list per WorkingSetTables table.
    static func refuseRowsHandheldsRefuse(extract path: String, rows: [[WorkingSetRow]]) throws {
        let check = try DeviceSchemaCheck()
        var refusals: [DeviceSchemaCheck.Refusal] = []
        for (table, tableRows) in zip(WorkingSetTables.all, rows) { refusals += try check.rowRefusals(table, tableRows) }
        refusals += DeviceSchemaCheck.foreignKeyRefusals(rows, refused: refusals, cascade: false)
        if !refusals.isEmpty {
            let shown = refusals.prefix(20).map { "  \($0)" }.joined(separator: "\n")
            let more = refusals.count > 20 ? "\n  ... and \(refusals.count - 20) more" : ""
            throw HubError.invalid("""
                extract \(path) refused, nothing imported: \(refusals.count) row\(refusals.count == 1 ? "" : "s") the handhelds' schema would refuse
                \(shown)\(more)
                Fix \(refusals.count == 1 ? "it" : "them") in the ERP extract and import it again.
                """)
        }
    }
}

/// What belongs on a rep's handheld, and how much of it.
public struct ScopePolicy: Sendable, Equatable {
    /// Routes from today for this many days, and their customers.
    public var routeDays: Int = 7
    /// Customers the rep's devices wrote documents for in this many days.
    public var recentDays: Int = 30
    /// ERP order history of those customers for this many days (the credit check reads it).
    public var historyDays: Int = 90
    /// Rows per table when the device names no budget of its own.
    public var defaultBudgets: [String: Int] = ["customers": 3_000, "products": 6_000]

    public init() {}
}

/// Computes a device's download: its scope, minus what its shadow says it already has.
struct DownloadPlanner {
    let database: Database
    let policy: ScopePolicy

    struct Plan {
        var pull: String
        var reset: Bool
        /// One row of the plan: a whole row to upsert, or the key values of a row to purge
        /// (hash 0; the shadow keeps no hash for it).
        struct Entry {
            var table: WorkingSetTables.Table
            var phase: TableFrame.Phase
            var row: WorkingSetRow
            var key: [UInt8]
            var hash: UInt64
            /// The row the device holds under this key, as the shadow keeps it (its
            /// `heldColumns`): what the frame's held differences are taken against.
            var held: WorkingSetRow? = nil
        }
        /// Rows in send order: purges (tables in reverse), then upserts (tables in order).
        var entries: [Entry]
        var checksums: [TableChecksum]
        var catalogue: Catalogue
        /// Rows in scope the device's schema would refuse: not sent, not in the checksums.
        var heldBack: [DeviceSchemaCheck.Refusal]
    }

    /// Fills the connection's temporary scope tables for this device; the per-table conditions
    /// below read them.
    func computeScope(device: HubDevice, today: String, now: Int64, budgets: [UInt8: Int]) throws {
        func budget(_ name: String) -> Int64 {
            let table = WorkingSetTables.named(name)!
            return Int64(budgets[table.id] ?? policy.defaultBudgets[name] ?? 1_000_000)
        }
        try database.execute(script: """
            CREATE TEMP TABLE IF NOT EXISTS scope_customers (id TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TEMP TABLE IF NOT EXISTS scope_products (part_number TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TEMP TABLE IF NOT EXISTS scope_routes (id TEXT PRIMARY KEY) WITHOUT ROWID;
            DELETE FROM scope_customers; DELETE FROM scope_products; DELETE FROM scope_routes;
            """)
        let lastDay = "date(?2, '+\(policy.routeDays - 1) day')"
        // The rep's territory and every territory below it. A supervisor also sees the routes of
        // the reps working there (FIELD-NOTES: visibility by role and hierarchy).
        try database.execute("CREATE TEMP TABLE IF NOT EXISTS scope_area (id TEXT PRIMARY KEY) WITHOUT ROWID")
        try database.execute("DELETE FROM scope_area")
        try database.execute("""
            INSERT INTO scope_area
            WITH RECURSIVE area(id) AS (
                SELECT territory_id FROM reps WHERE id = ?1 AND territory_id IS NOT NULL
                UNION SELECT t.id FROM territories t JOIN area ON t.parent_id = area.id
            ) SELECT id FROM area
            """, [.text(device.rep)])
        try database.execute("""
            INSERT INTO scope_routes SELECT id FROM routes WHERE day BETWEEN ?2 AND \(lastDay) AND (rep_id = ?1 OR
                (EXISTS (SELECT 1 FROM reps WHERE id = ?1 AND role = 'supervisor')
                 AND rep_id IN (SELECT id FROM reps WHERE territory_id IN (SELECT id FROM scope_area))))
            """, [.text(device.rep), .text(today)])
        // Most needed first: today's and the coming days' stops, then customers the rep has just
        // worked with, then the ones assigned to the rep, then the rest of the territory. The budget cuts from the end.
        try database.execute("""
            INSERT INTO scope_customers
            SELECT id FROM (
                SELECT s.customer_id AS id, 0 AS rank, r.day AS day FROM route_stops s JOIN routes r ON r.id = s.route_id
                    WHERE s.route_id IN (SELECT id FROM scope_routes)
                UNION ALL
                SELECT m.customer_id, 1, '' FROM device_changes c JOIN document_summaries m ON m.change_id = c.change_id
                    WHERE c.device_id IN (SELECT id FROM devices WHERE rep_id = ?1) AND c.at >= ?3 AND m.customer_id IS NOT NULL
                UNION ALL
                SELECT customer_id, 2, '' FROM rep_customers WHERE rep_id = ?1
                UNION ALL
                SELECT c.id, 3, '' FROM customers c WHERE c.territory_id IN (SELECT id FROM scope_area)
            ) AS ranked WHERE id IN (SELECT id FROM customers)
            GROUP BY id ORDER BY min(rank), min(day), id LIMIT ?4
            """, [.text(device.rep), .text(today), .integer(now - Int64(policy.recentDays) * 86_400_000), .integer(budget("customers"))])
        // The channel's catalogue, parts the scope's history and the display types need first.
        try database.execute("""
            INSERT INTO scope_products
            SELECT part_number FROM (
                SELECT m.part_number, 0 AS rank FROM display_type_materials m
                UNION ALL
                SELECT l.part_number, 1 FROM history_lines l WHERE l.customer_id IN (SELECT id FROM scope_customers)
                UNION ALL
                SELECT p.part_number, 2 FROM products p JOIN reps r ON r.id = ?1 WHERE r.channel IS NULL OR p.channel = r.channel
            ) AS ranked WHERE part_number IN (SELECT part_number FROM products)
            GROUP BY part_number ORDER BY min(rank), part_number LIMIT ?2
            """, [.text(device.rep), .integer(budget("products"))])
    }

    /// The WHERE clause selecting a table's rows in scope (parameters: ?1 device, ?2 rep, ?3 today, ?4 history start, ?5 recent start).
    static func condition(_ table: String) -> String {
        switch table {
        case "territories": return ""
        // The rep, and for a supervisor the reps of the area too.
        case "reps": return "WHERE id = ?2 OR (EXISTS (SELECT 1 FROM reps WHERE id = ?2 AND role = 'supervisor') AND territory_id IN (SELECT id FROM scope_area))"
        // Materials of a part the budget left out would point at nothing on the device.
        case "products", "product_units", "prices", "display_type_materials": return "WHERE part_number IN (SELECT part_number FROM scope_products)"
        case "stock": return "WHERE part_number IN (SELECT part_number FROM scope_products) AND location IN ('warehouse', 'van:' || ?1, 'van:' || ?2)"
        case "customers": return "WHERE id IN (SELECT id FROM scope_customers)"
        case "customer_price_levels", "equipment", "open_items": return "WHERE customer_id IN (SELECT id FROM scope_customers)"
        case "display_types": return "WHERE ?1 IS NOT NULL"
        case "routes": return "WHERE id IN (SELECT id FROM scope_routes)"
        // A stop whose customer the budget left out would point at nothing on the device.
        case "route_stops": return "WHERE route_id IN (SELECT id FROM scope_routes) AND customer_id IN (SELECT id FROM scope_customers)"
        case "history_orders": return "WHERE customer_id IN (SELECT id FROM scope_customers) AND day >= ?4"
        case "history_lines": return "WHERE ref IN (SELECT ref FROM history_orders WHERE customer_id IN (SELECT id FROM scope_customers) AND day >= ?4)"
        case "document_states": return "WHERE device_id = ?1 AND updated_at >= ?5"
        case "sync_errors": return "WHERE device_id = ?1 AND at >= ?5"
        // Every role's limits: the rep's say what needs approval, the others by whom.
        case "approval_limits": return "WHERE ?1 IS NOT NULL"
        default: return "WHERE 0"
        }
    }

    func plan(device: HubDevice, pull: String, reset: Bool, today: String, now: Int64, budgets: [UInt8: Int]) throws -> Plan {
        try computeScope(device: device, today: today, now: now, budgets: budgets)
        let historyStart = try database.text("SELECT date(?, '-\(policy.historyDays) day')", [.text(today)])
        let parameters: [DatabaseValue] = [.text(device.id), .text(device.rep), .text(today), .text(historyStart),
                                           .integer(now - Int64(policy.recentDays) * 86_400_000)]
        let scope = try WorkingSetTables.all.map { try $0.rows(in: database, where: Self.condition($0.name), parameters) }
        return try Self.assemble(pull: pull, reset: reset, scope: scope) { table in
            var shadow: [[UInt8]: ShadowRow] = [:]
            for (key, row) in try database.query("SELECT key, hash, held FROM device_shadow WHERE device_id = ? AND tbl = ?",
                                                 [.text(device.id), .integer(Int64(table.id))],
                                                 row: { ($0.blob(0), ShadowRow(hash: UInt64(bitPattern: $0.int64(1)), held: $0.isNull(2) ? nil : $0.blob(2))) }) {
                shadow[key] = row
            }
            return shadow
        }
    }

    /// The backend-independent half of a plan: from the rows in scope (one list per table of
    /// `WorkingSetTables.all`, in key order) and what the device's shadow holds of each table,
    /// the purges, upserts, checksums and rows held back. Both backends plan through here.
    /// What the shadow keeps of a row the device holds: its hash, and the values of the table's
    /// `heldColumns` (nil from a hub before protocol 5, or for a table without such columns).
    struct ShadowRow {
        var hash: UInt64
        var held: [UInt8]?
    }

    static func assemble(pull: String, reset: Bool, scope: [[WorkingSetRow]],
                         shadowOf: (WorkingSetTables.Table) throws -> [[UInt8]: ShadowRow]) throws -> Plan {
        var purges: [[Plan.Entry]] = []
        var upserts: [Plan.Entry] = []
        var checksums: [TableChecksum] = []
        var catalogue = Catalogue(parts: [String]())
        let hashes = zip(WorkingSetTables.all, scope).map { table, rows in rows.map { RowHash.of(table: table.id, $0) } }
        // The import refuses rows a handheld's schema refuses, but a hub file may hold some from
        // before, or from the office's own tables: those rows (and what points at them) are held
        // back from this device, named in the audit, and the rest of its download goes ahead.
        let check = try DeviceSchemaCheck()
        var heldBack: [DeviceSchemaCheck.Refusal] = []
        for (index, table) in WorkingSetTables.all.enumerated() { heldBack += try check.rowRefusals(table, scope[index], hashes: hashes[index]) }
        heldBack += DeviceSchemaCheck.foreignKeyRefusals(scope, refused: heldBack, cascade: true)
        let refused = Set(heldBack.map { [$0.table.id] + $0.key })
        for (index, table) in WorkingSetTables.all.enumerated() {
            let kept = scope[index].indices.filter { refused.isEmpty || !refused.contains([table.id] + table.key(of: scope[index][$0])) }
            let rows = kept.map { scope[index][$0] }
            var shadow = reset ? [:] : try shadowOf(table)
            var checksum = TableChecksum(table: table.id)
            for (row, hash) in zip(rows, kept.map { hashes[index][$0] }) {
                checksum.add(hash)
                let key = table.key(of: row)
                let shadowed = shadow.removeValue(forKey: key)
                if shadowed?.hash != hash {
                    // A row the device holds goes as a change to it where the shadow kept its values.
                    let held = try shadowed?.held.map { try table.heldRow($0) }
                    upserts.append(.init(table: table, phase: .upsert, row: row, key: key, hash: hash, held: held))
                }
            }
            purges.append(try shadow.keys.sorted { $0.lexicographicallyPrecedes($1) }.map { key in
                Plan.Entry(table: table, phase: .purge, row: try table.keyValues(key), key: key, hash: 0)
            })
            checksums.append(checksum)
            if table == WorkingSetTables.products {
                catalogue = Catalogue(parts: rows.compactMap { if case .text(let part) = $0[0] { return part } else { return nil } })
            }
        }
        return Plan(pull: pull, reset: reset, entries: purges.reversed().flatMap { $0 } + upserts, checksums: checksums, catalogue: catalogue,
                    heldBack: heldBack)
    }
}

/// A download ready to stream: the header, the TABLE frames in order and the closing DONE.
public struct PlannedDownload: Sendable {
    public var header: DownloadHeader
    public var frames: [TableFrame]
    public var done: DownloadDone
    public var catalogue: Catalogue
    /// Rows of the device's scope held back because its schema would refuse them, described
    /// (table, key, column, reason) for the audit log and the office.
    public var heldBack: [String] = []
    public var rows: Int { header.rows }
}

extension DownloadPlanner.Plan {
    /// Cuts the plan into frames: one table and phase per frame, at most `TableFrame.maxRows`
    /// rows and about `TableFrame.targetBytes` of body each.
    func frames() -> [TableFrame] {
        var frames: [TableFrame] = []
        var current: TableFrame?
        var held: [WorkingSetRow?] = []
        var bytes = 0
        for (position, entry) in entries.enumerated() {
            let size = entry.row.reduce(2) { total, value in
                if case .text(let text) = value { return total + text.utf8.count + 1 }
                return total + 4
            }
            if let frame = current, frame.table == entry.table, frame.phase == entry.phase,
               frame.rows.count < TableFrame.maxRows, bytes + size <= TableFrame.targetBytes {
                current?.rows.append(entry.row)
                held.append(entry.held)
                bytes += size
            } else {
                if let frame = current { frames.append(TableFrame(table: frame.table, phase: frame.phase, firstPosition: frame.firstPosition, rows: frame.rows, held: held)) }
                current = TableFrame(table: entry.table, phase: entry.phase, firstPosition: position, rows: [entry.row])
                held = [entry.held]
                bytes = size
            }
        }
        if let frame = current { frames.append(TableFrame(table: frame.table, phase: frame.phase, firstPosition: frame.firstPosition, rows: frame.rows, held: held)) }
        return frames
    }
}
