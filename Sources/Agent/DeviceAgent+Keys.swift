import Backup
import Field
import Journal
import Seal
import Store
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The app password on the agent: what `satchel unlock|lock|password` and the console's unlock
/// screen call. Every open of the database goes through `activateDataKey` first.
extension DeviceAgent {
    public var deviceLock: DeviceLock {
        DeviceLock(home: configuration.home, settings: configuration.settings, cost: configuration.keyCost,
                   nowMilliseconds: { [clock] in clock.nowMilliseconds() })
    }

    /// Unlocks the device with the app password: the data key into the session, and a plain
    /// database left by an interrupted `password set` is encrypted now.
    public func unlock(password: String) throws {
        let key = try deviceLock.unlock(password: password)
        try sealDatabaseIfPlain(with: key)
        try sealIdentity(with: key)
    }

    /// Locks the device: the session ends; the next command asks for the password.
    public func lock() {
        deviceLock.lock()
        SealedDeviceKey.unregister(home: configuration.home)
    }

    /// The device key's sealing key into this process (`SealedDeviceKey`), and a plain
    /// `device.key` (from before app passwords, or written by provision or restore before the
    /// key was held) sealed now. The first time in a process, the sealed configuration is
    /// checked again: its seal needs the device key, which a locked handheld cannot read.
    func sealIdentity(with key: DataKey) throws {
        let home = configuration.home
        let first = SealedDeviceKey.key(home: home) == nil
        SealedDeviceKey.register(home: home, key: key.subkey("satchel device key v1"))
        try SealedDeviceKey.sealIfPlain(home: home)
        if first { _ = try DeviceSettings.load(home: home) }
    }

    /// `satchel password set`: the first app password. An existing plain database (a device
    /// from before app passwords) is encrypted under the new data key, and a plaintext backup
    /// key (`card.key`) becomes the data key and leaves the data directory.
    public func setPassword(_ password: String) throws {
        let key = try deviceLock.setPassword(password)
        if local.exists(configuration.keyFile), (try? IdentityFiles.readKey(configuration.keyFile, advice: Self.cardKeyAdvice)) != nil {
            try IdentityFiles.writeAtomically(configuration.keyFile, Self.cardKeyMarker)
        }
        try sealDatabaseIfPlain(with: key)
        try sealIdentity(with: key)
    }

    public func changePassword(current: String, new: String) throws {
        try deviceLock.changePassword(current: current, new: new)
    }

    /// What `card.key` holds once the backup key is the data key (sealed in `data.key`): the file
    /// still says "this device backs up to a card", and holds no key.
    static let cardKeyMarker = Array("satchel: the backup key is the data key, sealed in data.key\n".utf8)

    /// The unlocked data key, registered for the data directory so every database opened there
    /// is sealed with it; nil on a device without an app password. Throws `locked`.
    @discardableResult
    func activateDataKey() throws -> DataKey? {
        guard let key = try deviceLock.unlockedKey() ?? (try restoredWithoutPassword()) else { return nil }
        if PageEncryption.registered(for: Paths.join(configuration.home, DeviceDatabase.fileName)) == nil {
            try key.pageEncryption().register(directory: configuration.home)
        }
        try sealIdentity(with: key)
        return key
    }

    /// A sealed database restored from the card onto a device without `data.key` (internal
    /// storage lost): its key is the one `restore` unwrapped from the passphrase, held in the
    /// tmpfs session only (`keepRestoredKey`) until `satchel password set` seals it under a new
    /// app password. (A `card.key` holding it, from a restore before that, still works.)
    func restoredWithoutPassword() throws -> DataKey? {
        guard !deviceLock.hasPassword, PageEncryption.looksSealed(Paths.join(configuration.home, DeviceDatabase.fileName)) else { return nil }
        if let key = try deviceLock.session.read(idleMinutes: configuration.settings.idleLockMinutes, touch: true) { return key }
        if let bytes = try? IdentityFiles.readKey(configuration.keyFile, advice: Self.cardKeyAdvice), bytes.count == DataKey.bytes {
            return DataKey(SecretBytes(bytes))
        }
        // Only the marker a restore left says the key was held in memory; anything else (a file
        // that is not SQLite at all, another device's) is for the database checks to name.
        guard (try? local.read(configuration.keyFile, max: FileSystemLimits.smallFile)) == Self.cardKeyMarker else { return nil }
        throw DeviceLockError.restoredKeyGone(home: configuration.home)
    }

    /// Seals every database in the data directory with the page key of `backupKey` (the data
    /// key) while `body` runs (a restore): a sealed snapshot opens, a plain one stays plain. On a
    /// device without an app password the key is dropped again afterwards, so the plain
    /// database a plain card restores is not refused as "plain where an encrypted one should be".
    func withPageKey<T>(from backupKey: BackupKey, _ body: () throws -> T) throws -> T {
        let path = Paths.join(configuration.home, DeviceDatabase.fileName)
        guard PageEncryption.registered(for: path) == nil else { return try body() }
        try DataKey(SecretBytes(backupKey.bytes)).pageEncryption().register(directory: configuration.home)
        defer { if !deviceLock.hasPassword { PageEncryption.unregister(directory: configuration.home) } }
        return try body()
    }

    /// The card's key when the app password holds it.
    func dataBackupKey() throws -> BackupKey? {
        guard let bytes = try? local.read(configuration.keyFile, max: FileSystemLimits.smallFile), bytes == Self.cardKeyMarker else { return nil }
        guard let key = try activateDataKey() else { throw DeviceLockError.locked(home: configuration.home) }
        return key.backupKey
    }

    /// Encrypts a plain `satchel.db` in place: a sealed copy beside it (VACUUM INTO through the
    /// encrypted VFS), checked, fsynced, renamed over the plain one; the plain one's WAL is
    /// checkpointed and gone first. Refused, with the file as it was, while another process
    /// has the database open (the daemon: stop it first).
    func sealDatabaseIfPlain(with key: DataKey) throws {
        let path = Paths.join(configuration.home, DeviceDatabase.fileName)
        guard case .sqlite = DatabaseFile.inspect(path) else { return }
        let sealed = path + ".sealing"
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(sealed + suffix) }
        let encryption = try key.pageEncryption()
        do {
            var plainOptions = Database.Options()
            plainOptions.encryption = .plain
            plainOptions.uriFilenames = true
            do {
                let plain = try Database(path: path, options: plainOptions)
                try plain.checkpoint()
                try plain.vacuum(into: sealed, encryption: encryption)
            }
            guard access(path + "-wal", F_OK) != 0 || fileSize(path + "-wal") == 0 else {
                throw DeviceLockError.sealingFailed(path: path, detail: "another process has it open (is `satchel daemon` running? stop it first)")
            }
            var sealedOptions = Database.Options()
            sealedOptions.encryption = .key(encryption)
            do {
                let check = try Database(path: sealed, options: sealedOptions)
                let problems = try check.integrityCheck()
                guard problems.isEmpty else { throw DeviceLockError.sealingFailed(path: path, detail: "the encrypted copy failed integrity_check: \(problems.prefix(3).joined(separator: "; "))") }
                try check.checkpoint()
            }
            try PosixFileSystem().sync(sealed)
            unlink(path + "-wal")
            unlink(path + "-shm")
            guard rename(sealed, path) == 0 else { throw DeviceLockError.sealingFailed(path: path, detail: "rename failed (errno \(errno))") }
            try PosixFileSystem().syncDirectory(configuration.home)
        } catch let error as StoreError {
            for suffix in ["", "-wal", "-shm", "-journal"] { unlink(sealed + suffix) }
            throw DeviceLockError.sealingFailed(path: path, detail: error.description)
        } catch let error as FileSystemError {
            for suffix in ["", "-wal", "-shm", "-journal"] { unlink(sealed + suffix) }
            throw DeviceLockError.sealingFailed(path: path, detail: "\(error)")
        } catch {
            for suffix in ["", "-wal", "-shm", "-journal"] { unlink(sealed + suffix) }
            throw error
        }
        encryption.register(directory: configuration.home)
    }

    private func fileSize(_ path: String) -> Int64 {
        var info = stat()
        return stat(path, &info) == 0 ? Int64(info.st_size) : 0
    }
}
