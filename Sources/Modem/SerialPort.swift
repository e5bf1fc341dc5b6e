#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
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
        var info = stat()
        if stat(real, &info) == 0 {
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
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    // Linux dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31 (<sys/sysmacros.h>).
    static func major(_ device: dev_t) -> UInt64 { (UInt64(device) >> 8) & 0xfff | (UInt64(device) >> 32) & ~UInt64(0xfff) }
    static func minor(_ device: dev_t) -> UInt64 { UInt64(device) & 0xff | (UInt64(device) >> 12) & ~UInt64(0xff) }

    static func threeDigits(_ value: UInt64) -> String {
        let text = String(value)
        return text.count >= 3 ? text : String(repeating: "0", count: 3 - text.count) + text
    }

    private static func take(_ path: String, device: String) throws(ModemError) {
        for _ in 0..<2 {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 {
                var text = String(getpid())
                while text.utf8.count < 10 { text = " " + text }
                text += "\n"
                let written = text.withCString { write(fd, $0, strlen($0)) }
                _ = Glibc.close(fd)
                if written != text.utf8.count { unlink(path); throw ModemError.lockFailed(path, errno: EIO) }
                return
            }
            let failure = errno
            guard failure == EEXIST else { throw ModemError.lockFailed(path, errno: failure) }
            let owner = Self.owner(path)
            if let owner, owner == getpid() || kill(owner, 0) == 0 || errno == EPERM {
                throw ModemError.portInUse(device, pid: owner)
            }
            // Stale: the process that wrote it is gone (or the file is garbage). Break it.
            if unlink(path) != 0 && errno != ENOENT { throw ModemError.lockFailed(path, errno: errno) }
        }
        throw ModemError.portInUse(device, pid: nil)
    }

    /// The pid in a lock file (HDB text, or the old 4-byte binary form), nil if unreadable.
    static func owner(_ path: String) -> Int32? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = read(fd, &bytes, bytes.count)
        guard count > 0 else { return nil }
        if let pid = Int32(trimmed(Substring(String(decoding: bytes[0..<count], as: UTF8.self)).split(separator: "\n").first ?? "")), pid > 0 {
            return pid
        }
        if count == 4 {
            let pid = Int32(bytes[0]) | Int32(bytes[1]) << 8 | Int32(bytes[2]) << 16 | Int32(bytes[3]) << 24
            return pid > 0 ? pid : nil
        }
        return nil
    }

    public func release() {
        for file in held.reversed() where Self.owner(file) == getpid() { unlink(file) }
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
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { throw ModemError.portNotFound(path) }
            if errno == EACCES { throw ModemError.permissionDenied(path) }
            throw ModemError.system("stat \(path)", errno: errno)
        }
        guard info.st_mode & S_IFMT == S_IFCHR else { throw ModemError.notASerialDevice(path) }
        // Unix98 pty slaves have majors 136-143 (Documentation/admin-guide/devices.txt).
        let major = (info.st_rdev >> 8) & 0xfff
        isPseudoTerminal = (136...143).contains(major)
        guard let speed = SerialSettings.speed(settings.baud) else { throw ModemError.profile("unsupported baud rate \(settings.baud)") }
        if let lockDirectory { lock = try UUCPLock(device: path, directory: lockDirectory) }

        let fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let failure = errno
            lock?.release()
            switch failure {
            case EACCES, EPERM: throw ModemError.permissionDenied(path)
            case EBUSY: throw ModemError.portInUse(path, pid: nil)
            case ENOENT, ENXIO, ENODEV: throw ModemError.portNotFound(path)
            default: throw ModemError.system("open \(path)", errno: failure)
            }
        }
        stream = FileDescriptorStream(fd: fd, name: path)
        guard isatty(fd) == 1 else {
            lock?.release()
            throw ModemError.notASerialDevice(path)
        }
        // TIOCEXCL: no second open (except by root) while we hold it. Not on a pty: the
        // simulator keeps its own end open, and the flag would outlive our process there.
        if !isPseudoTerminal && ioctl(fd, UInt(TIOCEXCL)) != 0 {
            let failure = errno
            lock?.release()
            throw failure == EBUSY ? ModemError.portInUse(path, pid: nil) : ModemError.system("TIOCEXCL \(path)", errno: failure)
        }
        do throws(ModemError) {
            try configure(fd: fd, speed: speed)
        } catch {
            lock?.release()
            throw error
        }
        tcflush(fd, TCIOFLUSH)
    }

    private func configure(fd: Int32, speed: speed_t) throws(ModemError) {
        var wanted = termios()
        guard tcgetattr(fd, &wanted) == 0 else { throw ModemError.system("tcgetattr \(path)", errno: errno) }
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
        guard tcsetattr(fd, TCSANOW, &wanted) == 0 else { throw ModemError.system("tcsetattr \(path)", errno: errno) }
        // tcsetattr succeeds if *any* change took; read back what the driver really set
        // (ModemManager's mm-port-serial.c does the same).
        var actual = termios()
        guard tcgetattr(fd, &actual) == 0 else { throw ModemError.system("tcgetattr \(path)", errno: errno) }
        let rawFlags = tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        var ok = actual.c_lflag & rawFlags == 0 && actual.c_iflag & tcflag_t(ICRNL | IXON) == 0
            && actual.c_cflag & tcflag_t(CSIZE) == tcflag_t(CS8) && actual.c_cflag & tcflag_t(PARENB) == 0
        if !isPseudoTerminal {
            ok = ok && cfgetospeed(&actual) == speed && (actual.c_cflag & tcflag_t(CRTSCTS) != 0) == settings.rtsCts
        }
        guard ok else { throw ModemError.system("\(path) did not take raw \(settings.baud) baud settings", errno: EINVAL) }
    }

    public var fd: Int32 { stream.fd }

    /// Raises or drops DTR. False where the line has no DTR (a pty answers ENOTTY).
    @discardableResult
    public func setDTR(_ up: Bool) -> Bool {
        var bits = TIOCM_DTR
        return ioctl(stream.fd, UInt(up ? TIOCMBIS : TIOCMBIC), &bits) == 0
    }

    /// Data carrier detect (DCD), nil where the line cannot tell (a pty).
    public func carrierDetect() -> Bool? {
        var bits: Int32 = 0
        guard !isPseudoTerminal, ioctl(stream.fd, UInt(TIOCMGET), &bits) == 0 else { return nil }
        return bits & TIOCM_CAR != 0
    }

    public func flushInput() { tcflush(stream.fd, TCIFLUSH) }

    public func write(_ bytes: [UInt8], deadline: Deadline) throws(StreamError) { try stream.write(bytes, deadline: deadline) }

    public func read(maxCount: Int, deadline: Deadline) throws(StreamError) -> [UInt8] { try stream.read(maxCount: maxCount, deadline: deadline) }

    public func close() {
        if stream.fd >= 0 && !isPseudoTerminal { _ = ioctl(stream.fd, UInt(TIOCNXCL)) }
        stream.close()
        lock?.release()
        lock = nil
    }

    deinit { close() }
}
