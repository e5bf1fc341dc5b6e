import Field
import Foundation
import Store
import Sync

/// The ERP exchange file (docs/erp-exchange.xsd) imported into the hub's master data.
///
/// Sections, each optional, in this order: currencies, territories, reps, products (with their
/// units and prices), display-types (with their materials), customers (with their price levels
/// and open items), stock, routes (with their stops). A section present replaces what the hub
/// had of it; stock is an upsert by location and part number (the ERP sends what moved); reps
/// are updated or added, never removed (their sign-in lives on the hub).
///
/// All or nothing: the whole file goes in one transaction, every row checked as a handheld
/// would store it (the device's own migrations, staged in `ERPStaging`) and every reference
/// checked against the device schema's foreign keys; a file with any refused row is rolled back
/// whole and the refusal names line, element and reason. Memory stays bounded: rows are staged
/// in chunks, each chunk checked set by set and moved into the hub's tables as it fills.
public struct ERPImportSummary: Codable, Equatable, Sendable {
    public var rows: [String: Int] = [:]
    public var encoding: String = ""
    public var addedReps: [String] = []
}

extension SQLiteHubStorage {
    public func importERP(path: String) throws -> ERPImportSummary { try importERPTables(path: path).summary }

    /// The import, and the hub tables it wrote: those of each section the file had (`stock` and
    /// `reps` too, which it updates rather than replaces). The PostgreSQL hub copies these.
    func importERPTables(path: String) throws -> (summary: ERPImportSummary, tables: Set<String>) {
        try guarded {
            let reader: ERPXMLReader
            do { reader = try ERPXMLReader(path: path) } catch let failure as ERPXMLReader.Failure {
                throw HubError.invalid("ERP file \(path) refused, nothing imported: \(failure)\nFix the file and import it again.")
            }
            // The staging copy's foreign keys are the device's, checked set by set against the
            // hub's tables, never enforced inside the copy; the hub tables the import writes hold
            // no foreign key of their own that it could break (reps are never deleted or renamed).
            // PRAGMA foreign_keys does nothing inside a transaction, so it is set around it.
            try ERPStaging.attach(to: database)
            try database.execute("PRAGMA foreign_keys = OFF")
            defer {
                try? database.execute("PRAGMA foreign_keys = ON")
                ERPStaging.detach(from: database)
            }
            var importer = try ERPImporter(database: database, reader: reader)
            do {
                return try writeTransaction {
                    try importer.run()
                    guard importer.problems.isEmpty else { throw ERPImporter.Refused() }
                    return (importer.summary, importer.replaced.union(importer.updated))
                }
            } catch let failure as ERPXMLReader.Failure {
                importer.problems.append(.init(line: failure.line, text: failure.description))
            } catch is ERPImporter.Refused {}
            // In file order: a set-based check names its rows when their chunk is checked.
            let problems = importer.problems.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element.text)
            let shown = problems.prefix(20).map { "  \($0)" }.joined(separator: "\n")
            let more = importer.problems.count > 20 ? "\n  ... and more" : ""
            let count = importer.problems.count
            throw HubError.invalid("""
                ERP file \(path) refused, nothing imported: \(count) problem\(count == 1 ? "" : "s")\(count > 20 ? " (the first 20)" : "")
                \(shown)\(more)
                Fix \(count == 1 ? "it" : "them") in the file and import it again.
                """)
        }
    }
}

struct ERPImporter {
    struct Refused: Error {}
    typealias Failure = ERPXMLReader.Failure

    let database: Database
    let reader: ERPXMLReader
    /// What is wrong with the file, each with its line (`Int.max`: a row the hub kept).
    struct Problem { var line: Int; var text: String }
    var problems: [Problem] = []
    var summary = ERPImportSummary()
    var statements: [String: Statement] = [:]
    /// The prepared INSERT into each staging table, with the table and whether it folds names.
    var stagingInserts: [String: (statement: Statement, table: WorkingSetTables.Table, folded: Bool)] = [:]
    /// Staging tables holding rows of the current chunk, and how many rows that is.
    var stagedTables: Set<String> = []
    var stagedCount = 0
    /// Keys of rows refused at staging, per table: a child pointing at one is not named again
    /// (each row is refused for its own reason).
    var refusedKeys: [String: Set<WorkingSetRow>] = [:]
    static let chunkRows = 8_192
    var currencies: Set<String> = []
    var territoryLines: [String: Int] = [:]
    var replaced: Set<String> = []
    /// The hub tables a section updates in place (stock, reps), when the file has that section.
    var updated: Set<String> = []
    static let maxProblems = 200

    /// Sections in their order, and the tables each replaces.
    static let sections: [(name: String, tables: [String])] = [
        ("currencies", ["erp_currencies"]),
        ("territories", ["territories"]),
        ("reps", []),
        ("products", ["products", "product_units", "prices"]),
        ("display-types", ["display_types", "display_type_materials"]),
        ("customers", ["customers", "customer_price_levels", "erp_open_items"]),
        ("stock", []),
        ("routes", ["routes", "route_stops"]),
    ]

    init(database: Database, reader: ERPXMLReader) throws {
        self.database = database
        self.reader = reader
        try database.execute("CREATE TEMP TABLE IF NOT EXISTS erp_stock_seen (location TEXT NOT NULL, part_number TEXT NOT NULL, PRIMARY KEY (location, part_number)) WITHOUT ROWID")
        try database.execute("DELETE FROM temp.erp_stock_seen")
        currencies = Set(try database.query("SELECT code FROM erp_currencies") { $0.text(0) })
        summary.encoding = reader.encoding.rawValue
    }

    mutating func problem(_ line: Int, _ element: String, _ reason: String) throws {
        problems.append(Problem(line: line, text: "line \(line), <\(element)>: \(reason)"))
        if problems.count >= Self.maxProblems { throw Refused() }
    }

    // MARK: Walking the file

    mutating func run() throws {
        guard case .start(let root, let attributes, let line)? = try reader.next() else { throw Failure(line: reader.line, reason: "no root element") }
        guard root == "erp-exchange" else {
            throw Failure(line: line, reason: "the root element is <\(TerminalText.safe(root))>, not <erp-exchange> (docs/erp-exchange.xsd)")
        }
        let values = try attributeMap(root, attributes, line, allowed: ["version", "generated-at", "source"])
        if let version = values["version"], version != "1" {
            throw Failure(line: line, reason: "exchange version \(TerminalText.safe(version)); this hub reads version 1")
        }
        var lastSection = -1
        while let event = try reader.next() {
            switch event {
            case .end: try finish(); return
            case .text(_, let line): throw Failure(line: line, reason: "text directly inside <erp-exchange>: only sections belong there")
            case .start(let name, let attributes, let line):
                guard let index = Self.sections.firstIndex(where: { $0.name == name }) else {
                    throw Failure(line: line, reason: "unknown element <\(TerminalText.safe(name))> in <erp-exchange> (sections: \(Self.sections.map(\.name).joined(separator: ", ")))")
                }
                guard index > lastSection else {
                    throw Failure(line: line, reason: "section <\(name)> \(index == lastSection ? "appears twice" : "comes after <\(Self.sections[lastSection].name)>"): the sections come once each, in the order \(Self.sections.map(\.name).joined(separator: ", "))")
                }
                lastSection = index
                _ = try attributeMap(name, attributes, line, allowed: [])
                for table in Self.sections[index].tables {
                    try database.execute("DELETE FROM \(table)")
                    replaced.insert(table)
                }
                if name == "currencies" { currencies = [] }
                if name == "stock" || name == "reps" { updated.insert(name) }
                try section(name, line: line)
            }
        }
    }

    /// Reads the elements of one section up to its end tag.
    mutating func section(_ section: String, line: Int) throws {
        let child = ["currencies": "currency", "territories": "territory", "reps": "rep", "products": "product",
                     "display-types": "display-type", "customers": "customer", "stock": "item", "routes": "route"][section]!
        while let event = try reader.next() {
            switch event {
            case .end:
                try flushStaged()
                if section == "territories" { try checkTerritoryParents() }
                return
            case .text(_, let line): throw Failure(line: line, reason: "text inside <\(section)>: only <\(child)> elements belong there")
            case .start(let name, let attributes, let line):
                guard name == child else {
                    throw Failure(line: line, reason: "unknown element <\(TerminalText.safe(name))> in <\(section)> (expected <\(child)>)")
                }
                try element(name, attributes, line)
            }
        }
    }

    /// The children of a record element (units of a product...), each handled by `body`.
    mutating func children(of parent: String, allowed: [String], _ body: (inout ERPImporter, String, [(String, String)], Int) throws -> Void) throws {
        while let event = try reader.next() {
            switch event {
            case .end: return
            case .text(_, let line): throw Failure(line: line, reason: "text inside <\(parent)>: its data goes in attributes (docs/erp-exchange.xsd)")
            case .start(let name, let attributes, let line):
                guard Self.names(allowed, contain: name) else {
                    throw Failure(line: line, reason: "unknown element <\(TerminalText.safe(name))> in <\(parent)>" + (allowed.isEmpty ? " (it has no children)" : " (expected \(allowed.map { "<\($0)>" }.joined(separator: ", ")))"))
                }
                try body(&self, name, attributes, line)
                // A child has no children of its own.
                try children(of: name, allowed: Self.none) { _, _, _, _ in }
            }
        }
    }

    /// An element's attributes, looked up by name in a list (an element has a handful: a
    /// linear search costs less than hashing them into a dictionary per element).
    struct Attributes {
        let pairs: [(String, String)]
        subscript(_ name: String) -> String? {
            // An index loop: no iterator, no tuple copied per pair.
            var index = 0
            while index < pairs.count {
                if pairs[index].0 == name { return pairs[index].1 }
                index += 1
            }
            return nil
        }
    }

    func attributeMap(_ element: String, _ attributes: [(String, String)], _ line: Int, allowed: [String], also: [String] = []) throws -> Attributes {
        for index in attributes.indices where !Self.names(allowed, contain: attributes[index].0) && !Self.names(also, contain: attributes[index].0) {
            let name = attributes[index].0
            let all = allowed + also
            throw Failure(line: line, reason: "unknown attribute \(TerminalText.safe(name)) in <\(element)>" + (all.isEmpty ? " (it has none)" : " (it has \(all.sorted().joined(separator: ", ")))"))
        }
        // The reader refuses an attribute named twice, so the list has each name once.
        return Attributes(pairs: attributes)
    }

    /// Whether `names` holds `name` (an index loop: the generic `contains` costs a call per
    /// element it looks at).
    static func names(_ names: [String], contain name: String) -> Bool {
        var index = 0
        while index < names.count {
            if names[index] == name { return true }
            index += 1
        }
        return false
    }

    // The attributes of the elements a large file repeats most, made once.
    static let productRequired = ["part-number", "name"], productOptional = ["base-unit", "channel"], productChildren = ["unit", "price"]
    static let priceRequired = ["level", "currency", "amount-minor"], priceOptional = ["valid-until"]
    static let unitRequired = ["name", "factor"], none: [String] = []
    static let itemRequired = ["part-number", "quantity"], itemOptional = ["location"]

    // MARK: Records

    struct Record {
        let element: String
        let line: Int
        let values: Attributes
    }

    mutating func record(_ element: String, _ attributes: [(String, String)], _ line: Int, required: [String], optional: [String]) throws -> Record? {
        let values = try attributeMap(element, attributes, line, allowed: required, also: optional)
        var missing = false
        for name in required where values[name]?.isEmpty ?? true {
            try problem(line, element, "\(name) is missing" + (name == "part-number" ? " (every product, unit, price and stock line needs its part number)" : ""))
            missing = true
        }
        return missing ? nil : Record(element: element, line: line, values: values)
    }

    mutating func integer(_ record: Record, _ name: String, default fallback: Int64? = nil) throws -> Int64? {
        guard let text = record.values[name] else {
            if fallback == nil { try problem(record.line, record.element, "\(name) is missing") }
            return fallback
        }
        guard let number = Int64(text) else {
            try problem(record.line, record.element, "\(name) = '\(TerminalText.safe(text))' is not a whole number (amounts are in minor units: grosz, stotinki, kopecks)")
            return nil
        }
        return number
    }

    mutating func day(_ record: Record, _ name: String) throws -> String? {
        guard let text = record.values[name] else { return nil }
        guard Self.epochDay(text) != nil else {
            try problem(record.line, record.element, "\(name) = '\(TerminalText.safe(text))' is not a date YYYY-MM-DD")
            return nil
        }
        return text
    }

    /// Days since 1970-01-01 of a YYYY-MM-DD date (proleptic Gregorian), nil if it is none.
    static func epochDay(_ text: String) -> Int64? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.count == 10, parts.count == 3, let y = Int64(parts[0]), let m = Int64(parts[1]), let d = Int64(parts[2]),
              (1...12).contains(m), d >= 1 else { return nil }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let lengths: [Int64] = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard d <= lengths[Int(m - 1)] else { return nil }
        let yy = m <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    mutating func currency(_ record: Record, _ name: String) throws -> String? {
        guard let code = record.values[name] else { return nil }
        guard currencies.contains(code) else {
            try problem(record.line, record.element, "currency \(TerminalText.safe(code)) is unknown (known: \(currencies.isEmpty ? "none: list them in <currencies>" : currencies.sorted().joined(separator: ", ")))")
            return nil
        }
        return code
    }

    mutating func element(_ name: String, _ attributes: [(String, String)], _ line: Int) throws {
        switch name {
        case "currency":
            guard let record = try record(name, attributes, line, required: ["code"], optional: ["minor-units"]) else { break }
            let code = record.values["code"]!
            guard code.count == 3, code.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
                try problem(line, name, "code '\(TerminalText.safe(code))' is not an ISO 4217 code (three capital letters: PLN, BGN, RUB, EUR)"); break
            }
            guard let units = try integer(record, "minor-units", default: 2), (0...4).contains(units) else {
                try problem(line, name, "minor-units is not 0 to 4"); break
            }
            try insertHubRow("erp_currencies", ["code", "minor_units"], [.text(code), .integer(units)], record)
            currencies.insert(code)
        case "territory":
            guard let record = try record(name, attributes, line, required: ["id", "name"], optional: ["parent"]) else { break }
            territoryLines[record.values["id"]!] = line
            try row("territories", [.text(record.values["id"]!), .text(record.values["name"]!), DatabaseValue(record.values["parent"])], record)
        case "rep":
            guard let record = try record(name, attributes, line, required: ["id", "name"], optional: ["territory", "role"]) else { break }
            try rep(record)
        case "product":
            guard let record = try record(name, attributes, line, required: Self.productRequired, optional: Self.productOptional) else {
                try children(of: name, allowed: Self.productChildren) { _, _, _, _ in }
                break
            }
            let part = record.values["part-number"]!
            try row("products", [.text(part), .text(record.values["name"]!), .text(record.values["base-unit"] ?? "pcs"), .text(record.values["channel"] ?? "retail")], record)
            try children(of: name, allowed: Self.productChildren) { importer, child, attributes, line in
                if child == "unit" {
                    guard let unit = try importer.record(child, attributes, line, required: Self.unitRequired, optional: Self.none),
                          let factor = try importer.integer(unit, "factor") else { return }
                    try importer.row("product_units", [.text(part), .text(unit.values["name"]!), .integer(factor)], unit)
                } else {
                    guard let price = try importer.record(child, attributes, line, required: Self.priceRequired, optional: Self.priceOptional),
                          let amount = try importer.integer(price, "amount-minor"),
                          let currency = try importer.currency(price, "currency") else { return }
                    let until = try importer.day(price, "valid-until")
                    if price.values["valid-until"] != nil && until == nil { return }
                    try importer.row("prices", [.text(part), .text(price.values["level"]!), .text(currency), .integer(amount), DatabaseValue(until)], price)
                }
            }
        case "display-type":
            guard let record = try record(name, attributes, line, required: ["code", "name"], optional: []) else {
                try children(of: name, allowed: ["material"]) { _, _, _, _ in }
                break
            }
            let code = record.values["code"]!
            try row("display_types", [.text(code), .text(record.values["name"]!)], record)
            try children(of: name, allowed: ["material"]) { importer, child, attributes, line in
                guard let material = try importer.record(child, attributes, line, required: ["part-number"], optional: ["fixed", "per-square-metre-milli"]),
                      let fixed = try importer.integer(material, "fixed", default: 0),
                      let perMetre = try importer.integer(material, "per-square-metre-milli", default: 0) else { return }
                try importer.row("display_type_materials", [.text(code), .text(material.values["part-number"]!), .integer(fixed), .integer(perMetre)], material)
            }
        case "customer":
            guard let record = try record(name, attributes, line, required: ["id", "name", "currency"], optional: [
                "address", "territory", "credit-limit-minor", "balance-minor", "overdue-minor", "overdue-days", "balance-as-of",
                "discipline", "default-level", "talking-points"]) else {
                try children(of: name, allowed: ["price-level", "open-item"]) { _, _, _, _ in }
                break
            }
            let id = record.values["id"]!
            var balanceAsOf: Int64 = 0
            if let text = record.values["balance-as-of"] {
                if let day = Self.epochDay(text) { balanceAsOf = day * 86_400_000 } else {
                    try problem(line, name, "balance-as-of = '\(TerminalText.safe(text))' is not a date YYYY-MM-DD")
                }
            }
            if let currency = try currency(record, "currency"),
               let limit = try integer(record, "credit-limit-minor", default: 0), let balance = try integer(record, "balance-minor", default: 0),
               let overdue = try integer(record, "overdue-minor", default: 0), let overdueDays = try integer(record, "overdue-days", default: 0) {
                try row("customers", [.text(id), .text(record.values["name"]!), .text(record.values["address"] ?? ""), DatabaseValue(record.values["territory"]),
                                      .text(currency), .integer(limit), .integer(balance), .integer(overdue), .integer(overdueDays), .integer(balanceAsOf),
                                      .text(record.values["discipline"] ?? "strict"), .text(record.values["default-level"] ?? "customer"),
                                      .text(record.values["talking-points"] ?? "")], record)
            }
            try children(of: name, allowed: ["price-level", "open-item"]) { importer, child, attributes, line in
                if child == "price-level" {
                    guard let level = try importer.record(child, attributes, line, required: ["level"], optional: []) else { return }
                    try importer.row("customer_price_levels", [.text(id), .text(level.values["level"]!)], level)
                } else {
                    guard let item = try importer.record(child, attributes, line, required: ["ref", "due-on", "amount-minor", "currency"], optional: ["issued-on"]),
                          let amount = try importer.integer(item, "amount-minor"), let currency = try importer.currency(item, "currency"),
                          let due = try importer.day(item, "due-on") else { return }
                    let issued = try importer.day(item, "issued-on")
                    try importer.insertHubRow("erp_open_items", ["customer_id", "ref", "issued_on", "due_on", "amount_minor", "currency"],
                                              [.text(id), .text(item.values["ref"]!), DatabaseValue(issued), .text(due), .integer(amount), .text(currency)], item)
                }
            }
        case "item":
            guard let record = try record(name, attributes, line, required: Self.itemRequired, optional: Self.itemOptional),
                  let quantity = try integer(record, "quantity") else { break }
            guard quantity >= 0 else {
                try problem(line, name, "quantity \(quantity) of \(TerminalText.safe(record.values["part-number"]!)) is negative: the ERP's stock is never below zero; correct the stock in the ERP and export again")
                break
            }
            try stock(record, quantity: quantity)
        case "route":
            guard let record = try record(name, attributes, line, required: ["id", "rep", "day"], optional: []) else {
                try children(of: name, allowed: ["stop"]) { _, _, _, _ in }
                break
            }
            let id = record.values["id"]!
            if try day(record, "day") != nil {
                let rep = record.values["rep"]!
                if try database.first("SELECT 1 FROM reps WHERE id = ?", [.text(rep)], row: { _ in true }) == nil {
                    try problem(line, name, "rep \(TerminalText.safe(rep)) is unknown (neither the hub nor the file's <reps> has it)")
                }
                try row("routes", [.text(id), .text(rep), .text(record.values["day"]!)], record)
            }
            try children(of: name, allowed: ["stop"]) { importer, child, attributes, line in
                guard let stop = try importer.record(child, attributes, line, required: ["position", "customer"], optional: []),
                      let position = try importer.integer(stop, "position") else { return }
                try importer.row("route_stops", [.text(id), .integer(position), .text(stop.values["customer"]!)], stop)
            }
        default:
            throw Failure(line: line, reason: "unknown element <\(TerminalText.safe(name))>")
        }
        if name != "product" && name != "display-type" && name != "customer" && name != "route" {
            try children(of: name, allowed: Self.none) { _, _, _, _ in }
        }
    }

    // MARK: Writing and checking rows

    /// A working-set row: into its staging table, where the device schema judges it (a refusal
    /// is named now, with its line); its references, a duplicate of an earlier chunk and the
    /// move into the hub's table are the chunk's, set by set (`flushStaged`).
    mutating func row(_ tableName: String, _ values: WorkingSetRow, _ record: Record) throws {
        if try stage(tableName, values, record) { summary.rows[tableName, default: 0] += 1 }
    }

    /// Stages one row; false (and a problem named) when the device schema refuses it.
    mutating func stage(_ tableName: String, _ values: WorkingSetRow, _ record: Record) throws -> Bool {
        let insert: (statement: Statement, table: WorkingSetTables.Table, folded: Bool)
        if let prepared = stagingInserts[tableName] { insert = prepared } else {
            let table = WorkingSetTables.named(tableName)!
            let folded = FieldSchema.foldedNameTables.contains(table.name)
            let columns = table.columns.map(\.name) + (folded ? ["name_folded"] : []) + ["erp_line"]
            insert = (try database.statement("INSERT INTO \(ERPStaging.schema).\(table.name)(\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))"),
                      table, folded)
            stagingInserts[tableName] = insert
        }
        let table = insert.table, statement = insert.statement
        // A value not of the column's kind: the TABLE encoder could not send the row at all.
        var misfit: Int?
        for index in 0..<table.columns.count where !DeviceSchemaCheck.fits(values[index], table.columns[index].kind) { misfit = index; break }
        if let index = misfit {
            let column = table.columns[index]
            let integer = column.kind == .integer || column.kind == .optionalInteger
            try refuse(table, values, record, column: column.name,
                       reason: "not \(integer ? "an integer" : "text")" + (column.kind == .integer || column.kind == .text ? " (NULL is not allowed here)" : ""))
            return false
        }
        statement.reset()
        var position: Int32 = 1
        for index in 0..<values.count { try statement.bind(values[index], at: position); position += 1 }
        if insert.folded {
            // The staged copy needs name_folded only to be NOT NULL as the device's is: the device
            // derives it from name itself (SearchFolding, never NULL) and no constraint or trigger
            // of its schema reads it, so the name stands in for it and the fold is not computed.
            if case .text(let name) = values[1] { try statement.bind(name, at: position) } else { try statement.bindNull(at: position) }
            position += 1
        }
        try statement.bind(record.line, at: position)
        do {
            try statement.runBound()
        } catch let error as StoreError where error.kind == .constraint {
            if error.message.hasPrefix("UNIQUE constraint failed") {
                let key = Array(values[..<table.keyCount])
                if table.name == "stock" {
                    try problem(record.line, record.element, "duplicate stock line for \(Displayed.value(values[1])) at \(Displayed.value(values[0]))")
                } else {
                    try problem(record.line, record.element, "duplicate key \(key.map(Displayed.value).joined(separator: ", ")): \(table.name) has it already (a key appears once per file)")
                }
                return false
            }
            try refuse(table, values, record, column: DeviceSchemaCheck.column(named: error.message, in: table), reason: error.message)
            return false
        }
        stagedTables.insert(table.name)
        stagedCount += 1
        if stagedCount >= Self.chunkRows { try flushStaged() }
        return true
    }

    /// A row the device schema refuses, in the words of `DeviceSchemaCheck.Refusal`.
    mutating func refuse(_ table: WorkingSetTables.Table, _ values: WorkingSetRow, _ record: Record, column: String?, reason: String) throws {
        let value = column.flatMap { name in table.columns.firstIndex { $0.name == name } }.map { values[$0] }
        let key = Array(values[..<table.keyCount])
        let refusal = DeviceSchemaCheck.Refusal(table: table, key: table.key(of: values), keyValues: key, column: column, value: value, reason: reason)
        refusedKeys[table.name, default: []].insert(key)
        try problem(record.line, record.element, "a handheld would refuse this row: \(refusal)")
    }

    /// Inserts one row into a hub table; false (and a problem named) when its key is there already.
    @discardableResult
    mutating func insertHubRow(_ table: String, _ columns: [String], _ values: [DatabaseValue], _ record: Record) throws -> Bool {
        let statement: Statement
        if let prepared = statements[table] { statement = prepared } else {
            statement = try database.statement("INSERT INTO \(table)(\(columns.joined(separator: ", "))) VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))")
            statements[table] = statement
        }
        do {
            try statement.run(values)
            summary.rows[table, default: 0] += 1
            return true
        } catch let error as StoreError where error.kind == .constraint {
            let key = WorkingSetTables.named(table).map { Array(values[..<$0.keyCount]) } ?? [values[0]]
            try problem(record.line, record.element, "duplicate key \(key.map(Displayed.value).joined(separator: ", ")): \(table) has it already (a key appears once per file)")
            return false
        }
    }

    mutating func stock(_ record: Record, quantity: Int64) throws {
        let location = record.values["location"] ?? "warehouse", part = record.values["part-number"]!
        try row("stock", [.text(location), .text(part), .integer(quantity)], record)
    }

    mutating func rep(_ record: Record) throws {
        let id = record.values["id"]!, role = record.values["role"] ?? "rep"
        // The handheld takes its rep id into every document id and refuses one it cannot use
        // there (`satchel init --rep`): such a rep could never sync, so the file is refused here.
        do { try DeviceDatabase.validateIdentifier(id, what: "rep id") } catch {
            return try problem(record.line, record.element, "rep id \(TerminalText.safe(id)) is one a handheld refuses: use 1 to 32 letters, digits, '_' or '.' (it becomes part of every document id)")
        }
        let values: WorkingSetRow = [.text(id), .text(record.values["name"]!), DatabaseValue(record.values["territory"]), .text(role)]
        guard try stage("reps", values, record) else { return }
        // Reps are few and updated in place (their sign-in lives on the hub): one row at a time.
        if try database.first("SELECT 1 FROM reps WHERE id = ?", [.text(id)], row: { _ in true }) != nil {
            try database.execute("UPDATE reps SET name = ?2, territory_id = ?3, role = ?4 WHERE id = ?1", values)
        } else {
            // A rep the ERP knows and the hub does not yet: added without a sync password (an
            // empty hash verifies nothing), so their handheld syncs once the office sets one.
            try database.execute("INSERT INTO reps(id, name, territory_id, role, password_hash) VALUES (?, ?, ?, ?, '')", values)
            summary.addedReps.append(id)
        }
        summary.rows["reps", default: 0] += 1
    }

    /// The staged chunk, table by table in `WorkingSetTables.all` order (a parent before its
    /// children): its references checked against the hub's tables with one anti-join per
    /// foreign key, its rows moved into the hub's table with one statement, then the staging
    /// tables emptied. The parent's section came earlier in the file, or the row is nested in
    /// its parent and the parent's table was moved first, so the parent table is final here.
    mutating func flushStaged() throws {
        guard stagedCount > 0 else { return }
        let tables = ERPStaging.tables.filter { stagedTables.contains($0.name) }
        for table in tables {
            try checkStagedReferences(table)
            try moveStaged(table)
        }
        for table in tables.reversed() { try database.execute("DELETE FROM \(ERPStaging.schema).\(table.name)") }
        stagedTables = []
        stagedCount = 0
    }

    mutating func checkStagedReferences(_ table: WorkingSetTables.Table) throws {
        let element = ERPStaging.elements[table.name] ?? table.name
        for reference in DeviceSchemaCheck.references[table.name] ?? [] where reference.parent != table.name {
            let present = reference.from.map { "c.\($0) IS NOT NULL" }.joined(separator: " AND ")
            let match = zip(reference.from, reference.to).map { "p.\($1) = c.\($0)" }.joined(separator: " AND ")
            let dangling = try database.query("""
                SELECT c.erp_line, \(reference.from.map { "c.\($0)" }.joined(separator: ", ")) FROM \(ERPStaging.schema).\(table.name) c
                WHERE \(present) AND NOT EXISTS (SELECT 1 FROM main.\(reference.parent) p WHERE \(match)) ORDER BY c.erp_line LIMIT \(Self.maxProblems)
                """) { statement in (statement.int(0), (1...Int32(reference.from.count)).map { statement.value($0) }) }
            for (line, values) in dangling {
                if refusedKeys[reference.parent]?.contains(values) == true { continue }
                let missing = zip(reference.to, values).map { "\($0) \(Displayed.value($1))" }.joined(separator: ", ")
                try problem(line, element, "\(reference.parent) has no \(missing)" + (replaced.contains(reference.parent) ? " in this file" : " (this file has no <\(reference.parent.replacingOccurrences(of: "_", with: "-"))> section and the hub has none such)"))
            }
        }
    }

    /// Moves the staged rows of `table` into the hub's table. Stock is an upsert, its lines
    /// once per file (`temp.erp_stock_seen` remembers earlier chunks'); a table the file replaces
    /// holds only this file's earlier chunks, so a key found there is a duplicate in the file.
    mutating func moveStaged(_ table: WorkingSetTables.Table) throws {
        let staged = "\(ERPStaging.schema).\(table.name)"
        let element = ERPStaging.elements[table.name] ?? table.name
        let columns = table.columns.map(\.name).joined(separator: ", ")
        let keyMatch = table.keyColumns.map { "m.\($0.name) = c.\($0.name)" }.joined(separator: " AND ")
        switch table.name {
        case "reps":
            return  // written row by row as read (`rep`)
        case "stock":
            let remember = "INSERT INTO temp.erp_stock_seen(location, part_number) SELECT location, part_number FROM \(staged)"
            do {
                try database.execute(remember)
            } catch let error as StoreError where error.kind == .constraint {
                // The slow path, for a line an earlier chunk had: name each, then go on without them.
                let repeated = try database.query("""
                    SELECT c.erp_line, c.location, c.part_number FROM \(staged) c
                    WHERE EXISTS (SELECT 1 FROM temp.erp_stock_seen m WHERE \(keyMatch)) ORDER BY c.erp_line
                    """) { ($0.int(0), $0.value(1), $0.value(2)) }
                guard !repeated.isEmpty else { throw error }
                for (line, location, part) in repeated {
                    try problem(line, element, "duplicate stock line for \(Displayed.value(part)) at \(Displayed.value(location))")
                }
                try database.execute("DELETE FROM \(staged) AS c WHERE EXISTS (SELECT 1 FROM temp.erp_stock_seen m WHERE \(keyMatch))")
                try database.execute(remember)
            }
            try database.execute("""
                INSERT INTO main.stock(\(columns)) SELECT \(columns) FROM \(staged) WHERE true
                ON CONFLICT(location, part_number) DO UPDATE SET quantity = excluded.quantity
                """)
        default:
            do {
                try database.execute("INSERT INTO main.\(table.name)(\(columns)) SELECT \(columns) FROM \(staged)")
            } catch let error as StoreError where error.kind == .constraint {
                // The slow path, for a file that repeats a key of an earlier chunk: name each.
                let repeated = try database.query("""
                    SELECT c.erp_line, \(table.keyColumns.map { "c.\($0.name)" }.joined(separator: ", ")) FROM \(staged) c
                    WHERE EXISTS (SELECT 1 FROM main.\(table.name) m WHERE \(keyMatch)) ORDER BY c.erp_line
                    """) { statement in (statement.int(0), (1...Int32(table.keyCount)).map { statement.value($0) }) }
                guard !repeated.isEmpty else { throw error }
                for (line, key) in repeated {
                    try problem(line, element, "duplicate key \(key.map(Displayed.value).joined(separator: ", ")): \(table.name) has it already (a key appears once per file)")
                }
                try database.execute("DELETE FROM \(staged) AS c WHERE EXISTS (SELECT 1 FROM main.\(table.name) m WHERE \(keyMatch))")
                try database.execute("INSERT INTO main.\(table.name)(\(columns)) SELECT \(columns) FROM \(staged)")
            }
        }
    }

    mutating func checkTerritoryParents() throws {
        let orphans = try database.query("""
            SELECT id, parent_id FROM territories t WHERE parent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM territories p WHERE p.id = t.parent_id) ORDER BY id
            """) { ($0.text(0), $0.text(1)) }
        for (id, parent) in orphans {
            try problem(territoryLines[id] ?? 0, "territory", "parent \(Displayed.value(.text(parent))) of territory \(Displayed.value(.text(id))) is no territory of the file")
        }
    }

    /// After the last section: the last chunk, then rows the hub kept (a section the file did not
    /// replace) that now point at a row the file dropped.
    mutating func finish() throws {
        try flushStaged()
        guard problems.isEmpty else { return }
        for table in WorkingSetTables.all {
            for reference in DeviceSchemaCheck.references[table.name] ?? [] where replaced.contains(reference.parent) && !replaced.contains(table.name) {
                let condition = zip(reference.from, reference.to).map { "p.\($1) = c.\($0)" }.joined(separator: " AND ")
                let notNull = reference.from.map { "c.\($0) IS NOT NULL" }.joined(separator: " AND ")
                let orphans = try database.query("""
                    SELECT \(table.keyColumns.map { "c.\($0.name)" }.joined(separator: ", ")) FROM \(table.name) c
                    WHERE \(notNull) AND NOT EXISTS (SELECT 1 FROM \(reference.parent) p WHERE \(condition)) LIMIT 20
                    """) { statement in (0..<Int32(table.keyCount)).map { statement.value($0) } }
                for key in orphans {
                    let named = zip(table.keyColumns, key).map { "\($0.name) \(Displayed.value($1))" }.joined(separator: ", ")
                    problems.append(Problem(line: Int.max, text: "\(table.name) \(named), kept from the hub's data (the file has no section for it), points at \(reference.parent) the file no longer has (\(reference.from.joined(separator: ", "))); add it to the file or send the \(table.name) section too"))
                }
            }
        }
        if !problems.isEmpty { return }
        // Nothing but comments may follow the root (the reader refuses a second root element).
        while let event = try reader.next() {
            if case .text(_, let line) = event { throw Failure(line: line, reason: "text after </erp-exchange>") }
        }
    }
}
