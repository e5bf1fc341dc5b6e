import Backup
public import Field
import Journal
public import Seal
public import Store
import SystemCalls
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The app password and the unlocked session of one data directory.
///
/// - `data.key`: the data key sealed under the app password (`SealedDataKey`).
/// - `password.attempts`: wrong passwords in a row and when the last one was, so the growing
///   delay and the count survive killing the process. At `password_attempts` (device.conf) the
///   data key is destroyed (overwritten, fsynced, removed) and `keys-destroyed` says when.
/// - The session: the unlocked data key in `<runtime>/satchel/session-<home hash>.key`, 0600 in
///   a 0700 directory on tmpfs (`$SATCHEL_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/satchel`, else
///   `/dev/shm/satchel-<uid>`): gone at every reboot, never in the data directory. Its mtime is
///   the last use; a command finding it older than `idle_lock_minutes` removes it (locked).
///   A file rather than the kernel keyring: the daemon (systemd, its own session keyring),
///   the console and one-shot commands all need it, and a private tmpfs file has one set of
///   rules everyone can check with `ls -l`; the keyring's per-session/per-user scoping and
///   the lack of a syscall wrapper in Swift's Glibc make it the harder thing to get right.
public struct DeviceLock {
    public static let keyFileName = "data.key"
    public static let attemptsFileName = "password.attempts"
    public static let destroyedFileName = "keys-destroyed"

    public let home: String
    public let settings: DeviceSettings
    public let cost: PasswordHash.Cost
    let nowMilliseconds: () -> Int64

    public init(home: String, settings: DeviceSettings, cost: PasswordHash.Cost = .handheld, nowMilliseconds: @escaping () -> Int64 = { SystemClock().nowMilliseconds() }) {
        self.home = home
        self.settings = settings
        self.cost = cost
        self.nowMilliseconds = nowMilliseconds
    }

    var keyPath: String { Paths.join(home, Self.keyFileName) }
    var attemptsPath: String { Paths.join(home, Self.attemptsFileName) }
    var destroyedPath: String { Paths.join(home, Self.destroyedFileName) }

    public enum State: Equatable, Sendable { case noPassword, locked, unlocked, destroyed }

    public var state: State {
        if access(destroyedPath, F_OK) == 0 { return .destroyed }
        guard access(keyPath, F_OK) == 0 else { return .noPassword }
        return ((try? session.read(idleMinutes: settings.idleLockMinutes, touch: false)) ?? nil) != nil ? .unlocked : .locked
    }

    public var hasPassword: Bool { access(keyPath, F_OK) == 0 || access(destroyedPath, F_OK) == 0 }

    var session: SessionKeyFile { SessionKeyFile(home: home, nowMilliseconds: nowMilliseconds) }

    /// The session key file when there is one (whatever its age): what a wipe destroys.
    var sessionPath: String? {
        let path = session.path
        return access(path, F_OK) == 0 ? path : nil
    }

    /// The unlocked data key, nil when no password is set (a plain device, as before).
    /// Refreshes the idle timer.
    public func unlockedKey() throws -> DataKey? {
        try refuseIfDestroyed()
        guard access(keyPath, F_OK) == 0 else { return nil }
        guard let key = try session.read(idleMinutes: settings.idleLockMinutes, touch: true) else { throw DeviceLockError.locked(home: home) }
        return key
    }

    /// Checks `password` against `data.key`; on success starts the session. A wrong one counts,
    /// waits longer each time, and at the configured count destroys the keys.
    @discardableResult
    public func unlock(password: String) throws -> DataKey {
        try refuseIfDestroyed()
        guard let bytes = try? PosixFileSystem().read(keyPath, max: FileSystemLimits.smallFile) else { throw DeviceLockError.noPassword(home: home) }
        let record = try SealedDataKey.parse(bytes, path: keyPath)
        var attempts = readAttempts()
        // The delay owed for the last failure, even if the process that made it was killed.
        let owed = attempts.lastFailure + Self.delayMilliseconds(afterFailures: attempts.count) - nowMilliseconds()
        if attempts.count > 0 && owed > 0 { usleep(UInt32(min(owed, 60_000)) * 1000) }
        guard let key = try record.open(password: password) else {
            attempts.count += 1
            attempts.lastFailure = nowMilliseconds()
            if attempts.count >= settings.passwordAttempts {
                try destroyKeys()
                throw DeviceLockError.keysDestroyed(home: home, at: attempts.lastFailure)
            }
            try writeAttempts(attempts)
            usleep(UInt32(Self.delayMilliseconds(afterFailures: attempts.count)) * 1000)
            throw DeviceLockError.wrongPassword(attemptsLeft: settings.passwordAttempts - attempts.count)
        }
        if attempts.count > 0 { try? PosixFileSystem().remove(attemptsPath) }
        try session.write(key)
        return key
    }

    /// Ends the session: the key file in the runtime directory is overwritten and removed.
    public func lock() { session.remove() }

    /// Sets the first app password (a new data key, or the card's backup key when the device
    /// already has one: the card stays readable) and unlocks.
    /// `key`: the key to seal (a restore's); else the one a restore left in the session, else
    /// the card's plaintext backup key, else a new one.
    public func setPassword(_ password: String, key given: DataKey? = nil) throws -> DataKey {
        try refuseIfDestroyed()
        guard access(keyPath, F_OK) != 0 else { throw DeviceLockError.passwordAlreadySet(home: home) }
        try Self.checkAcceptable(password)
        // Where the session will live is checked before anything is written.
        _ = try session.checkedDirectory(creating: true)
        let cardKeyPath = Paths.join(home, IdentityFiles.cardKeyName)
        let key: DataKey
        if let given {
            key = given
        } else if let restored = try session.read(idleMinutes: settings.idleLockMinutes, touch: false) {
            key = restored
        } else if let existing = try IdentityFiles.readKey(cardKeyPath, advice: DeviceAgent.cardKeyAdvice) {
            key = DataKey(SecretBytes(existing))
        } else {
            key = DataKey.generate()
        }
        try IdentityFiles.writeAtomically(keyPath, Array(try SealedDataKey.seal(key, password: password, cost: cost).text.utf8))
        try session.write(key)
        return key
    }

    /// Replaces the password; the data key stays (nothing is re-encrypted). Counts a wrong current one.
    public func changePassword(current: String, new: String) throws {
        try Self.checkAcceptable(new)
        let key = try unlock(password: current)
        try IdentityFiles.writeAtomically(keyPath, Array(try SealedDataKey.seal(key, password: new, cost: cost).text.utf8))
    }

    static func checkAcceptable(_ password: String) throws {
        guard password.count >= 4 else { throw DeviceLockError.unacceptablePassword(reason: "it must be at least 4 characters") }
        guard password.utf8.count <= 256 else { throw DeviceLockError.unacceptablePassword(reason: "it must be at most 256 bytes") }
        guard !password.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw DeviceLockError.unacceptablePassword(reason: "it must not contain control characters")
        }
    }

    /// How long the next wrong password will make the rep wait (the delay `unlock` sleeps after
    /// it), 0 with no app password: the console says it before it checks, so a wait that grows
    /// with each wrong one is seen rather than taken for a hang.
    public var delayAfterNextFailureMilliseconds: Int64 {
        guard access(keyPath, F_OK) == 0 else { return 0 }
        return Self.delayMilliseconds(afterFailures: readAttempts().count + 1)
    }

    /// 0.25 s after the first wrong password, doubling, at most 30 s.
    static func delayMilliseconds(afterFailures count: Int) -> Int64 {
        guard count > 0 else { return 0 }
        return min(Int64(250) << Int64(min(count - 1, 16)), 30_000)
    }

    func refuseIfDestroyed() throws {
        guard access(destroyedPath, F_OK) == 0 else { return }
        let at = ((try? PosixFileSystem().read(destroyedPath, max: FileSystemLimits.smallFile)).flatMap { Int64(String(decoding: $0, as: UTF8.self).trimmingSpaces) }) ?? 0
        throw DeviceLockError.keysDestroyed(home: home, at: at)
    }

    /// Crypto-erase: the only copy of the data key on the device is overwritten with zeros,
    /// fsynced and removed; the session goes too. The database stays, unreadable. The zeros are
    /// written and fsynced on one descriptor (`SystemCalls.overwriteWithZeros`); if the storage
    /// fails them the file is removed all the same: the erase is never undone by a bad write.
    public func destroyKeys() throws {
        let local = PosixFileSystem()
        try? SystemCalls.overwriteWithZeros(keyPath)
        try? local.remove(keyPath)
        try? local.remove(attemptsPath)
        session.remove()
        try IdentityFiles.writeAtomically(destroyedPath, Array("\(nowMilliseconds())\n".utf8))
    }

    struct Attempts { var count = 0; var lastFailure: Int64 = 0 }

    func readAttempts() -> Attempts {
        guard let bytes = try? PosixFileSystem().read(attemptsPath, max: FileSystemLimits.smallFile) else { return Attempts() }
        let fields = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        // A damaged counter counts as many failures as allowed less one: never as none.
        guard fields.count == 2, let count = Int(fields[0]), let last = Int64(fields[1]), count >= 0 else {
            return Attempts(count: max(settings.passwordAttempts - 1, 0), lastFailure: nowMilliseconds())
        }
        return Attempts(count: count, lastFailure: last)
    }

    func writeAttempts(_ attempts: Attempts) throws {
        try IdentityFiles.writeAtomically(attemptsPath, Array("\(attempts.count) \(attempts.lastFailure)\n".utf8))
    }
}

/// The unlocked data key of one data directory, in the runtime directory (see `DeviceLock`).
struct SessionKeyFile {
    let home: String
    let nowMilliseconds: () -> Int64

    static func runtimeDirectory() -> String {
        if let explicit = getenv("SATCHEL_RUNTIME_DIR").map({ String(cString: $0) }), !explicit.isEmpty { return explicit }
        if let xdg = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), !xdg.isEmpty { return Paths.join(xdg, "satchel") }
        return "/dev/shm/satchel-\(getuid())"
    }

    var path: String {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let absolute = realpath(home, &resolved) != nil ? String(cString: resolved) : home
        let name = Hex.encode(Blake2b.hash(Array(absolute.utf8), outputLength: 16))
        return Paths.join(Self.runtimeDirectory(), "session-\(name).key")
    }

    /// Creates the runtime directory 0700 if needed and refuses one that is not private or not
    /// in memory (a key there would survive a reboot).
    func checkedDirectory(creating: Bool) throws -> String {
        let directory = Self.runtimeDirectory()
        if creating { _ = mkdir(directory, 0o700) }
        var info = stat()
        guard lstat(directory, &info) == 0 else { throw DeviceLockError.runtimeDirectoryUnsafe(path: directory, reason: "it does not exist") }
        guard (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == getuid(), info.st_mode & 0o077 == 0 else {
            throw DeviceLockError.runtimeDirectoryUnsafe(path: directory, reason: "it must be a directory of this user with mode 0700")
        }
        guard Self.isInMemory(directory) else {
            throw DeviceLockError.runtimeDirectoryUnsafe(path: directory, reason: "it is not on tmpfs, so the key would survive a reboot")
        }
        return directory
    }

    /// Whether the file system holding `directory` is tmpfs or ramfs: the longest mount point
    /// in /proc/self/mounts that contains it.
    static func isInMemory(_ directory: String) -> Bool {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard realpath(directory, &resolved) != nil, let mounts = readProcFile("/proc/self/mounts") else { return false }
        let path = String(cString: resolved)
        var best: (point: String, type: String)?
        for line in String(decoding: mounts, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            let point = String(fields[1]).replacingOctalSpaces
            let inside = point == "/" || path == point || path.hasPrefix(point + "/")
            if inside && point.count >= (best?.point.count ?? -1) { best = (point, String(fields[2])) }
        }
        return best.map { $0.type == "tmpfs" || $0.type == "ramfs" } ?? false
    }

    /// /proc files report size 0: read until end of file.
    static func readProcFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 8192)
        while bytes.count < 1 << 20 {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            bytes += buffer[0..<got]
        }
        return bytes
    }

    /// The key written whole or not at all, as every small file of the agent is
    /// (`SystemCalls.replaceFile`: a temporary file made O_EXCL|O_NOFOLLOW 0600, every byte
    /// written, fsynced, close checked, renamed, the directory fsynced). The runtime directory is
    /// tmpfs, so the fsync is not for a power cut: it is the one writer, whose short writes and
    /// write, fsync and close errors are reported rather than leaving a short key behind.
    func write(_ key: DataKey) throws {
        _ = try checkedDirectory(creating: true)
        let path = self.path
        do {
            try SystemCalls.replaceFile(path, mode: 0o600) { fd in
                try key.secret.withUnsafeBytes { (raw) throws(Errno) in try SystemCalls.writeAll(fd, raw) }
            }
        } catch let error as ReplaceFileError {
            throw DeviceLockError.runtimeDirectoryUnsafe(path: path, reason: "cannot write it: \(error.step) \(error.path): \(error.errno)")
        }
    }

    /// The key, or nil when there is no session or it has been idle too long (then it is removed).
    func read(idleMinutes: Int, touch: Bool) throws -> DataKey? {
        guard (try? checkedDirectory(creating: false)) != nil else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_uid == getuid(), info.st_mode & 0o077 == 0, info.st_size == DataKey.bytes else { return nil }
        let lastUse = Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec) / 1_000_000
        if nowMilliseconds() - lastUse > Int64(idleMinutes) * 60_000 {
            remove()
            return nil
        }
        let secret = SecretBytes(count: DataKey.bytes) { buffer in _ = Glibc.read(fd, buffer.baseAddress, buffer.count) }
        if touch { _ = futimens(fd, nil) }
        return DataKey(secret)
    }

    func remove() {
        let path = self.path
        try? SystemCalls.overwriteWithZeros(path)
        unlink(path)
    }
}

private extension String {
    /// /proc/self/mounts writes a space in a mount point as \040.
    var replacingOctalSpaces: String {
        split(separator: "\\040", omittingEmptySubsequences: false).joined(separator: " ")
    }
}
