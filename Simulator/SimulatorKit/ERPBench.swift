import Foundation
import Hub
import Store

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
            if let largePeakRssMb, let largeFileMb, largeFileMb >= 200 { figures["import_peak_rss_mb_200mb"] = largePeakRssMb }
            return figures
        }
        public var notes: [String] {
            var notes = [
                "import_ratio_vs_copy_pg: not measured, satchel-hub has no ERP import on PostgreSQL yet (issue 15/17)",
                "export_peak_rss_mb_100k_docs: not measured, this bench runs no ERP export yet",
            ]
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
        public var largeFileMb: Double?
        public var largeProducts: Int?
        public var largeImportSeconds: Double?
        public var largePeakRssMb: Double?
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

    public static func run(products: Int, hubExecutable: String?, largeProducts: Int?) throws -> Result {
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
        if let largeProducts, let hubExecutable {
            try? FileManager.default.removeItem(atPath: file)
            let large = root + "/large.xml"
            let largeBytes = try writeFile(large, products: largeProducts)
            let rss = root + "/rss"
            var run: ChildProcess.Result?
            let wall = try seconds {
                run = try ChildProcess.run("/usr/bin/time", ["-f", "%M", "-o", rss, hubExecutable, "erp", "import", "--db", root + "/large.db", large],
                                           timeoutSeconds: 1800)
            }
            guard let run, run.succeeded else { throw DayRunner.Failure.setup("satchel-hub erp import of the large file failed: \(run?.stderr ?? "")") }
            let peakKiB = Int(try String(contentsOfFile: rss, encoding: .utf8).split(separator: "\n").last ?? "") ?? 0
            result.largeFileMb = rounded(Double(largeBytes) / 1_048_576, 10)
            result.largeProducts = largeProducts
            result.largeImportSeconds = rounded(wall)
            result.largePeakRssMb = rounded(Double(peakKiB) / 1024, 10)
        }
        return result
    }
}
