import Foundation
public import Hub
import Seal
import Store
import Sync
import Transport

/// A hub the simulated day starts for itself: embedded SQLite in `directory`, serving on a free
/// loopback port from a background thread until stopped.
public final class DayHub: @unchecked Sendable {
    public let storage: SQLiteHubStorage
    let listener: TCPListener
    public let publicKey: String
    let password: String
    private let stopFlag = StopFlag()
    private let finished = DispatchSemaphore(value: 0)
    public var address: String { "127.0.0.1:\(listener.port)" }

    final class StopFlag: @unchecked Sendable {
        private let lock = NSLock()
        private var stopped = false
        public func stop() { lock.lock(); stopped = true; lock.unlock() }
        var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }
    }

    public init(directory: String, password: String, clock: @escaping @Sendable () -> Int64 = SyncServer.systemNow) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/hub.db"
        storage = try SQLiteHubStorage(path: path)
        publicKey = Hex.encode(try storage.hubKey().publicKey)
        self.password = password
        listener = try TCPListener("127.0.0.1:0")
        let server = SyncServer(clock: clock) { try SQLiteHubStorage(path: path) }
        let listener = self.listener, flag = stopFlag, finished = self.finished
        Thread.detachNewThread {
            server.serve(listener, shouldStop: { flag.isStopped })
            finished.signal()
        }
    }

    public func register(device: String, rep: String, publicKey: String) throws {
        try storage.addRep(id: rep, name: "Paweł Wróblewski", passwordHash: try PasswordHash.hash(password: password, cost: .handheld))
        try storage.addDevice(id: device, rep: rep, publicKey: try Hex.decode(publicKey), now: Int64(Date().timeIntervalSince1970 * 1000))
    }

    /// The office editing master data directly (what the ERP exchange does in production).
    public func execute(_ sql: String) throws {
        try Database(path: storage.path).execute(sql)
    }

    public func changes(device: String) throws -> Int64 { try storage.changeCount(device: device) }

    public func stop() {
        stopFlag.stop()
        _ = finished.wait(timeout: .now() + 5)
    }
}
