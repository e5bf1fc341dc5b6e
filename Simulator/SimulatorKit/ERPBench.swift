import Field
import Foundation
import Hub
import Postgres
import Store
import Sync

/// The ERP import (issue 17) against a prepared, batched INSERT of the same rows into the same
/// hub schema on SQLite, in one run; and the peak RSS of the real `satchel-hub erp import` on a
/// large file, from GNU time.
public enum ERPBench {
    /// Issue 17's figures (docs/benchmarks.md). The PostgreSQL ratio and the export's memory are
    /// declared although this bench cannot measure them yet (no ERP import or export on the
    /// PostgreSQL hub, no export run here): absent figures fail `--check`, never pass it.
    public static let goals: [BenchGoal] = [
        BenchGoal("import_ratio_vs_copy_pg", .atLeast(0.5), origin: "issue 17", shortMargin: 0.2),
        BenchGoal("import_ratio_vs_batched_insert_sqlite", .atLeast(0.5), origin: "issue 17", shortMargin: 0.2),
        BenchGoal("import_peak_rss_mb_200mb", .atMost(128), origin: "issue 17", shortMargin: 0.1),
        BenchGoal("export_peak_rss_mb_100k_docs", .atMost(64), origin: "issue 17", shortMargin: 0.1),
    ]

    public struct Result: BenchReport, Codable, Sendable {
        public static var goals: [BenchGoal] { ERPBench.goals }
        /// Only what this run measured; the peak RSS counts only for a file of 200 MB or more.
        public var figures: [String: Double] {
            var figures = ["import_ratio_vs_batched_insert_sqlite": importVersusInsert]
            if let postgresImportVersusCopy { figures["import_ratio_vs_copy_pg"] = postgresImportVersusCopy }
            if let largePeakRssMb, let largeFileMb, largeFileMb >= 200 { figures["import_peak_rss_mb_200mb"] = largePeakRssMb }
            if let exportPeakRssMb, let exportDocuments, exportDocuments >= 100_000 { figures["export_peak_rss_mb_100k_docs"] = exportPeakRssMb }
            return figures
        }
        public var notes: [String] {
            var notes: [String] = []
            if postgresImportVersusCopy == nil { notes.append("import_ratio_vs_copy_pg: not measured, no PostgreSQL URL was given") }
            if exportPeakRssMb == nil {
                notes.append("export_peak_rss_mb_100k_docs: not measured, no export was run (--export-documents 100000 and a satchel-hub executable)")
            } else if (exportDocuments ?? 0) < 100_000 {
                notes.append("export_peak_rss_mb_100k_docs: not measured, the export held \(exportDocuments ?? 0) documents, under 100,000")
            }
            if largePeakRssMb == nil {
                notes.append("import_peak_rss_mb_200mb: not measured, no large file was imported (--large-products, about 1,150,000 for 200 MB)")
            } else if (largeFileMb ?? 0) < 200 {
                notes.append("import_peak_rss_mb_200mb: not measured, the large file was \(largeFileMb ?? 0) MB, under 200 MB")
            }
            return notes
        }

        public var products: Int
        public var rows: Int
        public var fileMb: Double
        public var batchedInsertSeconds: Double
        public var importSeconds: Double
        /// Batched INSERT time over import time: 1.0 is as fast as the INSERT, 0.5 half as fast.
        public var importVersusInsert: Double
        /// PostgreSQL (same rows, same server, same run): COPY of the rows into a fresh hub's
        /// tables, the mean of one run before and one after the import.
        public var postgresCopySeconds: Double?
        public var postgresImportSeconds: Double?
        /// COPY time over import time.
        public var postgresImportVersusCopy: Double?
        public var largeFileMb: Double?
        public var largeProducts: Int?
        public var largeImportSeconds: Double?
        public var largePeakRssMb: Double?
        /// The real `satchel-hub erp export` of a hub holding this many documents.
        public var exportDocuments: Int?
        public var exportFileMb: Double?
        public var exportSeconds: Double?
        public var exportPeakRssMb: Double?
    }

    static let names = ["Kawa ziarnista Żubr Łódź", "Кафе „Родопа“ Пловдив", "Чай «Ёлочка» Москва"]

    /// An exchange file of `products` products, each with one price and one stock line.
    public static func writeFile(_ path: String, products: Int) throws -> Int {
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var chunk = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<erp-exchange version=\"1\">\n<currencies><currency code=\"PLN\"/></currencies>\n<products>\n"
        var bytes = 0
        func flush(_ force: Bool = false) {
            if force || chunk.utf8.count > 1 << 20 { let data = Data(chunk.utf8); bytes += data.count; handle.write(data); chunk = "" }
        }
        for index in 0..<products {
            chunk += "<product part-number=\"PN-\(index)\" name=\"\(names[index % 3]) \(index)\" base-unit=\"szt\"><price level=\"customer\" currency=\"PLN\" amount-minor=\"\(100 + index % 9000)\"/></product>\n"
            flush()
        }
        chunk += "</products>\n<stock>\n"
        for index in 0..<products {
            chunk += "<item part-number=\"PN-\(index)\" quantity=\"\(index % 500)\"/>\n"
            flush()
        }
        chunk += "</stock>\n</erp-exchange>\n"
        flush(true)
        return bytes
    }

    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func rounded(_ value: Double, _ places: Double = 1000) -> Double { (value * places).rounded() / places }

    /// Runs `executable arguments` under GNU time and returns its peak RSS in MB and its wall time.
    static func peakRss(_ executable: String, _ arguments: [String], root: String, what: String) throws -> (mb: Double, seconds: Double) {
        let rss = root + "/rss"
        try? FileManager.default.removeItem(atPath: rss)
        var run: ChildProcess.Result?
        let wall = try seconds {
            run = try ChildProcess.run("/usr/bin/time", ["-f", "%M", "-o", rss, executable] + arguments, timeoutSeconds: 1800)
        }
        guard let run, run.succeeded else { throw DayRunner.Failure.setup("\(what) failed: \(run?.stderr ?? "")") }
        let text = try String(contentsOfFile: rss, encoding: .utf8)
        guard let last = text.split(separator: "\n").last, let peakKiB = Int(last), peakKiB > 0 else {
            throw DayRunner.Failure.setup("\(what): GNU time wrote no peak RSS (\(text))")
        }
        return (rounded(Double(peakKiB) / 1024, 10), rounded(wall))
    }

    /// A hub file holding `documents` device changes (orders of three lines, payments and
    /// visits in turn), committed through the hub's storage in batches of 1,000 as sessions do.
    static func writeHub(_ path: String, documents: Int) throws {
        let hub = try SQLiteHubStorage(path: path)
        try hub.addRep(id: "rep_kowalska", name: "Zofia Kowalska", passwordHash: "")
        try hub.addDevice(id: "H01", rep: "rep_kowalska", publicKey: Array(repeating: 7, count: 32), now: 1, replaces: nil)
        let at: Int64 = 1_796_000_000_000
        for start in stride(from: 0, to: documents, by: 1000) {
            let changes = (start..<min(start + 1000, documents)).map { index -> SyncChange in
                let seq = Int64(index + 1), id = "H01-\(seq)"
                let document: Document
                switch index % 3 {
                case 0:
                    let price: Int64 = 1_000 + Int64(index % 700)
                    var lines: [OrderLine] = []
                    for line in 1...3 {
                        let quantity = Int64(line), part = "PN-\(index % 5000 + line)"
                        lines.append(OrderLine(lineNo: quantity, partNumber: part, unit: "szt", quantity: quantity, baseQuantity: quantity,
                                               unitPriceMinor: price, amountMinor: quantity * price))
                    }
                    document = .order(OrderDocument(id: id, customerId: "CPL\(100_000 + index % 5000)", state: .confirmed, approval: .none, holdReason: nil,
                                                    priceLevel: "customer", currency: "PLN", totalMinor: lines.reduce(0) { $0 + $1.amountMinor },
                                                    note: "\(names[index % 3]) — dostawa rano", createdAt: at + seq, confirmedAt: at + seq, lines: lines))
                case 1:
                    document = .payment(PaymentDocument(id: id, customerId: "CPL\(100_000 + index % 5000)", amountMinor: 5_000 + Int64(index % 900), currency: "PLN",
                                                        method: .cash, receipt: "KP/\(index)", collectedAt: at + seq))
                default:
                    document = .visit(VisitDocument(id: id, customerId: "CBG\(100_000 + index % 5000)", at: at + seq, outcome: .closed, note: "Магазин затворен"))
                }
                let action = index % 3 == 0 ? "confirmed" : index % 3 == 1 ? "collected" : "recorded"
                return SyncChange(seq: seq, changeId: id, at: at + seq, entity: document.kind.entity, entityId: id, action: action,
                                  payload: DocumentCodec.encode(document))
            }
            _ = try hub.commit(Batch(id: "B\(start)", changes: changes), device: "H01", now: at + 100_000)
        }
    }

    /// The same rows as the file, with COPY FROM STDIN into a fresh PostgreSQL hub's tables, in one
    /// transaction; the COPY lines are built inside the timing, as the SQLite baseline binds its values.
    static func copyBaseline(url: String, products: Int) throws -> Double {
        _ = try PostgresHubStorage(url: url)
        let connection = try PostgresConnection(url: url)
        return try seconds {
            try connection.transaction {
                try connection.execute("INSERT INTO erp_currencies(code, minor_units) VALUES ('PLN', 2)")
                try connection.copy("COPY products(part_number, name, base_unit, channel) FROM STDIN",
                                    lines: (0..<products).lazy.map { "PN-\($0)\t\(names[$0 % 3]) \($0)\tszt\tretail" })
                try connection.copy("COPY prices(part_number, level, currency, price_minor, valid_until) FROM STDIN",
                                    lines: (0..<products).lazy.map { "PN-\($0)\tcustomer\tPLN\t\(100 + $0 % 9000)\t\\N" })
                try connection.copy("COPY stock(location, part_number, quantity) FROM STDIN",
                                    lines: (0..<products).lazy.map { "warehouse\tPN-\($0)\t\($0 % 500)" })
            }
        }
    }

    /// Runs `body` with the URLs of `count` fresh databases on the server of `adminURL`, dropped afterwards.
    static func withDatabases<T>(adminURL: String, count: Int, _ body: ([String]) throws -> T) throws -> T {
        let admin = try PostgresConnection(url: adminURL)
        let names = (0..<count).map { "satchel_erp_bench_\(getpid())_\($0)_\(UInt32.random(in: 0...UInt32.max))" }
        defer { for name in names { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") } }
        guard let components = URLComponents(string: adminURL) else { throw HubError.invalid("--postgres \(adminURL) is not a URL") }
        let urls = try names.map { name -> String in
            try admin.execute("CREATE DATABASE \(name) ENCODING 'UTF8' TEMPLATE template0")
            var url = components
            url.path = "/" + name
            return url.string ?? adminURL
        }
        return try body(urls)
    }

    public static func run(products: Int, hubExecutable: String?, largeProducts: Int?, exportDocuments: Int? = nil, postgres: String? = nil) throws -> Result {
        let root = NSTemporaryDirectory() + "satchel-erp-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let file = root + "/erp.xml"
        let bytes = try writeFile(file, products: products)

        // The baseline: the same rows, a prepared INSERT per table, one transaction.
        _ = try SQLiteHubStorage(path: root + "/base.db")
        let base = try Database(path: root + "/base.db")
        let insertSeconds = try seconds {
            try base.transaction(.immediate) {
                try base.execute("INSERT INTO erp_currencies(code, minor_units) VALUES ('PLN', 2)")
                let product = try base.statement("INSERT INTO products(part_number, name, base_unit, channel) VALUES (?, ?, 'szt', 'retail')")
                let price = try base.statement("INSERT INTO prices(part_number, level, currency, price_minor, valid_until) VALUES (?, 'customer', 'PLN', ?, NULL)")
                for index in 0..<products {
                    try product.run([.text("PN-\(index)"), .text("\(names[index % 3]) \(index)")])
                    try price.run([.text("PN-\(index)"), .integer(Int64(100 + index % 9000))])
                }
                let stock = try base.statement("INSERT INTO stock(location, part_number, quantity) VALUES ('warehouse', ?, ?)")
                for index in 0..<products { try stock.run([.text("PN-\(index)"), .integer(Int64(index % 500))]) }
            }
        }

        let hub = try SQLiteHubStorage(path: root + "/hub.db")
        var summary: ERPImportSummary?
        let importSeconds = try seconds { summary = try hub.importERP(path: file) }
        let rows = summary?.rows.values.reduce(0, +) ?? 0
        guard rows == 3 * products + 1 else { throw DayRunner.Failure.setup("the import stored \(rows) rows, expected \(3 * products + 1)") }

        var result = Result(products: products, rows: rows, fileMb: rounded(Double(bytes) / 1_048_576, 10), batchedInsertSeconds: rounded(insertSeconds),
                            importSeconds: rounded(importSeconds), importVersusInsert: rounded(insertSeconds / importSeconds))
        if let postgres {
            try withDatabases(adminURL: postgres, count: 3) { urls in
                let before = try copyBaseline(url: urls[0], products: products)
                let storage = try PostgresHubStorage(url: urls[1])
                var summary: ERPImportSummary?
                let importSeconds = try seconds { summary = try storage.importERP(path: file) }
                let stored = try PostgresConnection(url: urls[1]).int64("SELECT (SELECT count(*) FROM products) + (SELECT count(*) FROM prices) + (SELECT count(*) FROM stock) + (SELECT count(*) FROM erp_currencies)")
                guard summary?.rows.values.reduce(0, +) == 3 * products + 1, stored == Int64(3 * products + 1) else {
                    throw DayRunner.Failure.setup("the PostgreSQL import stored \(stored) rows, expected \(3 * products + 1)")
                }
                let after = try copyBaseline(url: urls[2], products: products)
                let copySeconds = (before + after) / 2
                result.postgresCopySeconds = rounded(copySeconds)
                result.postgresImportSeconds = rounded(importSeconds)
                result.postgresImportVersusCopy = rounded(copySeconds / importSeconds)
            }
        }
        if let largeProducts, let hubExecutable {
            try? FileManager.default.removeItem(atPath: file)
            let large = root + "/large.xml"
            let largeBytes = try writeFile(large, products: largeProducts)
            let measured = try peakRss(hubExecutable, ["erp", "import", "--db", root + "/large.db", large], root: root, what: "satchel-hub erp import of the large file")
            try? FileManager.default.removeItem(atPath: large)
            try? FileManager.default.removeItem(atPath: root + "/large.db")
            result.largeFileMb = rounded(Double(largeBytes) / 1_048_576, 10)
            result.largeProducts = largeProducts
            result.largeImportSeconds = measured.seconds
            result.largePeakRssMb = measured.mb
        }
        if let exportDocuments, let hubExecutable {
            let hubFile = root + "/export.db", out = root + "/export.xml"
            try writeHub(hubFile, documents: exportDocuments)
            let measured = try peakRss(hubExecutable, ["erp", "export", "--db", hubFile, "--out", out, "--json"], root: root, what: "satchel-hub erp export")
            let text = try String(contentsOfFile: out, encoding: .utf8)
            let written = text.components(separatedBy: "<document ").count - 1
            guard written == exportDocuments else { throw DayRunner.Failure.setup("the export wrote \(written) documents, expected \(exportDocuments)") }
            result.exportDocuments = written
            result.exportFileMb = rounded(Double(text.utf8.count) / 1_048_576, 10)
            result.exportSeconds = measured.seconds
            result.exportPeakRssMb = measured.mb
        }
        return result
    }
}
