import Agent
import ArgumentParser
import Backup
import Field
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error of the device's modules that says what went wrong and where (`description`) and
/// which documented exit code it ends the command with.
protocol CommandFailure: Error, CustomStringConvertible {
    var exitCode: Int32 { get }
}

extension FieldError: CommandFailure {}
extension BackupError: CommandFailure {}
extension AgentError: CommandFailure {}
extension DeviceLockError: CommandFailure {}
extension LifecycleError: CommandFailure {}

/// Runs a command body and turns a `CommandFailure` (FieldError, BackupError, AgentError...)
/// into its message on stderr and its documented exit code, so a failed command never looks
/// like a crash or a success.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as any CommandFailure {
        printError(error.description)
        throw ExitCode(error.exitCode)
    }
}

/// Every capture command: Agent saves (`DeviceAgent.capture`: the durable commit and the card
/// append), then the result is printed and flushed, with the warning when the card does not have
/// the change. `function` is what the command does (refused when this handheld's workplace
/// does not include it); `body` captures and returns what to print.
func capturing(_ options: HomeOptions, _ function: WorkplaceFunction, _ body: (DeviceDatabase) throws -> () throws -> Void) throws {
    try reportingErrors {
        try options.agent().capture(function, notice: printNotice, body) { saved in
            if let warning = saved.warning { printNotice(warning) }
            try saved.value()
            // The acknowledgement must leave the process now: stdout to a pipe is block-buffered,
            // and the snapshot that may follow can outlast a dying battery.
            fflushStdout()
        }
    }
}

/// The card's one-line summary, safe for a terminal: its message may quote what is on the card.
func describe(_ card: CardReport) -> String { TerminalText.safe(card.summary, multiline: true) }

func fflushStdout() { fflush(nil) }

func printNotice(_ message: String) {
    var line = Wrapping.wrap("satchel: " + TerminalText.safe(message, multiline: true), width: TerminalWidth.standardError) + "\n"
    line.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}

/// Reads one line of a secret (passphrase, PIN, password) from standard input: never from the
/// command line, where `ps` and shell history would keep it. On a terminal it prompts on stderr
/// and turns echo off while the rep types.
func readSecretInput(prompt: String) -> String? {
    let terminal = isatty(STDIN_FILENO) == 1
    var saved = termios()
    if terminal {
        var text = prompt
        text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
        tcgetattr(STDIN_FILENO, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
    }
    defer {
        if terminal {
            tcsetattr(STDIN_FILENO, TCSANOW, &saved)
            _ = write(STDERR_FILENO, "\n", 1)
        }
    }
    guard var line = readLine(strippingNewline: true) else { return nil }
    if line.hasSuffix("\r") { line.removeLast() }
    return line
}

func readSecret(_ what: String) throws -> String {
    guard let line = readSecretInput(prompt: what.prefix(1).uppercased() + what.dropFirst() + ": "), !line.isEmpty else {
        throw FieldError.invalidInput(what: what, value: "", reason: "give it on standard input")
    }
    guard line.utf8.count <= 1024 else { throw FieldError.invalidInput(what: what, value: "...", reason: "longer than 1024 bytes") }
    return line
}

func printError(_ message: String) {
    var line = Wrapping.wrap("satchel: error: " + TerminalText.safe(message, multiline: true), width: TerminalWidth.standardError) + "\n"
    line.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}

func printJSON<T: Encodable>(_ value: T) throws {
    Swift.print(TerminalText.escapingJSON(try FieldJSON.encode(value, pretty: false)))
}

enum Environment {
    static func value(_ name: String) -> String? {
        guard let pointer = getenv(name) else { return nil }
        return String(cString: pointer)
    }
}

/// ANSI colours for the customer's payment discipline, only on a terminal and never when
/// NO_COLOR is set (no-color.org).
enum Colour {
    static let enabled: Bool = isatty(STDOUT_FILENO) == 1 && Environment.value("NO_COLOR") == nil

    static func paint(_ text: String, _ colour: String) -> String {
        guard enabled else { return text }
        let code: String
        switch colour {
        case "green": code = "32"
        case "yellow": code = "33"
        case "red": code = "31"
        default: return text
        }
        return "\u{1B}[1;\(code)m\(text)\u{1B}[0m"
    }
}

/// Parses a positive whole number given as an option (dimensions), with Field's messages.
func positive(_ text: String, _ what: String) throws -> Int64 {
    try Quantity.parse(text, what: what)
}
