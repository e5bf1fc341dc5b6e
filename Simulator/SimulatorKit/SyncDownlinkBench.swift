import Deflate
import Foundation
public import Sync

/// `satchel-sim bench sync --downlink`: where the realistic day's downlink bytes go (a debugging
/// aid, no goals): per session, the handshake and each message type; per table of the evening's
/// full sync, its frames' bytes on the link against gzip -6 of the same rows' JSON lines on
/// their own, and what each part of a TABLE body (header, checksum, each column; key columns
/// named `key ...`) adds to the frame deflated on its own (level 9, the session's preset
/// dictionary, sync flush: the channel's settings without the stream's history).
extension SyncBench {
    /// One TABLE frame as it reached the device's sink.
    struct DownlinkFrame {
        var frame: TableFrame
        var catalogue: Catalogue
        /// Bytes the device had read from the link once the frame was in.
        var receivedThrough: Int
        /// The frame's rows among the session's baseline lines.
        var lines: Range<Int>
    }

    /// One session's download as the benchmark saw it.
    struct DownlinkSession {
        var mode: SyncMode
        var result: SyncResult
        var frames: [DownlinkFrame]
        var baselineLines: [String]
    }

    public struct DownlinkReport: Sendable {
        /// Per session (mode): bytes down, the handshake's share, each message type's, and the baseline.
        public var sessions: [(mode: String, down: Int, handshake: Int, byType: [(type: String, bytes: Int)], baseline: Int)] = []
        /// Per table of the full syncs (phase included): frames, rows, bytes on the link, the baseline of its rows alone.
        public var tables: [(table: String, frames: Int, rows: Int, wire: Int, baseline: Int)] = []
        /// Per table and part of a TABLE body: raw bytes and what the part adds to the frame deflated alone.
        public var parts: [(table: String, part: String, raw: Int, deflated: Int)] = []
    }

    public static func downlinkBreakdown(short: Bool) throws -> DownlinkReport {
        var sessions: [DownlinkSession] = []
        for seed in short ? [seeds[0]] : seeds {
            var plan = short ? shortWorkingSet : workingSet
            plan.seed = seed
            _ = try realisticDay(plan: plan, resumedInit: nil, downlinkSeen: { sessions.append($0) })
        }
        var report = DownlinkReport()
        let names: [UInt8: String] = [2: "WELCOME", 4: "AUTH_RESULT", 6: "RECEIPT", 8: "TABLE", 9: "DONE", 10: "ERROR", 11: "BYE", 12: "DOWNLOAD", 5: "BATCH"]
        var sessionTotals: [String: (down: Int, handshake: Int, byType: [String: Int], baseline: Int)] = [:]
        var modes: [String] = []
        var tableTotals: [String: (frames: Int, rows: Int, wire: Int, lines: [String])] = [:], tableOrder: [String] = []
        var partTotals: [String: (raw: Int, deflated: Int)] = [:], partOrder: [String] = []
        for session in sessions {
            let mode = session.mode.name
            if sessionTotals[mode] == nil { modes.append(mode) }
            var total = sessionTotals[mode] ?? (0, 0, [:], 0)
            total.down += session.result.bytesReceived
            total.handshake += session.result.bytesReceived - session.result.bytesReceivedByType.values.reduce(0, +)
            for (type, bytes) in session.result.bytesReceivedByType { total.byType[names[type] ?? "type \(type)", default: 0] += bytes }
            total.baseline += try Deflate.compress(Array(session.baselineLines.joined().utf8), level: 6, format: .gzip).count
            sessionTotals[mode] = total
            guard session.mode == .full else { continue }
            var previousThrough = session.frames.first.map { $0.receivedThrough - frameBytes(session, $0) } ?? 0
            for recorded in session.frames {
                let table = "\(recorded.frame.table.name) \(recorded.frame.phase == .purge ? "purge" : "upsert")"
                if tableTotals[table] == nil { tableOrder.append(table) }
                var totals = tableTotals[table] ?? (0, 0, 0, [])
                totals.frames += 1
                totals.rows += recorded.frame.rows.count
                totals.wire += recorded.receivedThrough - previousThrough
                totals.lines += session.baselineLines[recorded.lines]
                tableTotals[table] = totals
                previousThrough = recorded.receivedThrough
                let body = try recorded.frame.encode(catalogue: recorded.catalogue)
                let whole = try deflated(body)
                for span in try recorded.frame.columnSpans(catalogue: recorded.catalogue) {
                    let key = table + "\u{0}" + span.name
                    if partTotals[key] == nil { partOrder.append(key) }
                    let without = Array(body[..<span.range.lowerBound] + body[span.range.upperBound...])
                    partTotals[key, default: (0, 0)].raw += span.range.count
                    partTotals[key, default: (0, 0)].deflated += whole - (try deflated(without))
                }
                partTotals[table + "\u{0}(whole body, deflated alone)", default: (0, 0)].raw += body.count
                partTotals[table + "\u{0}(whole body, deflated alone)", default: (0, 0)].deflated += whole
                if !partOrder.contains(table + "\u{0}(whole body, deflated alone)") { partOrder.append(table + "\u{0}(whole body, deflated alone)") }
            }
        }
        report.sessions = modes.map { mode in
            let total = sessionTotals[mode]!
            return (mode, total.down, total.handshake, total.byType.sorted { $0.value > $1.value }.map { ($0.key, $0.value) }, total.baseline)
        }
        report.tables = try tableOrder.map { table in
            let totals = tableTotals[table]!
            return (table, totals.frames, totals.rows, totals.wire, try Deflate.compress(Array(totals.lines.joined().utf8), level: 6, format: .gzip).count)
        }
        report.parts = partOrder.map { key in
            let pieces = key.split(separator: "\u{0}", maxSplits: 1).map(String.init)
            return (pieces[0], pieces[1], partTotals[key]!.raw, partTotals[key]!.deflated)
        }
        return report
    }

    /// The first frame's bytes on the link (its TABLE message's share): the frames before it are
    /// not TABLE frames, so the first frame's start is found from its own deflated size.
    private static func frameBytes(_ session: DownlinkSession, _ first: DownlinkFrame) -> Int {
        // Every TABLE byte is in bytesReceivedByType[8]; the later frames' are the differences.
        let tableBytes = session.result.bytesReceivedByType[MessageType.table.rawValue] ?? 0
        let later = (session.frames.last?.receivedThrough ?? 0) - first.receivedThrough
        return tableBytes - later
    }

    private static func deflated(_ bytes: [UInt8]) throws -> Int {
        try Deflater(level: 9, format: .raw, dictionary: SyncDictionary.v3).compress(bytes, flush: .sync).count
    }
}
