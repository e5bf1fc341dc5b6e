import ArgumentParser
import Field
import Foundation
import Hub

/// The XML exchange with the ERP (docs/erp-exchange.xsd, docs/office-guide.md).
struct ERPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "erp", abstract: "The XML exchange with the ERP.", subcommands: [Import.self, Export.self, Ack.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import an ERP exchange file (docs/erp-exchange.xsd): all or nothing; a refused file names line, element and reason and changes nothing.")
        @OptionGroup var database: DatabaseOption
        @Argument(help: "The exchange file (UTF-8, windows-1250, windows-1251 or ISO-8859-2).") var file: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let summary = try hubErrors {
                guard FileManager.default.isReadableFile(atPath: file) else { throw HubError.notFound("ERP file \(file) (no such readable file)") }
                if let url = database.postgres { return try PostgresHubStorage(url: url).importERP(path: file) }
                return try database.open().importERP(path: file)
            }
            if json { return try printJSON(summary) }
            let counts = summary.rows.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("Imported \(TerminalText.safe(file)) (\(summary.encoding)): \(counts.isEmpty ? "no rows" : counts)")
            if !summary.addedReps.isEmpty {
                print("New reps without a sync password (set one: satchel-hub rep password --rep ID): \(summary.addedReps.map { TerminalText.safe($0) }.joined(separator: ", "))")
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write what the devices sent since the acknowledged cursor (docs/erp-export.xsd); the next export starts after it only once the ERP acknowledges.")
        @OptionGroup var database: DatabaseOption
        @Option(help: "The file to write (whole or not at all).") var out: String
        @Option(help: "Acknowledge this cursor first (the ERP read the export that printed it).") var since: Int64?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let result = try hubErrors {
                if let url = database.postgres { return try PostgresHubStorage(url: url).exportERP(to: out, since: since, now: SyncServer.systemNow()) }
                return try database.open().exportERP(to: out, since: since, now: SyncServer.systemNow())
            }
            if json { return try printJSON(result) }
            print("Exported \(result.documents) document\(result.documents == 1 ? "" : "s") after cursor \(result.after) to \(TerminalText.safe(out)); cursor \(result.cursor)")
            print("Once the ERP has read it: satchel-hub erp ack \(result.cursor) (or export --since \(result.cursor)); until then an export writes the same documents again.")
        }
    }

    struct Ack: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The ERP has read the export with this cursor: the next export starts after it.")
        @OptionGroup var database: DatabaseOption
        @Argument(help: "The cursor the export printed (its file's cursor attribute).") var cursor: Int64

        func run() throws {
            try hubErrors {
                if let url = database.postgres { return try PostgresHubStorage(url: url).acknowledgeERPExport(cursor: cursor) }
                try database.open().acknowledgeERPExport(cursor: cursor)
            }
            print("Acknowledged export cursor \(cursor)")
        }
    }
}
