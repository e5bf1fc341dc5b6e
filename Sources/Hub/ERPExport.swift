import Foundation
import Store
import SystemCalls

/// What the handhelds sent, written for the ERP (docs/erp-export.xsd), incremental from a cursor
/// the ERP acknowledges.
///
/// Exactly once: an export covers every device change after the acknowledged cursor, up to the
/// newest at the time it runs, and names its own cursor. Only an acknowledgement
/// (`satchel-hub erp ack CURSOR`, or the next export's `--since CURSOR`) moves the start of the
/// next export, so an export re-run before the acknowledgement writes the same documents again
/// (the ERP that did not read the first file reads them once from the second), and an export
/// killed midway leaves no file at all: it writes a temporary file beside the target, syncs it
/// and renames it over the target, so a reader sees the whole previous file or the whole new one.
public struct ERPExportResult: Codable, Equatable, Sendable {
    public var path: String
    /// The acknowledged cursor this export starts after.
    public var after: Int64
    /// Acknowledge this once the ERP has read the file.
    public var cursor: Int64
    public var documents: Int
}

extension SQLiteHubStorage {
    public func exportERP(to path: String, since: Int64? = nil, now: Int64) throws -> ERPExportResult {
        try guarded {
            if let since { try acknowledgeERPExport(cursor: since) }
            // One read transaction: the documents and the cursor are the same snapshot.
            return try writeTransaction {
                let after = try database.int64("SELECT acknowledged FROM erp_export_state")
                let cursor = max(after, try database.int64("SELECT coalesce(max(rowid), 0) FROM device_changes"))
                let documents = try database.int64("SELECT count(*) FROM device_changes WHERE rowid > ? AND rowid <= ?", [.integer(after), .integer(cursor)])
                try ERPExportWriter.write(path: path) { out in
                    out.write(ERPExportWriter.header(after: after, cursor: cursor, documents: documents, now: now))
                    let statement = try database.statement("""
                        SELECT c.rowid, c.change_id, c.device_id, d.rep_id, c.seq, c.at, c.received_at, c.entity, c.entity_id, c.action, c.payload
                        FROM device_changes c LEFT JOIN devices d ON d.id = c.device_id WHERE c.rowid > ? AND c.rowid <= ? ORDER BY c.rowid
                        """)
                    try statement.bind([.integer(after), .integer(cursor)])
                    defer { statement.reset() }
                    while try statement.step() {
                        var attributes: [(String, String)] = [
                            ("position", String(statement.int64(0))), ("change-id", statement.text(1)), ("device", statement.text(2)),
                        ]
                        if !statement.isNull(3) { attributes.append(("rep", statement.text(3))) }
                        attributes += [("seq", String(statement.int64(4))), ("at", ERPExportWriter.instant(statement.int64(5))),
                                       ("received-at", ERPExportWriter.instant(statement.int64(6))), ("entity", statement.text(7)),
                                       ("id", statement.text(8)), ("action", statement.text(9))]
                        ERPExportWriter.document(attributes: attributes, payload: statement.text(10), into: out)
                    }
                    out.write("</erp-export>\n")
                }
                try database.execute("INSERT OR REPLACE INTO erp_exports(cursor, after, documents, written_at) VALUES (?, ?, ?, ?)",
                                     [.integer(cursor), .integer(after), .integer(documents), .integer(now)])
                return ERPExportResult(path: path, after: after, cursor: cursor, documents: Int(documents))
            }
        }
    }

    /// The ERP has read the export with this cursor: the next export starts after it.
    public func acknowledgeERPExport(cursor: Int64) throws {
        try guarded {
            try writeTransaction {
                let acknowledged = try database.int64("SELECT acknowledged FROM erp_export_state")
                if cursor == acknowledged { return }
                guard try database.first("SELECT 1 FROM erp_exports WHERE cursor = ?", [.integer(cursor)], row: { _ in true }) != nil else {
                    throw HubError.notFound("export cursor \(cursor): no export wrote it (the cursor is the one `satchel-hub erp export` printed, and the file's cursor attribute)")
                }
                guard cursor > acknowledged else {
                    throw HubError.invalid("export cursor \(cursor) is older than the acknowledged \(acknowledged): the ERP has read up to \(acknowledged) already; nothing changed")
                }
                try database.execute("UPDATE erp_export_state SET acknowledged = ?", [.integer(cursor)])
            }
        }
    }

    /// The acknowledged cursor (0 before the first acknowledgement).
    public func acknowledgedERPCursor() throws -> Int64 {
        try guarded { try database.int64("SELECT acknowledged FROM erp_export_state") }
    }
}

/// A buffered file written whole or not at all: a temporary file beside the target, fsync,
/// rename, fsync of the directory.
final class ERPExportWriter {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var failure: Int32 = 0

    private init(fd: Int32) { self.fd = fd; buffer.reserveCapacity(1 << 16) }

    func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= 1 << 16 { flush() }
    }

    private func flush() {
        var offset = 0
        while offset < buffer.count && failure == 0 {
            let written = buffer[offset...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            if written < 0 { if errno != EINTR { failure = errno } } else { offset += written }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// The export file, whole or not at all: `SystemCalls.replaceFile` (a `.partial` file beside
    /// it, never opened through a planted link, fsync, rename, directory fsync).
    static func write(path: String, _ body: (ERPExportWriter) throws -> Void) throws {
        do {
            try SystemCalls.replaceFile(path, mode: 0o640, temporarySuffix: ".partial") { fd in
                let writer = ERPExportWriter(fd: fd)
                try body(writer)
                writer.flush()
                if writer.failure != 0 { throw Errno(writer.failure) }
            }
        } catch let error as ReplaceFileError {
            throw HubError.storage("\(error); the cursor is unchanged")
        }
    }

    /// The declaration and the root's start tag, the same on both backends.
    static func header(after: Int64, cursor: Int64, documents: Int64, now: Int64) -> String {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            + "<erp-export version=\"1\" after=\"\(after)\" cursor=\"\(cursor)\" documents=\"\(documents)\" generated-at=\"\(instant(now))\">\n"
    }

    static func instant(_ milliseconds: Int64) -> String { ERPInstant.text(milliseconds) }

    /// XML 1.0 attribute text: the five specials escaped, line breaks and tabs as references,
    /// other control characters (no XML 1.0 document may hold them) as U+FFFD.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n": out += "&#10;"
            case "\r": out += "&#13;"
            case "\t": out += "&#9;"
            default:
                if scalar.value < 0x20 || (0xFFFE...0xFFFF).contains(scalar.value) { out += "\u{FFFD}" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// A name the payload's key can be written under (lower case, digits, _ becomes -), or nil.
    static func xmlName(_ key: String) -> String? {
        guard let first = key.unicodeScalars.first, ("a"..."z").contains(first) || ("A"..."Z").contains(first),
              key.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }),
              key.count <= 64 else { return nil }
        return key.replacingOccurrences(of: "_", with: "-")
    }

    /// ` name="value"` for a scalar field, "" for a null one (left out), nil for one no attribute
    /// carries (a key no XML name can be, an object, or an array inside an item).
    static func attribute(_ key: String, _ value: JSONValue) -> String? {
        guard let name = xmlName(key) else { return nil }
        switch value {
        case .null: return ""
        case .scalar(let scalar): return " \(name)=\"\(escape(scalar))\""
        case .array, .object: return nil
        }
    }

    /// One `<document>`: the change's envelope, the payload's scalar fields as attributes, its
    /// arrays of objects as child elements (an order's `lines` as `<line>`). A payload that is no
    /// JSON object, or holds a field no XML name can carry, goes whole into `<payload>` too, so
    /// nothing the device sent is lost on the way.
    static func document(attributes: [(String, String)], payload: String, into out: ERPExportWriter) {
        var text = "  <document"
        for (name, value) in attributes { text += " \(name)=\"\(escape(value))\"" }
        var children = ""
        var lossless = true
        if case .object(let fields)? = try? JSONDecoder().decode(JSONValue.self, from: Data(payload.utf8)) {
            text += ">\n    <fields"
            for (key, value) in fields.sorted(by: { $0.key < $1.key }) {
                if case .array(let items) = value, let name = xmlName(key) {
                    let element = name.hasSuffix("s") ? String(name.dropLast()) : name
                    for item in items {
                        guard case .object(let itemFields) = item else { lossless = false; continue }
                        children += "    <item name=\"\(element)\""
                        for (itemKey, itemValue) in itemFields.sorted(by: { $0.key < $1.key }) {
                            if let attribute = attribute(itemKey, itemValue) { children += attribute } else { lossless = false }
                        }
                        children += "/>\n"
                    }
                } else if let attribute = attribute(key, value) {
                    text += attribute
                } else {
                    lossless = false
                }
            }
            text += "/>\n"
        } else {
            text += ">\n"
            lossless = false
        }
        out.write(text)
        out.write(children)
        if !lossless { out.write("    <payload>\(escape(payload))</payload>\n") }
        out.write("  </document>\n")
    }
}

/// A device's JSON payload, read without Foundation's number bridging (a Bool stays a Bool).
enum JSONValue: Decodable {
    case null
    case scalar(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let bool = try? container.decode(Bool.self) { self = .scalar(bool ? "true" : "false") }
        else if let integer = try? container.decode(Int64.self) { self = .scalar(String(integer)) }
        else if let number = try? container.decode(Double.self) { self = .scalar(String(number)) }
        else if let text = try? container.decode(String.self) { self = .scalar(text) }
        else if let array = try? container.decode([JSONValue].self) { self = .array(array) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }
}

/// The export's timestamps (issue 17).
public enum ERPInstant {
    /// `milliseconds` since 1970 in UTC as `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form
    /// `ISO8601DateFormatter` wrote with `[.withInternetDateTime, .withFractionalSeconds]`.
    /// Written by hand because a formatter made per timestamp (two per document) was a large part
    /// of the export's time, and UTC needs no calendar, time zone or Double: a few integer
    /// divisions (Howard Hinnant's days-to-civil, proleptic Gregorian) give the same digits from
    /// 1583 to 9999; outside those years the formatter still writes them.
    public static func text(_ milliseconds: Int64) -> String {
        let millisecondsPerDay: Int64 = 86_400_000
        // 1583-01-01T00:00:00.000Z up to 9999-12-31T23:59:59.999Z: the formatter's calendar is
        // Julian before the Gregorian reform of October 1582 (the test found its dates days apart
        // there), and a year past 9999 has five digits; both go to the formatter.
        guard milliseconds >= -12_212_553_600_000, milliseconds < 253_402_300_800_000 else {
            return byFormatter(milliseconds)
        }
        var days = milliseconds / millisecondsPerDay
        var rest = milliseconds % millisecondsPerDay
        if rest < 0 { rest += millisecondsPerDay; days -= 1 }
        // days-to-civil: eras of 400 years from 0000-03-01.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let hour = rest / 3_600_000, minute = rest / 60_000 % 60, second = rest / 1000 % 60, milli = rest % 1000

        var bytes = [UInt8](repeating: 0, count: 24)
        func put(_ value: Int64, _ at: Int, _ width: Int) {
            var value = value
            for index in stride(from: at + width - 1, through: at, by: -1) {
                bytes[index] = 0x30 + UInt8(value % 10)
                value /= 10
            }
        }
        put(year, 0, 4); bytes[4] = 0x2D; put(month, 5, 2); bytes[7] = 0x2D; put(day, 8, 2)
        bytes[10] = 0x54; put(hour, 11, 2); bytes[13] = 0x3A; put(minute, 14, 2); bytes[16] = 0x3A; put(second, 17, 2)
        bytes[19] = 0x2E; put(milli, 20, 3); bytes[23] = 0x5A
        return String(decoding: bytes, as: UTF8.self)
    }

    /// What the export wrote before (a formatter per call): kept for the test that holds the two
    /// byte for byte, and for the years `text` does not write itself.
    public static func byFormatter(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
