import ArgumentParser
import Field
import Foundation
import Hub
import HubAdmin

/// The back office's people and their HTTP face: office users with roles and territories, their
/// tokens, and the server for the admin API and the office web page (docs/office-guide.md).
struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Back-office users of the admin API and the office web page.",
        subcommands: [Add.self, Token.self, Revoke.self, List.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an office user: supervisor or sales_manager (with --territory: sees that territory and those under it), office or admin (everything).")
        @OptionGroup var database: DatabaseOption
        @Argument(help: "The user's name.") var name: String
        @Option(help: "supervisor, sales_manager, office or admin.") var role: String
        @Option(help: "The territory a supervisor or sales manager answers for.") var territory: String?
        @Flag(help: "Change an existing user's role or territory.") var replace = false

        func run() throws {
            guard let role = OfficeUser.Role(rawValue: role) else {
                throw ValidationError("--role \(role): one of \(OfficeUser.Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            try hubErrors {
                try database.openOffice().addOfficeUser(OfficeUser(name: name, role: role, territory: territory), replace: replace, now: SyncServer.systemNow())
            }
            print("Office user \(TerminalText.safe(name)): \(role.rawValue)\(territory.map { " of " + TerminalText.safe($0) } ?? "")")
        }
    }

    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a token for an office user. It is printed once; the hub keeps only its hash.")
        @OptionGroup var database: DatabaseOption
        @Argument(help: "The user's name.") var name: String
        @Option(help: "Days until it expires (1 to 366).") var days: Int = 30

        func run() throws {
            let issued = try hubErrors { try database.openOffice().issueOfficeToken(user: name, days: days, now: SyncServer.systemNow()) }
            print(issued.token)
            FileHandle.standardError.write(Data("satchel-hub: token for \(TerminalText.safe(name)), valid until \(readableTime(issued.expiresAt)); it is not shown again\n".utf8))
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End every token of an office user at once.")
        @OptionGroup var database: DatabaseOption
        @Argument(help: "The user's name.") var name: String

        func run() throws {
            let count = try hubErrors { try database.openOffice().revokeOfficeTokens(user: name) }
            print("Revoked \(count) token\(count == 1 ? "" : "s") of \(TerminalText.safe(name))")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The office users.")
        @OptionGroup var database: DatabaseOption
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            try database.printOfficeRows(json: json, { try $0.officeUsers() }) { user in
                "\(TerminalText.safe(user.name))  \(user.role.rawValue)  \(TerminalText.safe(user.territory ?? "all territories"))"
            }
        }
    }
}

struct AdminServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "Serve the admin API (/api/v1, docs/admin-api.yaml) and the office web page (/office) until SIGTERM.")
    @OptionGroup var database: DatabaseOption
    @Option(help: "host:port to listen on (port 0 picks one and prints it).") var listen: String = "127.0.0.1:7480"

    func run() async throws {
        _ = try database.openOffice()
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else {
            throw ValidationError("--listen \(listen): give HOST:PORT, e.g. 127.0.0.1:7480")
        }
        let host = String(parts[0])
        let desk = OfficeDesk(openStorage: database.connectOffice)
        try await AdminServer(desk: desk, host: host, port: port).run { bound in
            print("satchel-hub admin listening on \(host):\(bound)")
            fflush(nil)
        }
    }
}
