public import Field

/// Generates a rep's working set the way the hub would send it: customers (Polish, Bulgarian
/// and Russian outlets, names with diacritics and Cyrillic), a catalogue with units and three
/// price levels, stock, routes, order history, display types and equipment. Deterministic for
/// a seed.
public struct Seeder {
    public struct Plan: Sendable {
        public var customers: Int
        public var products: Int
        public var seed: UInt64
        public var repID: String
        /// History orders per customer (0...n).
        public var historyOrdersPerCustomer: Int
        /// Customers on today's route.
        public var routeStops: ClosedRange<Int>
        public var today: String

        public init(customers: Int, products: Int, seed: UInt64, repID: String = "R01", historyOrdersPerCustomer: Int = 6,
                    routeStops: ClosedRange<Int> = 20...40, today: String) {
            self.customers = customers; self.products = products; self.seed = seed; self.repID = repID
            self.historyOrdersPerCustomer = historyOrdersPerCustomer; self.routeStops = routeStops; self.today = today
        }
    }

    public struct Summary: Sendable, Codable {
        public var customers: Int
        public var products: Int
        public var prices: Int
        public var stockRows: Int
        public var historyOrders: Int
        public var historyLines: Int
        public var routeStops: Int
        public var todaysRoute: [String]
        public var displayTypes: [String]
        public var equipment: [String]
    }

    public static func seed(_ device: DeviceDatabase, plan: Plan) throws -> Summary {
        var random = SeededRandom(seed: plan.seed)
        var summary = Summary(customers: 0, products: 0, prices: 0, stockRows: 0, historyOrders: 0, historyLines: 0,
                              routeStops: 0, todaysRoute: [], displayTypes: [], equipment: [])
        let deviceID = try device.deviceID()
        try WorkingSet(device).apply { writer in
            for territory in territories {
                try writer.territory(id: territory.id, name: territory.name, parentID: territory.parent)
            }
            try writer.rep(id: plan.repID, name: random.pick(repNames), territoryID: "PL-MAZ")

            var parts: [String] = []
            for index in 0..<plan.products {
                let (name, unit, boxFactor) = productName(index, &random)
                let part = "PN-\(10_000 + index)"
                parts.append(part)
                var units: [(unit: String, factor: Int64)] = []
                if boxFactor > 1 { units.append((unit: "box", factor: Int64(boxFactor))) }
                if random.chance(0.2) { units.append((unit: "pallet", factor: Int64(max(boxFactor, 1) * 40))) }
                try writer.product(.init(partNumber: part, name: name, baseUnit: unit, channel: random.chance(0.8) ? "retail" : "trade", units: units))
                for currency in ["PLN", "BGN", "RUB"] {
                    let base = Int64(random.int(150...6_000)) * (currency == "RUB" ? 20 : 1)
                    try writer.price(.init(partNumber: part, level: .customer, currency: currency, priceMinor: base))
                    try writer.price(.init(partNumber: part, level: .dealer, currency: currency, priceMinor: base * 85 / 100))
                    summary.prices += 2
                    if random.chance(0.15) {
                        try writer.price(.init(partNumber: part, level: .promo, currency: currency, priceMinor: base * 75 / 100, validUntil: "2099-12-31"))
                        summary.prices += 1
                    }
                }
                try writer.stock(location: "warehouse", partNumber: part, quantity: Int64(random.int(0...5_000)))
                try writer.stock(location: "van:\(deviceID)", partNumber: part, quantity: Int64(random.int(0...60)))
                summary.stockRows += 2
            }
            // Materials for displays live in the catalogue too, always in stock at the warehouse.
            for (part, name) in displayMaterials {
                try writer.product(.init(partNumber: part, name: name, baseUnit: "pcs", channel: "display"))
                for currency in ["PLN", "BGN", "RUB"] {
                    try writer.price(.init(partNumber: part, level: .customer, currency: currency, priceMinor: 1_000))
                }
                try writer.stock(location: "warehouse", partNumber: part, quantity: 400)
            }
            for type in displayTypes {
                try writer.displayType(type)
                summary.displayTypes.append(type.code)
            }
            summary.products = plan.products + displayMaterials.count

            var customerIDs: [String] = []
            for index in 0..<plan.customers {
                let country = random.pick(["PL", "PL", "BG", "RU"])
                let id = "C\(country)\(100_000 + index)"
                customerIDs.append(id)
                let discipline: Customers.Discipline = random.chance(0.7) ? .strict : (random.chance(0.66) ? .hesitant : .disloyal)
                let scale: Int64 = country == "RU" ? 20 : 1
                let limit = Int64(random.int(50...500)) * 100_00 * scale
                let balance = Int64(random.int(0...Int(limit * 6 / 1000))) * 100
                let overdue: Int64 = discipline == .strict ? 0 : min(balance, Int64(random.int(0...300_000)) * scale)
                let dealer = random.chance(0.25)
                var levels: [PriceLevel] = [.customer]
                if dealer { levels.append(.dealer) }
                if random.chance(0.3) { levels.append(.promo) }
                try writer.customer(.init(
                    id: id, name: customerName(country, &random), address: address(country, &random), territoryID: territory(for: country),
                    currency: currency(for: country), creditLimitMinor: limit, balanceMinor: balance, overdueMinor: overdue,
                    overdueDays: overdue > 0 ? Int64(random.int(5...120)) : 0, balanceAsOf: 0, discipline: discipline,
                    defaultLevel: dealer ? .dealer : .customer, levels: levels,
                    talkingPoints: Array(Set((0..<random.int(0...3)).map { _ in random.pick(talkingPoints[country] ?? []) })).sorted()))
                let historyCount = plan.historyOrdersPerCustomer == 0 ? 0 : random.int(0...plan.historyOrdersPerCustomer)
                for orderIndex in 0..<historyCount {
                    let lineCount = random.int(1...8)
                    let lines = (0..<lineCount).map { _ in
                        (partNumber: random.pick(parts), quantity: Int64(random.int(1...48)), amountMinor: Int64(random.int(500...90_000)))
                    }
                    let month = random.int(1...12), day = random.int(1...28)
                    try writer.history(.init(ref: "ERP-\(id)-\(orderIndex)", customerID: id,
                                             day: "2026-\(month < 10 ? "0" : "")\(month)-\(day < 10 ? "0" : "")\(day)",
                                             currency: currency(for: country), paidLate: discipline != .strict && random.chance(0.4), lines: lines))
                    summary.historyOrders += 1
                    summary.historyLines += lineCount
                }
                if random.chance(0.1) {
                    let equipmentID = "EQ-\(id)"
                    try writer.equipment(id: equipmentID, customerID: id, kind: "cooler", serial: "SN\(random.int(100_000...999_999))", placedOn: "2025-05-01")
                    summary.equipment.append(equipmentID)
                }
            }
            summary.customers = plan.customers
            let stops = min(customerIDs.count, random.int(plan.routeStops))
            var route = customerIDs
            route.shuffle(using: &random)
            summary.todaysRoute = Array(route.prefix(stops))
            try writer.route(id: "RT-\(plan.today)", repID: plan.repID, day: plan.today, customerIDs: summary.todaysRoute)
            summary.routeStops = stops
        }
        return summary
    }

    // MARK: Vocabulary

    static let territories: [(id: String, name: String, parent: String?)] = [
        ("PL", "Polska", nil), ("PL-MAZ", "Mazowsze", "PL"), ("PL-MAL", "Małopolska", "PL"), ("PL-SLA", "Śląsk", "PL"),
        ("BG", "България", nil), ("BG-SOF", "София-град", "BG"), ("BG-PDV", "Пловдив", "BG"),
        ("RU", "Россия", nil), ("RU-MOW", "Москва", "RU"), ("RU-SPE", "Санкт-Петербург", "RU"),
    ]

    static func territory(for country: String) -> String {
        switch country {
        case "BG": return "BG-SOF"
        case "RU": return "RU-MOW"
        default: return "PL-MAZ"
        }
    }

    static func currency(for country: String) -> String {
        switch country {
        case "BG": return "BGN"
        case "RU": return "RUB"
        default: return "PLN"
        }
    }

    static let repNames = ["Paweł Wróblewski", "Małgorzata Żak", "Йордан Стоянов", "Светлана Кузнецова"]

    static func customerName(_ country: String, _ random: inout SeededRandom) -> String {
        switch country {
        case "BG":
            return "\(random.pick(["Магазин", "Строителен център", "Склад", "Търговска къща"])) „\(random.pick(["Витоша", "Странджа", "Марица", "Родопи", "Балкан", "Янтра"]))“ \(random.pick(["ЕООД", "ООД", "АД"]))"
        case "RU":
            return "\(random.pick(["ООО", "ИП", "АО"])) «\(random.pick(["Стройдвор", "Плиткин дом", "Керамика", "Уютный дом", "Ремонт-Плюс", "Берёзка"]))»"
        default:
            return "\(random.pick(["Hurtownia", "Sklep", "Salon łazienek", "Skład budowlany", "Market"])) \(random.pick(["Żółw", "Łoś", "Ćma", "Źródło", "Gęś", "Sójka", "Dąb"])) \(random.pick(["Sp. z o.o.", "s.c.", "S.A."]))"
        }
    }

    static func address(_ country: String, _ random: inout SeededRandom) -> String {
        switch country {
        case "BG": return "ул. \(random.pick(["Шипка", "Раковски", "Гурко", "Цар Симеон"])) \(random.int(1...120)), \(random.pick(["София", "Пловдив", "Варна", "Бургас"]))"
        case "RU": return "ул. \(random.pick(["Ленина", "Пушкина", "Садовая", "Щорса"])), д. \(random.int(1...90)), \(random.pick(["Москва", "Санкт-Петербург", "Тверь", "Ярославль"]))"
        default: return "ul. \(random.pick(["Piłsudskiego", "Żeromskiego", "Kościuszki", "Łąkowa", "Źródlana"])) \(random.int(1...150)), \(random.pick(["Łódź", "Kraków", "Gdańsk", "Poznań", "Częstochowa", "Wrocław"]))"
        }
    }

    static let talkingPoints: [String: [String]] = [
        "PL": ["Pyta o nową kolekcję płytek 60×120", "Remont sklepu w marcu — zaproponować ekspozycję", "Właściciel woli kontakt rano", "Zainteresowany fugami epoksydowymi"],
        "BG": ["Пита за нова колекция гранитогрес", "Иска отстъпка при палет", "Управителят е на разположение след 14 ч.", "Да се предложи щанд за лепила"],
        "RU": ["Спрашивает про новую коллекцию керамогранита", "Просит отсрочку платежа", "Директор на месте до обеда", "Предложить стенд для затирок"],
    ]

    static func productName(_ index: Int, _ random: inout SeededRandom) -> (String, String, Int) {
        switch index % 3 {
        case 0:
            return ("Płytki \(random.pick(["ścienne", "podłogowe", "gresowe"])) \(random.pick(["30×60", "60×60", "20×20"])) \(random.pick(["szare", "beżowe", "białe połysk", "grafit"])) #\(index)", "m2", 1)
        case 1:
            return ("\(random.pick(["Лепило за плочки", "Фугираща смес", "Хидроизолация", "Грунд"])) \(random.pick(["5 кг", "25 кг", "2 л"])) №\(index)", "pcs", random.pick([1, 6, 12]))
        default:
            return ("\(random.pick(["Затирка цементная", "Клей плиточный", "Герметик", "Крестики"])) \(random.pick(["белая", "серая", "антрацит", "3 мм"])) №\(index)", "pcs", random.pick([1, 10, 24]))
        }
    }

    static let displayMaterials: [(String, String)] = [
        ("DSP-BOARD", "Płyta ekspozycyjna MDF 120×60"), ("DSP-FRAME", "Рама за щанд"), ("DSP-LED", "Светодиодная лента 1 м"),
        ("DSP-HOOK", "Haczyk ekspozycyjny"),
    ]

    static let displayTypes: [WorkingSet.DisplayType] = [
        .init(code: "WALL", name: "Ściana ekspozycyjna", materials: [
            (partNumber: "DSP-BOARD", fixedQuantity: 0, perSquareMetreMilli: 1_390), (partNumber: "DSP-FRAME", fixedQuantity: 1, perSquareMetreMilli: 0),
            (partNumber: "DSP-LED", fixedQuantity: 0, perSquareMetreMilli: 1_000)]),
        .init(code: "STAND", name: "Щанд за лепила", materials: [
            (partNumber: "DSP-FRAME", fixedQuantity: 2, perSquareMetreMilli: 0), (partNumber: "DSP-HOOK", fixedQuantity: 4, perSquareMetreMilli: 8_000)]),
        .init(code: "GONDOLA", name: "Гондола островная", materials: [
            (partNumber: "DSP-BOARD", fixedQuantity: 2, perSquareMetreMilli: 2_780), (partNumber: "DSP-FRAME", fixedQuantity: 2, perSquareMetreMilli: 0)]),
    ]
}
