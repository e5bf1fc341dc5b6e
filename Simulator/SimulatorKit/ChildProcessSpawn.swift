#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension ChildProcess {
    /// A child that may have been SIGKILLed on purpose, with what it managed to print first.
    public struct Interrupted: Sendable {
        /// `status` is 137 (128 + SIGKILL) when the child died of our kill.
        public var result: Result
        /// True when the kill landed: the child was still running at `killAfterSeconds`.
        public var killed: Bool
        /// From spawn until the child was reaped.
        public var seconds: Double
    }

    /// Runs a child (the one implementation behind `run`) and SIGKILLs it `killAfterSeconds` after spawning, like a power cut would end
    /// it, unless it exits first. What the child wrote to its pipes before dying is returned, so
    /// the caller can tell whether an acknowledgement got out. `timeoutSeconds` bounds the whole
    /// run either way (a hung child is killed too, and reported as `timedOut`).
    public static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:], stdin: String? = nil,
                           killAfterSeconds: Double?, timeoutSeconds: Double = 60) throws -> Interrupted {
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0], inPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0, pipe(&inPipe) == 0 else { throw Failure.spawnFailed(path: path, errno: errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in inPipe + outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }

        var merged: [String: String] = [:]
        var index = 0
        while let entry = environ[index] {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") { merged[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
            index += 1
        }
        for (key, value) in environment { merged[key] = value }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        // The child starts with no blocked signals and default handlers: a test runner's threads
        // may block SIGTERM, and a satchel child must be stoppable like it is on the device.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGPWR, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let started = monotonicSeconds()
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        close(inPipe[0]); close(outPipe[1]); close(errPipe[1])
        guard spawned == 0 else {
            close(inPipe[1]); close(outPipe[0]); close(errPipe[0])
            throw Failure.spawnFailed(path: path, errno: spawned)
        }
        if let stdin {
            var bytes = Array(stdin.utf8)
            _ = bytes.withUnsafeMutableBytes { write(inPipe[1], $0.baseAddress, $0.count) }
        }
        close(inPipe[1])

        var out: [UInt8] = [], err: [UInt8] = []
        let deadline = started + timeoutSeconds
        let killAt = killAfterSeconds.map { started + max(0, $0) }
        var killed = false, timedOut = false
        var open = [outPipe[0], errPipe[0]]
        var buffer = [UInt8](repeating: 0, count: 65_536)
        // Read until both pipes close: a killed child's pipes close as it dies, so whatever it
        // wrote before the kill is still read here.
        while !open.isEmpty {
            let now = monotonicSeconds()
            if !killed, let killAt, now >= killAt {
                kill(pid, SIGKILL)
                killed = true
            }
            if now >= deadline {
                if !killed { kill(pid, SIGKILL) }
                timedOut = true
                break
            }
            var wait = deadline - now
            if !killed, let killAt { wait = min(wait, killAt - now) }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // poll counts in whole milliseconds; round up so a kill is never early.
            let ready = poll(&fds, nfds_t(fds.count), Int32(max(0, min(wait, 1) * 1000).rounded(.up)))
            if ready < 0 && errno != EINTR { break }
            for entry in fds where entry.revents != 0 {
                let count = read(entry.fd, &buffer, buffer.count)
                if count > 0 {
                    if entry.fd == outPipe[0] { out.append(contentsOf: buffer[0..<count]) } else { err.append(contentsOf: buffer[0..<count]) }
                } else if count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN) {
                    open.removeAll { $0 == entry.fd }
                }
            }
        }
        close(outPipe[0]); close(errPipe[0])
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = monotonicSeconds() - started
        let signalled = (status & 0x7f) != 0
        let code = signalled ? 128 + (status & 0x7f) : (status >> 8) & 0xff
        // The kill only "landed" if the child died of it; one that exited in the same instant did not.
        let diedOfKill = signalled && (status & 0x7f) == SIGKILL
        return Interrupted(
            result: Result(status: code, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self),
                           maxRSSKiB: Int(usage.ru_maxrss), timedOut: timedOut),
            killed: killed && diedOfKill && !timedOut, seconds: seconds)
    }
}
