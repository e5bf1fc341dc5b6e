import Field
import Foundation
import Hub
import Store
import Sync

/// `satchel-sim bench hub-plan` (issue 15): what the hub spends on a device's full sync when 100
/// rows changed since its last one (50 prices, 50 stock rows, drawn across the catalogue, as in
/// `bench sync`'s apply figure), for a scope of about 5,000 rows and one of about 47,000, on the
/// embedded SQLite backend, in one run. The hub's side is called as a session calls it:
/// `startDownload` (settle the previous download, plan the next) and `acknowledgeDownload` (the
/// device applied it), timed in thread CPU; frames are not sent (their cost follows the rows
/// sent, the same 100 on both sides). Beside it, the hub storage one more device of the same
/// scope costs once its first download is acknowledged: bytes (pages in use) and rows of the
/// per-device tables. Goals: the large scope's CPU at most 2x the small one's, and a device's
/// storage independent of its scope (large / small at most 1.1).
public struct HubPlanBench: BenchReport {
    public struct Side: Codable, Sendable {
        public var scopeRows: Int
        public var changedRowsPerSync: Int
        /// Rows each repeat's plan carried (each must be the rows changed).
        public var plannedRows: [Int]
        /// Hub thread CPU per full sync (plan + acknowledgement), milliseconds: each repeat, then the median.
        public var syncCPUMilliseconds: [Double]
        public var medianSyncCPUMilliseconds: Double
        /// Of which the plan (`startDownload`), median.
        public var medianPlanCPUMilliseconds: Double
        /// Hub file bytes in use (pages minus free pages) added by one more device of this scope,
        /// after its first download was acknowledged, averaged over the devices added.
        public var storageBytesPerDevice: Double
        /// Rows the per-device download tables (shadow and plan) hold for one such device.
        public var storageRowsPerDevice: Double

        enum CodingKeys: String, CodingKey {
            case scopeRows = "scope_rows"
            case changedRowsPerSync = "changed_rows_per_sync"
            case plannedRows = "planned_rows"
            case syncCPUMilliseconds = "sync_cpu_ms"
            case medianSyncCPUMilliseconds = "median_sync_cpu_ms"
            case medianPlanCPUMilliseconds = "median_plan_cpu_ms"
            case storageBytesPerDevice = "storage_bytes_per_device"
            case storageRowsPerDevice = "storage_rows_per_device"
        }
    }

    public var small: Side
    public var large: Side
    /// large / small of the median hub CPU per full sync.
    public var planCPURatio: Double
    /// large / small of the storage bytes one more device adds.
    public var deviceStorageRatio: Double
    /// 1 when every plan carried exactly the rows changed on both sides, else 0.
    public var plansCarryTheChanges: Double
    public var backend = "sqlite"

    public static let goals = [
        BenchGoal("plan_cpu_ratio", .atMost(2), origin: "issue 15", shortMargin: 0.25),
        BenchGoal("device_storage_ratio", .atMost(1.1), origin: "issue 15"),
        BenchGoal("plans_carry_the_changes", .atLeast(1), origin: "issue 15"),
    ]
    public var figures: [String: Double] {
        var figures = ["plans_carry_the_changes": plansCarryTheChanges]
        // A ratio over nothing measured is no figure: absent, and the check says so.
        if planCPURatio.isFinite { figures["plan_cpu_ratio"] = planCPURatio }
        if deviceStorageRatio.isFinite { figures["device_storage_ratio"] = deviceStorageRatio }
        return figures
    }
    public var notes: [String] {
        var notes: [String] = []
        if !planCPURatio.isFinite { notes.append("plan_cpu_ratio: the small scope's CPU measured as 0") }
        if !deviceStorageRatio.isFinite { notes.append("device_storage_ratio: the small scope's device added no storage") }
        return notes
    }

    enum CodingKeys: String, CodingKey {
        case small, large, backend
        case planCPURatio = "plan_cpu_ratio"
        case deviceStorageRatio = "device_storage_ratio"
        case plansCarryTheChanges = "plans_carry_the_changes"
    }

    public static func run(short: Bool) throws -> HubPlanBench {
        let repeats = short ? 3 : 7, addedDevices = short ? 1 : 3
        let small = try measure(plan: SyncApplyBench.smallPlan, repeats: repeats, addedDevices: addedDevices)
        let large = try measure(plan: SyncApplyBench.largePlan, repeats: repeats, addedDevices: addedDevices)
        func ratio(_ a: Double, _ b: Double) -> Double { b > 0 ? (a / b * 1000).rounded() / 1000 : .infinity }
        let carried = [small, large].allSatisfy { side in side.plannedRows.allSatisfy { $0 == side.changedRowsPerSync } }
        return HubPlanBench(small: small, large: large,
                            planCPURatio: ratio(large.medianSyncCPUMilliseconds, small.medianSyncCPUMilliseconds),
                            deviceStorageRatio: ratio(large.storageBytesPerDevice, small.storageBytesPerDevice),
                            plansCarryTheChanges: carried ? 1 : 0)
    }

    static func measure(plan: Seeder.Plan, repeats: Int, addedDevices: Int) throws -> Side {
        let root = try DayRunner.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let hubPath = root + "/hub.db"
        let storage = try SQLiteHubStorage(path: hubPath)
        try storage.addRep(id: SyncBench.rep, name: "Paweł", passwordHash: "unused: the benchmark signs no one in")
        try storage.addDevice(id: SyncBench.device, rep: SyncBench.rep, publicKey: Array(repeating: 1, count: 32), now: 0)
        _ = try SyncBench.loadMasterData(into: storage, root: root, plan: plan)
        let policy = ScopePolicy()
        var now = SyncBench.benchNow
        guard let device = try storage.device(publicKey: Array(repeating: 1, count: 32)) else { throw HubError.notFound("device \(SyncBench.device) just added") }

        // The device's first download, applied whole.
        let initial = try storage.startDownload(device: device, request: Pull(reset: true), now: now, policy: policy)
        try storage.acknowledgeDownload(device: device.id, ack: DownloadAck(pull: initial.header.pull, applied: initial.rows))
        var last = initial
        var cpu: [Double] = [], planCPU: [Double] = [], planned: [Int] = [], changed = 0
        for index in 0..<repeats {
            let evening = try OfficeDay.eveningChange(hubPath: hubPath, prices: 50, stockRows: 50, seed: plan.seed &+ UInt64(index))
            changed = max(changed, evening.prices + evening.stockRows)
            now += 3_600_000
            let started = SyncApplyBench.threadCPUMilliseconds()
            let download = try storage.startDownload(device: device, request: Pull(lastPull: last.header.pull, applied: last.rows, complete: true),
                                                     now: now, policy: policy)
            let planned_ = SyncApplyBench.threadCPUMilliseconds()
            try storage.acknowledgeDownload(device: device.id, ack: DownloadAck(pull: download.header.pull, applied: download.rows))
            let ended = SyncApplyBench.threadCPUMilliseconds()
            cpu.append(((ended - started) * 10).rounded() / 10)
            planCPU.append(((planned_ - started) * 10).rounded() / 10)
            planned.append(download.rows)
            last = download
        }

        // More devices of the same rep (the same scope), each with its first download acknowledged.
        let probe = try Database(path: hubPath)
        func bytesInUse() throws -> Int64 {
            try probe.int64("PRAGMA page_count") - probe.int64("PRAGMA freelist_count")
        }
        let pageSize = try probe.int64("PRAGMA page_size")
        let before = try bytesInUse()
        var rows: Int64 = 0
        for index in 0..<addedDevices {
            let id = "\(SyncBench.device)-more-\(index)"
            try storage.addDevice(id: id, rep: SyncBench.rep, publicKey: Array(repeating: UInt8(2 + index), count: 32), now: now)
            guard let added = try storage.device(publicKey: Array(repeating: UInt8(2 + index), count: 32)) else { throw HubError.notFound("device \(id) just added") }
            let first = try storage.startDownload(device: added, request: Pull(reset: true), now: now, policy: policy)
            try storage.acknowledgeDownload(device: id, ack: DownloadAck(pull: first.header.pull, applied: first.rows))
            rows += try probe.int64("SELECT (SELECT count(*) FROM device_shadow WHERE device_id = ?1) + (SELECT count(*) FROM download_plan WHERE device_id = ?1)", [.text(id)])
        }
        let added = Double((try bytesInUse() - before) * pageSize) / Double(addedDevices)
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        return Side(scopeRows: initial.rows, changedRowsPerSync: changed, plannedRows: planned, syncCPUMilliseconds: cpu,
                    medianSyncCPUMilliseconds: median(cpu), medianPlanCPUMilliseconds: median(planCPU),
                    storageBytesPerDevice: added.rounded(), storageRowsPerDevice: Double(rows) / Double(addedDevices))
    }
}
