import Field
import SatchelTesting
import Store

/// A small, hand-written working set whose numbers the tests can reason about:
/// CPL1 pays on time (PLN, limit 10 000), CBG1 has 300.00 BGN overdue, CRU1 has a tiny limit.
final class Fixture {
    let directory = TemporaryDirectory("field")
    let clock = ManualClock(1_795_428_000_000)  // 2026-11-23 10:00 UTC
    let device: DeviceDatabase
    var home: String { directory.path + "/home" }

    init() throws {
        device = try DeviceDatabase.create(home: directory.path + "/home", deviceID: "PL07", repID: "R01", clock: clock)
        try WorkingSet(device).apply { w in
            try w.customer(.init(id: "CPL1", name: "Hurtownia Żółw Sp. z o.o.", address: "ul. Łąkowa 3, Łódź", currency: "PLN",
                                 creditLimitMinor: 10_000_00, balanceMinor: 2_000_00, discipline: .strict, levels: [.customer, .dealer],
                                 talkingPoints: ["Pyta o gres 60×120", "Właściciel woli kontakt rano"]))
            try w.customer(.init(id: "CBG1", name: "Магазин „Витоша“ ЕООД", currency: "BGN", creditLimitMinor: 5_000_00,
                                 balanceMinor: 1_000_00, overdueMinor: 300_00, overdueDays: 20, balanceAsOf: 1_795_000_000_000,
                                 discipline: .hesitant))
            try w.customer(.init(id: "CRU1", name: "ООО «Берёзка»", currency: "RUB", creditLimitMinor: 100_00, discipline: .disloyal))
            try w.product(.init(partNumber: "P1", name: "Płytki gresowe 60×60 szare", baseUnit: "m2"))
            try w.product(.init(partNumber: "P2", name: "Лепило за плочки 25 кг", units: [(unit: "box", factor: 12)]))
            try w.product(.init(partNumber: "P3", name: "Затирка белая 2 кг"))
            for (part, level, currency, price) in [("P1", PriceLevel.customer, "PLN", Int64(10_00)), ("P1", .dealer, "PLN", 8_50),
                                                   ("P1", .customer, "BGN", 5_00), ("P1", .customer, "RUB", 200_00),
                                                   ("P2", .customer, "PLN", 5_00), ("P2", .customer, "BGN", 2_50), ("P2", .customer, "RUB", 100_00),
                                                   ("P3", .customer, "PLN", 1_00)] {
                try w.price(.init(partNumber: part, level: level, currency: currency, priceMinor: price))
            }
            try w.stock(location: "warehouse", partNumber: "P1", quantity: 100)
            for (part, name) in [("BOARD", "Płyta MDF"), ("FRAME", "Рама"), ("LED", "Светодиодная лента")] {
                try w.product(.init(partNumber: part, name: name))
            }
            try w.stock(location: "warehouse", partNumber: "BOARD", quantity: 3)
            try w.stock(location: "warehouse", partNumber: "FRAME", quantity: 10)
            try w.displayType(.init(code: "WALL", name: "Ściana", materials: [
                (partNumber: "BOARD", fixedQuantity: 0, perSquareMetreMilli: 1_390), (partNumber: "FRAME", fixedQuantity: 1, perSquareMetreMilli: 0),
                (partNumber: "LED", fixedQuantity: 0, perSquareMetreMilli: 1_000)]))
            try w.history(.init(ref: "ERP-1", customerID: "CPL1", day: "2026-10-01", currency: "PLN", paidLate: false,
                                lines: [(partNumber: "P1", quantity: 10, amountMinor: 100_00), (partNumber: "P2", quantity: 30, amountMinor: 150_00)]))
            try w.history(.init(ref: "ERP-2", customerID: "CPL1", day: "2026-11-01", currency: "PLN", paidLate: true,
                                lines: [(partNumber: "P2", quantity: 5, amountMinor: 25_00)]))
            try w.history(.init(ref: "ERP-0", customerID: "CPL1", day: "2024-01-10", currency: "PLN", paidLate: false,
                                lines: [(partNumber: "P3", quantity: 1, amountMinor: 1_00)]))
            try w.equipment(id: "EQ1", customerID: "CPL1", kind: "cooler", serial: "SN123", placedOn: "2025-05-01")
            try w.route(id: "RT1", repID: "R01", day: "2026-11-23", customerIDs: ["CPL1", "CBG1"])
        }
    }

    var capture: Capture { Capture(device) }

    /// Everything a failed command must leave unchanged.
    func snapshot() throws -> [Int64] {
        try ["orders", "order_lines", "changes", "visits", "payments", "display_requests", "display_reservations", "complaints", "quotes", "maintenance"].map {
            try device.database.int64("SELECT count(*) FROM \($0)")
        } + [try device.database.int64("SELECT next_seq FROM device"), try device.database.int64("SELECT sum(reserved) FROM stock")]
    }
}
