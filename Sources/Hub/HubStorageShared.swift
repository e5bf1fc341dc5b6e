public import Field
public import Seal
public import Sync

/// The parts of `HubStorage` that read and write alike on SQLite and PostgreSQL, written once
/// over HubSQL.swift: the hub's key, reps' sign-in, devices by key, what the hub holds of a
/// device, the audit log, the office's state winning over a device's, a rep's scope and the
/// copy a duplicate device gets. Both backends refuse and answer the same things alike.
extension HubSQL {
    /// Makes the hub's key on a new database (its errors are the backend's own: the opening
    /// reports them). Two processes starting on one at once: one key wins, both use it.
    func createHubKeyIfNone() throws {
        guard try number("SELECT count(*) FROM hub_key", []) == 0 else { return }
        let key = X25519.KeyPair.generate()
        try run("INSERT INTO hub_key(singleton, secret, public) VALUES (1, ?, ?) ON CONFLICT DO NOTHING",
                [.bytes(key.secretKey.withUnsafeBytes { Array($0) }), .bytes(key.publicKey)])
    }

    public func hubKey() throws -> X25519.KeyPair {
        try storageErrors {
            guard let secret = try firstRow("SELECT secret FROM hub_key", row: { $0.bytes(0) }) else { throw HubError.notFound("hub key") }
            return try X25519.KeyPair(secretKey: SecretBytes(secret))
        }
    }

    public func setPassword(rep: String, passwordHash: String) throws {
        let changed = try runWrite("UPDATE reps SET password_hash = ?, failed_attempts = 0, locked_until = NULL WHERE id = ?",
                                   [.text(passwordHash), .text(rep)])
        guard changed == 1 else { throw HubError.notFound("rep \(rep)") }
    }

    public func addDevice(id: String, rep: String, publicKey: [UInt8], now: Int64, replaces: String? = nil) throws {
        guard publicKey.count == 32 else { throw HubError.invalid("a device key is 32 bytes (64 hex digits), got \(publicKey.count)") }
        try storageErrors {
            guard try self.rep(id: rep) != nil else { throw HubError.notFound("rep \(rep) (add it first: satchel-hub rep add)") }
            try inWriteTransaction {
                try lockDeviceRegistrations()
                if let existing = try firstRow("SELECT rep_id, revoked, public_key FROM devices WHERE id = ?", [.text(id)],
                                               row: { (rep: $0.text(0), revoked: $0.flag(1), key: Hex.encode($0.bytes(2))) }) {
                    throw HubError.invalid("""
                        device \(id) is registered already (rep \(existing.rep)\(existing.revoked ? ", revoked" : ""), key \(existing.key.prefix(16))…); nothing was changed. \
                        A handheld restored from its card keeps its key (satchel keys shows it); a new handheld gets a new id: \
                        satchel-hub device add --device NEW --rep \(existing.rep) --key KEY --replaces \(id)
                        """)
                }
                if let owner = try firstRow("SELECT id FROM devices WHERE public_key = ?", [.bytes(publicKey)], row: { $0.text(0) }) {
                    throw HubError.invalid("this key is registered already, for device \(owner); nothing was changed. Each handheld has its own key (satchel keys on it)")
                }
                if let replaces {
                    guard replaces != id else { throw HubError.invalid("a device cannot replace itself") }
                    guard try run("UPDATE devices SET revoked = TRUE WHERE id = ?", [.text(replaces)]) == 1 else {
                        throw HubError.notFound("device \(replaces) (the one to replace)")
                    }
                }
                try run("INSERT INTO devices(id, rep_id, public_key, added_at, replaces) VALUES (?, ?, ?, ?, ?)",
                        [.text(id), .text(rep), .bytes(publicKey), .integer(now), HubSQLValue(replaces)])
            }
        }
    }

    public func revokeDevice(id: String) throws {
        guard try runWrite("UPDATE devices SET revoked = TRUE WHERE id = ?", [.text(id)]) == 1 else { throw HubError.notFound("device \(id)") }
    }

    public func device(publicKey: [UInt8]) throws -> HubDevice? {
        try storageErrors {
            try firstRow("SELECT id, rep_id, revoked, replaces FROM devices WHERE public_key = ?", [.bytes(publicKey)]) {
                HubDevice(id: $0.text(0), rep: $0.text(1), revoked: $0.flag(2), replaces: $0.optionalText(3))
            }
        }
    }

    public func rep(id: String) throws -> HubRep? {
        try storageErrors {
            try firstRow("SELECT id, name, password_hash, failed_attempts, locked_until FROM reps WHERE id = ?", [.text(id)]) {
                HubRep(id: $0.text(0), name: $0.text(1), passwordHash: $0.text(2), failedAttempts: $0.int(3), lockedUntil: $0.optionalInt64(4))
            }
        }
    }

    public func recordFailedLogin(rep: String, lockUntil: Int64?) throws {
        try runWrite("UPDATE reps SET failed_attempts = failed_attempts + 1, locked_until = COALESCE(?, locked_until) WHERE id = ?",
                     [HubSQLValue(lockUntil), .text(rep)])
    }

    public func resetFailedLogins(rep: String) throws {
        try runWrite("UPDATE reps SET failed_attempts = 0, locked_until = NULL WHERE id = ?", [.text(rep)])
    }

    public func holding(device: String, epoch: Int64) throws -> HubHolding {
        try storageErrors {
            let highest = try number("SELECT COALESCE(max(epoch), 1) FROM device_changes WHERE device_id = ?", [.text(device)])
            let sequence = try number("SELECT COALESCE(max(seq), 0) FROM device_changes WHERE device_id = ? AND epoch = ?",
                                      [.text(device), .integer(epoch)])
            return HubHolding(highestEpoch: highest, sequenceInEpoch: sequence)
        }
    }

    public func audit(_ entry: AuditEntry) throws {
        try runWrite("""
            INSERT INTO audit(device_id, rep_id, mode, started_at, ended_at, bytes_up, bytes_down, records_up, records_down, result, error)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [HubSQLValue(entry.device), HubSQLValue(entry.rep), HubSQLValue(entry.mode), .integer(entry.startedAt), .integer(entry.endedAt),
                  .integer(Int64(entry.bytesUp)), .integer(Int64(entry.bytesDown)), .integer(Int64(entry.recordsUp)), .integer(Int64(entry.recordsDown)),
                  .text(entry.result), HubSQLValue(entry.error)])
    }

    public func auditLog(limit: Int) throws -> [AuditEntry] {
        try storageErrors {
            try rows("""
                SELECT device_id, rep_id, mode, started_at, ended_at, bytes_up, bytes_down, records_up, records_down, result, error
                FROM audit ORDER BY id DESC LIMIT ?
                """, [.integer(Int64(limit))]) {
                AuditEntry(device: $0.optionalText(0), rep: $0.optionalText(1), mode: $0.optionalText(2), startedAt: $0.int64(3), endedAt: $0.int64(4),
                           bytesUp: $0.int(5), bytesDown: $0.int(6), recordsUp: $0.int(7), recordsDown: $0.int(8), result: $0.text(9), error: $0.optionalText(10))
            }
        }
    }

    public func changeCount(device: String?) throws -> Int64 {
        try storageErrors {
            try number("SELECT count(*) FROM device_changes WHERE CAST(? AS TEXT) IS NULL OR device_id = ?", [HubSQLValue(device), HubSQLValue(device)])
        }
    }

    /// The office's state of a document wins over a device's move it does not allow
    /// (OfficeDecisions.swift says the rules); the device's value goes into sync_errors. Runs in
    /// the caller's transaction (the batch's commit).
    func reconcileDocumentState(_ change: SyncChange, document: Document, device: String, now: Int64) throws {
        guard case .order(let order) = document else { return }
        let state = order.state.rawValue
        guard let office = try firstRow("SELECT state FROM document_states WHERE device_id = ? AND entity = ? AND entity_id = ?",
                                        [.text(device), .text(change.entity), .text(change.entityId)], row: { $0.text(0) }),
              office != state else { return }
        if let from = OrderState(rawValue: office), let to = OrderState(rawValue: state), from.canMove(to: to) {
            try run("UPDATE document_states SET state = ?, updated_at = ? WHERE device_id = ? AND entity = ? AND entity_id = ?",
                    [.text(state), .integer(now), .text(device), .text(change.entity), .text(change.entityId)])
            return
        }
        // The office answered before this change reached it (it accepted an order the device
        // uploads as confirmed): the device is only behind, not in conflict. The office's value
        // stands and travels down; nothing for the rep to resolve.
        if let from = OrderState(rawValue: state), let to = OrderState(rawValue: office), SQLiteHubStorage.lifecycle(from, reaches: to) { return }
        try run("""
            INSERT INTO sync_errors(device_id, id, change_id, entity, entity_id, field, device_value, hub_value, reason, at)
            VALUES (?, ?, ?, ?, ?, 'state', ?, ?, ?, ?) ON CONFLICT DO NOTHING
            """, [.text(device), .text(change.changeId + "/state"), .text(change.changeId), .text(change.entity), .text(change.entityId),
                  .text(state), .text(office), .text("the office had already set this \(change.entity) to \(office); its value stands"), .integer(now)])
    }

    /// A rep's territory, catalogue channel and role; `channel` `.some(nil)` means every product.
    /// A supervisor's handheld carries the routes and customers of the whole territory below it.
    public func setRepScope(rep: String, territory: String?, channel: String??, role: String?) throws {
        try storageErrors {
            try inWriteTransaction {
                guard try self.rep(id: rep) != nil else { throw HubError.notFound("rep \(Displayed.text(rep))") }
                // A territory or channel the master data does not have would put a row on every
                // handheld of the rep that its schema refuses (a territory) or empty the catalogue
                // (a channel): refused by name, nothing changed.
                if let territory {
                    guard try firstRow("SELECT 1 FROM territories WHERE id = ?", [.text(territory)], row: { _ in true }) != nil else {
                        throw HubError.notFound("territory \(Displayed.text(territory)) in the master data (known: \(try known("SELECT id FROM territories ORDER BY id")))")
                    }
                    try run("UPDATE reps SET territory_id = ? WHERE id = ?", [.text(territory), .text(rep)])
                }
                if let channel {
                    if let channel, try firstRow("SELECT 1 FROM products WHERE channel = ?", [.text(channel)], row: { _ in true }) == nil {
                        throw HubError.notFound("channel \(Displayed.text(channel)): no product of the master data is in it (channels: \(try known("SELECT DISTINCT channel FROM products ORDER BY channel")); 'all' for every product)")
                    }
                    try run("UPDATE reps SET channel = ? WHERE id = ?", [HubSQLValue(channel), .text(rep)])
                }
                if let role {
                    try MasterDataSchema.requireRole(role)
                    try run("UPDATE reps SET role = ? WHERE id = ?", [.text(role), .text(rep)])
                }
            }
        }
    }

    /// A document the new device has changed itself (its changes are on the hub: duplicate mode
    /// uploads first) is its own from then on: neither the copy nor the office's answer on the
    /// old device's copy overwrite it, however often the technician repeats the duplicate.
    public func documentsForDuplicate(of old: String, to new: String, now: Int64) throws -> [SyncChange] {
        try storageErrors {
            try inWriteTransaction {
                let notTheNewDevices = """
                    NOT EXISTS (SELECT 1 FROM device_changes AS own WHERE own.device_id = ? AND own.entity = copied.entity AND own.entity_id = copied.entity_id)
                    """
                try run("""
                    INSERT INTO document_states(device_id, entity, entity_id, state, approval, updated_at)
                    SELECT ?, entity, entity_id, state, approval, ? FROM document_states AS copied WHERE device_id = ? AND \(notTheNewDevices)
                    ON CONFLICT (device_id, entity, entity_id) DO UPDATE SET state = excluded.state, approval = excluded.approval
                    """, [.text(new), .integer(now), .text(old), .text(new)])
                return try rows(
                    "SELECT seq, change_id, at, entity, entity_id, action, payload FROM device_changes AS copied WHERE device_id = ? AND \(notTheNewDevices) ORDER BY seq",
                    [.text(old), .text(new)]) {
                    SyncChange(seq: $0.int64(0), changeId: $0.text(1), at: $0.int64(2), entity: $0.text(3), entityId: $0.text(4),
                               action: $0.text(5), payload: DocumentCodec.encode(try LegacyJournalPayload.document(entity: $0.text(3), json: $0.text(6))))
                }
            }
        }
    }

    /// The one value of a query that always has a row (a count, a COALESCE'd max).
    func number(_ sql: String, _ parameters: [HubSQLValue]) throws -> Int64 {
        guard let value = try firstRow(sql, parameters, row: { $0.int64(0) }) else { throw HubError.storage("no row from \(sql)") }
        return value
    }

    /// The first few values a query lists, for an error that names what exists.
    func known(_ sql: String) throws -> String {
        let values = try rows(sql + " LIMIT 11", []) { $0.text(0) }
        if values.isEmpty { return "none: import the master data first, satchel-hub master import" }
        return values.prefix(10).map(Displayed.text).joined(separator: ", ") + (values.count > 10 ? ", ..." : "")
    }
}
