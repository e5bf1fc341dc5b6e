import Foundation
public import Seal
import Store
public import Sync

/// What the hub does with devices over their life (docs/technician-guide.md "Provisioning",
/// "A lost handheld", "Replacing a broken handheld"): technicians and their credentials,
/// provisioning, each device's state (active, lost, retired), the escrow of its data key, the
/// offline policy and the signed assignment a device obeys. The protocol is what the sync server
/// and the commands need; all of its SQL is here, so another backend implements this one
/// protocol.
public protocol DeviceLifecycleStore: AnyObject {
    /// The hub's signing key (assignments) and escrow key (devices' data keys), made on first use.
    func lifecycleKeys() throws -> LifecycleKeys
    func lifecycleState(device: String) throws -> DeviceLifecycleState
    /// The assignment the device gets now: its rep, the rep's role, the offline policy, `now`.
    func assignment(device: String, now: Int64) throws -> DeviceAssignment
    /// Checks the technician credential and registers the device (or confirms a re-provisioning of
    /// the same identity). Throws `LifecycleRefusal` with what to do; nothing is changed then.
    /// `check` runs the credential's Argon2id: the sync server passes its `PasswordGate`, so a
    /// mass provisioning holds no more 64 MiB verifications at once than the sync passwords do
    /// (a `PasswordGate.Busy` it throws leaves everything unchanged and unrecorded).
    func register(device: String, publicKey: [UInt8], _ registration: Register, now: Int64, check: CredentialCheck) throws
    func depositEscrow(device: String, _ deposit: EscrowDeposit, now: Int64) throws
    /// The office reports a device lost: it is refused and told to wipe at its next contact.
    func markLost(device: String, now: Int64) throws
    /// A lost device was refused (at HELLO or mid-session) and told to destroy its keys.
    func recordWipeOrder(device: String, during: String, now: Int64) throws
    /// The escrowed data key of `old`, re-sealed to `new`'s device key, once a technician's
    /// credential checks and `new` is registered as `old`'s replacement.
    func releaseEscrow(of old: String, to new: String, credential: String, now: Int64) throws -> ReleasedKey
    /// Returns the credential to give the technician (shown once; the hub keeps its hash).
    func addTechnician(id: String, name: String, expiresAt: Int64?, now: Int64) throws -> String
    func revokeTechnician(id: String, now: Int64) throws
    func setOfflinePolicy(lockAfterDays: Int, wipeAfterDays: Int, now: Int64) throws
    func lifecycleEvents(device: String?, limit: Int) throws -> [LifecycleEvent]
}

/// Verifies a credential against its stored Argon2id hash: true when it checks.
public typealias CredentialCheck = (_ storedHash: String, _ credential: String) throws -> Bool

extension DeviceLifecycleStore {
    /// Registers with the credential checked directly, outside any gate: for one office command
    /// or a test, never for the sync server's concurrent sessions.
    public func register(device: String, publicKey: [UInt8], _ registration: Register, now: Int64) throws {
        try register(device: device, publicKey: publicKey, registration, now: now, check: { PasswordHash.verify($0, password: $1) })
    }
}

public enum DeviceLifecycleState: String, Sendable, Codable {
    case active, lost, retired
}

public struct LifecycleKeys: Sendable {
    public let signing: Signature.KeyPair
    public let escrow: X25519.KeyPair
}

public struct ReleasedKey: Sendable, Codable {
    /// The old device's data key sealed to the new device's key: only that handheld opens it.
    public var sealedKey: String
    public var keyCheck: String
    enum CodingKeys: String, CodingKey {
        case sealedKey = "sealed_key"
        case keyCheck = "key_check"
    }
}

public struct LifecycleEvent: Sendable, Codable, Equatable {
    public var at: Int64
    public var device: String?
    public var technician: String?
    public var event: String
    public var detail: String
}

/// A lifecycle request the hub refuses on purpose; the device or the command line shows it.
public struct LifecycleRefusal: Error, CustomStringConvertible, Equatable {
    public var description: String
}

/// The hub migration that adds devices' lifecycle, one text for both backends in each one's
/// types. Events and escrow deposits are history: append-only by trigger, as the audit log is;
/// a device's current state is one row.
enum LifecycleSchema {
    static func tables(_ types: HubColumnTypes) -> String {
        """
        CREATE TABLE lifecycle_keys (
            singleton INTEGER PRIMARY KEY CHECK (singleton = 1), signing_secret \(types.bytes) NOT NULL, escrow_secret \(types.bytes) NOT NULL
        );
        CREATE TABLE lifecycle_policy (
            singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
            lock_after_days INTEGER NOT NULL CHECK (lock_after_days >= 0),
            wipe_after_days INTEGER NOT NULL CHECK (wipe_after_days >= 0),
            changed_at \(types.bigint) NOT NULL
        );
        CREATE TABLE technicians (
            id TEXT PRIMARY KEY, name TEXT NOT NULL, credential_hash TEXT NOT NULL, added_at \(types.bigint) NOT NULL,
            expires_at \(types.bigint), revoked_at \(types.bigint)
        );
        CREATE TABLE device_lifecycle (
            device_id TEXT PRIMARY KEY REFERENCES devices(id),
            state TEXT NOT NULL CHECK (state IN ('active', 'lost', 'retired')), changed_at \(types.bigint) NOT NULL
        );
        CREATE TABLE device_escrow (
            id \(types.rowKey), device_id TEXT NOT NULL REFERENCES devices(id), sealed_key \(types.bytes) NOT NULL,
            key_check TEXT NOT NULL, deposited_at \(types.bigint) NOT NULL
        );
        CREATE TABLE lifecycle_events (
            id \(types.rowKey), at \(types.bigint) NOT NULL, device_id TEXT, technician_id TEXT, event TEXT NOT NULL, detail TEXT NOT NULL
        );
        """
    }

    /// A device's history: every lifecycle event and escrow deposit, never edited.
    static let history = ["lifecycle_events": "the device lifecycle events", "device_escrow": "the escrowed device keys"].sorted { $0.key < $1.key }
}

extension SQLiteHubStorage: DeviceLifecycleStore {
    static let lifecycleSchema = LifecycleSchema.tables(.sqlite) + appendOnly(LifecycleSchema.history)
}

extension PostgresHubStorage: DeviceLifecycleStore {
    static let lifecycleSchema = LifecycleSchema.tables(.postgres) + appendOnly(LifecycleSchema.history)
}

/// Written once for both backends (HubSQL.swift): the rules of a device's life are the same
/// whichever database keeps them.
extension DeviceLifecycleStore where Self: HubSQL & HubStorage {
    public func lifecycleKeys() throws -> LifecycleKeys {
        func stored() throws -> LifecycleKeys? {
            guard let keys = try firstRow("SELECT signing_secret, escrow_secret FROM lifecycle_keys", row: { ($0.bytes(0), $0.bytes(1)) }) else { return nil }
            return LifecycleKeys(signing: try Signature.KeyPair(secretKey: SecretBytes(keys.0)), escrow: try X25519.KeyPair(secretKey: SecretBytes(keys.1)))
        }
        return try storageErrors {
            if let keys = try stored() { return keys }
            return try inWriteTransaction {
                // Two hub processes making them at once (PostgreSQL): one pair wins, both use it.
                let keys = LifecycleKeys(signing: try Signature.KeyPair.generate(), escrow: X25519.KeyPair.generate())
                try run("INSERT INTO lifecycle_keys(singleton, signing_secret, escrow_secret) VALUES (1, ?, ?) ON CONFLICT (singleton) DO NOTHING",
                        [.bytes(keys.signing.secretKey.withUnsafeBytes { Array($0) }), .bytes(keys.escrow.secretKey.withUnsafeBytes { Array($0) })])
                return try stored() ?? keys
            }
        }
    }

    public func lifecycleState(device: String) throws -> DeviceLifecycleState {
        try storageErrors {
            let state = try firstRow("SELECT state FROM device_lifecycle WHERE device_id = ?", [.text(device)]) { $0.text(0) }
            return state.flatMap(DeviceLifecycleState.init(rawValue:)) ?? .active
        }
    }

    public func assignment(device: String, now: Int64) throws -> DeviceAssignment {
        try storageErrors {
            guard let row = try firstRow("SELECT d.rep_id, r.role FROM devices d JOIN reps r ON r.id = d.rep_id WHERE d.id = ?", [.text(device)],
                                               row: { (rep: $0.text(0), role: $0.text(1)) }) else {
                throw HubError.notFound("device \(Displayed.text(device))")
            }
            let policy = try firstRow("SELECT lock_after_days, wipe_after_days FROM lifecycle_policy", row: { ($0.int(0), $0.int(1)) }) ?? (0, 0)
            return DeviceAssignment(device: device, rep: row.rep, role: row.role, lockAfterDays: policy.0, wipeAfterDays: policy.1, issuedAt: now)
        }
    }

    /// Records a refused request in the lifecycle log and gives the refusal to throw; nothing
    /// else of the request is done.
    func refusal(_ event: String, device: String?, technician: String?, _ why: String, now: Int64) throws -> LifecycleRefusal {
        try storageErrors { try self.event(event, device: device, technician: technician, detail: why, now: now) }
        return LifecycleRefusal(description: why)
    }

    func event(_ event: String, device: String?, technician: String? = nil, detail: String, now: Int64) throws {
        try run("INSERT INTO lifecycle_events(at, device_id, technician_id, event, detail) VALUES (?, ?, ?, ?, ?)",
                             [.integer(now), HubSQLValue(device), HubSQLValue(technician), .text(event), .text(detail)])
    }

    /// The technician a credential (`ID.SECRET`, as `technician add` printed it) belongs to, when
    /// it checks, is not revoked and has not expired. A refusal is recorded and says which.
    func technician(credential: String, now: Int64, for purpose: String,
                    check: CredentialCheck = { PasswordHash.verify($0, password: $1) }) throws -> String {
        let id = credential.split(separator: ".", maxSplits: 1).first.map(String.init) ?? ""
        let refusal: String
        if let row = try firstRow("SELECT credential_hash, expires_at, revoked_at FROM technicians WHERE id = ?", [.text(id)],
                                        row: { (hash: $0.text(0), expires: $0.optionalInt64(1), revoked: $0.optionalInt64(2)) }) {
            if try !check(row.hash, credential) {
                refusal = "the technician credential of \(Displayed.text(id)) does not check: type it again as `satchel-hub technician add` printed it"
            } else if row.revoked != nil {
                refusal = "technician \(Displayed.text(id)) is revoked: the office issues a new credential (satchel-hub technician add)"
            } else if let expires = row.expires, expires <= now {
                refusal = "the credential of technician \(Displayed.text(id)) expired: the office issues a new one (satchel-hub technician add)"
            } else {
                return id
            }
        } else {
            refusal = "no technician \(Displayed.text(id)) on this hub: the office adds one (satchel-hub technician add) and gives the credential it prints"
        }
        try event("credential refused", device: nil, technician: id.isEmpty ? nil : id, detail: "\(purpose): \(refusal)", now: now)
        throw LifecycleRefusal(description: refusal)
    }

    public func register(device: String, publicKey: [UInt8], _ registration: Register, now: Int64, check: CredentialCheck) throws {
        let technician = try storageErrors {
            try self.technician(credential: registration.credential, now: now, for: "provisioning \(device)", check: check)
        }
        func refuse(_ why: String) throws -> Never { throw try refusal("provisioning refused", device: device, technician: technician, why, now: now) }
        let existing = try storageErrors {
            try firstRow("SELECT rep_id, public_key, revoked FROM devices WHERE id = ?", [.text(device)],
                               row: { (rep: $0.text(0), key: $0.bytes(1), revoked: $0.flag(2)) })
        }
        if let existing {
            let state = try lifecycleState(device: device)
            guard existing.key == publicKey else {
                try refuse("device id \(Displayed.text(device)) is registered on the hub with another key: give this handheld a new device id")
            }
            guard !existing.revoked, state == .active else {
                try refuse("the identity \(Displayed.text(device)) is \(state == .active ? "revoked" : state.rawValue) at the hub and never syncs again: provision this handheld with a new device id (--device NEW --replaces \(Displayed.text(device)))")
            }
            guard registration.again else {
                try refuse("device \(Displayed.text(device)) is provisioned already (rep \(Displayed.text(existing.rep))): provisioning it again needs --replace")
            }
            guard existing.rep == registration.rep else {
                try refuse("device \(Displayed.text(device)) belongs to rep \(Displayed.text(existing.rep)), not \(Displayed.text(registration.rep)): a handheld moves to another rep with a new device id")
            }
            try storageErrors { try event("provisioned again", device: device, technician: technician, detail: "rep \(existing.rep)", now: now) }
            return
        }
        let replaces = registration.replaces.isEmpty ? nil : registration.replaces
        do {
            try addDevice(id: device, rep: registration.rep, publicKey: publicKey, now: now, replaces: replaces)
        } catch let error as HubError {
            try refuse(error.description)
        }
        try storageErrors {
            try inWriteTransaction {
                try run("INSERT INTO device_lifecycle(device_id, state, changed_at) VALUES (?, 'active', ?) ON CONFLICT(device_id) DO NOTHING",
                                     [.text(device), .integer(now)])
                try event("provisioned", device: device, technician: technician, detail: "rep \(registration.rep)" + (replaces.map { ", replacing \($0)" } ?? ""), now: now)
                if let replaces {
                    try run("""
                        INSERT INTO device_lifecycle(device_id, state, changed_at) VALUES (?, 'retired', ?)
                        ON CONFLICT(device_id) DO UPDATE SET state = CASE WHEN device_lifecycle.state = 'lost' THEN 'lost' ELSE 'retired' END, changed_at = excluded.changed_at
                        """, [.text(replaces), .integer(now)])
                    try event("retired", device: replaces, technician: technician, detail: "replaced by \(device)", now: now)
                }
            }
        }
    }

    public func depositEscrow(device: String, _ deposit: EscrowDeposit, now: Int64) throws {
        guard deposit.sealedKey.count == 32 + SealedBox.overhead else {
            throw LifecycleRefusal(description: "an escrow deposit holds one 32-byte key sealed to the hub's escrow key (\(32 + SealedBox.overhead) bytes), not \(deposit.sealedKey.count)")
        }
        try storageErrors {
            try inWriteTransaction {
                try run("INSERT INTO device_escrow(device_id, sealed_key, key_check, deposited_at) VALUES (?, ?, ?, ?)",
                                     [.text(device), .bytes(deposit.sealedKey), .text(deposit.keyCheck), .integer(now)])
                try event("key escrowed", device: device, detail: "key check \(Displayed.text(deposit.keyCheck))", now: now)
            }
        }
    }

    public func markLost(device: String, now: Int64) throws {
        try storageErrors {
            try inWriteTransaction {
                guard try firstRow("SELECT 1 FROM devices WHERE id = ?", [.text(device)], row: { _ in true }) != nil else {
                    throw HubError.notFound("device \(Displayed.text(device)) (satchel-hub devices lists them)")
                }
                try run("""
                    INSERT INTO device_lifecycle(device_id, state, changed_at) VALUES (?, 'lost', ?)
                    ON CONFLICT(device_id) DO UPDATE SET state = 'lost', changed_at = excluded.changed_at
                    """, [.text(device), .integer(now)])
                try run("UPDATE devices SET revoked = TRUE WHERE id = ?", [.text(device)])
                try event("reported lost", device: device, detail: "refused from now on; told to destroy its keys at its next contact", now: now)
            }
        }
    }

    public func recordWipeOrder(device: String, during: String, now: Int64) throws {
        try storageErrors { try event("wipe ordered", device: device, detail: "the device was refused \(during) and told to destroy its keys", now: now) }
    }

    public func releaseEscrow(of old: String, to new: String, credential: String, now: Int64) throws -> ReleasedKey {
        let technician = try storageErrors { try self.technician(credential: credential, now: now, for: "releasing the key of \(old) to \(new)") }
        func refuse(_ why: String) throws -> Never { throw try refusal("escrow release refused", device: old, technician: technician, why, now: now) }
        let replacement = try storageErrors {
            try firstRow("SELECT public_key, replaces, revoked FROM devices WHERE id = ?", [.text(new)],
                               row: { (key: $0.bytes(0), replaces: $0.optionalText(1), revoked: $0.flag(2)) })
        }
        guard let replacement else { try refuse("no device \(Displayed.text(new)) on the hub: provision the replacement first (satchel provision --replaces \(Displayed.text(old)))") }
        guard replacement.replaces == old, !replacement.revoked, try lifecycleState(device: new) == .active else {
            try refuse("device \(Displayed.text(new)) is not registered as the replacement of \(Displayed.text(old)): the hub releases a device's key only to the handheld that replaces it")
        }
        guard let deposit = try storageErrors({
            try firstRow("SELECT sealed_key, key_check FROM device_escrow WHERE device_id = ? ORDER BY id DESC LIMIT 1", [.text(old)],
                               row: { (sealed: $0.bytes(0), check: $0.text(1)) })
        }) else {
            try refuse("the hub holds no escrowed key of \(Displayed.text(old)) (it was provisioned without one): open its card with the backup passphrase instead")
        }
        let key = try SealedBox.open(deposit.sealed, with: try lifecycleKeys().escrow)
        let resealed = try key.withUnsafeBytes { try SealedBox.seal(Array($0), to: replacement.key) }
        try storageErrors { try event("escrow released", device: old, technician: technician, detail: "sealed to \(new)'s key; key check \(deposit.check)", now: now) }
        return ReleasedKey(sealedKey: Hex.encode(resealed), keyCheck: deposit.check)
    }

    public func addTechnician(id: String, name: String, expiresAt: Int64?, now: Int64) throws -> String {
        guard !id.isEmpty, !id.contains("."), id.utf8.count <= 64, !id.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) else {
            throw HubError.invalid("technician id \(Displayed.text(id)): expected up to 64 characters without dots, spaces or control characters")
        }
        let credential = id + "." + Hex.encode(Random.bytes(16))
        let hash = try PasswordHash.hash(password: credential, cost: .interactive)
        try storageErrors {
            try inWriteTransaction {
                guard try firstRow("SELECT 1 FROM technicians WHERE id = ?", [.text(id)], row: { _ in true }) == nil else {
                    throw HubError.invalid("technician \(Displayed.text(id)) exists already; nothing was changed (a lost credential: revoke it and add a new technician id)")
                }
                try run("INSERT INTO technicians(id, name, credential_hash, added_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                                     [.text(id), .text(name), .text(hash), .integer(now), HubSQLValue(expiresAt)])
                try event("technician added", device: nil, technician: id, detail: expiresAt.map { "expires at \($0)" } ?? "no expiry", now: now)
            }
        }
        return credential
    }

    public func revokeTechnician(id: String, now: Int64) throws {
        try storageErrors {
            try inWriteTransaction {
                guard try run("UPDATE technicians SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [.integer(now), .text(id)]) == 1 else { throw HubError.notFound("technician \(Displayed.text(id)) (or revoked already)") }
                try event("technician revoked", device: nil, technician: id, detail: "its credential is refused from now on", now: now)
            }
        }
    }

    public func setOfflinePolicy(lockAfterDays: Int, wipeAfterDays: Int, now: Int64) throws {
        guard lockAfterDays >= 0, wipeAfterDays >= 0, lockAfterDays <= 3650, wipeAfterDays <= 3650 else {
            throw HubError.invalid("days are 0 (never) to 3650")
        }
        guard wipeAfterDays == 0 || (lockAfterDays > 0 && wipeAfterDays > lockAfterDays) else {
            throw HubError.invalid("--wipe-after-days (\(wipeAfterDays)) must be later than --lock-after-days (\(lockAfterDays)): a device locks before it wipes")
        }
        try storageErrors {
            try inWriteTransaction {
                try run("""
                    INSERT INTO lifecycle_policy(singleton, lock_after_days, wipe_after_days, changed_at) VALUES (1, ?, ?, ?)
                    ON CONFLICT(singleton) DO UPDATE SET lock_after_days = excluded.lock_after_days, wipe_after_days = excluded.wipe_after_days, changed_at = excluded.changed_at
                    """, [.integer(Int64(lockAfterDays)), .integer(Int64(wipeAfterDays)), .integer(now)])
                try event("offline policy", device: nil, detail: "lock after \(lockAfterDays) days, wipe after \(wipeAfterDays) days without reaching the hub (0: never)", now: now)
            }
        }
    }

    public func lifecycleEvents(device: String?, limit: Int) throws -> [LifecycleEvent] {
        try storageErrors {
            try rows("""
                SELECT at, device_id, technician_id, event, detail FROM lifecycle_events WHERE CAST(? AS TEXT) IS NULL OR device_id = ? ORDER BY id DESC LIMIT ?
                """, [HubSQLValue(device), HubSQLValue(device), .integer(Int64(limit))]) {
                LifecycleEvent(at: $0.int64(0), device: $0.optionalText(1), technician: $0.optionalText(2), event: $0.text(3), detail: $0.text(4))
            }
        }
    }
}
