import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The width of the rep's screen, so plain output fits it: a handheld's console is 32 columns,
/// and a line longer than that wraps wherever the terminal likes (an order over three lines, a
/// warning over seven). COLUMNS wins (a serial console answers no size query); else the
/// terminal's own size (TIOCGWINSZ); nil when neither says (a pipe): no wrapping then.
enum TerminalWidth {
    static func columns(of descriptor: Int32) -> Int? {
        if let text = Environment.value("COLUMNS"), let columns = Int(text), columns > 0 { return columns }
        var size = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    static let standardOutput = columns(of: STDOUT_FILENO)
    static let standardError = columns(of: STDERR_FILENO)

    /// Below this, ArgumentParser's help (options in a 26-column gutter) reads one word per line.
    static let narrow = 60
}

/// Line wrapping by words for a narrow screen. Width is counted in characters, leaving out the
/// colour sequences `Colour.paint` adds; continuation lines are indented two spaces more than
/// the line they continue, so a wrapped entry still reads as one.
enum Wrapping {
    static func visibleWidth(_ text: Substring) -> Int {
        var width = 0
        var inEscape = false
        for character in text {
            if inEscape {
                if character.isLetter { inEscape = false }
            } else if character == "\u{1B}" {
                inEscape = true
            } else {
                width += 1
            }
        }
        return width
    }

    /// `text` (which may hold several lines) with every line at most `width` visible characters.
    static func wrap(_ text: String, width: Int?) -> String {
        guard let width, width >= 8 else { return text }
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { wrapLine($0, width: width) }.joined(separator: "\n")
    }

    static func wrapLine(_ line: Substring, width: Int) -> String {
        guard visibleWidth(line) > width else { return String(line) }
        let indent = min(line.prefix(while: { $0 == " " }).count, width / 2)
        let hanging = min(indent + 2, width / 2)
        var lines: [String] = []
        var current = ""
        var currentWidth = 0
        func pad() -> Int { lines.isEmpty ? indent : hanging }
        func flush() {
            lines.append(String(repeating: " ", count: pad()) + current)
            current = ""
            currentWidth = 0
        }
        for piece in line.split(separator: " ") {
            var word = piece
            while !word.isEmpty {
                let room = width - pad()
                let wordWidth = visibleWidth(word)
                if (currentWidth == 0 ? wordWidth : currentWidth + 1 + wordWidth) <= room {
                    current += (currentWidth == 0 ? "" : " ") + word
                    currentWidth += (currentWidth == 0 ? 0 : 1) + wordWidth
                    break
                }
                if currentWidth > 0 {
                    flush()
                    continue
                }
                // A word longer than the line (an id, a path) is cut where the line ends.
                current = String(word.prefix(room))
                currentWidth = room
                word = word.dropFirst(room)
                flush()
            }
        }
        if currentWidth > 0 { flush() }
        return lines.joined(separator: "\n")
    }

    /// ArgumentParser's help, rendered without its own wrapping, re-laid for a narrow screen: an
    /// option or subcommand on its line, its description under it indented four spaces.
    static func help(_ text: String, width: Int) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let indent = line.prefix(while: { $0 == " " }).count
            let body = line.dropFirst(indent)
            if indent >= 2, let gap = body.indices.first(where: { body[$0] == " " && body.index(after: $0) < body.endIndex && body[body.index(after: $0)] == " " }) {
                let description = body[gap...].drop(while: { $0 == " " })
                if !description.isEmpty {
                    return wrapLine(line[..<gap], width: width) + "\n"
                        + wrapLine(Substring(String(repeating: " ", count: indent + 2) + description), width: width)
                }
            }
            return wrapLine(line, width: width)
        }.joined(separator: "\n")
    }
}

/// Every `print` of the satchel executable fits the screen (this shadows the standard library's
/// within the module, so no command can forget it). A line that starts a JSON document (`{` or
/// `[`) is printed as it is: wrapped JSON would no longer parse.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    let text = items.map { "\($0)" }.joined(separator: separator)
    if text.first == "{" || text.first == "[" { return Swift.print(text, terminator: terminator) }
    Swift.print(Wrapping.wrap(text, width: TerminalWidth.standardOutput), terminator: terminator)
}

extension Satchel {
    /// ArgumentParser's `main`, with help and usage errors laid out for a narrow screen.
    static func main() {
        do {
            var command = try parseAsRoot(nil)
            try command.run()
        } catch {
            let code = exitCode(for: error)
            let width = code == .success ? TerminalWidth.standardOutput : TerminalWidth.standardError
            var text: String
            if let width, width < TerminalWidth.narrow {
                text = Wrapping.help(fullMessage(for: error, columns: 10_000), width: width)
            } else {
                text = fullMessage(for: error)
            }
            if !text.isEmpty {
                text += "\n"
                text.withUTF8 { bytes in _ = write(code == .success ? STDOUT_FILENO : STDERR_FILENO, bytes.baseAddress, bytes.count) }
            }
            #if canImport(Glibc)
            Glibc.exit(code.rawValue)
            #else
            Musl.exit(code.rawValue)
            #endif
        }
    }
}

/// One entry of a list: its groups of fields on one line where the screen is wide, each group
/// on a line of its own (the later ones indented) where it is narrow, so an entry never breaks
/// in the middle of a name or an amount.
func entry(_ groups: [String]) -> String {
    let groups = groups.filter { !$0.isEmpty }
    guard let width = TerminalWidth.standardOutput, width < TerminalWidth.narrow else { return groups.joined(separator: "  ") }
    return groups.enumerated().map { $0.offset == 0 ? $0.element : "  " + $0.element }.joined(separator: "\n")
}
