#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import SystemCalls
public import Transport

/// Line settings for the modem's port.
public struct SerialSettings: Sendable, Equatable {
    public var baud: Int
    /// Hardware flow control (RTS/CTS).
    public var rtsCts: Bool

    public init(baud: Int = 115_200, rtsCts: Bool = false) {
        self.baud = baud
        self.rtsCts = rtsCts
    }

    static func speed(_ baud: Int) -> speed_t? {
        switch baud {
        case 9_600: return speed_t(B9600)
        case 19_200: return speed_t(B19200)
        case 38_400: return speed_t(B38400)
        case 57_600: return speed_t(B57600)
        case 115_200: return speed_t(B115200)
        case 230_400: return speed_t(B230400)
        case 460_800: return speed_t(B460800)
        case 921_600: return speed_t(B921600)
        default: return nil
        }
    }
}

/// UUCP lock files for the device itself, whatever name it was opened by. The udev rule's
/// symlink (`/dev/satchel-modem`) and the real node (`/dev/ttyUSB2`) are one device: a lock
/// taken per path name would let pppd or minicom on one name and satchel on the other share it.
/// So two locks are taken, both in HDB format (the pid as ten ASCII digits and a newline):
/// - by device number, `LK.<fs major>.<major>.<minor>` (three digits each): the SVR4 convention,
///   as pppd's lock() (pppd/utils.c, SVR4 branch), Taylor UUCP and Open vSwitch name it;
/// - by the real name of the device node, the symlink resolved, `LCK..ttyUSB2`: the Filesystem
///   Hierarchy Standard 3.0, section 5.9 (/var/lock: "LCK.." followed by the base name of the
///   device), which minicom and pppd follow on Linux. Below /dev a slash becomes `_` (`pts_3`).
public final class UUCPLock {
    /// The lock by name (`LCK..ttyUSB2`).
    public let path: String
    /// The lock by device number (`LK.000.188.002`), nil when the device could not be stat'ed.
    public let devicePath: String?
    private var held: [String] = []

    /// Takes both locks for `device` in `directory`, breaking stale ones (their pid is dead).
    public init(device: String, directory: String) throws(ModemError) {
        let real = Self.realPath(device) ?? device
        var name = real.hasPrefix("/dev/") ? String(real.dropFirst(5)) : real
        name = String(name.map { $0 == "/" ? "_" : $0 })
        path = directory + "/LCK.." + name
        if let info = try? SystemCalls.status(ofPath: real) {  // try? flattens: nil for no such file too
            devicePath = directory + "/LK." + Self.threeDigits(Self.major(info.st_dev)) + "." + Self.threeDigits(Self.major(info.st_rdev)) + "." + Self.threeDigits(Self.minor(info.st_rdev))
        } else {
            devicePath = nil
        }
        for file in [devicePath, path].compactMap({ $0 }) {
            do {
                try Self.take(file, device: device)
                held.append(file)
            } catch {
                release()
                throw error
            }
        }
    }

    /// The device node behind symlinks, nil when it cannot be resolved.
    static func realPath(_ path: String) -> String? { try? SystemCalls.realPath(path) }

    // Linux dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31 (<sys/sysmacros.h>).
    static func major(_ device: dev_t) -> UInt64 { (UInt64(device) >> 8) & 0xfff | (UInt64(device) >> 32) & ~UInt64(0xfff) }
    static func minor(_ device: dev_t) -> UInt64 { UInt64(device) & 0xff | (UInt64(device) >> 12) & ~UInt64(0xff) }

    static func threeDigits(_ value: UInt64) -> String {
        let text = String(value)
        return text.count >= 3 ? text : String(repeating: "0", count: 3 - text.count) + text
    }

    private static func take(_ path: String, device: String) throws(ModemError) {
        for _ in 0..<2 {
            let fd: Int32
            do { fd = try SystemCalls.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644) } catch {
                guard error == .exists else { throw ModemError.lockFailed(path, errno: error.rawValue) }
                let owner = Self.owner(path)
                if let owner, owner == SystemCalls.processID() || Self.isAlive(owner) { throw ModemError.portInUse(device, pid: owner) }
                // Stale: the process that wrote it is gone (or the file is garbage). Break it.
                do { try SystemCalls.unlink(path) } catch where error != .noEntry { throw ModemError.lockFailed(path, errno: error.rawValue) } catch {}
                continue
            }
            var text = String(SystemCalls.processID())
            while text.utf8.count < 10 { text = " " + text }
            text += "\n"
            // A lock half written (a full /var/lock) or not closed cleanly is no lock: removed, and said.
            do throws(Errno) {
                do { try SystemCalls.writeAll(fd, Array(text.utf8)) } catch { try? SystemCalls.close(fd); throw error }
                try SystemCalls.close(fd)
            } catch {
                try? SystemCalls.unlink(path)
                throw ModemError.lockFailed(path, errno: error.rawValue)
            }
            return
        }
        throw ModemError.portInUse(device, pid: nil)
    }

    /// The pid in a lock file (HDB text, or the old 4-byte binary form), nil if unreadable.
    static func owner(_ path: String) -> Int32? {
        guard let fd = try? SystemCalls.open(path, O_RDONLY) else { return nil }
        defer { try? SystemCalls.close(fd) }  // read only: nothing a failed close could lose
        var bytes = [UInt8](repeating: 0, count: 64)
        guard let count = try? bytes.withUnsafeMutableBytes({ raw in try SystemCalls.read(fd, into: raw) }), count > 0 else { return nil }
        if let pid = Int32(trimmed(Substring(String(decoding: bytes[0..<count], as: UTF8.self)).split(separator: "\n").first ?? "")), pid > 0 {
            return pid
        }
        if count == 4 {
            let pid = Int32(bytes[0]) | Int32(bytes[1]) << 8 | Int32(bytes[2]) << 16 | Int32(bytes[3]) << 24
            return pid > 0 ? pid : nil
        }
        return nil
    }

    /// Whether `pid` runs (kill with signal 0; EPERM: it runs as another user).
    static func isAlive(_ pid: Int32) -> Bool {
        do { try SystemCalls.signal(pid, 0); return true } catch { return error == Errno(EPERM) }
    }

    public func release() {
        for file in held.reversed() where Self.owner(file) == SystemCalls.processID() { try? SystemCalls.unlink(file) }
        held = []
    }

    deinit { release() }
}

/// The modem's serial port (or the simulator's pty): raw mode, baud, flow control, DTR,
/// an exclusive open and a UUCP lock. Reads and writes take deadlines (poll(2) underneath).
public final class SerialPort: ByteStream {
    public let path: String
    public let isPseudoTerminal: Bool
    public let settings: SerialSettings
    let stream: FileDescriptorStream
    private var lock: UUCPLock?

    /// Opens `path`. `lockDirectory` nil skips the UUCP lock (tests that own the pty).
    public init(path: String, settings: SerialSettings = SerialSettings(), lockDirectory: String? = "/var/lock") throws(ModemError) {
        self.path = path
        self.settings = settings
        let found: stat?
        do { found = try SystemCalls.status(ofPath: path) } catch {
            if error == Errno(ENOTDIR) { throw ModemError.portNotFound(path) }
            if error == Errno(EACCES) { throw ModemError.permissionDenied(path) }
            throw ModemError.system("stat \(path)", errno: error.rawValue)
        }
        guard let info = found else { throw ModemError.portNotFound(path) }
        guard info.st_mode & S_IFMT == S_IFCHR else { throw ModemError.notASerialDevice(path) }
        // Unix98 pty slaves have majors 136-143 (Documentation/admin-guide/devices.txt).
        let major = (info.st_rdev >> 8) & 0xfff
        isPseudoTerminal = (136...143).contains(major)
        guard let speed = SerialSettings.speed(settings.baud) else { throw ModemError.profile("unsupported baud rate \(settings.baud)") }
        if let lockDirectory { lock = try UUCPLock(device: path, directory: lockDirectory) }

        let fd: Int32
        do { fd = try SystemCalls.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK) } catch {
            let failure = error.rawValue
            lock?.release()
            switch failure {
            case EACCES, EPERM: throw ModemError.permissionDenied(path)
            case EBUSY: throw ModemError.portInUse(path, pid: nil)
            case ENOENT, ENXIO, ENODEV: throw ModemError.portNotFound(path)
            default: throw ModemError.system("open \(path)", errno: failure)
            }
        }
        stream = FileDescriptorStream(fd: fd, name: path)
        // From here on a failure closes the descriptor (the stream) and releases the lock.
        do throws(ModemError) {
            let terminal: Bool
            do { terminal = try SystemCalls.isTerminal(fd) } catch { throw ModemError.system("isatty \(path)", errno: error.rawValue) }
            guard terminal else { throw ModemError.notASerialDevice(path) }
            // TIOCEXCL: no second open (except by root) while we hold it. Not on a pty: the
            // simulator keeps its own end open, and the flag would outlive our process there.
            if !isPseudoTerminal {
                do { try SystemCalls.ioctl(fd, UInt(TIOCEXCL)) } catch {
                    throw error == Errno(EBUSY) ? ModemError.portInUse(path, pid: nil) : ModemError.system("TIOCEXCL \(path)", errno: error.rawValue)
                }
            }
            try configure(fd: fd, speed: speed)
            do { try SystemCalls.flushTerminal(fd, TCIOFLUSH) } catch { throw ModemError.system("tcflush \(path)", errno: error.rawValue) }
        } catch {
            stream.close()
            lock?.release()
            lock = nil
            throw error
        }
    }

    private func configure(fd: Int32, speed: speed_t) throws(ModemError) {
        var wanted: termios
        do { wanted = try SystemCalls.terminalAttributes(fd) } catch { throw ModemError.system("tcgetattr \(path)", errno: error.rawValue) }
        cfmakeraw(&wanted)
        wanted.c_cflag |= tcflag_t(CLOCAL | CREAD | HUPCL)
        if settings.rtsCts { wanted.c_cflag |= tcflag_t(CRTSCTS) } else { wanted.c_cflag &= ~tcflag_t(CRTSCTS) }
        wanted.c_iflag &= ~tcflag_t(IXON | IXOFF | IXANY)
        // VMIN 1, VTIME 0: with O_NONBLOCK an empty read is EAGAIN (poll waits); VMIN 0 would
        // make it return 0, which reads as end of stream.
        withUnsafeMutableBytes(of: &wanted.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        cfsetispeed(&wanted, speed)
        cfsetospeed(&wanted, speed)
        do { try SystemCalls.setTerminalAttributes(fd, wanted) } catch { throw ModemError.system("tcsetattr \(path)", errno: error.rawValue) }
        // tcsetattr succeeds if *any* change took; read back what the driver really set
        // (ModemManager's mm-port-serial.c does the same).
        var actual: termios
        do { actual = try SystemCalls.terminalAttributes(fd) } catch { throw ModemError.system("tcgetattr \(path)", errno: error.rawValue) }
        let rawFlags = tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        var ok = actual.c_lflag & rawFlags == 0 && actual.c_iflag & tcflag_t(ICRNL | IXON) == 0
            && actual.c_cflag & tcflag_t(CSIZE) == tcflag_t(CS8) && actual.c_cflag & tcflag_t(PARENB) == 0
        if !isPseudoTerminal {
            ok = ok && cfgetospeed(&actual) == speed && (actual.c_cflag & tcflag_t(CRTSCTS) != 0) == settings.rtsCts
        }
        guard ok else { throw ModemError.system("\(path) did not take raw \(settings.baud) baud settings", errno: EINVAL) }
    }

    public var fd: Int32 { stream.fd }

    public var endCause: Errno? { stream.endCause }

    /// Raises or drops DTR. False where the line has no DTR (a pty answers ENOTTY).
    @discardableResult
    public func setDTR(_ up: Bool) -> Bool {
        var bits = TIOCM_DTR
        return (try? SystemCalls.ioctl(stream.fd, UInt(up ? TIOCMBIS : TIOCMBIC), &bits)) != nil
    }

    /// Data carrier detect (DCD), nil where the line cannot tell (a pty).
    public func carrierDetect() -> Bool? {
        var bits: Int32 = 0
        guard !isPseudoTerminal, (try? SystemCalls.ioctl(stream.fd, UInt(TIOCMGET), &bits)) != nil else { return nil }
        return bits & TIOCM_CAR != 0
    }

    /// Drops unread input (stale answers before a new command); a port that cannot is about to
    /// fail its next read anyway, which reports the cause.
    public func flushInput() { try? SystemCalls.flushTerminal(stream.fd, TCIFLUSH) }

    public func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) { try stream.write(bytes, deadline: deadline) }

    public func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] { try stream.read(maxCount: maxCount, deadline: deadline) }

    public func close() { _ = closeReportingError() }

    /// Closes the port and says what close(2) reported (nil: closed cleanly, or closed already).
    /// The lock is released either way: the descriptor is gone even when close fails.
    public func closeReportingError() -> Errno? {
        if stream.fd >= 0 && !isPseudoTerminal { try? SystemCalls.ioctl(stream.fd, UInt(TIOCNXCL)) }
        let failure = stream.closeReportingError()
        lock?.release()
        lock = nil
        return failure
    }

    deinit { close() }
}
