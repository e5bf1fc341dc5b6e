public import Store

/// The device database schema, as migrations applied in order by `user_version`.
/// Released migrations are never edited: a change is a new migration appended to the list.
///
/// Conventions: money is INTEGER minor units (grosz, stotinka, kopek) with an ISO currency
/// code beside it; instants are INTEGER Unix milliseconds (`*_at`); calendar days are TEXT
/// `YYYY-MM-DD` (`*_on`, `day`); everything a device creates has a client-generated id
/// `<device>-<sequence>`, so a retried upload can never create a duplicate.
public enum FieldSchema {
    /// `PRAGMA application_id` of a Satchel device database ("SaTc"): a SQLite file without it
    /// is refused as foreign instead of being written into.
    public static let applicationID: Int32 = 0x5361_5463

    public static let migrations: [Migration] = [
        Migration("working set, documents, change history", v1),
        Migration("downloads: office decisions, sync errors, rows kept for documents", v2),
        Migration("payment voids, receipt numbers looked up", v3),
        Migration("van sellers: a role of their own", v4),
        Migration("id space epochs: every restore moves the device\'s ids on", v5),
        Migration("approval limits per role: the device says before saving who must approve", v6),
        Migration("open items with due dates: payment reminders", v7),
        Migration("working-set checksums kept as downloads write, stale when anything else writes", v8),
        Migration("reserved stock follows the open reservations: a stock row the hub sends later takes them on", v9),
    ]

    static let v1 = """
    CREATE TABLE device (
        id          TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 32),
        rep_id      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        next_seq    INTEGER NOT NULL DEFAULT 1 CHECK (next_seq > 0),
        singleton   INTEGER PRIMARY KEY CHECK (singleton = 1) DEFAULT 1
    );

    -- Working set: master data the hub sends. The device never edits these rows.
    CREATE TABLE territories (
        id TEXT PRIMARY KEY, name TEXT NOT NULL,
        parent_id TEXT REFERENCES territories(id)
    );
    CREATE TABLE reps (
        id TEXT PRIMARY KEY, name TEXT NOT NULL,
        territory_id TEXT REFERENCES territories(id),
        role TEXT NOT NULL DEFAULT 'rep' CHECK (role IN ('rep','merchandiser','technician','supervisor'))
    );
    CREATE TABLE customers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        name_folded TEXT NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        territory_id TEXT REFERENCES territories(id),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        credit_limit_minor INTEGER NOT NULL DEFAULT 0 CHECK (credit_limit_minor >= 0),
        balance_minor INTEGER NOT NULL DEFAULT 0,
        overdue_minor INTEGER NOT NULL DEFAULT 0 CHECK (overdue_minor >= 0),
        overdue_days INTEGER NOT NULL DEFAULT 0 CHECK (overdue_days >= 0),
        balance_as_of INTEGER NOT NULL DEFAULT 0,
        discipline TEXT NOT NULL DEFAULT 'strict' CHECK (discipline IN ('strict','hesitant','disloyal')),
        default_level TEXT NOT NULL DEFAULT 'customer',
        talking_points TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX customers_by_folded_name ON customers(name_folded);
    CREATE TABLE customer_price_levels (
        customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
        level TEXT NOT NULL CHECK (level IN ('customer','dealer','promo')),
        PRIMARY KEY (customer_id, level)
    ) WITHOUT ROWID;
    CREATE TABLE products (
        part_number TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        name_folded TEXT NOT NULL,
        base_unit TEXT NOT NULL DEFAULT 'pcs',
        channel TEXT NOT NULL DEFAULT 'retail'
    );
    CREATE INDEX products_by_folded_name ON products(name_folded);
    CREATE TABLE product_units (
        part_number TEXT NOT NULL REFERENCES products(part_number) ON DELETE CASCADE,
        unit TEXT NOT NULL,
        factor INTEGER NOT NULL CHECK (factor > 0),
        PRIMARY KEY (part_number, unit)
    ) WITHOUT ROWID;
    CREATE TABLE prices (
        part_number TEXT NOT NULL REFERENCES products(part_number) ON DELETE CASCADE,
        level TEXT NOT NULL CHECK (level IN ('customer','dealer','promo')),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
        valid_until TEXT,
        PRIMARY KEY (part_number, level, currency)
    ) WITHOUT ROWID;
    CREATE TABLE stock (
        location TEXT NOT NULL,
        part_number TEXT NOT NULL REFERENCES products(part_number) ON DELETE CASCADE,
        quantity INTEGER NOT NULL,
        reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
        PRIMARY KEY (location, part_number)
    ) WITHOUT ROWID;
    CREATE TABLE routes (
        id TEXT PRIMARY KEY, rep_id TEXT NOT NULL, day TEXT NOT NULL
    );
    CREATE INDEX routes_by_day ON routes(day);
    CREATE TABLE route_stops (
        route_id TEXT NOT NULL REFERENCES routes(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        PRIMARY KEY (route_id, position)
    ) WITHOUT ROWID;
    -- Order history from the ERP (for the credit check and talking points), not documents of ours.
    CREATE TABLE history_orders (
        ref TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
        day TEXT NOT NULL,
        total_minor INTEGER NOT NULL,
        currency TEXT NOT NULL,
        paid_late INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX history_orders_by_customer ON history_orders(customer_id, day);
    CREATE TABLE history_lines (
        ref TEXT NOT NULL REFERENCES history_orders(ref) ON DELETE CASCADE,
        line_no INTEGER NOT NULL,
        customer_id TEXT NOT NULL,
        part_number TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        amount_minor INTEGER NOT NULL,
        PRIMARY KEY (ref, line_no)
    ) WITHOUT ROWID;
    CREATE INDEX history_lines_by_customer ON history_lines(customer_id, part_number);
    CREATE TABLE display_types (
        code TEXT PRIMARY KEY, name TEXT NOT NULL
    );
    -- What one display of a type needs: fixed pieces plus pieces per square metre of front
    -- (thousandths, so 2.5 boards per m2 is 2500).
    CREATE TABLE display_type_materials (
        type_code TEXT NOT NULL REFERENCES display_types(code) ON DELETE CASCADE,
        part_number TEXT NOT NULL REFERENCES products(part_number),
        fixed_quantity INTEGER NOT NULL DEFAULT 0 CHECK (fixed_quantity >= 0),
        per_square_metre_milli INTEGER NOT NULL DEFAULT 0 CHECK (per_square_metre_milli >= 0),
        PRIMARY KEY (type_code, part_number)
    ) WITHOUT ROWID;
    CREATE TABLE equipment (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        kind TEXT NOT NULL, serial TEXT NOT NULL, placed_on TEXT NOT NULL
    );

    -- Documents: created on the device, ids are <device>-<sequence>.
    CREATE TABLE orders (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        state TEXT NOT NULL DEFAULT 'draft' CHECK (state IN
            ('draft','confirmed','sent','accepted','rejected','invoice_requested','settled')),
        approval TEXT NOT NULL DEFAULT 'none' CHECK (approval IN ('none','pending','approved','rejected')),
        hold_reason TEXT,
        price_level TEXT NOT NULL,
        currency TEXT NOT NULL,
        total_minor INTEGER NOT NULL DEFAULT 0,
        note TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        confirmed_at INTEGER
    );
    CREATE INDEX orders_by_customer ON orders(customer_id);
    CREATE INDEX orders_by_state ON orders(state);
    CREATE TABLE order_lines (
        order_id TEXT NOT NULL REFERENCES orders(id),
        line_no INTEGER NOT NULL CHECK (line_no > 0),
        part_number TEXT NOT NULL REFERENCES products(part_number),
        unit TEXT NOT NULL,
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        base_quantity INTEGER NOT NULL CHECK (base_quantity > 0),
        unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
        amount_minor INTEGER NOT NULL,
        PRIMARY KEY (order_id, line_no)
    ) WITHOUT ROWID;
    -- Lines of a confirmed order are part of a promise to the customer: no edits.
    CREATE TRIGGER order_lines_frozen_insert BEFORE INSERT ON order_lines
    WHEN (SELECT state FROM orders WHERE id = NEW.order_id) <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'order is no longer a draft: its lines cannot change'); END;
    CREATE TRIGGER order_lines_frozen_update BEFORE UPDATE ON order_lines
    BEGIN SELECT RAISE(ABORT, 'order lines cannot be edited; add a new line while the order is a draft'); END;
    CREATE TRIGGER order_lines_frozen_delete BEFORE DELETE ON order_lines
    WHEN (SELECT state FROM orders WHERE id = OLD.order_id) <> 'draft'
    BEGIN SELECT RAISE(ABORT, 'order is no longer a draft: its lines cannot change'); END;

    CREATE TABLE visits (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        at INTEGER NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('order','no_order','closed','not_met','merchandising','service')),
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX visits_by_customer ON visits(customer_id, at);
    CREATE TABLE payments (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        method TEXT NOT NULL CHECK (method IN ('cash','card','transfer','cheque')),
        receipt TEXT NOT NULL DEFAULT '',
        collected_at INTEGER NOT NULL
    );
    CREATE INDEX payments_by_customer ON payments(customer_id, collected_at);
    CREATE TABLE display_requests (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        type_code TEXT NOT NULL REFERENCES display_types(code),
        width_cm INTEGER NOT NULL CHECK (width_cm BETWEEN 1 AND 10000),
        height_cm INTEGER NOT NULL CHECK (height_cm BETWEEN 1 AND 10000),
        depth_cm INTEGER CHECK (depth_cm BETWEEN 1 AND 10000),
        note TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'requested' CHECK (state IN ('requested','accepted','built','rejected')),
        at INTEGER NOT NULL
    );
    CREATE TABLE display_reservations (
        request_id TEXT NOT NULL REFERENCES display_requests(id),
        part_number TEXT NOT NULL REFERENCES products(part_number),
        location TEXT NOT NULL,
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        short_quantity INTEGER NOT NULL DEFAULT 0 CHECK (short_quantity >= 0),
        PRIMARY KEY (request_id, part_number)
    ) WITHOUT ROWID;
    CREATE TABLE complaints (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        order_ref TEXT,
        part_number TEXT REFERENCES products(part_number),
        category TEXT NOT NULL CHECK (category IN ('quality','damaged','missing','wrong_item','delivery','invoice','other')),
        description TEXT NOT NULL CHECK (length(description) > 0),
        state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open','in_progress','resolved','rejected')),
        at INTEGER NOT NULL
    );
    CREATE TABLE quotes (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        currency TEXT NOT NULL,
        discount_basis_points INTEGER NOT NULL DEFAULT 0 CHECK (discount_basis_points BETWEEN 0 AND 10000),
        total_minor INTEGER NOT NULL,
        approval TEXT NOT NULL CHECK (approval IN ('none','pending','approved','rejected')),
        hold_reason TEXT,
        at INTEGER NOT NULL
    );
    CREATE TABLE quote_lines (
        quote_id TEXT NOT NULL REFERENCES quotes(id),
        line_no INTEGER NOT NULL,
        part_number TEXT NOT NULL REFERENCES products(part_number),
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        unit_price_minor INTEGER NOT NULL,
        amount_minor INTEGER NOT NULL,
        PRIMARY KEY (quote_id, line_no)
    ) WITHOUT ROWID;
    CREATE TABLE maintenance (
        id TEXT PRIMARY KEY,
        equipment_id TEXT NOT NULL REFERENCES equipment(id),
        at INTEGER NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('inspection','cleaning','repair','replacement','removal')),
        note TEXT NOT NULL DEFAULT ''
    );

    -- The change journal: one row per acknowledged change, committed in the same transaction
    -- as the change itself. It is both the outbox sync uploads from and the history that
    -- cannot be edited: the triggers below refuse UPDATE and DELETE.
    CREATE TABLE changes (
        seq INTEGER PRIMARY KEY,
        change_id TEXT NOT NULL UNIQUE,
        at INTEGER NOT NULL,
        entity TEXT NOT NULL,
        entity_id TEXT NOT NULL,
        action TEXT NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX changes_by_entity ON changes(entity, entity_id);
    CREATE TRIGGER changes_append_only_update BEFORE UPDATE ON changes
    BEGIN SELECT RAISE(ABORT, 'change history is append-only: rows cannot be edited'); END;
    CREATE TRIGGER changes_append_only_delete BEFORE DELETE ON changes
    BEGIN SELECT RAISE(ABORT, 'change history is append-only: rows cannot be deleted'); END;

    -- How far the hub has acknowledged the change journal (sync moves this forward).
    CREATE TABLE sync_state (
        key TEXT PRIMARY KEY, value TEXT NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO sync_state(key, value) VALUES ('uploaded_through_seq', '0');
    """
}

extension FieldSchema {
    static let v2 = """
    -- The office's word on the device's own documents (accepted, rejected, approved). The hub
    -- owns these fields: what arrives here is written through to the document.
    CREATE TABLE document_states (
        entity TEXT NOT NULL, entity_id TEXT NOT NULL, state TEXT NOT NULL, approval TEXT,
        updated_at INTEGER NOT NULL, PRIMARY KEY (entity, entity_id)
    ) WITHOUT ROWID;
    CREATE TRIGGER document_states_insert AFTER INSERT ON document_states BEGIN
        UPDATE orders SET state = NEW.state, approval = coalesce(NEW.approval, approval) WHERE NEW.entity = 'order' AND id = NEW.entity_id;
        UPDATE quotes SET approval = coalesce(NEW.approval, approval) WHERE NEW.entity = 'quote' AND id = NEW.entity_id;
        UPDATE complaints SET state = NEW.state WHERE NEW.entity = 'complaint' AND id = NEW.entity_id;
        UPDATE display_requests SET state = NEW.state WHERE NEW.entity = 'display_request' AND id = NEW.entity_id;
    END;
    CREATE TRIGGER document_states_update AFTER UPDATE ON document_states BEGIN
        UPDATE orders SET state = NEW.state, approval = coalesce(NEW.approval, approval) WHERE NEW.entity = 'order' AND id = NEW.entity_id;
        UPDATE quotes SET approval = coalesce(NEW.approval, approval) WHERE NEW.entity = 'quote' AND id = NEW.entity_id;
        UPDATE complaints SET state = NEW.state WHERE NEW.entity = 'complaint' AND id = NEW.entity_id;
        UPDATE display_requests SET state = NEW.state WHERE NEW.entity = 'display_request' AND id = NEW.entity_id;
    END;

    -- Changes of this device the hub could not take as they were; the losing value is kept
    -- here for the rep to see (satchel sync-errors). Nothing is dropped silently.
    CREATE TABLE sync_errors (
        id TEXT PRIMARY KEY, change_id TEXT NOT NULL, entity TEXT NOT NULL, entity_id TEXT NOT NULL,
        field TEXT NOT NULL, device_value TEXT, hub_value TEXT, reason TEXT NOT NULL, at INTEGER NOT NULL
    );

    -- The history is append-only until the hub holds it: a change the hub has acknowledged
    -- (and the card journal and snapshots hold) may be compacted away after the retention
    -- period, so the database stays bounded. The newest change always stays.
    DROP TRIGGER changes_append_only_delete;
    CREATE TRIGGER changes_append_only_delete BEFORE DELETE ON changes
    WHEN OLD.seq > (SELECT CAST(value AS INTEGER) FROM sync_state WHERE key = 'uploaded_through_seq')
      OR OLD.seq = (SELECT max(seq) FROM changes)
    BEGIN SELECT RAISE(ABORT, 'change history is append-only until the hub holds it: this change has not been uploaded'); END;

    -- Working-set rows the hub no longer sends but a document here still points at: kept,
    -- and left out of the download checksums and the catalogue positions.
    CREATE TABLE working_set_retained (
        tbl INTEGER NOT NULL, key BLOB NOT NULL, PRIMARY KEY (tbl, key)
    ) WITHOUT ROWID;
    """
}

extension FieldSchema {
    static let v3 = """
    -- A payment recorded by mistake is voided by a document of its own: the payment stays as it
    -- was collected (the paper receipt exists), the void says why, and what the customer paid is
    -- the payments less the voids. One void per payment.
    CREATE TABLE payment_voids (
        id TEXT PRIMARY KEY,
        payment_id TEXT NOT NULL UNIQUE REFERENCES payments(id),
        customer_id TEXT NOT NULL REFERENCES customers(id),
        amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
        currency TEXT NOT NULL CHECK (length(currency) = 3),
        reason TEXT NOT NULL CHECK (length(reason) > 0),
        at INTEGER NOT NULL
    );
    CREATE INDEX payment_voids_by_customer ON payment_voids(customer_id, at);
    -- A receipt number is used once on a device (the rep's receipt book); looked up on capture.
    -- Not UNIQUE: a database from before this check may hold a repeated number already.
    CREATE INDEX payments_by_receipt ON payments(receipt COLLATE NOCASE) WHERE receipt <> '';
    """
}

extension FieldSchema {
    /// The role list in `reps`' CHECK gains `van_seller` (the handheld's workplace, Agent's
    /// `Workplace`). SQLite cannot change a CHECK in place: the table is rebuilt, rows kept;
    /// nothing references `reps` by foreign key.
    static let v4 = """
    CREATE TABLE reps_v4 (
        id TEXT PRIMARY KEY, name TEXT NOT NULL,
        territory_id TEXT REFERENCES territories(id),
        role TEXT NOT NULL DEFAULT 'rep' CHECK (role IN ('rep','merchandiser','technician','supervisor','van_seller'))
    );
    INSERT INTO reps_v4 (id, name, territory_id, role) SELECT id, name, territory_id, role FROM reps;
    DROP TABLE reps;
    ALTER TABLE reps_v4 RENAME TO reps;
    """
}

extension FieldSchema {
    /// The epoch of the device's id space (`ClientID`): 1 for every database made before it
    /// existed, so their ids keep their form; a restore moves it on before any id is issued.
    static let v5 = """
    ALTER TABLE device ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1 CHECK (epoch > 0);
    """

    /// The office's approval limits (hub `approvals limit set`), every role's, so the device can
    /// name who a held document goes to. A role or currency without a row has the defaults of
    /// `ApprovalRule`.
    static let v6 = """
    CREATE TABLE approval_limits (
        role                       TEXT NOT NULL CHECK (role IN ('rep','supervisor','sales_manager')),
        currency                   TEXT NOT NULL CHECK (length(currency) = 3),
        max_discount_basis_points  INTEGER NOT NULL CHECK (max_discount_basis_points BETWEEN 0 AND 10000),
        max_total_minor            INTEGER CHECK (max_total_minor IS NULL OR max_total_minor >= 0),
        PRIMARY KEY (role, currency)
    ) WITHOUT ROWID;
    """

    /// The customers' open items (unpaid invoices) from the ERP, for payment reminders: read only
    /// on the device, replaced by each download.
    static let v7 = """
    CREATE TABLE open_items (
        customer_id   TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
        ref           TEXT NOT NULL CHECK (length(ref) BETWEEN 1 AND 64),
        issued_on     TEXT CHECK (issued_on IS NULL OR issued_on GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
        due_on        TEXT NOT NULL CHECK (due_on GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
        amount_minor  INTEGER NOT NULL,
        currency      TEXT NOT NULL CHECK (length(currency) = 3),
        PRIMARY KEY (customer_id, ref)
    ) WITHOUT ROWID;
    """

    /// Each working-set table's checksum kept as the device writes (the download's accounting,
    /// `Agent.DeviceDownload`), so a download is verified against the hub's DONE without reading
    /// every table again. A row written by anything else (a reservation adding a stock row, the
    /// seeder, a replay) marks its table stale through these triggers, and the next download's
    /// check recomputes that table whole. While the download writes, `working_set_checksum_writer`
    /// says so (within the same transaction) and the triggers stay quiet.
    static let v8 = """
    CREATE TABLE working_set_checksums (
        tbl    INTEGER PRIMARY KEY,
        rows   INTEGER NOT NULL,
        sum    INTEGER NOT NULL,
        stale  INTEGER NOT NULL CHECK (stale IN (0, 1))
    );
    CREATE TABLE working_set_checksum_writer (
        id        INTEGER PRIMARY KEY CHECK (id = 1),
        applying  INTEGER NOT NULL CHECK (applying IN (0, 1))
    );
    INSERT INTO working_set_checksum_writer(id, applying) VALUES (1, 0);

    """ + checksumTriggers(v8ChecksummedTables)

    /// v8's working-set tables, in `tbl` order from 1, and the columns whose update marks each
    /// stale. As the migration made them: a later change to a table leaves this list alone.
    static let v8ChecksummedTables: [(table: String, columns: String)] = [
        ("territories", "id, name, parent_id"),
        ("reps", "id, name, territory_id, role"),
        ("products", "part_number, name, base_unit, channel"),
        ("product_units", "part_number, unit, factor"),
        ("customers", "id, name, address, territory_id, currency, credit_limit_minor, balance_minor, overdue_minor, overdue_days, balance_as_of, discipline, default_level, talking_points"),
        ("customer_price_levels", "customer_id, level"),
        ("prices", "part_number, level, currency, price_minor, valid_until"),
        ("stock", "location, part_number, quantity"),
        ("display_types", "code, name"),
        ("display_type_materials", "type_code, part_number, fixed_quantity, per_square_metre_milli"),
        ("routes", "id, rep_id, day"),
        ("route_stops", "route_id, position, customer_id"),
        ("history_orders", "ref, customer_id, day, total_minor, currency, paid_late"),
        ("history_lines", "ref, line_no, customer_id, part_number, quantity, amount_minor"),
        ("equipment", "id, customer_id, kind, serial, placed_on"),
        ("document_states", "entity, entity_id, state, approval, updated_at"),
        ("sync_errors", "id, change_id, entity, entity_id, field, device_value, hub_value, reason, at"),
        ("approval_limits", "role, currency, max_discount_basis_points, max_total_minor"),
        ("open_items", "customer_id, ref, issued_on, due_on, amount_minor, currency"),
    ]

    /// The triggers that mark a table's checksum stale when anything but the download writes it
    /// (insert, delete, or an update of `columns`); `tbl` is the table's position from 1.
    static func checksumTriggers(_ tables: [(table: String, columns: String)]) -> String {
        tables.enumerated().map { index, entry in
            let stale = "BEGIN INSERT INTO working_set_checksums(tbl, rows, sum, stale) VALUES (\(index + 1), 0, 0, 1) ON CONFLICT(tbl) DO UPDATE SET stale = 1; END;"
            return ["INSERT", "DELETE", "UPDATE OF \(entry.columns)"].map { event in
                let name = event.prefix { $0 != " " }.lowercased()
                return "CREATE TRIGGER \(entry.table)_checksum_\(name) AFTER \(event) ON \(entry.table) WHEN (SELECT applying FROM working_set_checksum_writer) = 0\n\(stale)"
            }.joined(separator: "\n")
        }.joined(separator: "\n")
    }
}

extension FieldSchema {
    /// `stock.reserved` is what this device's open display requests hold at that location: the
    /// reservations themselves are in `display_reservations`. A reservation used to insert a
    /// stock row of its own when the hub had sent none for that part and location; the hub does
    /// not have that row, so every download's check disagreed and the working set was loaded
    /// again each evening (the stock table reset, its reservations forgotten with it). Now a
    /// reservation only raises `reserved` on a row the hub sent, and a stock row that arrives
    /// later (the warehouse restocked, or a reset loading every row again) takes on the open
    /// reservations at once through this trigger. A stock row made by a reservation before this
    /// version is found by the next download's check and goes with that one reset.
    static let v9 = """
    CREATE INDEX display_reservations_by_stock ON display_reservations(location, part_number);
    CREATE TRIGGER stock_takes_open_reservations AFTER INSERT ON stock
    BEGIN
        UPDATE stock SET reserved = (SELECT COALESCE(SUM(r.quantity), 0) FROM display_reservations r
                                     WHERE r.location = NEW.location AND r.part_number = NEW.part_number)
        WHERE location = NEW.location AND part_number = NEW.part_number;
    END;
    """
}
