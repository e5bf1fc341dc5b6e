import Field
import Journal

/// The modem's last signal reading and when it was taken, so `satchel status` and the
/// console's status page can show it without asking the modem: status is a read-only open that
/// must stay fast and change nothing, and the modem may be busy with a data session. The agent
/// records a reading whenever it talks to the modem anyway and may write: a sync over the modem,
/// `modem probe` and `modem connect`. Not the doctor, which promises to change nothing.
public struct SignalReading: Codable, Sendable, Equatable {
    public var dBm: Int
    /// When it was read, in milliseconds since 1970 (the device's clock).
    public var at: Int64

    public init(dBm: Int, at: Int64) {
        self.dBm = dBm
        self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case at
        case dBm = "dbm"
    }

    /// `<home>/signal`: one line, `<dBm> <milliseconds>`, written durably as `writes-stopped` is;
    /// a file a power cut tore reads as no reading, never as a wrong one.
    static let fileName = "signal"
    static let maxFileBytes = 64

    var fileBytes: [UInt8] { Array("\(dBm) \(at)\n".utf8) }

    /// The reading a `signal` file holds; nil when it holds anything else (damaged: as if never read).
    static func parse(_ bytes: [UInt8]) -> SignalReading? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasSuffix("\n") else { return nil }
        let parts = text.dropLast().split(separator: " ", omittingEmptySubsequences: false)
        // 27.007's +CSQ range is -113...-51 dBm; anything else is not a reading of ours.
        guard parts.count == 2, let dBm = Int(parts[0]), (-113 ... -51).contains(dBm), let at = Int64(parts[1]), at >= 0 else { return nil }
        return SignalReading(dBm: dBm, at: at)
    }

    /// How status says it, short enough for 32 columns after `Signal: `: `-83 dBm, 12 min ago`.
    public static func describe(_ reading: SignalReading?, now: Int64) -> String {
        guard let reading else { return "not read yet" }
        let minutes = max(0, now - reading.at) / 60_000
        let age = minutes < 60 ? "\(minutes) min ago" : minutes < 48 * 60 ? "\(minutes / 60) h ago" : "\(minutes / 1440) days ago"
        return "\(reading.dBm) dBm, \(age)"
    }
}

extension DeviceAgent {
    var signalFile: String { Paths.join(configuration.home, SignalReading.fileName) }

    /// The last recorded reading, nil when none was recorded (or the file is damaged). Reads one
    /// small file; never touches the modem.
    public func lastSignal() -> SignalReading? {
        guard let bytes = try? local.read(signalFile, max: SignalReading.maxFileBytes) else { return nil }
        return SignalReading.parse(bytes)
    }

    /// Records a reading the agent got from the modem anyway. Only for an initialised device
    /// (a technician probing a modem on a bench has no data directory to write into), and best
    /// effort: a full or read-only disk must not fail the sync or probe that read the signal.
    public func recordSignal(_ dBm: Int?) {
        guard let dBm, (-113 ... -51).contains(dBm), local.exists(Paths.join(configuration.home, DeviceDatabase.fileName)) else { return }
        try? local.writeDurably(signalFile, SignalReading(dBm: dBm, at: clock.nowMilliseconds()).fileBytes)
    }
}
