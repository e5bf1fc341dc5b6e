import ArgumentParser
import Field
import Foundation
import Hub

/// What the office does between syncs: load master data, answer documents, review conflicts.
struct MasterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "master", abstract: "The master data devices download.", subcommands: [Import.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the master data with the working-set tables of a SQLite extract (the device schema's names and columns).")
        @OptionGroup var database: DatabaseOption
        @Option(help: "The extract: a SQLite file with territories, reps, products, prices, stock, customers, routes...") var from: String
        @Option(help: "Assign every customer of the extract to this rep.") var assignTo: String?

        func run() throws {
            try hubErrors {
                guard FileManager.default.isReadableFile(atPath: from) else { throw HubError.notFound("extract \(from) (no such readable file)") }
                try database.openStorage().importMasterData(from: from, assignTo: assignTo)
            }
            print("Imported master data from \(from)")
        }
    }
}

struct DocumentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "document", abstract: "The office's answers to devices' documents.", subcommands: [Set.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a document's state (order: accepted, rejected, settled...). It reaches the device with its next full sync and wins over the device's value.")
        @OptionGroup var database: DatabaseOption
        @Option(help: "The device that created the document.") var device: String
        @Option(help: "order, quote, complaint or display_request.") var entity: String = "order"
        @Option(help: "The document's id (as the device made it).") var id: String
        @Option(help: "The new state.") var state: String
        @Option(help: "Approval (none, pending, approved, rejected), for orders and quotes.") var approval: String?

        func run() throws {
            try hubErrors {
                try database.openStorage().setDocumentState(device: device, entity: entity, entityId: id, state: state, approval: approval,
                                                     now: SyncServer.systemNow())
            }
            print("\(entity) \(id) of \(device): \(state)")
        }
    }
}

struct SyncErrorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "sync-errors", abstract: "Device changes that lost to the office's value.")
    @OptionGroup var database: DatabaseOption
    @Option(help: "The device.") var device: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let errors = try hubErrors { try database.openStorage().syncErrors(device: device) }
        if json { return try printJSON(errors) }
        for error in errors {
            // What the device sent: never raw to the terminal.
            let safe = { (text: String?) in TerminalText.safe(text ?? "-") }
            print("\(safe(error.changeId)) \(safe(error.entityId)) \(safe(error.field)): device \(safe(error.deviceValue)), office \(safe(error.hubValue))")
        }
    }
}
