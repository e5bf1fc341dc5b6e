import Backup
import Field
import Journal
import Seal

/// The sealed device configuration: `satchel provision` writes `device.conf.seal` beside
/// `device.conf`, a keyed BLAKE2b of the file's bytes under a key derived from the device's own
/// key, and from then on every read checks it. A file edited outside satchel (by hand, by a
/// script) is refused as tampered, naming what to do, and left as it is; `satchel config set`
/// and `satchel provision --replace` seal what they write.
extension DeviceSettings {
    public static let sealName = "device.conf.seal"
    static func sealPath(home: String) -> String { Paths.join(home, sealName) }

    static func seal(of text: [UInt8], home: String) throws -> String? {
        guard let key = try IdentityFiles.readDeviceKey(home: home) else { return nil }
        let sealing = Blake2b.hash(Array("satchel device configuration seal v1".utf8), outputLength: 32, key: key)
        return Hex.encode(Blake2b.hash(text, outputLength: 32, key: sealing))
    }

    /// Checks the file's bytes against its seal, when it has one.
    static func checkSeal(_ bytes: [UInt8], home: String) throws {
        let local = PosixFileSystem()
        let sealPath = sealPath(home: home)
        guard local.exists(sealPath) else { return }
        // A locked handheld's device key is sealed under the data key: the seal is checked as
        // soon as the key is there (`DeviceAgent.activateDataKey`, before any data is read).
        // The settings read before that (attempts, idle lock) guard only the password prompt;
        // someone who can edit files here can copy data.key and guess offline anyway.
        do { _ = try IdentityFiles.readDeviceKey(home: home) } catch BackupError.identityLocked { return }
        let stored = (try? local.read(sealPath, max: FileSystemLimits.smallFile)).map { String(decoding: $0, as: UTF8.self).trimmingSpaces } ?? ""
        guard let expected = try seal(of: bytes, home: home), expected == stored.trimmingCharacters(in: "\n") else {
            throw AgentError.configurationDamaged(path: path(home: home), line: 0, reason: """
                does not match its seal (\(sealName)): it was changed outside satchel, so none of it is obeyed and nothing was overwritten. \
                A technician checks it and seals it again with `satchel provision --replace ...`
                """)
        }
    }

    /// Seals the file as written now (provisioning; later writes keep an existing seal up to date).
    public func writeSealed(home: String) throws {
        try write(home: home)
        guard let seal = try Self.seal(of: Array(text.utf8), home: home) else { return }
        try DurableFile.replace(Self.sealPath(home: home), with: Array((seal + "\n").utf8))
    }

    /// Before a write: the seal the new content will need, when the file is sealed (nil: it is
    /// not). Computed first, so a locked handheld refuses the write before anything changed.
    static func resealing(text: String, home: String) throws -> String? {
        guard PosixFileSystem().exists(sealPath(home: home)) else { return nil }
        return try seal(of: Array(text.utf8), home: home)
    }

    /// After a write: an existing seal follows the new content.
    static func reseal(_ seal: String?, home: String) throws {
        guard let seal else { return }
        try DurableFile.replace(sealPath(home: home), with: Array((seal + "\n").utf8))
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var text = self
        while text.last == set { text.removeLast() }
        return text
    }
}
