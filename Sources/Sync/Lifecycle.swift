public import Seal
public import Transport

/// What the hub decides about a device and the device must obey (docs/protocol.md §10): whose
/// it is, the workplace its rep has, and how long it may go without reaching the hub before it
/// locks and then wipes itself. The hub signs it (Ed25519) at provisioning and at every
/// authenticated sync; the device keeps the signed bytes and checks the signature every time it
/// reads them, so editing the file cannot change the role or push back the lock.
public struct DeviceAssignment: Equatable, Sendable {
    public var device: String
    public var rep: String
    public var role: String
    /// 0: never (the hub has no offline policy).
    public var lockAfterDays: Int
    public var wipeAfterDays: Int
    /// The hub's clock when it issued this (ms): the last time the device reached the hub.
    public var issuedAt: Int64

    public init(device: String, rep: String, role: String, lockAfterDays: Int, wipeAfterDays: Int, issuedAt: Int64) {
        self.device = device; self.rep = rep; self.role = role
        self.lockAfterDays = lockAfterDays; self.wipeAfterDays = wipeAfterDays; self.issuedAt = issuedAt
    }

    /// Domain separation: a signature over an assignment is never one over anything else.
    static let context = Array("satchel device assignment v1\u{0}".utf8)

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.string(device)
        writer.string(rep)
        writer.string(role)
        writer.varint(UInt64(max(0, lockAfterDays)))
        writer.varint(UInt64(max(0, wipeAfterDays)))
        writer.int(issuedAt)
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> DeviceAssignment {
        var reader = WireReader(bytes)
        let assignment = DeviceAssignment(device: try reader.string(limit: 64), rep: try reader.string(limit: 64), role: try reader.string(limit: 32),
                                          lockAfterDays: try reader.count("lock days", limit: 36_500), wipeAfterDays: try reader.count("wipe days", limit: 36_500),
                                          issuedAt: try reader.int())
        try reader.finish()
        return assignment
    }
}

/// An assignment with the hub's signature and the key that made it.
public struct SignedAssignment: Equatable, Sendable {
    public var body: [UInt8]
    public var signature: [UInt8]
    public var signer: [UInt8]

    public init(body: [UInt8], signature: [UInt8], signer: [UInt8]) {
        self.body = body; self.signature = signature; self.signer = signer
    }

    public static func sign(_ assignment: DeviceAssignment, with key: Signature.KeyPair) -> SignedAssignment {
        let body = assignment.encode()
        return SignedAssignment(body: body, signature: key.sign(DeviceAssignment.context + body), signer: key.publicKey)
    }

    /// The assignment, when `publicKey` signed exactly these bytes; nil otherwise.
    public func verified(by publicKey: [UInt8]) -> DeviceAssignment? {
        guard Signature.verify(signature, of: DeviceAssignment.context + body, publicKey: publicKey) else { return nil }
        return try? DeviceAssignment.decode(body)
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.data(body)
        writer.data(signature)
        writer.data(signer)
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> SignedAssignment {
        var reader = WireReader(bytes)
        let signed = SignedAssignment(body: try reader.data(limit: 512), signature: try reader.data(limit: 64), signer: try reader.data(limit: 32))
        try reader.finish()
        return signed
    }
}

/// REGISTER (device → hub, provision mode): the technician's credential, the rep the device is
/// for, the device it replaces ("" for none), and whether this re-provisions an identity the hub
/// already holds (same id, same key: `satchel provision --replace`).
public struct Register: Equatable, Sendable {
    public var credential: String
    public var rep: String
    public var replaces: String
    public var again: Bool

    public init(credential: String, rep: String, replaces: String = "", again: Bool = false) {
        self.credential = credential; self.rep = rep; self.replaces = replaces; self.again = again
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.string(credential)
        writer.string(rep)
        writer.string(replaces)
        writer.varint(again ? 1 : 0)
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> Register {
        var reader = WireReader(bytes)
        return Register(credential: try reader.string(limit: 256), rep: try reader.string(limit: 64), replaces: try reader.string(limit: 64),
                        again: try reader.varint() == 1)
    }
}

/// REGISTERED (hub → device): the signed assignment and the hub's escrow public key, to which the
/// device seals its data key in the ESCROW that follows.
public struct Registered: Equatable, Sendable {
    public var assignment: SignedAssignment
    public var escrowKey: [UInt8]

    public init(assignment: SignedAssignment, escrowKey: [UInt8]) {
        self.assignment = assignment
        self.escrowKey = escrowKey
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.data(assignment.encode())
        writer.data(escrowKey)
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> Registered {
        var reader = WireReader(bytes)
        return Registered(assignment: try SignedAssignment.decode(try reader.data(limit: 1024)), escrowKey: try reader.data(limit: 32))
    }
}

/// ESCROW (device → hub): the device's data key sealed to the hub's escrow key, and its check
/// value (a BLAKE2b digest of the key, to tell which key a card needs without opening anything).
public struct EscrowDeposit: Equatable, Sendable {
    public var sealedKey: [UInt8]
    public var keyCheck: String

    public init(sealedKey: [UInt8], keyCheck: String) {
        self.sealedKey = sealedKey
        self.keyCheck = keyCheck
    }

    public func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.data(sealedKey)
        writer.string(keyCheck)
        return writer.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> EscrowDeposit {
        var reader = WireReader(bytes)
        return EscrowDeposit(sealedKey: try reader.data(limit: 256), keyCheck: try reader.string(limit: 128))
    }
}

/// The device's side of provision mode: HELLO (mode provision), REGISTER, then ESCROW with the
/// data key sealed to the escrow key REGISTERED named, then BYE.
public enum ProvisionClient {
    public struct Outcome: Sendable {
        public var assignment: SignedAssignment
        public var escrowKey: [UInt8]
    }

    /// `escrow` seals the device's data key to the hub's escrow key (nil: nothing to escrow yet).
    public static func run(_ stream: any ByteStream, deviceKey: X25519.KeyPair, hubKey: [UInt8], device: String, register: Register,
                           escrow: ([UInt8]) throws -> EscrowDeposit?, deadline: Deadline) throws -> Outcome {
        let (channel, welcomeBytes) = try SyncChannel.connect(stream, deviceKey: deviceKey, hubKey: hubKey,
                                                              hello: Hello(device: device, mode: .provision).encode(),
                                                              dictionary: SyncDictionary.v3, deadline: deadline)
        let welcome = try Welcome.decode(welcomeBytes)
        guard welcome.status == .ok else { throw SyncFailure.refused(welcome.status) }
        try channel.send(.init(type: MessageType.register.rawValue, body: register.encode()), deadline: deadline)
        let registered = try Registered.decode(try SyncClient.expect(.registered, from: channel, deadline: deadline))
        if let deposit = try escrow(registered.escrowKey) {
            try channel.send(.init(type: MessageType.escrow.rawValue, body: deposit.encode()), deadline: deadline)
            _ = try SyncClient.expect(.escrowed, from: channel, deadline: deadline)
        }
        try? channel.send(.init(type: MessageType.bye.rawValue, body: []), deadline: deadline)
        return Outcome(assignment: registered.assignment, escrowKey: registered.escrowKey)
    }
}
