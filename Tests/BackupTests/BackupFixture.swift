import Agent
import Backup
import Field
import Journal
import SatchelTesting
import Seal
import Store

/// A device with a tiny working set on a real internal directory, and a card that is a
/// CrashFileSystem, so tests can fill it, pull it, make it read-only, flip its bits, or ask what
/// it would hold after a power cut at any step.
final class BackupFixture {
    static let passphrase = "Zażółć-гусля-2026"
    static let cheapCost = PasswordHash.Cost(opsLimit: 1, memLimit: 64 * 1024)  // tests only: the handheld preset takes ~100 ms

    let directory = TemporaryDirectory("backup")
    let card = CrashFileSystem()
    let clock = ManualClock(1_795_428_000_000)
    var home: String { directory.path + "/home" }
    var configuration: AgentConfiguration {
        var configuration = AgentConfiguration(home: home, cardRoot: "/card")
        configuration.keyCost = Self.cheapCost
        configuration.snapshotEvery = 1_000_000
        return configuration
    }
    lazy var agent = DeviceAgent(configuration, cardFileSystem: card, clock: clock)

    init() throws {
        try card.createDirectory("/card")
        let device = try DeviceDatabase.create(home: home, deviceID: "BG03", repID: "R07", clock: clock)
        try WorkingSet(device).apply { w in
            try w.customer(.init(id: "C1", name: "Магазин „Родопи“ ЕООД", currency: "BGN", creditLimitMinor: 1_000_000_00))
            try w.customer(.init(id: "C2", name: "Skład budowlany Źródło", currency: "PLN", creditLimitMinor: 1_000_000_00))
            try w.product(.init(partNumber: "P1", name: "Лепило за плочки 25 кг"))
            try w.product(.init(partNumber: "P2", name: "Fuga epoksydowa szara"))
            try w.product(.init(partNumber: "BOARD", name: "Płyta MDF"))
            for (part, currency, price) in [("P1", "BGN", Int64(12_34)), ("P2", "BGN", 56_78), ("P1", "PLN", 23_45), ("P2", "PLN", 67_89)] {
                try w.price(.init(partNumber: part, level: .customer, currency: currency, priceMinor: price))
            }
            try w.stock(location: "warehouse", partNumber: "BOARD", quantity: 50)
            try w.displayType(.init(code: "WALL", name: "Стена", materials: [(partNumber: "BOARD", fixedQuantity: 1, perSquareMetreMilli: 1_500)]))
        }
    }

    func open() throws -> DeviceDatabase { try DeviceDatabase.open(home: home, clock: clock) }

    /// One of each document, mirrored to the card after each, as the CLI does.
    @discardableResult
    func captureDay(_ device: DeviceDatabase, rounds: Int = 1) throws -> [String] {
        var ids: [String] = []
        let capture = Capture(device)
        for round in 0..<rounds {
            ids.append(try capture.createOrder(customerID: round % 2 == 0 ? "C1" : "C2", lines: [.init(partNumber: "P1", quantity: Int64(round + 1)), .init(partNumber: "P2", quantity: 2)],
                                               confirm: true, note: "Доставка до 10:00 — dostawa rano").document.id)
            agent.mirror(device)
            ids.append(try capture.recordVisit(customerID: "C2", outcome: .order, note: "Rozmowa z właścicielem").document.id)
            agent.mirror(device)
            // Each leaf of the receipt book once, however often a test captures a day.
            let leaf = try device.database.int64("SELECT count(*) FROM payments") + 1
            ids.append(try capture.recordPayment(customerID: "C1", amountMinor: 150_00, method: .cash, receipt: "KP/\(leaf)").document.id)
            agent.mirror(device)
        }
        ids.append(try capture.requestDisplay(customerID: "C1", typeCode: "WALL", widthCm: 100, heightCm: 200).document.id)
        agent.mirror(device)
        ids.append(try capture.fileComplaint(customerID: "C2", category: .damaged, description: "Pęknięte opakowania").document.id)
        agent.mirror(device)
        ids.append(try capture.createQuote(customerID: "C1", lines: [.init(partNumber: "P1", quantity: 10)], discountBasisPoints: 500).document.id)
        agent.mirror(device)
        return ids
    }

    /// Every document id in a database.
    static func documentIDs(_ database: Database) throws -> Set<String> {
        var ids = Set<String>()
        for table in ["orders", "visits", "payments", "display_requests", "complaints", "quotes", "maintenance"] {
            for id in try database.query("SELECT id FROM \(table)", row: { $0.text(0) }) { ids.insert(id) }
        }
        return ids
    }

    func wipeInternal() { try? PosixFileSystem().removeTree(home) }
}

extension PosixFileSystem {
    /// rm -r, for tests that play the PDA that lost its internal storage.
    func removeTree(_ path: String) throws {
        for name in (try? listDirectory(path)) ?? [] {
            let child = Paths.join(path, name)
            if (try? listDirectory(child)) != nil { try removeTree(child) } else { try remove(child) }
        }
        rmdirCompat(path)
    }
}

#if canImport(Glibc)
import Glibc
func rmdirCompat(_ path: String) { rmdir(path) }
#endif
