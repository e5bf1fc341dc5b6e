/// What the hub keeps for the ERP exchange beyond the working-set tables.
enum ERPExchangeSchema {
    static let v4 = """
        -- The currencies the ERP prices in (a price in another is refused at import).
        CREATE TABLE erp_currencies (code TEXT PRIMARY KEY, minor_units INTEGER NOT NULL) WITHOUT ROWID;
        -- Open items (unpaid invoices) with due dates. The hub keeps them; carrying them to the
        -- handheld (payment reminders) needs a device table, a later issue.
        CREATE TABLE erp_open_items (
            customer_id TEXT NOT NULL, ref TEXT NOT NULL, issued_on TEXT, due_on TEXT NOT NULL,
            amount_minor INTEGER NOT NULL, currency TEXT NOT NULL, PRIMARY KEY (customer_id, ref)
        ) WITHOUT ROWID;
        -- Exports to the ERP: each covers device_changes rows (rowid) after the previous
        -- acknowledged one, up to its cursor. Only an acknowledgement moves `acknowledged`.
        CREATE TABLE erp_exports (
            cursor INTEGER PRIMARY KEY, after INTEGER NOT NULL, documents INTEGER NOT NULL, written_at INTEGER NOT NULL
        );
        CREATE TABLE erp_export_state (
            singleton INTEGER PRIMARY KEY CHECK (singleton = 1), acknowledged INTEGER NOT NULL
        );
        INSERT INTO erp_export_state(singleton, acknowledged) VALUES (1, 0);
        """
}
