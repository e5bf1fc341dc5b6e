import Foundation
import SatchelTesting
import SimulatorKit
import Store
import Testing

/// Issue 14's device lifecycle through the real `satchel`: the daemon under systemd's
/// notification protocol, the doctor, the role workplaces.
@Suite("Device lifecycle: systemd notifications, doctor, role workplaces", .serialized)
struct LifecycleTests {
    let satchel = BuiltExecutable.path("satchel")
    let sim = BuiltExecutable.path("satchel-sim")

    func seeded(_ directory: TemporaryDirectory) throws -> String {
        let home = directory.path + "/device"
        let seeded = try ChildProcess.run(sim, ["seed", "--home", home, "--customers", "12", "--products", "20", "--history", "1", "--seed", "14"], timeoutSeconds: 60)
        try #require(seeded.succeeded, "satchel-sim seed failed: \(seeded.stderr)")
        return home
    }

    /// A datagram socket bound where `$NOTIFY_SOCKET` will point, as systemd's manager holds one.
    final class NotifySocket {
        let fd: Int32
        let name: String

        /// `path` starting with "@" binds in the abstract namespace.
        init(_ path: String) throws {
            name = path
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(path.utf8)
            let abstract = bytes.first == UInt8(ascii: "@")
            if abstract { bytes[0] = 0 }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1))
            let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
        }

        deinit { close(fd) }

        /// Every datagram waiting, without blocking.
        func received() -> [String] {
            var messages: [String] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if got <= 0 { return messages }
                messages.append(String(decoding: buffer[0..<got], as: UTF8.self))
            }
        }
    }

    @Test("under systemd the daemon says READY=1 after its first check and WATCHDOG=1 after every one, waiting half the watchdog interval")
    func daemonNotifiesSystemd() throws {
        let directory = TemporaryDirectory("life-notify")
        let home = try seeded(directory)
        let socket = try NotifySocket(directory.path + "/notify")
        // --interval 60 with a 2 s watchdog: the wait must be cut to 1 s, or three checks would
        // take two minutes and the run would time out.
        let started = ChildProcess.monotonicSeconds()
        let daemon = try ChildProcess.run(satchel, ["daemon", "--ticks", "3", "--interval", "60"],
                                          environment: ["SATCHEL_HOME": home, "NOTIFY_SOCKET": socket.name, "WATCHDOG_USEC": "2000000"],
                                          timeoutSeconds: 30)
        try #require(daemon.succeeded, "\(daemon.stdout) \(daemon.stderr)")
        #expect(ChildProcess.monotonicSeconds() - started < 20)
        let messages = socket.received()
        try #require(messages.count == 3, "\(messages)")
        #expect(messages[0].split(separator: "\n").contains("READY=1"), "\(messages[0])")
        #expect(messages[0].contains("STATUS=checking the card every 1 s"), "\(messages[0])")
        #expect(messages[1] == "WATCHDOG=1" && messages[2] == "WATCHDOG=1", "\(messages)")
    }

    @Test("the notification reaches an abstract-namespace socket (@name), and a watchdog meant for another process is ignored")
    func daemonNotifiesAbstractSocket() throws {
        let directory = TemporaryDirectory("life-notify-abstract")
        let home = try seeded(directory)
        let socket = try NotifySocket("@satchel-notify-test-\(getpid())")
        let daemon = try ChildProcess.run(satchel, ["daemon", "--ticks", "1", "--interval", "60"],
                                          environment: ["SATCHEL_HOME": home, "NOTIFY_SOCKET": socket.name, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"],
                                          timeoutSeconds: 30)
        try #require(daemon.succeeded, "\(daemon.stdout) \(daemon.stderr)")
        let messages = socket.received()
        try #require(messages.count == 1, "\(messages)")
        #expect(messages[0].contains("READY=1") && messages[0].contains("every 60 s"), "\(messages[0])")
    }

    @Test("without $NOTIFY_SOCKET the daemon runs as before and sends nothing")
    func daemonWithoutSystemd() throws {
        let directory = TemporaryDirectory("life-notify-none")
        let home = try seeded(directory)
        let daemon = try ChildProcess.run(satchel, ["daemon", "--ticks", "1"], environment: ["SATCHEL_HOME": home, "NOTIFY_SOCKET": ""], timeoutSeconds: 30)
        #expect(daemon.succeeded, "\(daemon.stdout) \(daemon.stderr)")
    }

    @Test("hardware/flash/flash.sh prepares a directory as a handheld's root: tree, modes, contents read back by satchel, second flash refused, unit verified")
    func flashScriptIntoDirectory() throws {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let check = try ChildProcess.run("/bin/sh", [repository + "/hardware/flash/check.sh", satchel], timeoutSeconds: 120)
        #expect(check.succeeded && check.stdout.contains("flash check: ok"), "\(check.stdout) \(check.stderr)")
    }
}
