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
}
