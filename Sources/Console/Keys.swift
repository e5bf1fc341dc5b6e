/// A key as the console understands it: the handheld's keypad first (digits, arrows, Enter,
/// Esc, F1-F4), letters and punctuation when a keyboard is attached.
public enum Key: Equatable, Sendable {
    case character(Character)
    case enter, escape, backspace, tab
    case up, down, left, right, home, end, pageUp, pageDown, delete
    case function(Int)
}

/// Turns the bytes a terminal sends into keys. An escape sequence may arrive split over reads
/// (a serial line at 9600 baud), so an incomplete one waits for the next bytes; a lone ESC is the
/// Esc key once no more bytes follow within the caller's deadline (`flush`). Unknown sequences
/// are dropped whole, never typed as text; invalid UTF-8, C1 controls and format characters
/// (bidi overrides) are dropped.
struct KeyDecoder {
    private var pending: [UInt8] = []

    /// Whether bytes are waiting for the rest of a sequence.
    var isWaiting: Bool { !pending.isEmpty }

    mutating func feed(_ bytes: [UInt8]) -> [Key] {
        pending += bytes
        var keys: [Key] = []
        while !pending.isEmpty {
            guard let (key, used) = decode(pending) else { break }
            pending.removeFirst(used)
            if let key { keys.append(key) }
        }
        // Bound what waits: nothing legitimate is this long.
        if pending.count > 32 { pending.removeAll() }
        return keys
    }

    /// No more bytes came: a lone ESC is the Esc key, anything else incomplete is dropped.
    mutating func flush() -> [Key] {
        defer { pending.removeAll() }
        return pending == [0x1B] ? [.escape] : []
    }

    /// One key (nil: bytes that mean nothing, consumed) and how many bytes it took; nil when
    /// `bytes` is the start of a sequence that needs more.
    private func decode(_ bytes: [UInt8]) -> (Key?, Int)? {
        let first = bytes[0]
        switch first {
        case 0x0D, 0x0A: return (.enter, 1)
        case 0x7F, 0x08: return (.backspace, 1)
        case 0x09: return (.tab, 1)
        case 0x1B: return decodeEscape(bytes)
        case 0x00...0x1F: return (nil, 1)
        case 0x20...0x7E: return (.character(Character(Unicode.Scalar(first))), 1)
        default: return decodeUTF8(bytes)
        }
    }

    private func decodeEscape(_ bytes: [UInt8]) -> (Key?, Int)? {
        guard bytes.count >= 2 else { return nil }
        switch bytes[1] {
        case UInt8(ascii: "["):
            // CSI: parameters 0x30-0x3F, intermediates 0x20-0x2F, a final byte 0x40-0x7E.
            var index = 2
            while index < bytes.count, (0x20...0x3F).contains(bytes[index]) { index += 1 }
            guard index < bytes.count else { return nil }
            let final = bytes[index]
            guard (0x40...0x7E).contains(final) else { return (nil, index) }  // broken sequence: drop it
            let parameters = String(decoding: bytes[2..<index], as: UTF8.self)
            let used = index + 1
            switch final {
            case UInt8(ascii: "A"): return (.up, used)
            case UInt8(ascii: "B"): return (.down, used)
            case UInt8(ascii: "C"): return (.right, used)
            case UInt8(ascii: "D"): return (.left, used)
            case UInt8(ascii: "H"): return (.home, used)
            case UInt8(ascii: "F"): return (.end, used)
            case UInt8(ascii: "~"):
                switch parameters.split(separator: ";").first.map(String.init) ?? "" {
                case "1", "7": return (.home, used)
                case "4", "8": return (.end, used)
                case "3": return (.delete, used)
                case "5": return (.pageUp, used)
                case "6": return (.pageDown, used)
                case "11": return (.function(1), used)
                case "12": return (.function(2), used)
                case "13": return (.function(3), used)
                case "14": return (.function(4), used)
                default: return (nil, used)
                }
            default: return (nil, used)
            }
        case UInt8(ascii: "O"):
            guard bytes.count >= 3 else { return nil }
            switch bytes[2] {
            case UInt8(ascii: "A"): return (.up, 3)
            case UInt8(ascii: "B"): return (.down, 3)
            case UInt8(ascii: "C"): return (.right, 3)
            case UInt8(ascii: "D"): return (.left, 3)
            case UInt8(ascii: "P"): return (.function(1), 3)
            case UInt8(ascii: "Q"): return (.function(2), 3)
            case UInt8(ascii: "R"): return (.function(3), 3)
            case UInt8(ascii: "S"): return (.function(4), 3)
            case UInt8(ascii: "M"): return (.enter, 3)
            default: return (nil, 3)
            }
        case 0x1B:
            // ESC ESC: the first is the Esc key.
            return (.escape, 1)
        default:
            // Alt+key and the like: Esc, and the key is read on its own.
            return (.escape, 1)
        }
    }

    private func decodeUTF8(_ bytes: [UInt8]) -> (Key?, Int)? {
        let first = bytes[0]
        let length: Int
        switch first {
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return (nil, 1)
        }
        guard bytes.count >= length else {
            // Wait for the rest, unless what came already cannot be part of it.
            return bytes.dropFirst().allSatisfy({ $0 & 0xC0 == 0x80 }) ? nil : (nil, 1)
        }
        guard bytes[1..<length].allSatisfy({ $0 & 0xC0 == 0x80 }) else { return (nil, 1) }
        var decoder = UTF8()
        var iterator = bytes[0..<length].makeIterator()
        if case .scalarValue(let scalar) = decoder.decode(&iterator) {
            // C1 controls (U+0080-U+009F, 0x9B is a CSI) and format characters (bidi overrides) are not keys.
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse: return (nil, length)
            default: return (.character(Character(scalar)), length)
            }
        }
        return (nil, length)
    }
}
