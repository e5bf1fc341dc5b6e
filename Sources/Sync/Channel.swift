public import Deflate
public import Seal
public import Transport

/// The sync channel over any `ByteStream` (a modem's data session, TCP, a socket pair): length-
/// prefixed frames, the Noise IK handshake, then messages that are compressed (one raw-deflate
/// context per direction, flushed per frame, with a preset dictionary) and encrypted.
/// See docs/protocol.md for the bytes.
///
/// Frame: length u16 big-endian (1...65535) | that many bytes.
/// Message (inside a transport frame, after decryption): type u8 | flags u8 | body
///   (flags bit 0: body is raw deflate of the message). Since protocol 5, type 0 carries
///   several messages of one flight, each as type u8 | varint length | body (`queue`): one tag,
///   one length and one deflate flush for all of them.
public final class SyncChannel {
    public static let maxFrameBytes = 65_535
    static let headerBytes = 2

    public struct Message: Equatable, Sendable {
        public var type: UInt8
        public var body: [UInt8]
        public init(type: UInt8, body: [UInt8]) {
            self.type = type
            self.body = body
        }
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case frameTooLarge(bytes: Int)
        case emptyFrame
        case stream(StreamError)
        case handshake(Noise.Failure)
        case decryption
        /// A decrypted message shorter than its type and flags bytes.
        case shortMessage(bytes: Int)
        /// A compressed body the inflater refused (damaged, or over the limits); `type` is the message's.
        case inflate(type: UInt8, cause: DeflateError)
        /// A frame of several messages (type 0) that does not read as such: `what` says where.
        case packed(what: String)

        public var description: String {
            switch self {
            case .frameTooLarge(let bytes): return "frame of \(bytes) bytes is over the \(SyncChannel.maxFrameBytes)-byte limit"
            case .emptyFrame: return "empty frame"
            case .stream(let error): return "link: \(error)"
            case .handshake(let error): return error.description
            case .decryption: return "a frame does not decrypt: damaged, replayed, reordered, or from another session"
            case .shortMessage(let bytes): return "malformed message: \(bytes) bytes, needs at least 2 (type and flags); the peer is broken or not a satchel hub"
            case .inflate(let type, let cause): return "compressed body of message type \(type) refused: \(cause) (a damaged link or a peer over this side's limits)"
            case .packed(let what): return "malformed frame of several messages: \(what); the peer is broken or not a satchel hub"
            }
        }
    }

    let stream: any ByteStream
    let send: NoiseCipher
    let receive: NoiseCipher
    let deflater: Deflater
    let inflater: Inflater
    public private(set) var bytesSent = 0
    public private(set) var bytesReceived = 0
    public private(set) var framesSent = 0
    public private(set) var framesReceived = 0

    /// `handshakeSent` and `handshakeReceived` are the handshake's frames (headers included): the
    /// counters are every byte of the session on the socket, so a report or the hub's audit that
    /// prints them counts the handshake too.
    init(stream: any ByteStream, send: NoiseCipher, receive: NoiseCipher, dictionary: [UInt8], limits: InflateLimits,
         handshakeSent: Int, handshakeReceived: Int) throws {
        self.stream = stream
        self.bytesSent = handshakeSent
        self.bytesReceived = handshakeReceived
        self.send = send
        self.receive = receive
        self.deflater = try Deflater(level: 9, format: .raw, dictionary: dictionary)
        self.inflater = try Inflater(format: .raw, dictionary: dictionary, limits: limits)
    }

    /// What a message may grow to when inflated, and by how much: a hostile or corrupt frame
    /// cannot make the handheld allocate more than this.
    public static let defaultLimits = InflateLimits(maxOutputBytes: 4 << 20, maxRatio: 200)

    // MARK: Opening

    /// Device side: handshake with the pinned hub key; returns the channel and the hub's payload.
    public static func connect(_ stream: any ByteStream, deviceKey: X25519.KeyPair, hubKey: [UInt8], hello: [UInt8],
                               dictionary: [UInt8], deadline: Deadline, limits: InflateLimits = defaultLimits) throws -> (SyncChannel, [UInt8]) {
        do {
            let handshake = try NoiseHandshake(role: .initiator, staticKey: deviceKey, remoteStatic: hubKey, prologue: prologue)
            let first = try handshake.writeFirst(payload: hello)
            try writeFrame(stream, first, deadline: deadline)
            let second = try readFrame(stream, deadline: deadline)
            let welcome = try handshake.readSecond(second)
            let (send, receive) = try handshake.transport()
            return (try SyncChannel(stream: stream, send: send, receive: receive, dictionary: dictionary, limits: limits,
                                    handshakeSent: first.count + headerBytes, handshakeReceived: second.count + headerBytes), welcome)
        } catch let error as Noise.Failure {
            throw Failure.handshake(error)
        }
    }

    /// Hub side: reads message 1 and hands the device's static key and hello to `admit`, which
    /// decides (known device? revoked?) and returns the welcome payload, or throws to refuse.
    public static func accept(_ stream: any ByteStream, hubKey: X25519.KeyPair, dictionary: [UInt8], deadline: Deadline,
                              limits: InflateLimits = defaultLimits,
                              admit: (_ deviceKey: [UInt8], _ hello: [UInt8]) throws -> [UInt8]) throws -> SyncChannel {
        do {
            let handshake = try NoiseHandshake(role: .responder, staticKey: hubKey, prologue: prologue)
            let first = try readFrame(stream, deadline: deadline)
            let hello = try handshake.readFirst(first)
            let welcome = try admit(handshake.remoteStatic ?? [], hello)
            let second = try handshake.writeSecond(payload: welcome)
            try writeFrame(stream, second, deadline: deadline)
            let (send, receive) = try handshake.transport()
            return try SyncChannel(stream: stream, send: send, receive: receive, dictionary: dictionary, limits: limits,
                                   handshakeSent: second.count + headerBytes, handshakeReceived: first.count + headerBytes)
        } catch let error as Noise.Failure {
            throw Failure.handshake(error)
        }
    }

    /// Bound into the handshake hash: a peer speaking another protocol or version cannot complete it.
    static let prologue = Array("satchel sync v1".utf8)

    // MARK: Messages

    /// Messages `queue` holds for the next frame, and their bytes before compression.
    private var pending: [Message] = []
    private var pendingBytes = 0
    /// Messages a frame of several brought that `receive` has not handed out yet.
    private var inbox: [Message] = []
    private var inboxNext = 0
    /// The type byte of a frame that carries several messages (protocol 5).
    public static let packedType: UInt8 = 0
    /// Queued messages share a frame up to this many bytes before compression: deflate never
    /// grows data by more than a few bytes per 16 KiB, so such a frame stays under 64 KiB. A
    /// larger message goes in a frame of its own (init's TABLE frames are about 24 KiB each).
    public static let packLimit = 32 * 1024

    /// Sends `message` with whatever was queued before it, in one frame.
    public func send(_ message: Message, deadline: Deadline) throws {
        try queue(message, deadline: deadline)
        try flush(deadline: deadline)
    }

    /// Holds `message` for the next frame, so the messages of one flight share its tag, length
    /// and deflate flush. It goes out with the next `send`, `flush` or `receive` that has to wait
    /// for the peer (or earlier, when the queue reaches `packLimit`).
    public func queue(_ message: Message, deadline: Deadline) throws {
        let size = message.body.count + 11
        if !pending.isEmpty, pendingBytes + size > Self.packLimit { try flush(deadline: deadline) }
        pending.append(message)
        pendingBytes += size
    }

    /// Sends what `queue` holds: one message as a frame of its own (version 4's bytes), several
    /// as a frame of type 0.
    public func flush(deadline: Deadline) throws {
        guard !pending.isEmpty else { return }
        let messages = pending
        pending = []
        pendingBytes = 0
        if messages.count == 1 {
            try write(messages[0], deadline: deadline)
            return
        }
        try write(Message(type: Self.packedType, body: Self.pack(messages)), deadline: deadline)
    }

    /// The body of a frame of several messages (before compression): type | length | body each.
    public static func pack(_ messages: [Message]) -> [UInt8] {
        var packed = WireWriter()
        for message in messages {
            packed.raw([message.type])
            packed.data(message.body)
        }
        return packed.bytes
    }

    /// The messages of a frame of several, refused with `Failure.packed` when it does not read
    /// as such (none in it, one of type 0, a length past the end).
    public static func unpack(_ body: [UInt8]) throws -> [Message] {
        var reader = WireReader(body)
        var messages: [Message] = []
        do {
            while !reader.isAtEnd {
                let type = try reader.bytes(1)[0]
                guard type != Self.packedType else { throw Failure.packed(what: "message \(messages.count + 1) is itself of type 0") }
                messages.append(Message(type: type, body: try reader.data(limit: body.count)))
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure.packed(what: "message \(messages.count + 1) is cut short (\(error))")
        }
        guard !messages.isEmpty else { throw Failure.packed(what: "no message in it") }
        return messages
    }

    func write(_ message: Message, deadline: Deadline) throws {
        // Every body goes through the one deflate context of this direction, so each frame can
        // refer back to everything sent before it in the session (and to the dictionary).
        let plain: [UInt8] = [message.type, 1] + (try deflater.compress(message.body, flush: .sync))
        guard plain.count + Noise.tagLength <= Self.maxFrameBytes else { throw Failure.frameTooLarge(bytes: plain.count + Noise.tagLength) }
        let sealed: [UInt8]
        do { sealed = try send.encrypt(plain) } catch { throw Failure.decryption }
        try Self.writeFrame(stream, sealed, deadline: deadline)
        bytesSent += sealed.count + Self.headerBytes
        framesSent += 1
    }

    /// The largest frame received so far, header included (what a resumed download may repeat).
    public private(set) var largestFrameReceived = 0
    /// Bytes received per message type, frame header and tag included (the handshake is not a
    /// message and is not here): where a session's downlink goes, for `bench sync --downlink`.
    public private(set) var bytesReceivedByType: [UInt8: Int] = [:]

    public func receive(deadline: Deadline) throws -> Message {
        if inboxNext < inbox.count {
            defer { inboxNext += 1 }
            return inbox[inboxNext]
        }
        // Waiting for the peer: what this side queued goes out first (the peer may be waiting for it).
        try flush(deadline: deadline)
        let frame = try Self.readFrame(stream, deadline: deadline)
        bytesReceived += frame.count + Self.headerBytes
        largestFrameReceived = max(largestFrameReceived, frame.count + Self.headerBytes)
        framesReceived += 1
        let plain: [UInt8]
        do { plain = try receive.decrypt(frame) } catch { throw Failure.decryption }
        guard plain.count >= 2 else { throw Failure.shortMessage(bytes: plain.count) }
        var body = Array(plain[2...])
        if plain[1] & 1 == 1 {
            do throws(DeflateError) {
                body = try inflater.decompress(body)
            } catch {
                throw Failure.inflate(type: plain[0], cause: error)
            }
        }
        guard plain[0] == Self.packedType else {
            bytesReceivedByType[plain[0], default: 0] += frame.count + Self.headerBytes
            return Message(type: plain[0], body: body)
        }
        // Several messages: each as type | length | body, bounded by what the frame inflated to.
        let messages = try Self.unpack(body)
        // The frame's bytes on the link, shared out by the messages' sizes (for `bench sync --downlink`).
        let total = messages.reduce(0) { $0 + $1.body.count + 2 }
        var left = frame.count + Self.headerBytes
        for (index, message) in messages.enumerated() {
            let share = index == messages.count - 1 ? left : (frame.count + Self.headerBytes) * (message.body.count + 2) / total
            bytesReceivedByType[message.type, default: 0] += share
            left -= share
        }
        inbox = messages
        inboxNext = 1
        return messages[0]
    }

    // MARK: Frames

    static func writeFrame(_ stream: any ByteStream, _ bytes: [UInt8], deadline: Deadline) throws {
        guard !bytes.isEmpty else { throw Failure.emptyFrame }
        guard bytes.count <= maxFrameBytes else { throw Failure.frameTooLarge(bytes: bytes.count) }
        do {
            try stream.write([UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes, deadline: deadline)
        } catch {
            throw Failure.stream(error)
        }
    }

    static func readFrame(_ stream: any ByteStream, deadline: Deadline) throws -> [UInt8] {
        do {
            let header = try stream.read(exactly: headerBytes, deadline: deadline)
            let length = Int(header[0]) << 8 | Int(header[1])
            guard length > 0 else { throw Failure.emptyFrame }
            return try stream.read(exactly: length, deadline: deadline)
        } catch let error as StreamError {
            throw Failure.stream(error)
        }
    }
}
