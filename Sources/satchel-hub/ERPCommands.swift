import ArgumentParser
import Field
import Foundation
import Hub

/// The XML exchange with the ERP (docs/erp-exchange.xsd, docs/office-guide.md).
struct ERPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "erp", abstract: "The XML exchange with the ERP.", subcommands: [Import.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Import an ERP exchange file (docs/erp-exchange.xsd): all or nothing; a refused file names line, element and reason and changes nothing.")
        @OptionGroup var database: DatabaseOption
        @Argument(help: "The exchange file (UTF-8, windows-1250, windows-1251 or ISO-8859-2).") var file: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let summary = try hubErrors {
                guard FileManager.default.isReadableFile(atPath: file) else { throw HubError.notFound("ERP file \(file) (no such readable file)") }
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
}
