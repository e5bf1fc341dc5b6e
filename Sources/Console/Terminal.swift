#if canImport(Glibc)
import Glibc
private let systemRead = Glibc.read
private let systemWrite = Glibc.write
#elseif canImport(Musl)
import Musl
private let systemRead = Musl.read
private let systemWrite = Musl.write
#endif

/// The console's own terminal layer: raw mode on and off, the screen's size, writes, and reads
/// that always have a deadline (poll). No terminal queries: a serial console may answer none, so
/// the size comes from TIOCGWINSZ, else COLUMNS/LINES, else the handheld's 32x16.
final class Terminal {
    let input: Int32
    let output: Int32
    private var saved = termios()
    private var isRaw = false
    /// Bytes written since start, for the benchmark's bytes-per-redraw figure.
    private(set) var bytesWritten = 0
    /// Signals blocked here and taken synchronously between reads, so none lands mid-write.
    private var signals = sigset_t()

    init(input: Int32 = STDIN_FILENO, output: Int32 = STDOUT_FILENO) {
        self.input = input
        self.output = output
    }

    struct Size: Equatable { var columns: Int; var rows: Int }

    func size() -> Size {
        var window = winsize()
        if ioctl(output, UInt(TIOCGWINSZ), &window) == 0, window.ws_col > 0, window.ws_row > 0 {
            return Size(columns: Int(window.ws_col), rows: Int(window.ws_row))
        }
        let columns = getenv("COLUMNS").flatMap { Int(String(cString: $0)) } ?? 32
        let rows = getenv("LINES").flatMap { Int(String(cString: $0)) } ?? 16
        return Size(columns: max(columns, 1), rows: max(rows, 1))
    }

    /// Raw mode: keys one by one, no echo, no signals from ^C (the console asks before it
    /// quits), output untouched (no CR added before LF: the screen's cursor motions use a bare
    /// LF to move down one row, and the bytes counted are the bytes on the line). `restore` undoes it; callers `defer` it.
    func enterRawMode() throws(ConsoleError) {
        guard tcgetattr(input, &saved) == 0 else { throw .notATerminal(errno: errno) }
        var raw = saved
        raw.c_iflag &= ~tcflag_t(BRKINT | ICRNL | INPCK | ISTRIP | IXON)
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | IEXTEN | ISIG)
        raw.c_oflag &= ~tcflag_t(OPOST)
        raw.c_cflag |= tcflag_t(CS8)
        withUnsafeMutableBytes(of: &raw.c_cc) { bytes in
            bytes[Int(VMIN)] = 0
            bytes[Int(VTIME)] = 0
        }
        guard tcsetattr(input, TCSAFLUSH, &raw) == 0 else { throw .notATerminal(errno: errno) }
        isRaw = true
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGQUIT] { sigaddset(&signals, signal) }
        sigprocmask(SIG_BLOCK, &signals, nil)
        // Alternate screen, cursor hidden, autowrap off (the last column never scrolls).
        write("\u{1B}[?1049h\u{1B}[?25l\u{1B}[?7l")
    }

    func restore() {
        guard isRaw else { return }
        write("\u{1B}[0m\u{1B}[?7h\u{1B}[?25h\u{1B}[?1049l")
        tcsetattr(input, TCSAFLUSH, &saved)
        sigprocmask(SIG_UNBLOCK, &signals, nil)
        isRaw = false
    }

    deinit { restore() }

    enum Event: Equatable {
        case bytes([UInt8])
        case resized
        case quit(signal: Int32)
        case timeout
        case closed
    }

    /// Waits at most `milliseconds` for input or a signal.
    func read(milliseconds: Int32) -> Event {
        if let signal = pendingSignal() { return signal }
        var descriptor = pollfd(fd: input, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, milliseconds)
        if let signal = pendingSignal() { return signal }
        guard ready > 0 else { return .timeout }
        if descriptor.revents & Int16(POLLIN) == 0 { return .closed }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { systemRead(input, $0.baseAddress, $0.count) }
        if count == 0 { return .closed }
        if count < 0 { return errno == EINTR || errno == EAGAIN ? .timeout : .closed }
        return .bytes(Array(buffer[0..<count]))
    }

    private func pendingSignal() -> Event? {
        var pending = sigset_t()
        sigpending(&pending)
        var any = false
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGQUIT] where sigismember(&pending, signal) == 1 { any = true }
        guard any else { return nil }
        var zero = timespec(tv_sec: 0, tv_nsec: 0)
        let signal = sigtimedwait(&signals, nil, &zero)
        if signal == SIGWINCH { return .resized }
        return signal > 0 ? .quit(signal: signal) : nil
    }

    func write(_ text: String) {
        var text = text
        text.withUTF8 { write(bytes: UnsafeRawBufferPointer($0)) }
    }

    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write(bytes: $0) }
    }

    /// Writes everything, retrying short writes; a terminal that is gone (EIO) is given up on.
    private func write(bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let written = systemWrite(output, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR || errno == EAGAIN {
                    var descriptor = pollfd(fd: output, events: Int16(POLLOUT), revents: 0)
                    if poll(&descriptor, 1, 1_000) <= 0 { return }
                    continue
                }
                return
            }
            offset += written
        }
        bytesWritten += bytes.count
    }
}

public enum ConsoleError: Error, CustomStringConvertible {
    case notATerminal(errno: Int32)

    public var description: String {
        switch self {
        case .notATerminal(let code):
            return "the console needs a terminal on standard input (\(String(cString: strerror(code)))); run it on the handheld's screen, or over ssh -t"
        }
    }
}
