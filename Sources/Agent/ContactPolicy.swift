public import Field
import Seal
import Store
public import Sync

/// What the hub decided about this handheld, as the agent keeps and obeys it: the signed
/// assignment (`Sync.DeviceAssignment`: rep, role, offline policy, the hub's time at the last
/// contact) in `sync_state`, with the hub's signing key pinned beside it at provisioning. Every
/// read checks the signature, so an edited role or last-contact time is not obeyed: the device
/// locks instead until a sync brings a good one.
///
/// The offline policy: a handheld that has not reached the hub for `lockAfterDays` locks (only
/// `sync`, `status`, `keys` and `doctor` run), and once it has been locked for the days up to
/// `wipeAfterDays`, it wipes itself (`DeviceAgent.wipe`). Time is counted sanely: a clock set
/// back counts from the latest time the device has seen (`clock_high_water`, recorded on every
/// write), so rolling the clock back gains nothing; a clock that jumps forward locks the
/// device but cannot wipe it faster than the days between the lock and the wipe, measured from
/// when it locked.
public enum ContactPolicy {
    static let assignmentKey = "hub_assignment"
    static let signerKey = "hub_signing_key"
    static let highWaterKey = "clock_high_water"
    static let lockedSinceKey = "locked_since"
    static let day: Int64 = 86_400_000
    /// A clock this much behind the latest time seen counts as set back (ntp steps are smaller).
    static let rollbackTolerance: Int64 = 10 * 60_000

    public enum Verdict: Equatable, Sendable {
        /// No assignment yet (a device provisioned before lifecycle, or never synced since): nothing enforced.
        case unmanaged
        case ok(DeviceAssignment)
        case locked(reason: String)
        case wipeDue(reason: String)
    }

    /// Records an assignment the hub sent over the authenticated channel. The first signing key
    /// the device sees is pinned; one signed by another key is refused and nothing is recorded.
    public static func record(_ signed: SignedAssignment, in device: DeviceDatabase) throws {
        let pinned = try device.syncState(signerKey)
        if let pinned, pinned != Hex.encode(signed.signer) {
            throw LifecycleError.assignmentRefused("the hub's assignment is signed by key \(Hex.encode(Array(signed.signer.prefix(8))))…, not the pinned \(pinned.prefix(16))…; nothing was recorded. Call the office: the hub's lifecycle keys changed")
        }
        guard let assignment = signed.verified(by: signed.signer) else {
            throw LifecycleError.assignmentRefused("the hub's assignment does not verify; nothing was recorded")
        }
        let own = try device.deviceID()
        guard assignment.device == own else {
            throw LifecycleError.assignmentRefused("the hub's assignment is for device \(TerminalText.safe(assignment.device)), not this one (\(own)); nothing was recorded")
        }
        try device.write {
            try device.setSyncState(signerKey, Hex.encode(signed.signer))
            try device.setSyncState(assignmentKey, Hex.encode(signed.encode()))
            // Reaching the hub unlocks; the hub's time also moves the high-water mark.
            try device.setSyncState(lockedSinceKey, nil)
            let high = Int64(try device.syncState(highWaterKey) ?? "") ?? 0
            try device.setSyncState(highWaterKey, String(max(high, assignment.issuedAt)))
        }
    }

    /// The assignment this device holds, verified; nil when there is none. Throws when one is
    /// pinned but the stored bytes do not verify (edited, or removed while the key stays).
    public static func assignment(_ device: DeviceDatabase) throws -> DeviceAssignment? {
        guard let signer = try device.syncState(signerKey) else { return nil }
        guard let stored = try device.syncState(assignmentKey), let bytes = try? Hex.decode(stored),
              let signed = try? SignedAssignment.decode(bytes), let key = try? Hex.decode(signer),
              let assignment = signed.verified(by: key), assignment.device == (try device.deviceID()) else {
            throw LifecycleError.assignmentRefused("the hub's assignment on this device is missing or does not verify (edited?): the device is locked until a sync brings it again")
        }
        return assignment
    }

    /// The verdict at `now`. `writing`: record the clock's high-water mark and when the lock began.
    public static func verdict(_ device: DeviceDatabase, now: Int64, writing: Bool) throws -> Verdict {
        let assignment: DeviceAssignment
        do {
            guard let found = try self.assignment(device) else { return .unmanaged }
            assignment = found
        } catch let error as LifecycleError {
            return .locked(reason: error.description)
        }
        guard assignment.lockAfterDays > 0 else { return .ok(assignment) }
        let highWater = Int64(try device.syncState(highWaterKey) ?? "") ?? assignment.issuedAt
        let rolledBack = now + rollbackTolerance < highWater
        let effectiveNow = max(now, highWater, assignment.issuedAt)
        if writing && effectiveNow > highWater { try device.write { try device.setSyncState(highWaterKey, String(effectiveNow)) } }
        let offline = effectiveNow - assignment.issuedAt
        guard offline >= Int64(assignment.lockAfterDays) * day else { return .ok(assignment) }
        var lockedSince = Int64(try device.syncState(lockedSinceKey) ?? "")
        if lockedSince == nil && writing {
            lockedSince = effectiveNow
            try device.write { try device.setSyncState(lockedSinceKey, String(effectiveNow)) }
        }
        let days = offline / day
        let clockNote = rolledBack ? " (the clock shows \(CalendarDay.minute(fromMilliseconds: now)), earlier than this device has already seen: counted from \(CalendarDay.minute(fromMilliseconds: highWater)))" : ""
        if assignment.wipeAfterDays > 0, let lockedSince, offline >= Int64(assignment.wipeAfterDays) * day,
           effectiveNow - lockedSince >= Int64(assignment.wipeAfterDays - assignment.lockAfterDays) * day {
            return .wipeDue(reason: "this handheld has not reached the hub for \(days) days (the office's limit is \(assignment.wipeAfterDays))\(clockNote)")
        }
        let wipeNote = assignment.wipeAfterDays > 0 ? "; after \(assignment.wipeAfterDays) days without a sync it wipes itself" : ""
        return .locked(reason: "this handheld has not reached the hub for \(days) days (the office locks it after \(assignment.lockAfterDays))\(clockNote): sync now (`satchel sync`) to unlock it\(wipeNote)")
    }

    /// The role the hub assigned, when this device holds a verified assignment.
    public static func role(_ device: DeviceDatabase) throws -> String? { try assignment(device)?.role }
}

/// Refusals of the device's lifecycle: locked, wiped, provisioning. Each says what to do next.
public enum LifecycleError: Error, CustomStringConvertible, Equatable {
    case locked(String)
    case wiped(String)
    case assignmentRefused(String)
    case alreadyProvisioned(device: String, hub: String)
    case provisioningRefused(String)
    /// The office reported this handheld lost: its keys are destroyed now.
    case reportedLost(String)

    public var description: String {
        switch self {
        case .locked(let why): return "locked: \(why)"
        case .wiped(let why): return "this handheld was wiped (\(why)); its data and card can no longer be read. A technician provisions it again: satchel provision --hub HOST:PORT --hub-key HEX --device NEW --rep REP --technician-credential -"
        case .assignmentRefused(let why): return why
        case .alreadyProvisioned(let device, let hub):
            return "this handheld is provisioned already (device \(device), hub \(hub)); nothing was changed. To provision it again (same identity, new settings) add --replace; a new handheld for the same rep gets a new device id with --replaces \(device)"
        case .provisioningRefused(let why): return "the hub refused provisioning: \(why); nothing was written on this handheld"
        case .reportedLost(let why): return "the office reported this handheld lost: \(why)"
        }
    }

    public var exitCode: Int32 {
        switch self {
        case .locked, .wiped, .reportedLost, .provisioningRefused: return 77
        case .assignmentRefused: return 65
        case .alreadyProvisioned: return 73
        }
    }
}

extension DeviceAgent {
    /// Applies the offline policy to an opened database: `.ok` and `.unmanaged` pass, a lock
    /// throws `LifecycleError.locked` (unless `whileLocked`: status, keys, doctor still run), a
    /// due wipe wipes and throws `.wiped`.
    func enforceContactPolicy(_ device: DeviceDatabase, writing: Bool, whileLocked: Bool = false) throws {
        switch try ContactPolicy.verdict(device, now: clock.nowMilliseconds(), writing: writing) {
        case .unmanaged, .ok: return
        case .locked(let reason):
            if whileLocked { return }
            throw LifecycleError.locked(reason)
        case .wipeDue(let reason):
            _ = wipe(reason: reason)
            throw LifecycleError.wiped(reason)
        }
    }
}
