import Dispatch
public import Transport

extension SyncServer {
    /// One session with this server in the same process (benchmarks, simulations, tests): the
    /// hub's side runs on a worker thread over one end of a socket pair, `body` gets the device's
    /// end. The device's end is closed and the hub's side has finished (its audit entry written)
    /// when this returns.
    public func inProcessSession<T>(_ body: (FileDescriptorStream) throws -> T) throws -> T {
        let (deviceEnd, hubEnd) = try StreamPair.make()
        let box = HubEnd(hubEnd)
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { self.handle(box.end) }
        defer { group.wait() }
        defer { deviceEnd.close() }
        return try body(deviceEnd)
    }

    final class HubEnd: @unchecked Sendable {
        let end: FileDescriptorStream
        init(_ end: FileDescriptorStream) { self.end = end }
    }
}
