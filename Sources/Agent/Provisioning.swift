import Backup
import Field
import Journal
import Seal
import Sync
import Transport

/// `satchel provision`: a technician takes a bare (or wiped) handheld to one the hub knows, in
/// one command. The hub is asked first, with the technician's credential; only when it has
/// registered the device is anything written here (the database and key of a bare handheld,
/// the hub pin, the signed assignment, the sealed configuration). Any refusal writes nothing.
public struct ProvisionRequest: Sendable {
    public var hub: String
    public var hubKey: String
    /// A bare handheld's new id and rep; an initialised one keeps its own (and they must match).
    public var device: String?
    public var rep: String?
    /// The technician's credential (`ID.SECRET`, from `satchel-hub technician add`); nil: only
    /// pin the hub (the device is registered by hand: `satchel-hub device add`).
    public var credential: String?
    /// The device this handheld replaces (retired at the hub; it may upload and duplicate for it).
    public var replaces: String?
    /// Provision an already provisioned handheld again (same identity, new settings).
    public var replace: Bool
    /// The device configuration to write, already merged with the current one and validated.
    public var settings: DeviceSettings

    public init(hub: String, hubKey: String, device: String? = nil, rep: String? = nil, credential: String? = nil, replaces: String? = nil,
                replace: Bool = false, settings: DeviceSettings = DeviceSettings()) {
        self.hub = hub; self.hubKey = hubKey; self.device = device; self.rep = rep; self.credential = credential
        self.replaces = replaces; self.replace = replace; self.settings = settings
    }
}

public struct ProvisionReport: Sendable, Encodable {
    public var device: String
    public var rep: String
    public var hub: String
    public var publicKey: String
    /// Registered at the hub through the technician's credential (false: pinned only).
    public var registered: Bool
    public var role: String?
    public var lockAfterDays: Int?
    public var wipeAfterDays: Int?
    /// The check value of the key the hub now holds in escrow; nil when there was none to escrow.
    public var escrowedKeyCheck: String?
    public var replaces: String?
    public var initialised: Bool
    public var cardProblem: String?

    enum CodingKeys: String, CodingKey {
        case device, rep, hub, registered, role, replaces, initialised
        case publicKey = "public_key"
        case lockAfterDays = "lock_after_days"
        case wipeAfterDays = "wipe_after_days"
        case escrowedKeyCheck = "escrowed_key_check"
        case cardProblem = "card_problem"
    }
}

extension DeviceAgent {
    public func provision(_ request: ProvisionRequest, timeoutSeconds: Double = 60) throws -> ProvisionReport {
        let home = configuration.home
        let hubKey: [UInt8]
        do { hubKey = try Hex.decode(request.hubKey) } catch { hubKey = [] }
        guard hubKey.count == 32 else {
            throw FieldError.invalidInput(what: "hub key", value: request.hubKey, reason: "expected 64 hex digits (`satchel-hub key` prints it)")
        }
        guard IdentityFiles.validAddress(request.hub) else {
            throw FieldError.invalidInput(what: "hub address", value: request.hub, reason: "expected HOST:PORT")
        }
        let sync = DeviceSync(self)
        let wiped = wipedReason() != nil
        let pinned = try sync.pin()
        // The database this handheld already has, if any (a wiped one has none).
        let existing: DeviceDatabase? = local.exists(Paths.join(home, DeviceDatabase.fileName)) && !wiped ? try openUnchecked() : nil
        if let pinned, !request.replace {
            throw LifecycleError.alreadyProvisioned(device: (try existing?.deviceID()) ?? request.device ?? "?", hub: pinned.address)
        }
        let device: String, rep: String
        if let existing {
            device = try existing.deviceID()
            rep = try existing.repID()
            if let asked = request.device, asked != device {
                throw FieldError.invalidInput(what: "--device", value: asked, reason: "this handheld is device \(device) already; a new id needs a bare (or wiped) handheld")
            }
            if let asked = request.rep, asked != rep {
                throw FieldError.invalidInput(what: "--rep", value: asked, reason: "this handheld belongs to rep \(rep); a handheld moves to another rep with a new device id")
            }
        } else {
            guard let asked = request.device, let repAsked = request.rep else {
                throw FieldError.invalidInput(what: "--device", value: request.device ?? "", reason: "a bare handheld needs its new id and its rep: --device ID --rep REP")
            }
            try DeviceDatabase.validateIdentifier(asked, what: "device id")
            try DeviceDatabase.validateIdentifier(repAsked, what: "rep id")
            device = asked
            rep = repAsked
        }
        // The key: this handheld's own, or a new one kept in memory until the hub said yes.
        let storedKey = wiped ? nil : try IdentityFiles.readDeviceKey(home: home)
        let pair = try storedKey.map { try X25519.KeyPair(secretKey: SecretBytes($0)) } ?? X25519.KeyPair.generate()

        var report = ProvisionReport(device: device, rep: rep, hub: request.hub, publicKey: Hex.encode(pair.publicKey), registered: false,
                                     replaces: request.replaces, initialised: existing == nil)
        var assignment: SignedAssignment?
        if let credential = request.credential {
            let stream: FileDescriptorStream
            do { stream = try TCP.connect(request.hub, deadline: .after(seconds: timeoutSeconds)) } catch { throw DeviceSync.Failure.link(LinkError(.connect, error)) }
            defer { stream.close() }
            let outcome: ProvisionClient.Outcome
            do {
                outcome = try ProvisionClient.run(stream, deviceKey: pair, hubKey: hubKey, device: device,
                                                  register: Register(credential: credential, rep: rep, replaces: request.replaces ?? "", again: pinned != nil || request.replace),
                                                  escrow: { escrowKey in
                                                      guard let parts = wiped ? nil : try self.escrowDeposit(sealedTo: escrowKey) else { return nil }
                                                      report.escrowedKeyCheck = parts.keyCheck
                                                      return EscrowDeposit(sealedKey: parts.sealedKey, keyCheck: parts.keyCheck)
                                                  }, deadline: .after(seconds: timeoutSeconds))
            } catch SyncFailure.hubError(code: .registrationRefused, let message) {
                throw LifecycleError.provisioningRefused(TerminalText.safe(message))
            } catch let failure as SyncFailure {
                throw DeviceSync.Failure.sync(failure)
            } catch let error as SealError {
                throw error
            } catch {
                throw DeviceSync.Failure.link(LinkError(.session, error))
            }
            guard let verified = outcome.assignment.verified(by: outcome.assignment.signer), verified.device == device, verified.rep == rep else {
                throw LifecycleError.provisioningRefused("the hub's answer does not verify or names another device; nothing was written")
            }
            assignment = outcome.assignment
            report.registered = true
            report.role = verified.role
            report.lockAfterDays = verified.lockAfterDays
            report.wipeAfterDays = verified.wipeAfterDays
        }

        // The hub said yes (or was not asked): now write, the identity first.
        if wiped {
            for file in [Paths.join(home, DeviceDatabase.fileName)] where local.exists(file) { try? local.remove(file) }
        }
        let database = try existing ?? DeviceDatabase.create(home: home, deviceID: device, repID: rep, clock: clock)
        if storedKey == nil {
            try IdentityFiles.writeDeviceKey(home: home, pair.secretKey.withUnsafeBytes { Array($0) })
        }
        if let assignment {
            if request.replace { try database.write { try database.setSyncState(ContactPolicy.signerKey, nil) } }
            try ContactPolicy.record(assignment, in: database)
        }
        report.cardProblem = try sync.provision(address: request.hub, hubKey: request.hubKey).cardProblem
        if request.credential != nil || request.settings != configuration.settings || wiped {
            try request.settings.writeSealed(home: home)
        }
        if wiped { try? local.remove(wipedMarker) }
        return report
    }
}
