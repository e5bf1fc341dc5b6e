import Field
import Foundation
import Hub
import Postgres
import Sync

/// Issue 15: the hub's ingest of uploaded order lines on PostgreSQL against a plain batched
/// INSERT of the same rows into the same server, in the same run. The hub's side is what a
/// session does with each received BATCH body: decode it, hash the bytes, and the whole commit
/// (advisory lock, receipt check, the changes, the office-state check, the receipt); the baseline is one multi-row INSERT per batch into a table of the same columns
/// and indexes, one transaction each, its statement built inside the timing. The two alternate
/// batch by batch. Both in a database of their own, dropped afterwards.
public struct HubIngestBench: BenchReport {
    public var rows: Int
    public var batches: Int
    public var hubSeconds: Double
    public var plainInsertSeconds: Double
    public var hubRowsPerSecond: Double
    public var plainRowsPerSecond: Double
    /// hub rows/s ÷ plain INSERT rows/s.
    public var ratioVsPlainInsert: Double
    public var server: String

    public static let goals = [BenchGoal("ratio_vs_plain_insert", .atLeast(0.5), origin: "issue 15", shortMargin: 0.2)]
    public var figures: [String: Double] { ["ratio_vs_plain_insert": ratioVsPlainInsert] }
    public var notes: [String] { [] }

    enum CodingKeys: String, CodingKey {
        case rows, batches, server
        case hubSeconds = "hub_seconds"
        case plainInsertSeconds = "plain_insert_seconds"
        case hubRowsPerSecond = "hub_rows_per_s"
        case plainRowsPerSecond = "plain_rows_per_s"
        case ratioVsPlainInsert = "ratio_vs_plain_insert"
    }

    /// `adminURL`: a PostgreSQL URL whose role may create databases.
    public static func run(adminURL: String, rows: Int, batchSize: Int = 200) throws -> HubIngestBench {
        let admin = try PostgresConnection(url: adminURL)
        let name = "satchel_bench_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        try admin.execute("CREATE DATABASE \(name) ENCODING 'UTF8' TEMPLATE template0")
        defer { _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)") }
        guard var components = URLComponents(string: adminURL) else { throw HubError.invalid("--postgres \(adminURL) is not a URL") }
        components.path = "/" + name
        let url = components.string ?? adminURL

        // The devices' documents as they travel (the codec) and as the hub keeps them (their JSON):
        // the plain INSERT stores the same JSON text the hub stores.
        var renderedJSON: [String: String] = [:]
        let changes = try (1...Int64(rows)).map { seq in
            let id = "BG03-\(String(format: "%07d", seq))", quantity = 1 + seq % 12, price = 1_000 + seq % 700
            let order = Document.order(OrderDocument(
                id: id, customerId: "CBG1\(seq % 500)", state: .confirmed, approval: .none, holdReason: nil, priceLevel: "customer", currency: "BGN",
                totalMinor: quantity * price, note: "Доставка до 10:00 — dostawa rano, Łódź", createdAt: 1_795_428_000_000 + seq * 1000,
                confirmedAt: 1_795_428_000_000 + seq * 1000,
                lines: [OrderLine(lineNo: 1, partNumber: "PN-\(10_000 + seq % 900)", unit: "szt", quantity: quantity, baseQuantity: quantity,
                                  unitPriceMinor: price, amountMinor: quantity * price)]))
            renderedJSON[id] = try order.json()
            return SyncChange(seq: seq, changeId: id, at: 1_795_428_000_000 + seq * 1000, entity: "order", entityId: id, action: "confirmed",
                              payload: DocumentCodec.encode(order))
        }
        let batches = stride(from: 0, to: changes.count, by: batchSize).map { start in
            Batch(id: "BG03-\(start + 1)-\(min(start + batchSize, changes.count))", changes: Array(changes[start..<min(start + batchSize, changes.count)]))
        }

        // The BATCH bodies as the devices send them; the hub's side starts from these bytes as a
        // session does: decode, hash the batch's canonical form (`commit(_:device:now:)`), commit.
        let bodies = batches.map { $0.encode() }
        let storage = try PostgresHubStorage(url: url)
        let plain = try PostgresConnection(url: url)
        try plain.execute(script: """
            CREATE TABLE plain_changes (
                change_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, seq BIGINT NOT NULL, at BIGINT NOT NULL,
                entity TEXT NOT NULL, entity_id TEXT NOT NULL, action TEXT NOT NULL, payload TEXT NOT NULL,
                received_at BIGINT NOT NULL, epoch BIGINT NOT NULL DEFAULT 1
            );
            CREATE INDEX plain_changes_by_epoch ON plain_changes(device_id, epoch, seq);
            """)
        // The two sides take turns, batch by batch, so both meet the same load on a shared
        // machine (one after the other, a burst of other work landed on one side only).
        var hubSeconds = 0.0, plainSeconds = 0.0
        for (batch, body) in zip(batches, bodies) {
            let started = Date()
            _ = try storage.commit(try Batch.decode(body), device: "BG03", now: 1_795_428_000_000)
            hubSeconds += Date().timeIntervalSince(started)

            let plainStarted = Date()
            let placeholders = (0..<batch.changes.count).map { index in
                "(" + (1...9).map { "$\(index * 9 + $0)" }.joined(separator: ", ") + ")"
            }.joined(separator: ", ")
            let values: [PostgresValue] = batch.changes.flatMap { change -> [PostgresValue] in
                [.text(change.changeId), .text("BG03"), .integer(change.seq), .integer(change.at), .text(change.entity), .text(change.entityId),
                 .text(change.action), .text(renderedJSON[change.entityId] ?? ""), .integer(1_795_428_000_000)]
            }
            try plain.transaction {
                try plain.execute("INSERT INTO plain_changes(change_id, device_id, seq, at, entity, entity_id, action, payload, received_at) VALUES \(placeholders)", values)
            }
            plainSeconds += Date().timeIntervalSince(plainStarted)
        }
        guard try storage.changeCount(device: "BG03") == Int64(rows), try plain.int64("SELECT count(*) FROM plain_changes") == Int64(rows) else {
            throw HubError.storage("the benchmark's rows did not all arrive; no figure")
        }
        let hubRate = Double(rows) / hubSeconds, plainRate = Double(rows) / plainSeconds
        return HubIngestBench(rows: rows, batches: batches.count, hubSeconds: hubSeconds, plainInsertSeconds: plainSeconds,
                              hubRowsPerSecond: hubRate, plainRowsPerSecond: plainRate, ratioVsPlainInsert: hubRate / plainRate,
                              server: PostgresConnection.masked(adminURL))
    }
}
