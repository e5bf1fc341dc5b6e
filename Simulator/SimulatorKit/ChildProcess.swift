#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs a real executable as a child and collects what it printed, its exit status and its
/// peak memory (from wait4's rusage), with a deadline: a child that hangs is killed.
public struct ChildProcess {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// Peak resident set size, in KiB (`ru_maxrss`). Includes the spawning process's own
        /// peak (Linux carries it across exec): use GNU time to measure a small program.
        public var maxRSSKiB: Int
        public var timedOut: Bool
        public var succeeded: Bool { status == 0 && !timedOut }
    }

    public enum Failure: Error, CustomStringConvertible {
        case spawnFailed(path: String, errno: Int32)
        public var description: String {
            switch self {
            case .spawnFailed(let path, let code): return "cannot start \(path): \(String(cString: strerror(code)))"
            }
        }
    }

    public static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:],
                           stdin: String? = nil, timeoutSeconds: Double = 60) throws -> Result {
        try run(path, arguments, environment: environment, stdin: stdin, killAfterSeconds: nil, timeoutSeconds: timeoutSeconds).result
    }

    public static func monotonicSeconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// The directory of the running executable, where SwiftPM puts its sibling products.
    public static func executableDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return "." }
        let path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }

    /// Finds a sibling executable (`satchel` next to `satchel-sim`), or the one named by `override`.
    public static func sibling(_ name: String, override: String? = nil) -> String {
        if let override, !override.isEmpty { return override }
        return executableDirectory() + "/" + name
    }
}
