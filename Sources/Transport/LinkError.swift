public import SystemCalls

/// A failure of the link to the hub with its cause kept, not flattened to text: what was being
/// done (`code`), the error underneath (a `StreamError`, a channel or handshake failure, an
/// `Errno`), and where in satchel it was raised, so a technician reading `satchel sync` sees
/// "connection reset by peer (errno 104)" and where, not "stream closed" (service-lifecycle's
/// error struct: a `Code` over a private enum, so codes can be added without breaking a switch).
public struct LinkError: Error, CustomStringConvertible, CustomDebugStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable { case connect, session }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The connection to the hub could not be opened.
        public static let connect = Code(.connect)
        /// The connection was open and the session on it failed.
        public static let session = Code(.session)

        public var description: String {
            switch base {
            case .connect: return "cannot connect"
            case .session: return "the session broke off"
            }
        }
    }

    public let code: Code
    public let underlying: any Error
    public let file: String
    public let line: Int

    public init(_ code: Code, _ underlying: any Error, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.underlying = underlying
        self.file = file
        self.line = line
    }

    /// The system's errno behind the failure, when there is one.
    public var errno: Errno? {
        switch underlying {
        case let errno as Errno: return errno
        case StreamError.system(_, let code): return Errno(code)
        default: return nil
        }
    }

    public var description: String { "\(code): \(underlying) [\(file.split(separator: "/").last ?? Substring(file)):\(line)]" }
    public var debugDescription: String { "LinkError(code: \(code), underlying: \(String(reflecting: underlying)), file: \(file), line: \(line))" }
}
