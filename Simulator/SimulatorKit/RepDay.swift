import Foundation
public import Hub
import Store

/// One rep's day as a plan, drawn from a seed: the stops of today's route and what happens at
/// each (an order of 5-30 lines over a catalogue with a few best sellers and a long tail, some
/// started as drafts and edited, a visit with a note in the customer's language, a payment in
/// the customer's currency, the day's display request and complaint), minutes apart. `satchel-sim
/// day` runs it through the real `satchel`; `satchel-sim bench sync` captures it in-process on a
/// simulated clock. Both draw it here, so the benchmark's day is the simulated day.
public struct RepDay: Sendable {
    public struct Line: Sendable, Equatable {
        public var part: String
        public var quantity: Int
    }

    public struct Order: Sendable {
        public var lines: [Line]
        /// Started as a draft with this many lines, the rest added later; nil: confirmed at once.
        public var draftLines: Int?
        /// A draft line removed before confirming (the rep changed their mind), by line number.
        public var removeLineNo: Int?
        /// The lines the confirmed order holds.
        public var finalLineCount: Int { lines.count - (removeLineNo == nil ? 0 : 1) }
        /// Changes the order writes to the journal: new, add-line, remove-line, confirm.
        public var changes: Int { draftLines == nil ? 1 : 3 + (removeLineNo == nil ? 0 : 1) }
    }

    public struct Payment: Sendable {
        public var amountMinor: Int
        public var method: String
        public var receipt: String
    }

    public struct Display: Sendable {
        public var type: String
        public var widthCm: Int
        public var heightCm: Int
        public var note: String
    }

    public struct Complaint: Sendable {
        public var text: String
        public var part: String
    }

    public struct Stop: Sendable {
        public var customer: String
        /// On the simulated clock, since the previous stop (driving, waiting, talking).
        public var minutesAfterPrevious: Int
        public var order: Order?
        public var outcome: String
        public var note: String
        public var payment: Payment?
        public var display: Display?
        public var complaint: Complaint?
    }

    public var stops: [Stop]
    /// The rep's fast sync at lunch runs after this many stops.
    public var middayAfter: Int

    public var orders: Int { stops.filter { $0.order != nil }.count }
    public var changes: Int {
        stops.reduce(0) { $0 + ($1.order?.changes ?? 0) + 1 + ($1.payment == nil ? 0 : 1) + ($1.display == nil ? 0 : 1) + ($1.complaint == nil ? 0 : 1) }
    }

    /// The plan for `route`, given what each customer owes (`overdue`, minor units, from the
    /// office's extract), the catalogue and the display types.
    public static func plan(route: [String], overdue: [String: Int64], catalogue: [String], displayTypes: [String], seed: UInt64) -> RepDay {
        var random = SeededRandom(seed: seed ^ 0x5EED_DA7)
        let popularity = Popularity(catalogue, random: &random)
        var stops: [Stop] = []
        var displayDone = false, complaintDone = false
        for (index, customer) in route.enumerated() {
            let owes = Int(overdue[customer] ?? 0)
            // A customer in arrears is visited to collect and usually orders anyway (held for approval).
            var order: Order?
            if random.chance(owes > 0 ? 0.9 : 0.75) {
                let count = random.int(5...30)
                var seen = Set<String>(), lines: [Line] = []
                while lines.count < count && seen.count < catalogue.count {
                    let part = popularity.pick(&random)
                    guard seen.insert(part).inserted else { continue }
                    // Loose pieces mostly, sometimes a box's worth.
                    lines.append(Line(part: part, quantity: random.chance(0.2) ? random.pick([6, 10, 12, 24, 48]) : random.int(1...12)))
                }
                var planned = Order(lines: lines)
                if random.chance(0.2) {
                    let draftLines = random.int(1...min(3, lines.count - 1))
                    planned.draftLines = draftLines
                    if random.chance(0.5) { planned.removeLineNo = random.int(1...lines.count) }
                }
                order = planned
            }
            let language = customer.hasPrefix("CBG") ? "BG" : customer.hasPrefix("CRU") ? "RU" : "PL"
            var note = random.pick(notes[language] ?? [])
            if random.chance(0.4) { note += " — " + random.pick(notes[language] ?? []) }
            if random.chance(0.2) { note += " (\(random.int(2...40)) \(units[language] ?? ""))" }
            var payment: Payment?
            if owes > 0 || random.chance(0.15) {
                let amount = owes > 0 ? min(owes, random.int(5_000...200_000)) : random.int(5_000...50_000)
                payment = Payment(amountMinor: amount, method: random.pick(["cash", "card", "transfer"]), receipt: "KP/\(index + 1)")
            }
            var display: Display?
            if !displayDone && index >= route.count / 2 && !displayTypes.isEmpty {
                display = Display(type: random.pick(displayTypes), widthCm: random.int(60...240), heightCm: random.int(100...220),
                                  note: random.pick(["Ekspozycja przy wejściu", "Щанд до касата", "Стенд у входа в торговый зал"]))
                displayDone = true
            }
            var complaint: Complaint?
            if !complaintDone && index >= route.count * 2 / 3 {
                complaint = Complaint(text: random.pick(complaints[language] ?? []), part: popularity.pick(&random))
                complaintDone = true
            }
            stops.append(Stop(customer: customer, minutesAfterPrevious: index == 0 ? random.int(20...60) : random.int(8...35), order: order,
                              outcome: order != nil ? "order" : random.pick(["no_order", "not_met", "merchandising"]),
                              note: note, payment: payment, display: display, complaint: complaint))
        }
        return RepDay(stops: stops, middayAfter: stops.count / 2)
    }

    /// A catalogue ranked by how often it sells: a seeded order, picked with a cubed uniform,
    /// so the top tenth of the parts takes about half the lines and the tail still appears.
    struct Popularity {
        let ranked: [String]
        init(_ catalogue: [String], random: inout SeededRandom) {
            var ranked = catalogue
            ranked.shuffle(using: &random)
            self.ranked = ranked
        }
        func pick(_ random: inout SeededRandom) -> String {
            let uniform = Double(random.next() >> 11) / Double(UInt64(1) << 53)
            return ranked[min(ranked.count - 1, Int(Double(ranked.count) * uniform * uniform * uniform))]
        }
    }

    static let notes: [String: [String]] = [
        "PL": ["Rozmowa z właścicielem", "Klient prosi o katalog płytek 60×120", "Dostawa w czwartek, rozładunek od tyłu sklepu",
               "Kierownik na urlopie, rozmawiałem z zastępcą", "Reklamacja z zeszłego miesiąca załatwiona", "Brak miejsca na ekspozycję, wrócić w marcu",
               "Zainteresowani fugą epoksydową, zostawiłem próbki", "Konkurencja daje 5% rabatu na kleje", "Właścicielka prosi o telefon przed wizytą"],
        "BG": ["Поговорихме за новата колекция", "Управителят иска отстъпка при палет", "Доставката закъсня с два дни — да се провери",
               "Оставих мостри на лепило 25 кг", "Да се обадя в петък след 14 ч.", "Складът е пълен, поръчка следващия път", "Питат за гранитогрес 60×120"],
        "RU": ["Обсудили акцию на затирки", "Директор просит отсрочку платежа на две недели", "Склад переполнен, заказ в следующий раз",
               "Оставил каталог керамогранита", "Интересуются герметиком, нужен прайс", "Жалуются на сроки доставки", "Новый закупщик — Ольга Сергеевна"],
    ]
    static let units: [String: String] = ["PL": "szt.", "BG": "бр.", "RU": "шт."]
    static let complaints: [String: [String]] = [
        "PL": ["Uszkodzone opakowania — 3 kartony z pękniętymi płytkami", "Odcień płytek inny niż na próbce"],
        "BG": ["Повредени опаковки — 3 кутии с пукнати плочки", "Лепилото е с изтекъл срок"],
        "RU": ["Повреждённая упаковка — 3 коробки с треснувшей плиткой", "Затирка не того оттенка"],
    ]
}

/// The office's side of a rep's day, on the hub's database: answers to the day's orders (accepted,
/// one rejected, held ones approved), some given before the order has reached the hub, and the
/// evening's master-data change from the ERP: a few hundred prices and about a thousand stock
/// rows, drawn across the whole catalogue (not a consecutive run).
public enum OfficeDay {
    public struct Evening: Sendable, Codable {
        public var prices: Int
        public var stockRows: Int
    }

    /// Changes `prices` prices and `stockRows` stock rows (van and warehouse) at random in the
    /// hub database at `hubPath`; every change is a real change of value.
    public static func eveningChange(hubPath: String, prices: Int, stockRows: Int, seed: UInt64) throws -> Evening {
        var random = SeededRandom(seed: seed ^ 0x0FF1CE)
        let office = try Database(path: hubPath)
        // The hub's tables have no rowid: rows are drawn by key, from the whole table.
        let priceKeys = try office.query("SELECT part_number, level, currency FROM prices ORDER BY 1, 2, 3") { [DatabaseValue.text($0.text(0)), .text($0.text(1)), .text($0.text(2))] }
        let stockKeys = try office.query("SELECT location, part_number FROM stock ORDER BY 1, 2") { [DatabaseValue.text($0.text(0)), .text($0.text(1))] }
        let changedPrices = sample(priceKeys, prices, &random), changedStock = sample(stockKeys, stockRows, &random)
        try office.transaction(.immediate) {
            for key in changedPrices {
                // A list-price revision: up a few percent, now and then down (never to nothing).
                let percent = Int64(random.chance(0.8) ? random.int(2...9) : -random.int(1...5))
                let price = try office.int64("SELECT price_minor FROM prices WHERE part_number = ? AND level = ? AND currency = ?", key)
                let step = max(1, price * abs(percent) / 100)
                try office.execute("UPDATE prices SET price_minor = ? WHERE part_number = ? AND level = ? AND currency = ?",
                                   [.integer(percent < 0 && price > step ? price - step : price + step)] + key)
            }
            for key in changedStock {
                // Sold off the van or the warehouse, or a delivery counted in.
                let delta = Int64(random.chance(0.7) ? -random.int(1...30) : random.int(10...400))
                try office.execute("UPDATE stock SET quantity = CASE WHEN quantity + ?1 < 0 THEN quantity + 5 ELSE quantity + ?1 END WHERE location = ?2 AND part_number = ?3",
                                   [.integer(delta)] + key)
            }
        }
        return Evening(prices: changedPrices.count, stockRows: changedStock.count)
    }

    public struct Answers: Sendable, Codable {
        public var accepted: [String] = []
        public var rejected: [String] = []
    }

    /// The office's answers to `orders` (ids, in the order captured; `held`: waiting for
    /// approval): about half accepted, one rejected, held ones left to the supervisor. Whether
    /// each order has reached the hub yet does not matter (`document set` works either way).
    public static func answer(_ storage: SQLiteHubStorage, device: String, orders: [(id: String, held: Bool)], seed: UInt64, now: Int64) throws -> Answers {
        var random = SeededRandom(seed: seed ^ 0xA25)
        var answers = Answers()
        for order in orders where !order.held {
            if random.chance(0.5) {
                try storage.setDocumentState(device: device, entity: "order", entityId: order.id, state: "accepted", approval: nil, now: now)
                answers.accepted.append(order.id)
            } else if answers.rejected.isEmpty && random.chance(0.3) {
                try storage.setDocumentState(device: device, entity: "order", entityId: order.id, state: "rejected", approval: nil, now: now)
                answers.rejected.append(order.id)
            }
        }
        return answers
    }

    static func sample<Key>(_ keys: [Key], _ count: Int, _ random: inout SeededRandom) -> [Key] {
        guard count < keys.count else { return keys }
        var chosen = Set<Int>()
        while chosen.count < count { chosen.insert(random.int(0...(keys.count - 1))) }
        return chosen.sorted().map { keys[$0] }
    }
}
