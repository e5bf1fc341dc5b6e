import ArgumentParser
import Field
import Foundation
import Hub

/// An instant for the office: UTC, to the second ("2026-12-01 07:42:10 UTC"), "never" for none.
func readableTime(_ milliseconds: Int64?) -> String {
    guard let milliseconds else { return "never" }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss 'UTC'"
    return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
}

/// A YYYY-MM-DD day as the Unix milliseconds of its start (UTC).
func dayStart(_ day: String, option: String) throws -> Int64 {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "UTC")
    formatter.dateFormat = "yyyy-MM-dd"
    guard let date = formatter.date(from: day) else { throw ValidationError("\(option) \(day): give a day as YYYY-MM-DD") }
    return Int64(date.timeIntervalSince1970 * 1000)
}

private func safe(_ text: String?) -> String { TerminalText.safe(text ?? "-") }

struct DevicesQuery: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "devices", abstract: "The handhelds, their reps and their last successful sync.")
    @OptionGroup var database: DatabaseOption
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try database.printOfficeRows(json: json, { try $0.officeDevices() }) { device in
            var line = "\(safe(device.id))  rep \(safe(device.rep))  last ok sync \(readableTime(device.lastSuccessfulSync))"
            if device.revoked { line += "  REVOKED" }
            if let replaces = device.replaces { line += "  replaces \(safe(replaces))" }
            if let result = device.lastResult, result != "ok" {
                line += "  last attempt \(readableTime(device.lastAttempt)) \(result): \(safe(device.lastError ?? result))"
            }
            return line
        }
    }
}

struct RepsQuery: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reps", abstract: "The reps, their territory, role, handhelds and last successful sync.")
    @OptionGroup var database: DatabaseOption
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try database.printOfficeRows(json: json, { try $0.officeReps() }) { rep in
            "\(safe(rep.id))  \(safe(rep.name))  \(rep.role)  territory \(safe(rep.territory))  \(rep.devices) device\(rep.devices == 1 ? "" : "s")  last ok sync \(readableTime(rep.lastSuccessfulSync))\(rep.hasPassword ? "" : "  NO SYNC PASSWORD (satchel-hub rep password)")"
        }
    }
}

struct DocumentsQuery: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "documents", abstract: "Documents the handhelds sent, newest first, by rep, state and day received.")
    @OptionGroup var database: DatabaseOption
    @Option(help: "Only this rep's.") var rep: String?
    @Option(help: "Only in this state (the office's decision when there is one, else the device's).") var state: String?
    @Option(help: "Only this kind: order, quote, payment, visit, complaint...") var entity: String?
    @Option(help: "Received on or after this day (YYYY-MM-DD, UTC).") var from: String?
    @Option(help: "Received up to and including this day (YYYY-MM-DD, UTC).") var to: String?
    @Option(help: "At most this many.") var limit: Int = 500
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let filter = DocumentFilter(rep: rep, state: state, entity: entity, from: try from.map { try dayStart($0, option: "--from") },
                                    until: try to.map { try dayStart($0, option: "--to") + 86_400_000 }, limit: limit)
        try database.printOfficeRows(json: json, { try $0.officeDocuments(filter) }) { document in
            "\(readableTime(document.receivedAt))  \(safe(document.entity)) \(safe(document.id))  rep \(safe(document.rep))  customer \(safe(document.customer))  state \(safe(document.state))\(document.approval.map { "  approval \(safe($0))" } ?? "")  last \(safe(document.lastAction))"
        }
    }
}

struct MissedSyncsQuery: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "missed-syncs",
        abstract: "Reps with a handheld in service and no successful sync in the last 24 hours (the company rule), with why the last attempt failed.")
    @OptionGroup var database: DatabaseOption
    @Option(help: "The rule's window in hours.") var hours: Int = SyncRule.hours
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard hours > 0 else { throw ValidationError("--hours is at least 1") }
        try database.printOfficeRows(json: json, empty: "Every rep with a handheld synced in the last \(hours) hours.",
                                     { try $0.missedSyncs(now: SyncServer.systemNow(), hours: hours) }) { rep in
            var line = "\(safe(rep.rep))  \(safe(rep.name))  devices \(rep.devices.map { safe($0) }.joined(separator: ", "))  last ok sync \(readableTime(rep.lastSuccessfulSync))"
            if let error = rep.lastError { line += "  last attempt \(readableTime(rep.lastAttempt)): \(safe(error))" }
            return line
        }
    }
}
