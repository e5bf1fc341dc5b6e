import Foundation
import Modem
import SatchelTesting
import SystemCalls
import Testing
import Transport

/// Starting and stopping pppd (pipe, posix_spawn and its set-up calls, waitpid) under errnos
/// forced by the syscall seam's driver: an EINTR is retried and pppd still comes up or is still
/// reaped; any other errno is a typed error naming the step and its errno, with the options
/// and their private directory removed and no pppd started. A stand-in pppd (a shell script)
/// records that it ran and reports an address, as pppd does once IPCP is up.
@Suite("PPP link through the syscall seam")
struct PPPSeamTests {
    struct StartCase: Sendable, CustomTestStringConvertible {
        var name: String
        var faults: [SystemCalls.Fault]
        /// nil: the link comes up; else the errno the error must carry and the words naming the step.
        var failure: (errno: Int32, step: String)?
        var testDescription: String { name }
    }

    static let startCases: [StartCase] = [
        StartCase(name: "EINTR on pipe and on posix_spawn is retried: pppd runs and the link comes up",
                  faults: [.init("pipe", .interrupted, times: 1), .init("posix_spawn", .interrupted, times: 2)], failure: nil),
        StartCase(name: "EMFILE making the pipe", faults: [.init("pipe", .tooManyFiles)], failure: (EMFILE, "pipe for pppd")),
        StartCase(name: "EAGAIN from posix_spawn (the process limit)", faults: [.init("posix_spawn", .wouldBlock)], failure: (EAGAIN, "starting ")),
        StartCase(name: "ENOMEM from posix_spawn", faults: [.init("posix_spawn", .noMemory)], failure: (ENOMEM, "starting ")),
        StartCase(name: "ENOMEM setting up the child's descriptors", faults: [.init("posix_spawn_file_actions_init", .noMemory)], failure: (ENOMEM, "starting ")),
        StartCase(name: "ENOMEM setting up the child's signals", faults: [.init("posix_spawnattr_init", .noMemory)], failure: (ENOMEM, "starting ")),
        StartCase(name: "EINVAL on the child's signal defaults", faults: [.init("posix_spawnattr_setsigdefault", .invalid)], failure: (EINVAL, "starting ")),
    ]

    @Test("starting pppd under forced errnos: retried on EINTR, else a typed error, the options removed and no pppd run",
          arguments: startCases)
    func start(_ row: StartCase) throws {
        let directory = TemporaryDirectory("ppp-seam")
        let pppd = try Self.fakePPPD(in: directory)
        var outcome: Result<PPPLink, ModemError>!
        let log = SystemCalls.withFaults(row.faults) {
            outcome = Result { () throws(ModemError) in
                try PPPLink.start(options: "/dev/ttyFAKE\n115200\nnodetach\n", parentDirectory: directory.path, pppd: pppd, timeout: 5)
            }
        }
        #expect(!log.injected.isEmpty, "the fault was never hit: \(log.calls)")
        switch (outcome!, row.failure) {
        case (.success(let link), nil):
            #expect(link.localAddress == "10.64.3.7")
            #expect(FileManager.default.fileExists(atPath: directory.file("ran")))
            link.stop(grace: 2, killGrace: 2)
            #expect(link.hasExited)
        case (.failure(let error), let expected?):
            guard case .system(let what, let code) = error else { Issue.record("not a system error: \(error)"); return }
            #expect(code == expected.errno && what.hasPrefix(expected.step), "\(error)")
            #expect(error.description.contains("(errno \(expected.errno))"), "\(error)")
            #expect(!FileManager.default.fileExists(atPath: directory.file("ran")), "pppd ran although the start failed")
        case (.success(let link), let expected?):
            link.stop()
            Issue.record("started, expected errno \(expected.errno)")
        case (.failure(let error), nil): Issue.record("failed: \(error)")
        }
        // Nothing of the options is left: their private directory went with them.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("satchel-pppd-") } == [])
    }

    struct StopCase: Sendable, CustomTestStringConvertible {
        var name: String
        var faults: [SystemCalls.Fault]
        /// Whether pppd must really be gone afterwards (ECHILD: the link takes it as reaped elsewhere).
        var reaped: Bool
        var testDescription: String { name }
    }

    static let stopCases: [StopCase] = [
        StopCase(name: "EINTR on waitpid is retried: pppd is reaped within the stop's deadline",
                 faults: [.init("waitpid", .interrupted, times: 3)], reaped: true),
        StopCase(name: "ECHILD on waitpid: someone else reaped it, the link says it exited and does not wait",
                 faults: [.init("waitpid", .noChild)], reaped: false),
    ]

    @Test("stopping pppd under forced waitpid errnos: the stop ends within its deadlines and the options go", arguments: stopCases)
    func stop(_ row: StopCase) throws {
        let directory = TemporaryDirectory("ppp-seam-stop")
        let pppd = try Self.fakePPPD(in: directory)
        let link = try PPPLink.start(options: "/dev/ttyFAKE\n115200\nnodetach\n", parentDirectory: directory.path, pppd: pppd, timeout: 5)
        let started = Deadline.now
        let log = SystemCalls.withFaults(row.faults) { link.stop(grace: 2, killGrace: 2) }
        let elapsed = Double(Deadline.now.nanoseconds - started.nanoseconds) / 1e9
        #expect(!log.injected.isEmpty, "the fault was never hit: \(log.calls)")
        #expect(link.hasExited && elapsed < 4.5, "stopped in \(elapsed) s")
        #expect(!FileManager.default.fileExists(atPath: link.optionsPath))
        if row.reaped {
            #expect(kill(link.pid, 0) != 0, "pppd is gone")
        } else {
            // The forced ECHILD left the child to us: reap it (it has its SIGTERM), within a deadline.
            var status: Int32 = 0
            let deadline = Deadline.after(seconds: 30)
            while waitpid(link.pid, &status, WNOHANG) == 0 && !deadline.hasPassed { usleep(10_000) }
            #expect(kill(link.pid, 0) != 0, "pppd ended on the SIGTERM the stop sent")
        }
    }

    /// A stand-in pppd: notes that it ran, reports an address, then waits to be stopped.
    static func fakePPPD(in directory: TemporaryDirectory) throws -> String {
        let script = directory.file("fake-pppd")
        try """
        #!/bin/sh
        : > "\(directory.file("ran"))"
        echo "local  IP address 10.64.3.7"
        exec sleep 60
        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        return script
    }
}
