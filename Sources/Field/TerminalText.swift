/// Text from outside (master data from the office, notes, hub and sync messages, modem answers)
/// made safe to print on the rep's terminal. A customer name holding `ESC [2J` would clear the
/// screen, one holding an OSC sequence could retitle the window or worse, and a right-to-left
/// override makes "PLN 100" read as something else. Every such character is shown as a visible
/// escape (`\u{1B}`), so the rep and the technician see that it is there; letters of every
/// script (Łódź, Ёлка, Свети Георги) print as they are. JSON output needs none of this: the
/// encoder escapes control characters itself. It lives in Field so the hub's office commands and
/// audit log use the same rule for what the ERP and the devices send.
public enum TerminalText {
    /// `text` with C0 and C1 controls, DEL, bidirectional overrides/isolates and line separators
    /// replaced by `\u{...}`. With `multiline`, newlines and tabs are kept (notes, messages).
    public static func safe(_ text: String, multiline: Bool = false) -> String {
        guard text.unicodeScalars.contains(where: { needsEscape($0, multiline: multiline) }) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar, multiline: multiline) else {
                out.append(scalar)
                continue
            }
            out.append(contentsOf: "\\u{".unicodeScalars)
            let digits = String(scalar.value, radix: 16, uppercase: true)
            out.append(contentsOf: (digits.count < 2 ? "0" + digits : digits).unicodeScalars)
            out.append("}")
        }
        return String(out)
    }

    /// JSON text with DEL, C1 controls, bidi controls and line separators inside its strings
    /// written as `\u00XX` escapes: the encoder escapes C0 controls but leaves these raw, and
    /// `--json` is read on terminals too. The JSON means the same (the strings decode unchanged).
    /// Structural characters and the newlines of pretty output are all below 0x7F, so untouched.
    public static func escapingJSON(_ json: String) -> String {
        guard json.unicodeScalars.contains(where: { $0.value >= 0x7F && needsEscape($0, multiline: true) }) else { return json }
        var out = String.UnicodeScalarView()
        for scalar in json.unicodeScalars {
            guard scalar.value >= 0x7F, needsEscape(scalar, multiline: true) else {
                out.append(scalar)
                continue
            }
            let digits = String(scalar.value, radix: 16, uppercase: true)
            out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - digits.count) + digits).unicodeScalars)
        }
        return String(out)
    }

    public static func needsEscape(_ scalar: Unicode.Scalar, multiline: Bool) -> Bool {
        switch scalar.value {
        case 0x0A, 0x09: return !multiline
        case 0x00...0x1F, 0x7F...0x9F: return true  // C0, DEL, C1 (0x9B is a one-byte CSI)
        case 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidi marks, embeddings, overrides, isolates
        case 0x2028, 0x2029: return true  // line and paragraph separators
        default: return false
        }
    }
}
