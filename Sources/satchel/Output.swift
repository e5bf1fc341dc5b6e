import ArgumentParser
import Field
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs a command body and turns a `FieldError` into its message on stderr and its
/// documented exit code, so a failed command never looks like a crash or a success.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as FieldError {
        printError(error.description)
        throw ExitCode(error.exitCode)
    }
}

func printError(_ message: String) {
    var line = "satchel: error: " + message + "\n"
    line.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}

func printJSON<T: Encodable>(_ value: T) throws {
    print(try FieldJSON.encode(value, pretty: false))
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
