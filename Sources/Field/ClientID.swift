/// The ids a device issues for its documents and changes, and the epoch that keeps them unique
/// across restores.
///
/// An id is `<device>-<sequence>` (at least six digits) in the device's first epoch, so every id
/// issued before epochs existed is still an epoch-1 id. Every restore from the card moves the
/// device into a new epoch (`Backup/EpochSlots.swift` records it on the card, sealed, before the
/// restored database is swapped in), and ids of epoch n > 1 are `<device>~<n>-<sequence>`. A
/// restored database may hand out a sequence number again (the card can be behind the lost
/// database), but never in the same epoch, so never the same id. Device ids are letters, digits,
/// '_' and '.', so no device id contains '~' or '-': the device, the epoch and the sequence can
/// always be read back from an id.
public enum ClientID {
    public static let epochMark: Character = "~"

    /// What comes before `-<sequence>`: the device id, with `~<epoch>` after the first epoch.
    public static func prefix(device: String, epoch: Int64) -> String {
        epoch <= 1 ? device : device + String(epochMark) + String(epoch)
    }

    public static func make(device: String, epoch: Int64, sequence: Int64) -> String {
        let digits = String(sequence)
        return prefix(device: device, epoch: epoch) + "-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    public struct Parts: Equatable, Sendable {
        public var device: String
        public var epoch: Int64
        public var sequence: Int64
        public init(device: String, epoch: Int64, sequence: Int64) {
            self.device = device; self.epoch = epoch; self.sequence = sequence
        }
    }

    /// The parts of an id this scheme made; nil for anything else.
    public static func parse(_ id: String) -> Parts? {
        guard let dash = id.firstIndex(of: "-") else { return nil }
        let head = id[..<dash], tail = id[id.index(after: dash)...]
        func decimal(_ text: Substring) -> Int64? { text.allSatisfy { $0.isASCII && $0.isNumber } ? Int64(text) : nil }
        guard let sequence = decimal(tail), sequence > 0 else { return nil }
        var device = head, epoch: Int64 = 1
        if let mark = head.firstIndex(of: epochMark) {
            let digits = head[head.index(after: mark)...]
            guard let parsed = decimal(digits), parsed > 1, digits.first != "0" else { return nil }
            device = head[..<mark]
            epoch = parsed
        }
        guard !device.isEmpty else { return nil }
        return Parts(device: String(device), epoch: epoch, sequence: sequence)
    }

    /// Whether `id` is one `device` issued (in any epoch).
    public static func belongs(_ id: String, to device: String) -> Bool { parse(id)?.device == device }

    /// The highest epoch among ids of `device` (1 when none carries one).
    public static func highestEpoch(in ids: some Sequence<String>, device: String) -> Int64 {
        ids.reduce(Int64(1)) { highest, id in
            guard let parts = parse(id), parts.device == device else { return highest }
            return max(highest, parts.epoch)
        }
    }
}
