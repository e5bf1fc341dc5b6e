import Foundation
import Modem
import SatchelTesting
import SystemCalls
import Testing
import Transport

/// The serial path (UUCP lock, open, termios, reads and writes, close) under errnos forced by the
/// syscall seam's driver, on the simulator's pty: what the agent sees when the kernel says EINTR,
/// EAGAIN, EIO or ENOSPC. The simulator runs on its own thread, so the faults (this thread's
/// only) hit the agent's side alone.
@Suite("Serial port through the syscall seam")
struct SerialSeamTests {
    /// One row: faults in force while the port opens, and what must come of it.
    struct OpenCase: Sendable, CustomTestStringConvertible {
        var name: String
        var faults: [SystemCalls.Fault]
        /// nil: the port opens; else the errno the typed error must carry, and the call it names.
        var failure: (errno: Int32, names: String)?
        var testDescription: String { name }
    }

    // With a lock directory the opens are: the lock by device number, the lock by name, the port.
    static let openCases: [OpenCase] = [
        OpenCase(name: "EINTR on open, stat, tcgetattr, tcsetattr, tcflush and the lock's write is retried: the port opens",
                 faults: [.init("open", .interrupted, times: 3), .init("stat", .interrupted, times: 1), .init("tcgetattr", .interrupted, times: 2),
                          .init("tcsetattr", .interrupted, times: 1), .init("tcflush", .interrupted, times: 1), .init("write", .interrupted, times: 2)],
                 failure: nil),
        OpenCase(name: "EIO opening the port", faults: [.onCall(3, of: "open", .ioError)], failure: (EIO, "open ")),
        OpenCase(name: "EAGAIN opening the port", faults: [.onCall(3, of: "open", .wouldBlock)], failure: (EAGAIN, "open ")),
        OpenCase(name: "EIO setting the line", faults: [.onCall(1, of: "tcsetattr", .ioError)], failure: (EIO, "tcsetattr ")),
        OpenCase(name: "EIO reading the settings back", faults: [.onCall(2, of: "tcgetattr", .ioError)], failure: (EIO, "tcgetattr ")),
        OpenCase(name: "EIO flushing the line", faults: [.onCall(1, of: "tcflush", .ioError)], failure: (EIO, "tcflush ")),
        OpenCase(name: "ENOSPC writing the lock file", faults: [.onCall(1, of: "write", .noSpace)], failure: (ENOSPC, "cannot create lock file")),
        OpenCase(name: "EIO closing the lock file (a deferred write error)", faults: [.onCall(2, of: "close", .ioError)], failure: (EIO, "cannot create lock file")),
    ]

    @Test("opening under forced errnos: retried on EINTR, else a typed error naming the call and its errno, no lock file and no descriptor left",
          arguments: openCases)
    func open(_ row: OpenCase) throws {
        let simulator = try RunningSimulator()
        let locks = TemporaryDirectory("serial-seam")
        var outcome: Result<SerialPort, ModemError>!
        let log = SystemCalls.withFaults(row.faults) {
            outcome = Result { () throws(ModemError) in try SerialPort(path: simulator.path, lockDirectory: locks.path) }
        }
        #expect(!log.injected.isEmpty, "the fault was never hit: \(log.calls)")
        let held = try FileManager.default.contentsOfDirectory(atPath: locks.path)
        switch (outcome!, row.failure) {
        case (.success(let port), nil):
            #expect(held.count == 2, "\(held)")
            try port.write(Array("AT\r".utf8), deadline: .after(seconds: 2))
            #expect(try answer(port).contains("OK"))
            #expect(port.closeReportingError() == nil)
        case (.failure(let error), let expected?):
            #expect(error.description.contains(expected.names) && error.description.contains("(errno \(expected.errno))"), "\(error)")
            if case .system(_, let code) = error { #expect(code == expected.errno) } else if case .lockFailed(_, let code) = error {
                #expect(code == expected.errno)
            } else { Issue.record("not a system or lock error: \(error)") }
            #expect(held.isEmpty, "a failed open left locks behind: \(held)")
            // Nothing held: the port opens at once without faults.
            try SerialPort(path: simulator.path, lockDirectory: locks.path).close()
        case (.success, let expected?): Issue.record("opened, expected errno \(expected.errno)")
        case (.failure(let error), nil): Issue.record("failed: \(error)")
        }
    }

    struct IOCase: Sendable, CustomTestStringConvertible {
        var name: String
        var faults: [SystemCalls.Fault]
        enum Outcome: Sendable { case answered, closedWithErrno(Int32), systemErrno(Int32), endOfStream }
        var outcome: Outcome
        var testDescription: String { name }
    }

    static let ioCases: [IOCase] = [
        IOCase(name: "EINTR on write, read and poll", faults: [.init("write", .interrupted, times: 3), .init("read", .interrupted, times: 3), .init("poll", .interrupted, times: 2)],
               outcome: .answered),
        IOCase(name: "EAGAIN on write and read waits in poll", faults: [.onCall(1, of: "write", .wouldBlock), .onCall(1, of: "read", .wouldBlock)], outcome: .answered),
        IOCase(name: "EIO on write: the stream is closed, the cause named", faults: [.onCall(1, of: "write", .ioError)], outcome: .closedWithErrno(EIO)),
        IOCase(name: "ENOSPC on write: a system error with its errno", faults: [.onCall(1, of: "write", .noSpace)], outcome: .systemErrno(ENOSPC)),
        IOCase(name: "EIO on read: the modem went away, end of stream", faults: [.init("read", .ioError)], outcome: .endOfStream),
        IOCase(name: "EIO on poll: a system error with its errno", faults: [.onCall(1, of: "poll", .ioError), .onCall(1, of: "read", .wouldBlock)], outcome: .systemErrno(EIO)),
    ]

    @Test("reading and writing the port under forced errnos", arguments: ioCases)
    func io(_ row: IOCase) throws {
        let simulator = try RunningSimulator()
        let port = try SerialPort(path: simulator.path, lockDirectory: nil)
        defer { port.close() }
        var outcome: Result<String, StreamError>!
        let log = SystemCalls.withFaults(row.faults) {
            outcome = Result { () throws(StreamError) in
                try port.write(Array("AT\r".utf8), deadline: .after(seconds: 2))
                return try answer(port)
            }
        }
        #expect(!log.injected.isEmpty, "the fault was never hit: \(log.calls)")
        switch (row.outcome, outcome!) {
        case (.answered, .success(let text)): #expect(text.contains("OK"), "\(text)")
        case (.endOfStream, .success(let text)): #expect(text.isEmpty, "\(text)")
        case (.closedWithErrno(let code), .failure(let error)):
            guard case .closed = error else { Issue.record("not closed: \(error)"); return }
            #expect(error.description.contains("(errno \(code))"), "\(error)")
        case (.systemErrno(let code), .failure(let error)):
            guard case .system(_, let got) = error else { Issue.record("not a system error: \(error)"); return }
            #expect(got == code && error.description.contains(simulator.path), "\(error)")
        case (let expected, let got): Issue.record("expected \(expected), got \(got)")
        }
        // The port is usable after the faults (except where the stream ended, which a pty does not undo).
        if case .endOfStream = row.outcome { return }
        if case .closedWithErrno = row.outcome { return }
        port.flushInput()
        try port.write(Array("AT\r".utf8), deadline: .after(seconds: 2))
        #expect(try answer(port).contains("OK"))
    }

    @Test("close reports what close(2) said, and the lock is released either way")
    func closeResult() throws {
        let simulator = try RunningSimulator()
        let locks = TemporaryDirectory("serial-seam-close")
        let port = try SerialPort(path: simulator.path, lockDirectory: locks.path)
        var result: Errno?
        SystemCalls.withFaults([.onCall(1, of: "close", .ioError)]) { result = port.closeReportingError() }
        #expect(result == .ioError)
        #expect(port.closeReportingError() == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: locks.path).isEmpty)
    }

    /// Reads until the modem's final OK (or the stream ends): the answer as text.
    func answer(_ port: SerialPort) throws(StreamError) -> String {
        var text = ""
        let deadline = Deadline.after(seconds: 30)  // a wait for the answer, not a time limit: generous under load
        while !text.contains("OK\r\n") {
            let chunk = try port.read(maxCount: 256, deadline: deadline)
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        return text
    }
}
