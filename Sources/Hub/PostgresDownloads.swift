import Field
import Foundation
import Postgres
import Seal
import Store
public import Sync

/// Master data, scope planning and downloads on PostgreSQL: the same tables, scope rules and
/// plan as on SQLite (MasterData.swift), the plan's backend-independent half shared
/// (`DownloadPlanner.assemble`). The scope is computed as arrays of ids in the session's
/// transaction instead of SQLite's temporary tables, and the rows in scope are read with
/// `= ANY($n::text[])`.
extension PostgresHubStorage {
    /// hub v4 on PostgreSQL: the SQLite schema's master-data and download tables (its v2), in
    /// PostgreSQL's types. `reps` columns, `devices.replaces`, document states and sync errors are
    /// in v1 and v2 here already.
    static let masterDataSchema: String = {
        var sql = """
            CREATE TABLE rep_customers (rep_id TEXT NOT NULL, customer_id TEXT NOT NULL, PRIMARY KEY (rep_id, customer_id));
            CREATE TABLE device_shadow (
                device_id TEXT NOT NULL, tbl INTEGER NOT NULL, key BYTEA NOT NULL, hash BIGINT NOT NULL, PRIMARY KEY (device_id, tbl, key)
            );
            CREATE TABLE downloads (
                device_id TEXT PRIMARY KEY, pull_id TEXT NOT NULL, rows INTEGER NOT NULL,
                committed BOOLEAN NOT NULL DEFAULT FALSE, created_at BIGINT NOT NULL
            );
            CREATE TABLE download_plan (
                device_id TEXT NOT NULL, position INTEGER NOT NULL, tbl INTEGER NOT NULL, key BYTEA NOT NULL, hash BIGINT,
                PRIMARY KEY (device_id, position)
            );

            """
        for table in MasterDataSchema.importedTables { sql += createTable(table) }
        sql += MasterDataSchema.indexes
        return sql
    }()

    /// A working-set table as a PostgreSQL table with the same columns and key.
    static func createTable(_ table: WorkingSetTables.Table) -> String {
        let columns = table.columns.map { column -> String in
            // Text keys compare byte for byte, as SQLite's BINARY collation does.
            switch column.kind {
            case .integer: return "\(column.name) BIGINT NOT NULL"
            case .optionalInteger: return "\(column.name) BIGINT"
            case .text: return "\(column.name) TEXT COLLATE \"C\" NOT NULL"
            case .optionalText: return "\(column.name) TEXT COLLATE \"C\""
            }
        }
        return "CREATE TABLE \(table.name) (\(columns.joined(separator: ", ")), PRIMARY KEY (\(table.keyList)));\n"
    }

    /// The open items devices download for payment reminders. The ERP exchange is not on this
    /// backend yet (it fills SQLite's `erp_open_items`), so the table is there for the planner
    /// and stays empty until it is.
    static let openItemsSchema = createTable(WorkingSetTables.named("open_items")!)

    // MARK: Master data

    /// Held exclusively by an import, shared by each download's planning.
    static let masterDataLock: Int64 = 7_410_002

    /// As `SQLiteHubStorage.importMasterData`: the extract's working-set tables replace the hub's
    /// in one transaction, after every row was checked against the handhelds' schema; with
    /// `assignTo`, the extract's customers are assigned to that rep. Refused: nothing changes.
    public func importMasterData(from path: String, assignTo rep: String?) throws {
        let extract: Database
        do {
            var options = Database.Options()
            options.readOnly = true
            extract = try Database(path: path, options: options)
            _ = try extract.int64("SELECT count(*) FROM sqlite_schema")
        } catch let error as StoreError {
            throw HubError.invalid("extract \(path) is not an SQLite database (\(error.message)); nothing imported")
        }
        for table in MasterDataSchema.importedTables + [WorkingSetTables.named("reps")!] {
            do { try extract.execute("SELECT \(table.columnList) FROM \(table.name) LIMIT 0") } catch let error as StoreError {
                throw HubError.invalid("extract \(path): table \(table.name) with columns \(table.columnList) expected (\(error.message)); nothing imported")
            }
        }
        let sourceReps: [String: (territory: String?, role: String)]
        do {
            sourceReps = Dictionary(try extract.query("SELECT id, territory_id, role FROM reps") { ($0.text(0), (territory: $0.optionalText(1), role: $0.text(2))) },
                                    uniquingKeysWith: { first, _ in first })
        } catch let error as StoreError { throw HubError.invalid("extract \(path): \(error.message); nothing imported") }
        try guarded {
            if let rep, try self.rep(id: rep) == nil, sourceReps[rep] == nil {
                throw HubError.notFound("rep \(Displayed.text(rep)) (to assign the extract's customers to): neither the hub nor the extract has it; nothing imported")
            }
            // The hub's reps with the territory and role the extract gives them, as the handhelds will hold them.
            let reps: [WorkingSetRow] = try connection.query("SELECT id, name, territory_id, role FROM reps ORDER BY id COLLATE \"C\"") { row in
                let id = row.text(0)
                let source = sourceReps[id]
                let territory = source.map { $0.territory } ?? row.optionalText(2)
                return [.text(id), .text(row.text(1)), territory.map { .text($0) } ?? .null, .text(source?.role ?? row.text(3))]
            }
            let imported = Set(MasterDataSchema.importedTables.map(\.name))
            let rows = try WorkingSetTables.all.map { table -> [WorkingSetRow] in
                table.name == "reps" ? reps : imported.contains(table.name) ? try storeGuarded { try table.rows(in: extract) } : []
            }
            try MasterDataSchema.refuseRowsHandheldsRefuse(extract: path, rows: rows)
            try connection.transaction {
                // One import at a time; sessions planning meanwhile see the old or the new data, whole.
                try connection.execute("SELECT pg_advisory_xact_lock(\(Self.masterDataLock))")
                for (table, tableRows) in zip(WorkingSetTables.all, rows) where imported.contains(table.name) {
                    try connection.execute("DELETE FROM \(table.name)")
                    try insert(tableRows, into: table)
                }
                if let rep {
                    try connection.execute("DELETE FROM rep_customers WHERE rep_id = $1", [.text(rep)])
                    try connection.execute("INSERT INTO rep_customers(rep_id, customer_id) SELECT $1, id FROM customers", [.text(rep)])
                }
                // Reps the hub knows keep their sign-in; their territory and role come from the source.
                let known = sourceReps.sorted { $0.key < $1.key }
                try connection.execute("""
                    UPDATE reps SET territory_id = s.t, role = s.r FROM unnest($1::text[], $2::text[], $3::text[]) AS s(i, t, r) WHERE reps.id = s.i
                    """, [.text(PostgresArray.text(known.map(\.key))), .text(PostgresArray.optionalText(known.map(\.value.territory))),
                          .text(PostgresArray.text(known.map(\.value.role)))])
            }
        }
    }

    // MARK: Office decisions (the rules: OfficeDecisions.swift)

    public func setDocumentState(device: String, entity: String, entityId: String, state: String, approval: String?, now: Int64) throws {
        try guarded {
            try requireDevice(device)
            if entity == "order", OrderState(rawValue: state) == nil {
                throw HubError.invalid("order state \(state) is not one of \(OrderState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            try connection.execute("""
                INSERT INTO document_states(device_id, entity, entity_id, state, approval, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (device_id, entity, entity_id) DO UPDATE SET state = excluded.state, approval = excluded.approval, updated_at = excluded.updated_at
                """, [.text(device), .text(entity), .text(entityId), .text(state), PostgresValue(approval), .integer(now)])
        }
    }

    public func syncErrors(device: String) throws -> [SyncErrorRecord] {
        try guarded {
            try requireDevice(device)
            return try connection.query("SELECT change_id, entity_id, field, device_value, hub_value FROM sync_errors WHERE device_id = $1 ORDER BY at, id COLLATE \"C\"",
                                        [.text(device)]) {
                SyncErrorRecord(changeId: $0.text(0), entityId: $0.text(1), field: $0.text(2), deviceValue: $0.optionalText(3), hubValue: $0.optionalText(4))
            }
        }
    }

    func requireDevice(_ device: String) throws {
        guard try connection.first("SELECT 1 FROM devices WHERE id = $1", [.text(device)], row: { _ in true }) != nil else {
            throw HubError.notFound("device \(Displayed.text(device))")
        }
    }

    /// Rows of a working-set table in one statement: one array parameter per column.
    func insert(_ rows: [WorkingSetRow], into table: WorkingSetTables.Table) throws {
        guard !rows.isEmpty else { return }
        var parameters: [PostgresValue] = []
        var casts: [String] = []
        for (index, column) in table.columns.enumerated() {
            let values = rows.map { $0[index] }
            switch column.kind {
            case .integer, .optionalInteger:
                parameters.append(.text(PostgresArray.optionalIntegers(values.map { if case .integer(let number) = $0 { return number } else { return nil } })))
                casts.append("$\(index + 1)::bigint[]")
            case .text, .optionalText:
                parameters.append(.text(PostgresArray.optionalText(values.map { if case .text(let text) = $0 { return text } else { return nil } })))
                casts.append("$\(index + 1)::text[]")
            }
        }
        try connection.execute("INSERT INTO \(table.name)(\(table.columnList)) SELECT * FROM unnest(\(casts.joined(separator: ", ")))", parameters)
    }

    func storeGuarded<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as StoreError { throw HubError.storage(error.description) }
    }

    /// A working-set table's rows by `condition` (with its own parameters), in key order
    /// (byte order, COLLATE "C"), as `WorkingSetTables.Table.rows(in:)` reads them on SQLite.
    func rows(of table: WorkingSetTables.Table, _ condition: String, _ parameters: [PostgresValue]) throws -> [WorkingSetRow] {
        let kinds = table.columns.map(\.kind)
        let order = table.keyColumns.map { [.text, .optionalText].contains($0.kind) ? "\($0.name) COLLATE \"C\"" : $0.name }.joined(separator: ", ")
        return try connection.query("SELECT \(table.columnList) FROM \(table.name) \(condition) ORDER BY \(order)", parameters) { row in
            kinds.enumerated().map { index, kind -> DatabaseValue in
                if row.isNull(index) { return .null }
                switch kind {
                case .integer, .optionalInteger: return .integer(row.int64(index))
                case .text, .optionalText: return .text(row.text(index))
                }
            }
        }
    }

    // MARK: Scope and downloads

    public func startDownload(device: HubDevice, request: Pull, now: Int64, policy: ScopePolicy) throws -> PlannedDownload {
        try guarded {
            try connection.transaction {
                // One download (and commit) per device at a time, whichever process has the session.
                try connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 15))", [.text(device.id)])
                // A master-data import (which holds this lock exclusively) is seen whole or not at all.
                try connection.execute("SELECT pg_advisory_xact_lock_shared(\(Self.masterDataLock))")
                let previous = try connection.first("SELECT pull_id, rows, committed, continues_pull, continues_applied FROM downloads WHERE device_id = $1",
                                                    [.text(device.id)]) {
                    (pull: $0.text(0), rows: $0.int(1), committed: $0.bool(2), continues: $0.isNull(3) ? nil : $0.text(3),
                     continuesApplied: $0.isNull(4) ? nil : $0.int64(4))
                }
                let reset = try request.startsOver(
                    after: previous,
                    shadowHoldsRows: { try connection.int64("SELECT count(*) FROM device_shadow WHERE device_id = $1", [.text(device.id)]) > 0 },
                    commitPrevious: { try commitPlan(device: device.id, through: $0) })
                if reset { try connection.execute("DELETE FROM device_shadow WHERE device_id = $1", [.text(device.id)]) }
                try connection.execute("DELETE FROM download_plan WHERE device_id = $1", [.text(device.id)])
                let pull = "\(device.id)-\(Hex.encode(Random.bytes(6)))"
                let scope = try scopeRows(device: device, now: now, policy: policy, budgets: request.budgets)
                let plan = try DownloadPlanner.assemble(pull: pull, reset: reset, scope: scope) { table in
                    Dictionary(try connection.query("SELECT key, hash, held FROM device_shadow WHERE device_id = $1 AND tbl = $2",
                                                    [.text(device.id), .integer(Int64(table.id))]) {
                                   ($0.bytes(0), DownloadPlanner.ShadowRow(hash: UInt64(bitPattern: $0.int64(1)), held: $0.isNull(2) ? nil : $0.bytes(2)))
                               },
                               uniquingKeysWith: { first, _ in first })
                }
                if !plan.entries.isEmpty {
                    try connection.execute("""
                        INSERT INTO download_plan(device_id, position, tbl, key, hash, held)
                        SELECT $1, ordinality - 1, t, decode(k, 'hex'), h, CASE WHEN v = '' THEN NULL ELSE decode(v, 'hex') END
                        FROM unnest($2::integer[], $3::text[], $4::bigint[], $5::text[]) WITH ORDINALITY AS p(t, k, h, v, ordinality)
                        """, [.text(device.id), .text(PostgresArray.integers(plan.entries.map { Int64($0.table.id) })),
                              .text(PostgresArray.text(plan.entries.map { Hex.encode($0.key) })),
                              .text(PostgresArray.optionalIntegers(plan.entries.map { $0.phase == .purge ? nil : Int64(bitPattern: $0.hash) })),
                              // "" for none: a held blob is never empty (a table with held columns has at least one value).
                              .text(PostgresArray.text(plan.entries.map { entry in
                                  (entry.phase == .purge ? nil : entry.table.heldValues(of: entry.row)).map { Hex.encode($0) } ?? ""
                              }))])
                }
                return try recordDownload(device: device.id, pull: pull, plan: plan, reset: reset, request: request, now: now)
            }
        }
    }

    /// The rows of the device's scope, one list per table of `WorkingSetTables.all`: the rules of
    /// `DownloadPlanner.computeScope` and `.condition` (read those for the why), in PostgreSQL.
    func scopeRows(device: HubDevice, now: Int64, policy: ScopePolicy, budgets: [UInt8: Int]) throws -> [[WorkingSetRow]] {
        func budget(_ name: String) -> Int64 {
            Int64(budgets[WorkingSetTables.named(name)!.id] ?? policy.defaultBudgets[name] ?? 1_000_000)
        }
        let days = try connection.first("""
            SELECT to_char(d, 'YYYY-MM-DD'), to_char(d + $2::integer, 'YYYY-MM-DD'), to_char(d - $3::integer, 'YYYY-MM-DD')
            FROM (SELECT (to_timestamp($1::bigint / 1000) AT TIME ZONE 'UTC')::date AS d) AS today
            """, [.integer(now), .integer(Int64(policy.routeDays - 1)), .integer(Int64(policy.historyDays))]) { ($0.text(0), $0.text(1), $0.text(2)) }
        guard let (today, lastDay, historyStart) = days else { throw HubError.storage("no date for \(now)") }
        let recentStart = now - Int64(policy.recentDays) * 86_400_000
        let rep = PostgresValue.text(device.rep)
        let area = try connection.query("""
            WITH RECURSIVE area(id) AS (
                SELECT territory_id COLLATE "C" FROM reps WHERE id = $1 AND territory_id IS NOT NULL
                UNION SELECT t.id FROM territories t JOIN area ON t.parent_id = area.id
            ) SELECT id FROM area
            """, [rep]) { $0.text(0) }
        let areaArray = PostgresValue.text(PostgresArray.text(area))
        let supervisor = try connection.first("SELECT 1 FROM reps WHERE id = $1 AND role = 'supervisor'", [rep], row: { _ in true }) ?? false
        let routes = try connection.query("""
            SELECT id FROM routes WHERE day BETWEEN $2 AND $3 AND (rep_id = $1 OR
                ($4::boolean AND rep_id IN (SELECT id FROM reps WHERE territory_id = ANY($5::text[]))))
            """, [rep, .text(today), .text(lastDay), .text(supervisor ? "true" : "false"), areaArray]) { $0.text(0) }
        let routeArray = PostgresValue.text(PostgresArray.text(routes))
        // The customers of the rep's recent documents: their summaries (decoded at ingest), not their JSON.
        let customers = try connection.query("""
            SELECT id FROM (
                SELECT s.customer_id AS id, 0 AS rank, r.day AS day FROM route_stops s JOIN routes r ON r.id = s.route_id
                    WHERE s.route_id = ANY($2::text[])
                UNION ALL
                SELECT m.customer_id COLLATE "C", 1, '' FROM device_changes c JOIN document_summaries m ON m.change_id = c.change_id
                    WHERE c.device_id IN (SELECT id FROM devices WHERE rep_id = $1) AND c.at >= $3 AND m.customer_id IS NOT NULL
                UNION ALL
                SELECT customer_id COLLATE "C", 2, '' FROM rep_customers WHERE rep_id = $1
                UNION ALL
                SELECT c.id, 3, '' FROM customers c WHERE c.territory_id = ANY($4::text[])
            ) AS ranked WHERE id IN (SELECT id FROM customers)
            GROUP BY id ORDER BY min(rank), min(day), id LIMIT $5
            """, [rep, routeArray, .integer(recentStart), areaArray, .integer(budget("customers"))]) { $0.text(0) }
        let customerArray = PostgresValue.text(PostgresArray.text(customers))
        let products = try connection.query("""
            SELECT part_number FROM (
                SELECT m.part_number, 0 AS rank FROM display_type_materials m
                UNION ALL
                SELECT l.part_number, 1 FROM history_lines l WHERE l.customer_id = ANY($2::text[])
                UNION ALL
                SELECT p.part_number, 2 FROM products p JOIN reps r ON r.id = $1 WHERE r.channel IS NULL OR p.channel = r.channel
            ) AS ranked WHERE part_number IN (SELECT part_number FROM products)
            GROUP BY part_number ORDER BY min(rank), part_number LIMIT $3
            """, [rep, customerArray, .integer(budget("products"))]) { $0.text(0) }
        let productArray = PostgresValue.text(PostgresArray.text(products))
        let deviceID = PostgresValue.text(device.id)
        return try WorkingSetTables.all.map { table -> [WorkingSetRow] in
            let (condition, parameters): (String, [PostgresValue]) = switch table.name {
            case "territories": ("", [])
            case "reps": ("WHERE id = $1 OR ($2::boolean AND territory_id = ANY($3::text[]))", [rep, .text(supervisor ? "true" : "false"), areaArray])
            case "products", "product_units", "prices", "display_type_materials": ("WHERE part_number = ANY($1::text[])", [productArray])
            case "stock": ("WHERE part_number = ANY($1::text[]) AND location IN ('warehouse', 'van:' || $2::text, 'van:' || $3::text)", [productArray, deviceID, rep])
            case "customers": ("WHERE id = ANY($1::text[])", [customerArray])
            case "customer_price_levels", "equipment", "open_items": ("WHERE customer_id = ANY($1::text[])", [customerArray])
            // Every role's limits: the rep's say what needs approval, the others by whom.
            case "approval_limits": ("", [])
            case "display_types": ("", [])
            case "routes": ("WHERE id = ANY($1::text[])", [routeArray])
            case "route_stops": ("WHERE route_id = ANY($1::text[]) AND customer_id = ANY($2::text[])", [routeArray, customerArray])
            case "history_orders": ("WHERE customer_id = ANY($1::text[]) AND day >= $2", [customerArray, .text(historyStart)])
            case "history_lines":
                ("WHERE ref IN (SELECT ref FROM history_orders WHERE customer_id = ANY($1::text[]) AND day >= $2)", [customerArray, .text(historyStart)])
            case "document_states": ("WHERE device_id = $1 AND updated_at >= $2", [deviceID, .integer(recentStart)])
            case "sync_errors": ("WHERE device_id = $1 AND at >= $2", [deviceID, .integer(recentStart)])
            default: ("WHERE FALSE", [])
            }
            return try rows(of: table, condition, parameters)
        }
    }

    public func acknowledgeDownload(device: String, ack: DownloadAck) throws {
        try guarded {
            try connection.transaction {
                try connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 15))", [.text(device)])
                guard let rows = try connection.first("SELECT rows FROM downloads WHERE device_id = $1 AND pull_id = $2 AND NOT committed",
                                                      [.text(device), .text(ack.pull)], row: { $0.int(0) }) else { return }
                try commitPlan(device: device, through: min(ack.applied, rows))
                if ack.applied >= rows { try connection.execute("UPDATE downloads SET committed = TRUE WHERE device_id = $1", [.text(device)]) }
            }
        }
    }

    /// Moves the first `applied` plan rows into the shadow (inside the caller's transaction).
    func commitPlan(device: String, through applied: Int) throws {
        let parameters: [PostgresValue] = [.text(device), .integer(Int64(applied))]
        try connection.execute("""
            DELETE FROM device_shadow AS s USING download_plan AS p
            WHERE s.device_id = $1 AND p.device_id = $1 AND p.position < $2 AND p.hash IS NULL AND s.tbl = p.tbl AND s.key = p.key
            """, parameters)
        try connection.execute("""
            INSERT INTO device_shadow(device_id, tbl, key, hash, held)
            SELECT device_id, tbl, key, hash, held FROM download_plan WHERE device_id = $1 AND position < $2 AND hash IS NOT NULL
            ON CONFLICT (device_id, tbl, key) DO UPDATE SET hash = excluded.hash, held = excluded.held
            """, parameters)
        try connection.execute("DELETE FROM download_plan WHERE device_id = $1 AND position < $2", parameters)
    }
}
