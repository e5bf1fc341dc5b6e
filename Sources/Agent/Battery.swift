public import Journal

/// The battery as the kernel's `power_supply` class shows it in sysfs
/// (`/sys/class/power_supply/<name>/capacity` and `status`); the path comes from the board
/// profile, and the simulator drives the same two files.
public struct BatteryReading: Codable, Sendable, Equatable {
    public enum Level: String, Codable, Sendable { case normal, low, critical }

    public var percent: Int
    public var charging: Bool
    public var level: Level

    public static func read(directory: String, lowPercent: Int, criticalPercent: Int, fileSystem: any FileSystem = PosixFileSystem()) -> BatteryReading? {
        func text(_ name: String) -> String? {
            guard let bytes = try? fileSystem.read(Paths.join(directory, name), max: 256) else { return nil }
            return String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }
        }
        guard let capacity = text("capacity").flatMap({ Int($0) }), (0...100).contains(capacity) else { return nil }
        // "Charging" and "Full" mean power is connected; "Discharging", "Not charging" and unknown do not count on it.
        let status = text("status") ?? "Unknown"
        let charging = status == "Charging" || status == "Full"
        let level: Level = charging ? .normal : capacity <= criticalPercent ? .critical : capacity <= lowPercent ? .low : .normal
        return BatteryReading(percent: capacity, charging: charging, level: level)
    }
}
