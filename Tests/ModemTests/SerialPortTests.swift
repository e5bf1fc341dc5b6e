import Foundation
import Modem
import ModemSimulator
import SatchelTesting
import Testing
import Transport

@Suite("Serial port and UUCP lock")
struct SerialPortTests {
    @Test("a missing port, a non-tty and a port held by a live process fail at once with clear errors")
    func openFailures() throws {
        let directory = TemporaryDirectory("modem")
        #expect(throws: ModemError.portNotFound("/dev/satchel-no-such-modem")) {
            try SerialPort(path: "/dev/satchel-no-such-modem", lockDirectory: directory.path)
        }
        #expect(throws: ModemError.notASerialDevice("/dev/null")) { try SerialPort(path: "/dev/null", lockDirectory: directory.path) }
        #expect(throws: ModemError.notASerialDevice(directory.path)) { try SerialPort(path: directory.path, lockDirectory: directory.path) }
        let simulator = try RunningSimulator()
        let first = try SerialPort(path: simulator.path, lockDirectory: directory.path)
        #expect(first.isPseudoTerminal)
        let lockFile = directory.path + "/LCK.." + simulator.path.dropFirst(5).replacingOccurrences(of: "/", with: "_")
        #expect(String(decoding: fileBytes(lockFile), as: UTF8.self) == String(format: "%10d\n", getpid()))
        #expect(throws: ModemError.portInUse(simulator.path, pid: getpid())) { try SerialPort(path: simulator.path, lockDirectory: directory.path) }
        first.close()
        #expect(!FileManager.default.fileExists(atPath: lockFile))
        // A pty has no DTR line: the call says so instead of failing the session.
        let second = try SerialPort(path: simulator.path, lockDirectory: directory.path)
        #expect(second.setDTR(false) == false)
        #expect(second.carrierDetect() == nil)
        second.close()
    }

    @Test("a stale lock (dead pid) is broken; a lock of a live pid is honoured")
    func staleLock() throws {
        let directory = TemporaryDirectory("modem")
        let simulator = try RunningSimulator()
        let lockFile = directory.path + "/LCK.." + simulator.path.dropFirst(5).replacingOccurrences(of: "/", with: "_")
        writeFile(lockFile, Array("    999999\n".utf8))
        let port = try SerialPort(path: simulator.path, lockDirectory: directory.path)
        port.close()
        writeFile(lockFile, Array("         1\n".utf8))  // init is always alive
        #expect(throws: ModemError.portInUse(simulator.path, pid: 1)) { try SerialPort(path: simulator.path, lockDirectory: directory.path) }
    }

    @Test("the lock is the device's, not the path's: through a symlink (the udev rule's /dev/satchel-modem) and the real node it is one lock")
    func lockThroughSymlink() throws {
        let directory = TemporaryDirectory("modem-lock")
        let simulator = try RunningSimulator()
        let link = directory.path + "/satchel-modem"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: simulator.path)
        let locks = directory.path + "/locks"
        try FileManager.default.createDirectory(atPath: locks, withIntermediateDirectories: true)
        let viaLink = try SerialPort(path: link, lockDirectory: locks)
        // Locked by the real name and by the device number, each holding our pid.
        let names = try FileManager.default.contentsOfDirectory(atPath: locks).sorted()
        let realName = "LCK.." + simulator.path.dropFirst(5).replacingOccurrences(of: "/", with: "_")
        #expect(names.count == 2 && names.contains(realName) && names.contains { $0.hasPrefix("LK.") && $0.count == 14 }, "\(names)")
        for name in names { #expect(String(decoding: fileBytes(locks + "/" + name), as: UTF8.self) == String(format: "%10d\n", getpid())) }
        #expect(throws: ModemError.portInUse(simulator.path, pid: getpid())) { try SerialPort(path: simulator.path, lockDirectory: locks) }
        viaLink.close()
        #expect(try FileManager.default.contentsOfDirectory(atPath: locks).isEmpty)
        let viaNode = try SerialPort(path: simulator.path, lockDirectory: locks)
        #expect(throws: ModemError.portInUse(link, pid: getpid())) { try SerialPort(path: link, lockDirectory: locks) }
        viaNode.close()
        // A stale lock by device number alone (left by pppd or minicom that died) is broken too.
        let deviceLock = try #require(names.first { $0.hasPrefix("LK.") })
        writeFile(locks + "/" + deviceLock, Array("    999999\n".utf8))
        try SerialPort(path: link, lockDirectory: locks).close()
        writeFile(locks + "/" + deviceLock, Array("         1\n".utf8))
        #expect(throws: ModemError.portInUse(link, pid: 1)) { try SerialPort(path: link, lockDirectory: locks) }
        #expect(!FileManager.default.fileExists(atPath: locks + "/" + realName))
    }
}
