import SimulatorKit
import Testing

/// Sixty simulated days through the real sync and housekeeping (in-process device and hub on
/// simulated clocks): every capture reaches the hub once, the working set checks out every
/// time, and the device database stops growing once the retention period has passed.
@Suite("60 days in the field: the device database stays bounded")
struct BoundedDatabaseTests {
    @Test("60 days: nothing lost, no checksum mismatch, the last 20 days no bigger than the 20 before")
    func sixtyDays() throws {
        let result = try LongRun.run(days: 60, seed: 3)
        #expect(result.days.count == 60)
        #expect(result.mismatches == 0)
        #expect(result.hubChanges == Int64(result.captured))
        #expect(result.growthLastThird <= 1.1, "largest database in days 41-60 / in days 21-40: \(result.growthLastThird)")
        let day40 = result.days[39], day60 = result.days[59]
        // Past the 30-day retention, old documents and changes go as fast as new ones come.
        #expect(Double(day60.changes) <= Double(day40.changes) * 1.1)
        #expect(Double(day60.visits) <= Double(day40.visits) * 1.1)
        #expect(day60.customers <= 300)
    }
}
