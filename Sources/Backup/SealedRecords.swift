public import Journal
import Seal

/// A small record on the card that must survive a torn write and that nobody without the backup
/// key can forge or edit: the device's id-space epoch (`CardEpoch`) and its sync identity
/// (`CardSyncIdentity`). vfat has no atomic rename, so, as with the snapshot pointers, there are
/// two slot files and a write overwrites the one not holding the newest generation; a torn write
/// leaves the other.
///
/// Slot file: "SATR" | version u16 (1) | 0 u16 | generation u64 | length u32 | nonce (24) |
/// XChaCha20-Poly1305 ciphertext of the payload (length bytes, tag included). The additional
/// data binds the purpose, the device and the generation, so a slot cannot be passed off as
/// another record, another device's, or another generation.
struct SealedRecordSlots {
    let paths: [String]
    let purpose: String
    let device: String
    let key: SecretBytes
    let card: any FileSystem

    static let magic = Array("SATR".utf8)
    static let headerBytes = 4 + 2 + 2 + 8 + 4
    static let maxPayloadBytes = 4096

    init(layout: CardLayout, names: (String, String), purpose: String, key: BackupKey, card: any FileSystem) {
        paths = [Paths.join(layout.deviceDirectory, names.0), Paths.join(layout.deviceDirectory, names.1)]
        self.purpose = purpose
        self.device = layout.device
        self.key = key.subkey("satchel \(purpose) v1")
        self.card = card
    }

    struct Found {
        var generation: UInt64
        var payload: [UInt8]
        var slot: Int
    }

    enum Reading {
        case none
        case found(Found)
        /// Slots are there but none opens: damaged, or sealed under another key.
        case unreadable(String)
    }

    /// The newest slot that opens. A slot that cannot be read at all (I/O error) is an error,
    /// not an absence.
    func read() throws -> Reading {
        var newest: Found?
        var present = 0
        var problems: [String] = []
        for (index, path) in paths.enumerated() {
            let bytes: [UInt8]
            do {
                guard try card.fileSize(path) != nil else { continue }
                // One more than a slot can be: a longer file does not open, whatever stat says.
                bytes = try card.read(path, at: 0, count: Self.headerBytes + AEAD.nonceBytes + Self.maxPayloadBytes + AEAD.tagBytes + 1)
            } catch {
                throw BackupError.fileSystem(error)
            }
            present += 1
            guard let found = open(bytes, slot: index) else {
                problems.append("\(Paths.name(of: path)) does not open")
                continue
            }
            if found.generation > (newest?.generation ?? 0) { newest = found }
        }
        if let newest { return .found(newest) }
        return present == 0 ? .none : .unreadable(problems.joined(separator: ", "))
    }

    /// Writes `payload` as the next generation, into the slot not holding the newest one, and
    /// makes it durable before returning.
    func write(_ payload: [UInt8]) throws {
        var generation: UInt64 = 1, slot = 0
        if case .found(let newest) = try read() {
            generation = newest.generation + 1
            slot = 1 - newest.slot
        }
        let nonce = AEAD.randomNonce()
        let sealed = try AEAD.seal(payload, additionalData: additionalData(generation), nonce: nonce, key: key)
        var bytes = Self.magic
        LittleEndian.append(UInt16(1), to: &bytes)
        LittleEndian.append(UInt16(0), to: &bytes)
        LittleEndian.append(generation, to: &bytes)
        LittleEndian.append(UInt32(sealed.count), to: &bytes)
        bytes += nonce + sealed
        do { try card.writeDurably(paths[slot], bytes) } catch { throw BackupError.fileSystem(error) }
    }

    private func open(_ bytes: [UInt8], slot: Int) -> Found? {
        guard bytes.count > Self.headerBytes + AEAD.nonceBytes, Array(bytes[0..<4]) == Self.magic, LittleEndian.uint16(bytes, at: 4) == 1 else { return nil }
        let generation = LittleEndian.uint64(bytes, at: 8)
        let stored = LittleEndian.uint32(bytes, at: 16)  // compared before Int(): no trap on 32-bit
        let start = Self.headerBytes + AEAD.nonceBytes
        guard UInt64(stored) <= UInt64(Self.maxPayloadBytes + AEAD.tagBytes), bytes.count == start + Int(stored) else { return nil }
        let nonce = Array(bytes[Self.headerBytes..<start])
        guard let payload = try? AEAD.open(Array(bytes[start...]), additionalData: additionalData(generation), nonce: nonce, key: key) else { return nil }
        return Found(generation: generation, payload: payload, slot: slot)
    }

    private func additionalData(_ generation: UInt64) -> [UInt8] {
        var bytes = Array("satchel \(purpose) \(device) ".utf8)
        LittleEndian.append(generation, to: &bytes)
        return bytes
    }
}

/// The highest epoch of the device's id space (`Field.ClientID`) that may have issued ids, on the
/// card in `epoch-a`/`epoch-b`. A restore reads it, moves one past it and past what the restored
/// database knows, and records the new epoch here before the restored database is swapped in and
/// any id is issued; so a second restore from the same card, or one from a stale snapshot, moves
/// on again instead of handing out ids a lost database already used.
public struct CardEpoch {
    let slots: SealedRecordSlots

    public init(layout: CardLayout, key: BackupKey, card: any FileSystem) {
        slots = SealedRecordSlots(layout: layout, names: ("epoch-a", "epoch-b"), purpose: "epoch", key: key, card: card)
    }

    /// The recorded epoch; nil when the card has none yet (a card set up before epochs existed).
    public func read() throws -> Int64? {
        switch try slots.read() {
        case .none: return nil
        case .found(let found):
            guard found.payload.count == 8 else { throw BackupError.epochUnreadable(path: slots.paths[found.slot], detail: "a record of \(found.payload.count) bytes") }
            return Int64(bitPattern: LittleEndian.uint64(found.payload, at: 0))
        case .unreadable(let why):
            throw BackupError.epochUnreadable(path: Paths.directory(of: slots.paths[0]), detail: why)
        }
    }

    /// Records `epoch` unless the card already holds it or a later one. A record that does not
    /// open is written over: the device writing is the live one, and its database's epoch is at
    /// least any this card recorded for it (a restore and a move record both).
    public func record(_ epoch: Int64) throws {
        let recorded: Int64?
        do { recorded = try read() } catch BackupError.epochUnreadable { recorded = nil }
        if let recorded, recorded >= epoch { return }
        var payload: [UInt8] = []
        LittleEndian.append(UInt64(bitPattern: epoch), to: &payload)
        try slots.write(payload)
    }
}
