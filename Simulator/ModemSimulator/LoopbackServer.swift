import Foundation
import Transport

/// A TCP server on 127.0.0.1 (never any other address) for data sessions to reach:
/// `.echo` sends back what it gets; `.source(n)` sends n bytes then closes.
public final class LoopbackServer: @unchecked Sendable {
    public enum Mode: Sendable { case echo, source(Int) }
    public let port: UInt16
    public let mode: Mode
    private let listener: Int32
    private let lock = NSLock()
    private var stopped = false
    private var accepted = 0

    public var address: String { "127.0.0.1:\(port)" }

    public init(mode: Mode = .echo) throws {
        self.mode = mode
        // A peer that went away must be an error on write, not a signal that kills the process.
        signal(SIGPIPE, SIG_IGN)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SimulatorError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw SimulatorError("bind 127.0.0.1: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        port = UInt16(bigEndian: address.sin_port)
        listener = fd
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    public var connections: Int {
        lock.lock()
        defer { lock.unlock() }
        return accepted
    }

    private var isStopped: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopped
    }

    public func stop() {
        lock.lock()
        stopped = true
        lock.unlock()
    }

    deinit {
        stop()
        close(listener)
    }

    private func acceptLoop() {
        while !isStopped {
            var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 50) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            lock.lock()
            accepted += 1
            lock.unlock()
            let mode = self.mode
            let thread = Thread { [self] in serve(FileDescriptorStream(fd: client, name: "loopback client"), mode) }
            thread.start()
        }
    }

    private func serve(_ stream: FileDescriptorStream, _ mode: Mode) {
        defer { stream.close() }
        switch mode {
        case .echo:
            while !isStopped {
                do {
                    let bytes = try stream.read(maxCount: 4096, deadline: .after(milliseconds: 100))
                    if bytes.isEmpty { return }
                    try stream.write(bytes, deadline: .after(seconds: 30))
                } catch StreamError.timedOut {
                    continue
                } catch {
                    return
                }
            }
        case .source(let count):
            var sent = 0
            let block = [UInt8](repeating: 0x5A, count: 1024)
            while sent < count && !isStopped {
                let chunk = Array(block.prefix(min(block.count, count - sent)))
                do { try stream.write(chunk, deadline: .after(seconds: 60)) } catch { return }
                sent += chunk.count
            }
            // Let the peer read everything before the close.
            _ = try? stream.read(maxCount: 1, deadline: .after(seconds: 120))
        }
    }
}
