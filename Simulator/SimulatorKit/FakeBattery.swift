import Foundation

/// A battery as the kernel's `power_supply` class shows it in sysfs: a directory with `capacity`
/// (percent) and `status` ("Charging", "Discharging", "Full", "Not charging"), which
/// `satchel daemon --battery DIR` reads in place of `/sys/class/power_supply/<name>`. The
/// simulator drains and charges it by rewriting the two files.
public struct FakeBattery: Sendable {
    public enum Status: String, Sendable {
        case charging = "Charging"
        case discharging = "Discharging"
        case full = "Full"
        case notCharging = "Not charging"
    }

    public let directory: String

    /// Creates the directory and a battery at `percent`, `status`.
    public init(directory: String, percent: Int = 80, status: Status = .discharging) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try set(percent: percent, status: status)
    }

    /// Writes both files. Each is written to a temporary name and renamed into place, so the
    /// agent never reads a half-written value (sysfs reads are whole values too); the kernel
    /// ends each with a newline, and so do we.
    public func set(percent: Int, status: Status) throws {
        precondition((0...100).contains(percent), "a battery's capacity is 0...100 percent")
        try replace("capacity", "\(percent)\n")
        try replace("status", status.rawValue + "\n")
    }

    private func replace(_ name: String, _ text: String) throws {
        let path = directory + "/" + name
        let temporary = path + ".new"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    }
}
