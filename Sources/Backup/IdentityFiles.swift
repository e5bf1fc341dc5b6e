import FoundationEssentials
import Store
public import Journal
public import Seal
import SystemCalls
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The files in the data directory that make the device itself: its sync key (`device.key`,
/// the X25519 secret), the hub it is pinned to (`hub.pin`, `HOST:PORT HEX`), and the card's
/// backup key (`card.key`). They are written whole or not at all (temp file, fsync, rename,
/// directory fsync) and read strictly: a file that is there but not what it must be is refused
/// with what to do, never taken for absent and replaced, because replacing a device key makes a
/// new device the hub does not know.
public enum IdentityFiles {
    public static let deviceKeyName = "device.key"
    public static let hubPinName = "hub.pin"
    public static let cardKeyName = "card.key"
    public static let keyBytes = 32

    public static func deviceKeyPath(home: String) -> String { Paths.join(home, deviceKeyName) }
    public static func hubPinPath(home: String) -> String { Paths.join(home, hubPinName) }

    public struct Pin: Codable, Sendable, Equatable {
        public var address: String
        public var publicKey: String
        public init(address: String, publicKey: String) { self.address = address; self.publicKey = publicKey }
        enum CodingKeys: String, CodingKey {
            case address
            case publicKey = "public_key"
        }
        public var fileBytes: [UInt8] { Array("\(address) \(publicKey)\n".utf8) }
    }

    /// The most an identity file (a key, a pin, an id) can hold; more is not one of ours.
    static let maxFileBytes = 64 * 1024

    /// The file's bytes; nil when there is no such file. Any other failure to read is an error.
    static func bytes(_ path: String) throws -> [UInt8]? {
        let local = PosixFileSystem()
        do {
            guard try local.fileSize(path) != nil else { return nil }
            return try local.read(path, max: maxFileBytes)
        } catch {
            throw BackupError.fileSystem(error)
        }
    }

    /// A 32-byte key file (`device.key`, `card.key`): nil when absent, refused when damaged.
    public static func readKey(_ path: String, advice: String) throws -> [UInt8]? {
        guard let bytes = try bytes(path) else { return nil }
        guard bytes.count == keyBytes else {
            throw BackupError.identityFileDamaged(path: path, detail: "\(bytes.count) bytes, a key is \(keyBytes)", advice: advice)
        }
        return bytes
    }

    /// The device's X25519 secret: plain (32 bytes) on a handheld without an app password, else
    /// sealed under the data key (`SealedDeviceKey`), which only an unlocked process has.
    public static func readDeviceKey(home: String) throws -> [UInt8]? {
        let path = deviceKeyPath(home: home)
        guard let bytes = try bytes(path) else { return nil }
        if bytes.count == keyBytes { return bytes }
        guard SealedDeviceKey.looksSealed(bytes) else {
            throw BackupError.identityFileDamaged(path: path, detail: "\(bytes.count) bytes, neither a key (\(keyBytes)) nor a sealed one", advice: deviceKeyAdvice)
        }
        guard let key = SealedDeviceKey.key(home: home) else { throw BackupError.identityLocked(path: path) }
        return try SealedDeviceKey.open(bytes, key: key, path: path)
    }

    /// Writes the device key: sealed when this process holds the data key of `home` (an
    /// unlocked handheld with an app password), plain otherwise (a handheld without one: its
    /// first `satchel password set` or unlock seals it, `SealedDeviceKey.sealIfPlain`).
    public static func writeDeviceKey(home: String, _ key: [UInt8]) throws {
        let path = deviceKeyPath(home: home)
        if let sealing = SealedDeviceKey.key(home: home) {
            try writeAtomically(path, try SealedDeviceKey.seal(key, key: sealing, path: path))
        } else {
            try writeAtomically(path, key)
        }
    }

    public static let deviceKeyAdvice = "it was left as it is. If the card holds this device's backup, `satchel restore --force` brings the key back from it; "
        + "otherwise move the file away, run `satchel provision` for a new key and register it on the hub (satchel-hub device add --replaces)"

    public static func readHubPin(home: String) throws -> Pin? {
        let path = hubPinPath(home: home)
        guard let bytes = try bytes(path) else { return nil }
        guard let pin = pin(from: bytes) else {
            throw BackupError.identityFileDamaged(path: path, detail: "not `HOST:PORT HEX` on one line",
                                                  advice: "it was left as it is; pin the hub again: satchel provision --hub HOST:PORT --hub-key HEX")
        }
        return pin
    }

    /// `HOST:PORT HEX64\n` exactly, or nil.
    public static func pin(from bytes: [UInt8]) -> Pin? {
        guard bytes.last == UInt8(ascii: "\n"), bytes.count < 512 else { return nil }
        let text = String(decoding: bytes.dropLast(), as: UTF8.self)
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, validAddress(String(parts[0])), (try? Hex.decode(String(parts[1])))?.count == 32 else { return nil }
        return Pin(address: String(parts[0]), publicKey: String(parts[1]))
    }

    public static func validAddress(_ address: String) -> Bool {
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex else { return false }
        return UInt16(address[address.index(after: colon)...]) != nil
            && !address.contains(where: { $0 == " " || $0 == "\n" || !$0.isASCII })
    }

    /// Writes the file whole or not at all (`SystemCalls.replaceFile`: a 0600 temporary file
    /// beside it, never opened through a planted link, fsync, rename over the old one, fsync of
    /// the directory). A crash leaves either the old file or the new one.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        do { try SystemCalls.replaceFile(path, with: bytes) } catch { throw BackupError.fileSystem(FileSystemError(error)) }
    }
}

/// The device's sync identity (its key and the hub pin) as it travels on the card, sealed under
/// the backup key in `identity-a`/`identity-b` (`SealedRecordSlots`): written when the card is
/// set up and whenever the identity changes (`satchel provision`), restored with the database, so
/// a wiped handheld comes back as the same device and the hub accepts it.
public struct CardSyncIdentity {
    let slots: SealedRecordSlots

    public init(layout: CardLayout, key: BackupKey, card: any FileSystem) {
        slots = SealedRecordSlots(layout: layout, names: ("identity-a", "identity-b"), purpose: "sync identity", key: key, card: card)
    }

    public struct Record: Codable, Equatable, Sendable {
        /// Hex of `device.key`.
        public var deviceKey: String
        public var hubPin: IdentityFiles.Pin?
        public init(deviceKey: [UInt8], hubPin: IdentityFiles.Pin?) { self.deviceKey = Hex.encode(deviceKey); self.hubPin = hubPin }
        enum CodingKeys: String, CodingKey {
            case deviceKey = "device_key"
            case hubPin = "hub_pin"
        }
        public var deviceKeyBytes: [UInt8]? { (try? Hex.decode(deviceKey)).flatMap { $0.count == IdentityFiles.keyBytes ? $0 : nil } }
    }

    /// The record on the card; nil when there is none (or none that opens: the card then simply
    /// has no usable copy, and the files on the device stay as they are).
    public func read() throws -> Record? {
        guard case .found(let found) = try slots.read() else { return nil }
        return try? JSONDecoder().decode(Record.self, from: Data(found.payload))
    }

    /// Writes `record` unless the card holds exactly it already.
    @discardableResult
    public func write(_ record: Record) throws -> Bool {
        if try read() == record { return false }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try slots.write(Array(try encoder.encode(record)))
        return true
    }

    /// The record of the files in `home` now; nil without a device key.
    public static func current(home: String) throws -> Record? {
        guard let key = try IdentityFiles.readDeviceKey(home: home) else { return nil }
        return Record(deviceKey: key, hubPin: try IdentityFiles.readHubPin(home: home))
    }

    /// Puts the card's copy back into `home` where the device has none (a wiped handheld) or
    /// a damaged one (moved aside first, never deleted). A whole file that differs from the card's
    /// is kept: it is newer than the card, or another identity a technician chose. Returns what
    /// was done, for the restore report.
    public func restore(into home: String, now: Int64) throws -> [String] {
        guard let record = try read() else { return [] }
        var done: [String] = []
        // `current`: what the file holds now (a sealed device key opened), nil when absent.
        func put(_ path: String, _ bytes: [UInt8], current: Result<[UInt8]?, any Error>, write: ([UInt8]) throws -> Void) throws {
            switch current {
            case .success(let held?):
                if held != bytes { done.append("kept \(path): it differs from the card's copy") }
                return
            case .success(nil):
                try write(bytes)
                done.append("restored \(path) from the card")
            case .failure(BackupError.identityLocked):
                // Sealed under the data key of a locked handheld: whole, only not readable now.
                done.append("kept \(path): sealed, and the device is locked")
            case .failure:
                let aside = path + ".damaged-" + String(now)
                do { try PosixFileSystem().rename(path, to: aside) } catch { throw BackupError.restoreFailed("cannot move the damaged \(path) aside (\(error))") }
                try write(bytes)
                done.append("restored \(path) from the card (the damaged one is kept as \(aside))")
            }
        }
        if let key = record.deviceKeyBytes {
            try put(IdentityFiles.deviceKeyPath(home: home), key, current: Result { try IdentityFiles.readDeviceKey(home: home) },
                    write: { try IdentityFiles.writeDeviceKey(home: home, $0) })
        }
        if let pin = record.hubPin {
            let path = IdentityFiles.hubPinPath(home: home)
            try put(path, pin.fileBytes, current: Result { try IdentityFiles.readHubPin(home: home)?.fileBytes },
                    write: { try IdentityFiles.writeAtomically(path, $0) })
        }
        return done
    }
}

/// `device.key` sealed under the device data key, so the data directory of a locked handheld
/// holds no usable sync key (issue 14: "nothing usable in the data directory without the
/// password"). Two text lines:
///
///     satchel-sealed-device-key 1
///     sealed <24-byte nonce, then XChaCha20-Poly1305 of the 32-byte key, hex>
///
/// The first line and the file's name are the additional data. The sealing key (a subkey of the
/// data key, `DeviceAgent.activateDataKey` registers it) lives in this process's memory only,
/// per data directory, like the page key of the database (`PageEncryption.register`).
public enum SealedDeviceKey {
    static let header = "satchel-sealed-device-key 1\n"
    static let registry = Registry<SecretBytes>()

    public static func register(home: String, key: SecretBytes) { registry.set(normalized(home), key) }
    public static func unregister(home: String) { registry.set(normalized(home), nil) }
    public static func key(home: String) -> SecretBytes? { registry.get(normalized(home)) }

    static func normalized(_ home: String) -> String {
        var value = home
        while value.count > 1 && value.hasSuffix("/") { value.removeLast() }
        return value
    }

    static func additionalData(_ path: String) -> [UInt8] { Array((header + Paths.name(of: path)).utf8) }

    public static func looksSealed(_ bytes: [UInt8]) -> Bool { bytes.starts(with: Array(header.utf8)) }

    static func seal(_ plain: [UInt8], key: SecretBytes, path: String) throws -> [UInt8] {
        let nonce = AEAD.randomNonce()
        let sealed = nonce + (try AEAD.seal(plain, additionalData: additionalData(path), nonce: nonce, key: key))
        return Array((header + "sealed \(Hex.encode(sealed))\n").utf8)
    }

    static func open(_ bytes: [UInt8], key: SecretBytes, path: String) throws -> [UInt8] {
        func damaged(_ detail: String) -> BackupError { .identityFileDamaged(path: path, detail: detail, advice: IdentityFiles.deviceKeyAdvice) }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count == 3, lines[2].isEmpty, lines[1].hasPrefix("sealed "),
              let sealed = try? Hex.decode(String(lines[1].dropFirst(7))),
              sealed.count == AEAD.nonceBytes + IdentityFiles.keyBytes + AEAD.tagBytes else {
            throw damaged("not the two lines of a sealed device key")
        }
        guard let plain = try? AEAD.open(Array(sealed.dropFirst(AEAD.nonceBytes)), additionalData: additionalData(path),
                                         nonce: Array(sealed.prefix(AEAD.nonceBytes)), key: key), plain.count == IdentityFiles.keyBytes else {
            throw damaged("it does not open under this device's data key (changed, or another device's)")
        }
        return plain
    }

    /// Seals a plain `device.key` in place (a handheld from before app passwords, or a key
    /// written while no data key was held); true when it did. Nothing to do without the data key.
    @discardableResult
    public static func sealIfPlain(home: String) throws -> Bool {
        let path = IdentityFiles.deviceKeyPath(home: home)
        guard let key = key(home: home), let bytes = try IdentityFiles.bytes(path), bytes.count == IdentityFiles.keyBytes else { return false }
        try IdentityFiles.writeAtomically(path, try seal(bytes, key: key, path: path))
        return true
    }
}
