#if canImport(Glibc)
public import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An errno value as a type (swift-system's `Errno`), so a failed call says which failure it
/// was and callers switch on names, not on a global read too late.
public struct Errno: Error, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(_ rawValue: Int32) { self.rawValue = rawValue }

    public static let interrupted = Errno(EINTR)
    public static let wouldBlock = Errno(EAGAIN)
    public static let ioError = Errno(EIO)
    public static let noSpace = Errno(ENOSPC)
    public static let noEntry = Errno(ENOENT)
    public static let exists = Errno(EEXIST)
    public static let brokenPipe = Errno(EPIPE)
    public static let connectionReset = Errno(ECONNRESET)
    public static let inProgress = Errno(EINPROGRESS)
    public static let invalid = Errno(EINVAL)
    public static let noChild = Errno(ECHILD)
    public static let noMemory = Errno(ENOMEM)
    public static let tooManyFiles = Errno(EMFILE)

    /// The C library's text for it, and the number a technician can look up.
    public var description: String { "\(String(cString: strerror(rawValue))) (errno \(rawValue))" }
}

/// The one place the agent's foundations (Transport, Journal) and capabilities (Modem, Backup
/// through Journal) call libc for I/O. Each wrapper returns a value or throws `Errno`; calls that
/// are restartable are retried on EINTR here, so no caller forgets (close is not: on Linux the
/// descriptor is gone even when close reports EINTR, and retrying could close someone else's).
///
/// The test driver (`SystemCalls.withFaults`) makes a named call fail with a chosen errno, always
/// or from its Nth use, on the calling thread only, so parallel tests do not see each other's
/// faults. It costs one thread-local read per call when no fault is set.
public enum SystemCalls {
    // MARK: Files

    public static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o600) throws(Errno) -> Int32 {
        try retrying("open") { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    /// Closes `fd` and reports what close said: on NFS, vfat over a failing card or a full disk,
    /// close is where a deferred write error surfaces, so it is a result, not a formality.
    public static func close(_ fd: Int32) throws(Errno) {
        if let fault = injected("close") { _ = Glibc.close(fd); throw fault }
        if Glibc.close(fd) != 0 {
            let code = errno
            if code != EINTR { throw Errno(code) }  // EINTR: Linux has closed it already
        }
    }

    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retrying("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    public static func pread(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try retrying("pread") { Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    public static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try retrying("write") { Glibc.write(fd, buffer.baseAddress, buffer.count) }
    }

    public static func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
        try retrying("pwrite") { Glibc.pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset)) }
    }

    /// send(2) with MSG_NOSIGNAL: a vanished peer is an EPIPE to handle, not a SIGPIPE.
    public static func send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try retrying("send") { Glibc.send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    public static func fsync(_ fd: Int32) throws(Errno) {
        _ = try retrying("fsync") { Glibc.fsync(fd) }
    }

    public static func ftruncate(_ fd: Int32, _ size: Int64) throws(Errno) {
        _ = try retrying("ftruncate") { Glibc.ftruncate(fd, off_t(size)) }
    }

    /// fstat(2).
    public static func status(of fd: Int32) throws(Errno) -> Glibc.stat {
        var info = Glibc.stat()
        _ = try retrying("fstat") { Glibc.fstat(fd, &info) }
        return info
    }

    /// stat(2), or nil when there is no such file.
    public static func status(ofPath path: String) throws(Errno) -> Glibc.stat? {
        var info = Glibc.stat()
        do {
            _ = try retrying("stat") { statPath(path, &info) }
        } catch {
            if error == .noEntry { return nil }
            throw error
        }
        return info
    }

    public static func mkdir(_ path: String, _ mode: mode_t) throws(Errno) {
        _ = try retrying("mkdir") { Glibc.mkdir(path, mode) }
    }

    public static func unlink(_ path: String) throws(Errno) {
        _ = try retrying("unlink") { Glibc.unlink(path) }
    }

    /// access(2): whether this process may use `path` as `mode` asks (R_OK, W_OK, X_OK, F_OK).
    /// A plain "no" (EACCES, EROFS, ENOENT, ENOTDIR) is false; any other failure (EIO on a failing
    /// card, ENOMEM) is thrown, so a caller can tell "not allowed" from "could not ask".
    public static func access(_ path: String, _ mode: Int32) throws(Errno) -> Bool {
        do {
            _ = try retrying("access") { Glibc.access(path, mode) }
        } catch {
            if [EACCES, EROFS, ENOENT, ENOTDIR].contains(error.rawValue) { return false }
            throw error
        }
        return true
    }

    public static func rmdir(_ path: String) throws(Errno) {
        _ = try retrying("rmdir") { Glibc.rmdir(path) }
    }

    public static func rename(_ from: String, _ to: String) throws(Errno) {
        _ = try retrying("rename") { Glibc.rename(from, to) }
    }

    /// Names in a directory, without "." and "..", in the order the file system gives them.
    public static func listDirectory(_ path: String) throws(Errno) -> [String] {
        if let fault = injected("opendir") { throw fault }
        guard let directory = opendir(path) else { throw Errno(errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// statvfs(2).
    public static func fileSystemStatus(_ path: String) throws(Errno) -> Glibc.statvfs {
        var info = Glibc.statvfs()
        _ = try retrying("statvfs") { statFileSystem(path, &info) }
        return info
    }

    /// A new directory only this user can enter, from a template ending in XXXXXX.
    public static func makePrivateDirectory(_ template: String) throws(Errno) -> String {
        if let fault = injected("mkdtemp") { throw fault }
        var bytes = Array(template.utf8CString)
        guard bytes.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else { throw Errno(errno) }
        return String(cString: bytes)
    }

    /// Writes all of `bytes` to a blocking descriptor (a lock file, a recording): write(2) may
    /// take fewer bytes than asked (a full card, a signal after part of it), so it loops.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        try bytes.withUnsafeBytes { raw in Result { () throws(Errno) in try writeAll(fd, raw) } }.get()
    }

    /// `writeAll` of bytes that must not be copied into an array (a secret key's).
    public static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(Errno) {
        var offset = 0
        while offset < buffer.count {
            let written = try write(fd, UnsafeRawBufferPointer(rebasing: buffer[offset...]))
            if written == 0 { throw .ioError }  // no progress on a regular file: treat as a failed write
            offset += written
        }
    }

    /// realpath(3): the path with every symlink resolved.
    public static func realPath(_ path: String) throws(Errno) -> String {
        if let fault = injected("realpath") { throw fault }
        guard let resolved = Glibc.realpath(path, nil) else { throw Errno(errno) }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// readlink(2): where the symbolic link `path` points (/proc/self/exe: this executable).
    public static func readLink(_ path: String) throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = try retrying("readlink") { Glibc.readlink(path, &buffer, buffer.count - 1) }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// getcwd(3): the current directory (ENOENT when it was removed, ERANGE past 4 KiB).
    public static func currentDirectory() throws(Errno) -> String {
        if let fault = injected("getcwd") { throw fault }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard Glibc.getcwd(&buffer, buffer.count) != nil else { throw Errno(errno) }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// flock(2); a lock held elsewhere with LOCK_NB is `.wouldBlock`.
    public static func flock(_ fd: Int32, _ operation: Int32) throws(Errno) {
        _ = try retrying("flock") { lockFile(fd, operation) }
    }

    // MARK: Terminals

    /// ioctl(2) without an argument (TIOCEXCL, TIOCNXCL).
    public static func ioctl(_ fd: Int32, _ request: UInt) throws(Errno) {
        _ = try retrying("ioctl") { Glibc.ioctl(fd, request) }
    }

    /// ioctl(2) with an int argument read or written by the driver (TIOCMBIS, TIOCMGET).
    public static func ioctl(_ fd: Int32, _ request: UInt, _ value: inout Int32) throws(Errno) {
        _ = try retrying("ioctl") { Glibc.ioctl(fd, request, &value) }
    }

    /// isatty(3): false for "not a terminal" (ENOTTY, EINVAL); a bad descriptor throws.
    public static func isTerminal(_ fd: Int32) throws(Errno) -> Bool {
        if let fault = injected("isatty") { throw fault }
        if Glibc.isatty(fd) == 1 { return true }
        let code = errno
        if code == ENOTTY || code == EINVAL { return false }
        throw Errno(code)
    }

    public static func terminalAttributes(_ fd: Int32) throws(Errno) -> termios {
        var settings = termios()
        _ = try retrying("tcgetattr") { Glibc.tcgetattr(fd, &settings) }
        return settings
    }

    public static func setTerminalAttributes(_ fd: Int32, _ settings: termios) throws(Errno) {
        var settings = settings
        _ = try retrying("tcsetattr") { Glibc.tcsetattr(fd, TCSANOW, &settings) }
    }

    /// tcflush(3): drops what is queued (TCIFLUSH input, TCIOFLUSH both).
    public static func flushTerminal(_ fd: Int32, _ queue: Int32) throws(Errno) {
        _ = try retrying("tcflush") { Glibc.tcflush(fd, queue) }
    }

    // MARK: Descriptors, sockets, processes

    /// poll(2) on one descriptor: the events that happened, or 0 when `milliseconds` passed.
    /// EINTR is not retried: the caller's loop recomputes the time left from its deadline.
    public static func poll(_ fd: Int32, events: Int16, milliseconds: Int32) throws(Errno) -> Int16 {
        if let fault = injected("poll") { throw fault }
        var entry = pollfd(fd: fd, events: events, revents: 0)
        let ready = Glibc.poll(&entry, 1, milliseconds)
        if ready < 0 { throw Errno(errno) }
        return ready == 0 ? 0 : entry.revents
    }

    public static func fcntl(_ fd: Int32, _ command: Int32, _ value: Int32) throws(Errno) -> Int32 {
        try retrying("fcntl") { Glibc.fcntl(fd, command, value) }
    }

    public static func socket(_ domain: Int32, _ type: Int32) throws(Errno) -> Int32 {
        try retrying("socket") { Glibc.socket(domain, type | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    /// connect(2) of a non-blocking socket to an IPv4 address: returns when connected, throws
    /// `.inProgress` while it goes on (poll for POLLOUT, then `socketError`). EINTR means the same
    /// as EINPROGRESS here (the connection goes on), so it is not retried.
    public static func connect(_ fd: Int32, _ address: sockaddr_in) throws(Errno) {
        let fault = injected("connect")
        if let fault, fault != .interrupted { throw fault }
        var target = address
        let result = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // A forced EINTR: the kernel goes on connecting, as after a real signal.
        if fault == .interrupted { throw .inProgress }
        if result != 0 {
            let code = errno
            throw code == EINTR ? .inProgress : Errno(code)
        }
    }

    /// The pending error of a socket (SO_ERROR), nil when there is none.
    public static func socketError(_ fd: Int32) throws(Errno) -> Errno? {
        var failure: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try retrying("getsockopt") { getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length) }
        return failure == 0 ? nil : Errno(failure)
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(Errno) {
        var value = value
        _ = try retrying("setsockopt") { setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) }
    }

    public static func bind(_ fd: Int32, _ address: sockaddr_in) throws(Errno) {
        var local = address
        _ = try retrying("bind") {
            withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
    }

    public static func listen(_ fd: Int32, backlog: Int32) throws(Errno) {
        _ = try retrying("listen") { Glibc.listen(fd, backlog) }
    }

    public static func localAddress(_ fd: Int32) throws(Errno) -> sockaddr_in {
        var actual = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = try retrying("getsockname") {
            withUnsafeMutablePointer(to: &actual) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        }
        return actual
    }

    public static func accept(_ fd: Int32) throws(Errno) -> Int32 {
        let client = try retrying("accept") { Glibc.accept(fd, nil, nil) }
        _ = Glibc.fcntl(client, F_SETFD, FD_CLOEXEC)
        return client
    }

    public static func socketPair() throws(Errno) -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        _ = try retrying("socketpair") { Glibc.socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) }
        return (fds[0], fds[1])
    }

    /// pipe(2), both ends close-on-exec like every descriptor the shim makes: a child gets an end
    /// only where a spawn hands it over (`spawn`'s `output`, whose dup2 clears the flag), not every
    /// child started meanwhile. (Glibc's module does not export pipe2, hence the fcntl.)
    public static func pipe() throws(Errno) -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        _ = try retrying("pipe") { Glibc.pipe(&ends) }
        for end in ends { _ = Glibc.fcntl(end, F_SETFD, FD_CLOEXEC) }
        return (ends[0], ends[1])
    }

    /// posix_spawn(3) of `path` with `arguments` (argv[0] first) and this process's environment.
    /// In the child standard input is /dev/null, standard output and error are `output`, and
    /// `closing` are closed; its signal mask is empty and `defaultSignals` are back to their
    /// default action (the agent blocks some for sigtimedwait and ignores SIGPIPE, and a child
    /// would inherit both). posix_spawn and its set-up calls give their error as their result,
    /// not in errno; an EINTR is retried like any restartable call's (no child was made).
    public static func spawn(_ path: String, arguments: [String], output: Int32, closing: [Int32] = [], defaultSignals: [Int32]) throws(Errno) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        try checked("posix_spawn_file_actions_init", posix_spawn_file_actions_init(&actions))
        defer { posix_spawn_file_actions_destroy(&actions) }
        try checked("posix_spawn_file_actions_addopen", posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0))
        try checked("posix_spawn_file_actions_adddup2", posix_spawn_file_actions_adddup2(&actions, output, 1))
        try checked("posix_spawn_file_actions_adddup2", posix_spawn_file_actions_adddup2(&actions, output, 2))
        for fd in closing { try checked("posix_spawn_file_actions_addclose", posix_spawn_file_actions_addclose(&actions, fd)) }
        var attributes = posix_spawnattr_t()
        try checked("posix_spawnattr_init", posix_spawnattr_init(&attributes))
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for signal in defaultSignals { sigaddset(&defaults, signal) }
        try checked("posix_spawnattr_setsigmask", posix_spawnattr_setsigmask(&attributes, &empty))
        try checked("posix_spawnattr_setsigdefault", posix_spawnattr_setsigdefault(&attributes, &defaults))
        try checked("posix_spawnattr_setflags", posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)))
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        while true {
            let code = injected("posix_spawn")?.rawValue ?? posix_spawn(&pid, path, &actions, &attributes, argv, environ)
            if code == 0 { return pid }
            if code != EINTR { throw Errno(code) }
        }
    }

    /// A call that returns 0 or its error number (the posix_spawn family), as `Errno`; a forced
    /// fault stands in for the call, which then is not made.
    private static func checked(_ name: StaticString, _ call: @autoclosure () -> Int32) throws(Errno) {
        if let fault = injected(name) { throw fault }
        let code = call()
        if code != 0 { throw Errno(code) }
    }

    /// waitpid with WNOHANG: the status once `pid` has exited, nil while it runs. There is no
    /// blocking form here on purpose: a wait for a child goes through `reap(_:deadline:)`.
    public static func waitpidNoHang(_ pid: pid_t) throws(Errno) -> Int32? {
        var status: Int32 = 0
        let result = try retrying("waitpid") { Glibc.waitpid(pid, &status, WNOHANG) }
        return result == pid ? status : nil
    }

    /// The exit status of `pid` once it has exited, or nil when it still runs at `deadlineNanoseconds`
    /// (on the monotonic clock): a reap that cannot hang on a child that ignores its signals.
    public static func reap(_ pid: pid_t, deadlineNanoseconds: UInt64) throws(Errno) -> Int32? {
        while true {
            if let status = try waitpidNoHang(pid) { return status }
            if monotonicNanoseconds() >= deadlineNanoseconds { return nil }
            usleep(5_000)
        }
    }

    /// kill(2); `signal` 0 only asks whether `pid` exists (EPERM: it does, owned by someone else).
    public static func signal(_ pid: pid_t, _ signal: Int32) throws(Errno) {
        _ = try retrying("kill") { Glibc.kill(pid, signal) }
    }

    /// getpid(2), which cannot fail.
    public static func processID() -> pid_t { Glibc.getpid() }

    /// Sleeps `nanoseconds`, the rest again after a signal (nanosleep's remaining time).
    public static func sleep(nanoseconds: UInt64) {
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    public static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    // MARK: EINTR and the test driver

    /// Runs `call` (a libc call returning -1 and setting errno on failure), again on EINTR.
    @inline(__always)
    static func retrying<Result: BinaryInteger>(_ name: StaticString, _ call: () -> Result) throws(Errno) -> Result {
        while true {
            if let fault = injected(name) {
                if fault == .interrupted { continue }  // what a real EINTR gets: the call again
                throw fault
            }
            let result = call()
            if result >= 0 { return result }
            let code = errno
            if code != EINTR { throw Errno(code) }
        }
    }

    /// A forced failure: the call named `call` ("read", "pwrite", "fsync", "open", "close",
    /// "send", "poll", "waitpid" ...) fails with `errno`, after `skip` calls that go through,
    /// `times` times (`Int.max`: always).
    public struct Fault: Sendable {
        public var call: String
        public var errno: Errno
        public var skip: Int
        public var times: Int

        public init(_ call: String, _ errno: Errno, skip: Int = 0, times: Int = Int.max) {
            self.call = call
            self.errno = errno
            self.skip = skip
            self.times = times
        }

        /// Fails only the Nth call (1-based) named `call`.
        public static func onCall(_ n: Int, of call: String, _ errno: Errno) -> Fault { Fault(call, errno, skip: n - 1, times: 1) }
    }

    /// What the driver did, for a test to check that its fault was really hit.
    public final class FaultLog {
        public var faults: [Fault]
        public private(set) var injected: [String] = []
        /// How many times each call was made (attempts, a retried EINTR counted again).
        public private(set) var calls: [String: Int] = [:]
        init(_ faults: [Fault]) { self.faults = faults }

        func take(_ name: String) -> Errno? {
            calls[name, default: 0] += 1
            for index in faults.indices where faults[index].call == name {
                if faults[index].skip > 0 { faults[index].skip -= 1; return nil }
                guard faults[index].times > 0 else { continue }
                if faults[index].times != Int.max { faults[index].times -= 1 }
                injected.append(name)
                return faults[index].errno
            }
            return nil
        }
    }

    /// Runs `body` with `faults` in force for the system calls this thread makes, and returns
    /// the log of what was injected. A fault with EINTR is absorbed by the retry of restartable
    /// calls, as a real signal's would be (give those a finite `times`).
    @discardableResult
    public static func withFaults<E: Error>(_ faults: [Fault], _ body: () throws(E) -> Void) throws(E) -> FaultLog {
        let log = FaultLog(faults)
        let unmanaged = Unmanaged.passRetained(log)
        let previous = pthread_getspecific(faultKey)
        pthread_setspecific(faultKey, unmanaged.toOpaque())
        defer {
            pthread_setspecific(faultKey, previous)
            unmanaged.release()
        }
        try body()
        return log
    }

    nonisolated(unsafe) static let faultKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    @inline(__always)
    static func injected(_ name: StaticString) -> Errno? {
        guard let raw = pthread_getspecific(faultKey) else { return nil }
        return Unmanaged<FaultLog>.fromOpaque(raw).takeUnretainedValue().take(name.description)
    }
}

// The C functions named like their structs, called from outside the enum where the names resolve.
private func statPath(_ path: String, _ info: inout stat) -> Int32 { stat(path, &info) }
private func lockFile(_ fd: Int32, _ operation: Int32) -> Int32 { flock(fd, operation) }
private func statFileSystem(_ path: String, _ info: inout statvfs) -> Int32 { statvfs(path, &info) }
