import Agent
import Field
import Foundation
import Hub
import Seal
import Store
import Sync
import Transport

/// `satchel-sim bench sync`, the device's CPU part (issue 16): a full sync that brings 100
/// changed rows (50 prices, 50 stock rows, drawn across the catalogue) down to a device holding
/// about 5,000 working-set rows and to one holding about 47,000, in-process over a socket pair.
/// The figure is the device thread's CPU time from the DOWNLOAD header to the end of the DONE
/// check (decoding, applying, keeping the sums, verifying), the median of the repeats; the
/// goal is that the large working set costs at most 2x the small one. Beside it, for the record,
/// what summing every table again (the check before issue 16) costs on each.
public struct SyncApplyBench {
    public struct Side: Codable, Sendable {
        public var workingSetRows: Int
        public var changedRowsPerSync: Int
        /// Device thread CPU per full sync, milliseconds: each repeat, then the median.
        public var applyCPUMilliseconds: [Double]
        public var medianApplyCPUMilliseconds: Double
        /// Of each repeat's CPU: reading the device's product list (`catalogue`, once per
        /// download) and the DONE check (`finish`): where a cost that grows with the scope shows.
        public var catalogueCPUMilliseconds: [Double]
        public var finishCPUMilliseconds: [Double]
        /// Summing every table whole once (what the check cost before the sums were kept).
        public var fullRecomputeCPUMilliseconds: Double
        public var checksumsMatch: Bool
    }

    public struct Result: Codable, Sendable {
        public var small: Side
        public var large: Side
        /// large / small of the median CPU per sync: the goal.
        public var applyCPURatio: Double
        public static let goals: [BenchGoal] = [
            BenchGoal("apply_cpu_ratio", .atMost(2), origin: "issue 16", shortMargin: 0.25),
            BenchGoal("apply_checksums_match", .atLeast(1), origin: "issue 16"),
        ]
        public var figures: [String: Double] {
            ["apply_cpu_ratio": applyCPURatio, "apply_checksums_match": small.checksumsMatch && large.checksumsMatch ? 1 : 0]
        }
    }

    /// About 5,000 and about 47,000 working-set rows (customers count ~4 rows each, products ~10).
    public static let smallPlan = Seeder.Plan(customers: 250, products: 380, seed: 31, historyOrdersPerCustomer: 2,
                                              today: CalendarDay.string(fromMilliseconds: SyncBench.benchNow))
    public static let largePlan = Seeder.Plan(customers: 2_400, products: 3_600, seed: 31, historyOrdersPerCustomer: 2,
                                              today: CalendarDay.string(fromMilliseconds: SyncBench.benchNow))

    public static func run(short: Bool) throws -> Result {
        let repeats = short ? 3 : 7
        let small = try measure(plan: smallPlan, repeats: repeats)
        let large = try measure(plan: largePlan, repeats: repeats)
        let ratio = small.medianApplyCPUMilliseconds > 0 ? (large.medianApplyCPUMilliseconds / small.medianApplyCPUMilliseconds * 1000).rounded() / 1000 : .infinity
        return Result(small: small, large: large, applyCPURatio: ratio)
    }

    static func measure(plan: Seeder.Plan, repeats: Int) throws -> Side {
        let root = try DayRunner.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hubPath = root + "/hub.db"
        let storage = try SQLiteHubStorage(path: hubPath)
        let deviceKey = X25519.KeyPair.generate()
        try storage.addRep(id: SyncBench.rep, name: "Paweł", passwordHash: try PasswordHash.hash(password: SyncBench.password, cost: .init(opsLimit: 1, memLimit: 64 * 1024)))
        try storage.addDevice(id: SyncBench.device, rep: SyncBench.rep, publicKey: deviceKey.publicKey, now: 0)
        try SyncBench.loadMasterData(into: storage, root: root, plan: plan)
        let clock = ManualClock(SyncBench.benchNow)
        let server = SyncServer(clock: { clock.nowMilliseconds() }) { try SQLiteHubStorage(path: hubPath) }
        let handheld = try DeviceDownload(try DeviceDatabase.create(home: root + "/device", deviceID: SyncBench.device, repID: SyncBench.rep, clock: clock))
        let timed = TimedDownload(handheld)
        var matched = true
        func sync(_ mode: SyncMode) throws -> SyncResult {
            let result = try server.inProcessSession { deviceEnd in
                try SyncClient.run(deviceEnd, deviceKey: deviceKey, hubKey: try storage.hubKey().publicKey, device: SyncBench.device, password: SyncBench.password,
                                   mode: mode, batch: nil, pull: try handheld.pullRequest(reset: mode == .initialise), sink: timed, deadline: .after(seconds: 600))
            }
            matched = matched && result.mismatched.isEmpty
            return result
        }
        let initial = try sync(.initialise)
        var cpu: [Double] = [], catalogueCPU: [Double] = [], finishCPU: [Double] = [], changed = 0
        for index in 0..<repeats {
            let evening = try OfficeDay.eveningChange(hubPath: hubPath, prices: 50, stockRows: 50, seed: plan.seed &+ UInt64(index))
            clock.advance(milliseconds: 3_600_000)
            let result = try sync(.full)
            changed = max(changed, evening.prices + evening.stockRows)
            matched = matched && result.downloaded == evening.prices + evening.stockRows
            cpu.append(timed.lastMilliseconds)
            catalogueCPU.append(timed.catalogueMilliseconds)
            finishCPU.append(timed.finishMilliseconds)
        }
        // The kept sums are what summing every table again gives (the check a reset relies on).
        let started = threadCPUMilliseconds()
        let whole = try handheld.checksums()
        let recompute = threadCPUMilliseconds() - started
        let kept = try handheld.keptChecksums()
        matched = matched && whole == kept
        return Side(workingSetRows: initial.downloaded, changedRowsPerSync: changed, applyCPUMilliseconds: cpu,
                    medianApplyCPUMilliseconds: cpu.sorted()[cpu.count / 2],
                    catalogueCPUMilliseconds: catalogueCPU, finishCPUMilliseconds: finishCPU, fullRecomputeCPUMilliseconds: (recompute * 10).rounded() / 10,
                    checksumsMatch: matched)
    }

    static func threadCPUMilliseconds() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) * 1000 + Double(spec.tv_nsec) / 1_000_000
    }

    /// The device's sink, timing its thread from the DOWNLOAD header to the end of the DONE check.
    final class TimedDownload: DownloadSink {
        let inner: DeviceDownload
        var started = 0.0
        var lastMilliseconds = 0.0
        var catalogueMilliseconds = 0.0
        var finishMilliseconds = 0.0
        init(_ inner: DeviceDownload) { self.inner = inner }
        func begin(_ header: DownloadHeader) throws {
            started = SyncApplyBench.threadCPUMilliseconds()
            catalogueMilliseconds = 0
            try inner.begin(header)
        }
        func catalogue() throws -> Catalogue {
            let before = SyncApplyBench.threadCPUMilliseconds()
            defer { catalogueMilliseconds += ((SyncApplyBench.threadCPUMilliseconds() - before) * 10).rounded() / 10 }
            return try inner.catalogue()
        }
        func apply(_ frame: TableFrame) throws { try inner.apply(frame) }
        func documents(_ batch: Batch) throws -> Int { try inner.documents(batch) }
        func heldRows(_ table: WorkingSetTables.Table, keys: [WorkingSetRow]) throws -> [WorkingSetRow?] { try inner.heldRows(table, keys: keys) }
        func heldRowsDiffer() throws { try inner.heldRowsDiffer() }
        func finish(_ done: DownloadDone) throws -> [String] {
            let before = SyncApplyBench.threadCPUMilliseconds()
            defer {
                let now = SyncApplyBench.threadCPUMilliseconds()
                finishMilliseconds = ((now - before) * 10).rounded() / 10
                lastMilliseconds = ((now - started) * 10).rounded() / 10
            }
            return try inner.finish(done)
        }
    }
}
