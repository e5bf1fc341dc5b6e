import Field
import Journal
import SystemCalls
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The device's own settings, kept in its data directory (`<home>/device.conf`) so that a
/// command needs no flags once the device is provisioned: the card's mount point, the board and
/// modem profiles, the modem's port, the battery's sysfs directory. `satchel provision` and
/// `satchel card init` write it, `satchel config set` changes one key; flags and environment
/// variables still override it for one command.
///
/// The file is `key = value` lines (the format of the board profiles in hardware/boards), `#`
/// comments. It is read strictly: an unknown key, a line without `=`, a key given twice or a
/// value with control characters refuses the file, naming the line, and the file is left as it
/// is, never replaced by defaults (a device that silently lost its card path would capture
/// without a backup). It is written whole: temporary file, fsync, rename, fsync of the directory.
public struct DeviceSettings: Equatable, Sendable {
    public static let fileName = "device.conf"

    /// The keys, in the order the file lists them, with what each is for (`satchel config show`).
    public static let keys: [(name: String, help: String)] = [
        ("card", "mount point of the flash card holding the backup"),
        ("card_must_be_mounted", "yes: the card path must be a mounted file system (never back up to internal flash)"),
        ("board", "board profile (hardware/boards): serial port, modem, power key, battery, card"),
        ("modem_profile", "modem profile (hardware/modems), when the board's is not the one fitted"),
        ("modem_port", "the modem's serial port"),
        ("battery", "the battery's sysfs power_supply directory (capacity, status)"),
        ("idle_lock_minutes", "minutes without a command before the app password is asked again (1-1440, default 10)"),
        ("password_attempts", "wrong app passwords in a row before the keys are destroyed (3-50, default 10)"),
        ("apn", "the operator's access point name for sync over the modem (satchel provision --apn)"),
    ]

    public var values: [String: String] = [:]

    public init(_ values: [String: String] = [:]) { self.values = values }

    public subscript(key: String) -> String? {
        get { values[key] }
        set { values[key] = newValue }
    }

    public var card: String? { values["card"] }
    public var cardMustBeMounted: Bool { values["card_must_be_mounted"] == "yes" }
    public var board: String? { values["board"] }
    public var modemProfile: String? { values["modem_profile"] }
    public var modemPort: String? { values["modem_port"] }
    public var battery: String? { values["battery"] }
    public var idleLockMinutes: Int { values["idle_lock_minutes"].flatMap { Int($0) } ?? 10 }
    public var passwordAttempts: Int { values["password_attempts"].flatMap { Int($0) } ?? 10 }
    public var apn: String? { values["apn"] }

    public static func path(home: String) -> String { Paths.join(home, fileName) }

    /// Checks one value; the error says what is wrong with it.
    public static func validate(key: String, value: String) throws {
        guard keys.contains(where: { $0.name == key }) else {
            throw AgentError.configurationInvalid(key: key, value: value, reason: "unknown key; the keys are \(keys.map(\.name).joined(separator: ", "))")
        }
        guard !value.isEmpty, value.utf8.count <= 4096, !value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            throw AgentError.configurationInvalid(key: key, value: value, reason: "expected a non-empty value of at most 4096 bytes without control characters")
        }
        switch key {
        case "card", "battery", "modem_port":
            guard value.hasPrefix("/") else { throw AgentError.configurationInvalid(key: key, value: value, reason: "expected an absolute path") }
        case "card_must_be_mounted":
            guard value == "yes" || value == "no" else { throw AgentError.configurationInvalid(key: key, value: value, reason: "expected yes or no") }
        case "idle_lock_minutes":
            guard let minutes = Int(value), (1...1440).contains(minutes) else { throw AgentError.configurationInvalid(key: key, value: value, reason: "expected whole minutes from 1 to 1440") }
        case "password_attempts":
            guard let count = Int(value), (3...50).contains(count) else { throw AgentError.configurationInvalid(key: key, value: value, reason: "expected a count from 3 to 50") }
        default:
            break
        }
    }

    /// Reads `<home>/device.conf`; an absent file is an empty configuration.
    public static func load(home: String) throws -> DeviceSettings {
        let path = path(home: home)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT || errno == ENOTDIR { return DeviceSettings() }
            if errno == EACCES || errno == EPERM { throw FieldError.noPermission(path: path, detail: "cannot read the device configuration") }
            throw AgentError.configurationDamaged(path: path, line: 0, reason: "cannot be read (\(String(cString: strerror(errno))))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got < 0 { throw AgentError.configurationDamaged(path: path, line: 0, reason: "cannot be read (\(String(cString: strerror(errno))))") }
            if got == 0 { break }
            bytes += buffer[0..<got]
            if bytes.count > 64 * 1024 { throw AgentError.configurationDamaged(path: path, line: 0, reason: "larger than 64 KiB") }
        }
        try checkSeal(bytes, home: home)
        return try parse(bytes, path: path)
    }

    static func parse(_ bytes: [UInt8], path: String) throws -> DeviceSettings {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw AgentError.configurationDamaged(path: path, line: 0, reason: "not UTF-8 text")
        }
        var settings = DeviceSettings()
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw AgentError.configurationDamaged(path: path, line: index + 1, reason: "expected key = value")
            }
            let key = String(line[..<equals]).trimmingSpaces
            let value = String(line[line.index(after: equals)...]).trimmingSpaces
            guard settings.values[key] == nil else {
                throw AgentError.configurationDamaged(path: path, line: index + 1, reason: "\(key) is given twice")
            }
            do { try validate(key: key, value: value) } catch let error as AgentError {
                throw AgentError.configurationDamaged(path: path, line: index + 1, reason: error.description)
            }
            settings.values[key] = value
        }
        return settings
    }

    /// The file's text: every key set, in the documented order.
    public var text: String {
        var text = "# Satchel device configuration (satchel provision, satchel card init, satchel config set).\n"
        for key in Self.keys { if let value = values[key.name] { text += "\(key.name) = \(value)\n" } }
        return text
    }

    /// Writes the whole file durably: a temporary file, fsync, rename over the old one, fsync of
    /// the directory. A power cut leaves the old file or the new one, never a mix.
    public func write(home: String) throws {
        for (key, value) in values { try Self.validate(key: key, value: value) }
        let seal = try Self.resealing(text: text, home: home)
        try DurableFile.replace(Self.path(home: home), with: Array(text.utf8))
        try Self.reseal(seal, home: home)
    }

    /// `path` made absolute against the working directory: the configuration outlives the shell
    /// a technician typed a relative `--card` in.
    public static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/"), let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        var resolved = Paths.join(String(cString: cwd), path)
        while resolved.count > 1 && resolved.hasSuffix("/") { resolved.removeLast() }
        return resolved
    }
}

/// Replacing a small file so that a power cut leaves either the old or the new content
/// (`SystemCalls.replaceFile`: its temporary file is never followed through a planted link).
enum DurableFile {
    static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o600) throws {
        do { try SystemCalls.replaceFile(path, with: bytes, mode: mode, temporarySuffix: ".new") } catch {
            throw AgentError.storage(path: path, detail: "\(error.step) \(error.path): \(error.errno)")
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var scalars = Substring(self).unicodeScalars[...]
        while let first = scalars.first, first == " " || first == "\t" || first == "\r" { scalars.removeFirst() }
        while let last = scalars.last, last == " " || last == "\t" || last == "\r" { scalars.removeLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}
