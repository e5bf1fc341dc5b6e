import ArgumentParser
import Field
import Foundation
import Hub
import Seal
import Sync
import Transport

@main
struct SatchelHub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "satchel-hub",
        abstract: "The central gateway the handhelds sync with (embedded SQLite by default).",
        discussion: "Exit codes: 0 ok, 64 usage, 65 bad input, 66 not found, 74 storage.",
        subcommands: [Key.self, RepCommand.self, DeviceCommand.self, TechnicianCommand.self, MasterCommand.self, ERPCommand.self, DocumentCommand.self, SyncErrorsCommand.self, DevicesQuery.self, RepsQuery.self, DocumentsQuery.self, MissedSyncsQuery.self, Serve.self, Audit.self, UserCommand.self, AdminServe.self, ApprovalsCommand.self])
}

struct DatabaseOption: ParsableArguments {
    @Option(help: "The hub's SQLite database (created if missing): the embedded default.") var db: String = "satchel-hub.db"
    @Option(help: ArgumentHelp("The hub's PostgreSQL database instead of --db: a libpq URL (postgresql://user:password@host:5432/dbname); its schema is created or brought up to date. Several satchel-hub serve processes may share one.", valueName: "url"))
    var postgres: String?

    /// The hub's storage, whichever backend the options select.
    func openStorage() throws -> any HubStorage {
        if let postgres { return try hubErrors { try PostgresHubStorage(url: postgres) } }
        return try open()
    }

    /// A new connection to the selected backend, for each session of `serve`.
    var connect: @Sendable () throws -> any HubStorage {
        if let postgres { return { try PostgresHubStorage(url: postgres) } }
        let path = db
        return { try SQLiteHubStorage(path: path) }
    }

    /// The back office's storage (office queries, users and decisions, device lifecycle), on
    /// whichever backend the options select.
    func openOffice() throws -> any OfficeStore & DeviceLifecycleStore {
        if let postgres { return try hubErrors { try PostgresHubStorage(url: postgres) } }
        return try openSQLite()
    }

    /// A back-office listing as every query command prints it: the rows of `query` as JSON with
    /// --json, else one line a row (`line`), and `empty` alone when there are none.
    func printOfficeRows<Row: Encodable>(json: Bool, empty: String? = nil, _ query: (any OfficeStore & DeviceLifecycleStore) throws -> [Row],
                                         line: (Row) -> String) throws {
        let rows = try hubErrors { try query(openOffice()) }
        if json { return try printJSON(rows) }
        if rows.isEmpty, let empty { print(empty) }
        for row in rows { print(line(row)) }
    }

    /// A new back-office connection per request (the admin API, the office web page).
    var connectOffice: @Sendable () throws -> any OfficeStore & DeviceLifecycleStore {
        if let postgres { return { try PostgresHubStorage(url: postgres) } }
        let path = db
        return { try SQLiteHubStorage(path: path) }
    }

    /// The SQLite hub, for a command with no PostgreSQL implementation: with --postgres it says
    /// so and changes nothing. (The ERP exchange commands pick PostgresHubStorage themselves.)
    func open(for command: String = "this command") throws -> SQLiteHubStorage {
        if postgres != nil {
            throw hubFailure(HubError.invalid("\(command) is not available on the PostgreSQL hub yet (issue 15); nothing was changed. Run it on an SQLite hub (--db FILE)"))
        }
        return try openSQLite()
    }

    /// The SQLite file, made owner-only if it was not (it holds the hub's key), with a warning.
    private func openSQLite() throws -> SQLiteHubStorage {
        let storage = try hubErrors { try SQLiteHubStorage(path: db) }
        if let mode = storage.tightenedFrom {
            FileHandle.standardError.write(Data("""
                satchel-hub: warning: \(db) was open to other users (mode \(String(mode, radix: 8))) although it holds the hub's private key \
                and the reps' password hashes; it is owner-only (600) now. Anyone who copied it meanwhile holds both: \
                set new sync passwords (satchel-hub rep password), see docs/technician-guide.md.\n
                """.utf8))
        }
        return storage
    }
}

/// Says `error` on standard error as hubErrors does and returns the exit code to throw.
func hubFailure(_ error: HubError) -> any Error {
    do { return try hubErrors { () -> any Error in throw error } } catch { return error }
}

func hubErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as HubError {
        // The message may quote the extract, a device or the command line: never raw to a terminal.
        FileHandle.standardError.write(Data("satchel-hub: error: \(TerminalText.safe(error.description, multiline: true))\n".utf8))
        switch error {
        case .notFound: throw ExitCode(66)
        case .invalid: throw ExitCode(65)
        case .storage: throw ExitCode(74)
        }
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(TerminalText.escapingJSON(String(decoding: try encoder.encode(value), as: UTF8.self)))
}

func readSecretLine(_ what: String) throws -> String {
    guard let line = readLine(strippingNewline: true), !line.isEmpty else {
        throw ValidationError("give the \(what) on standard input")
    }
    return line
}

struct Key: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the hub's public key, to pin on devices at provisioning.")
    @OptionGroup var database: DatabaseOption

    func run() throws {
        print(Hex.encode(try hubErrors { try database.openStorage().hubKey().publicKey }))
    }
}

struct RepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rep", abstract: "Reps, their sync passwords and what their handhelds carry.", subcommands: [Add.self, Password.self, Scope.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a rep; the sync password comes on standard input.")
        @OptionGroup var database: DatabaseOption
        @Option var rep: String
        @Option var name: String

        func run() throws {
            let password = try readSecretLine("sync password")
            guard password.count >= 6 else { throw ValidationError("a sync password has at least 6 characters") }
            try hubErrors { try database.openStorage().addRep(id: rep, name: name, passwordHash: try PasswordHash.hash(password: password, cost: .interactive)) }
            print("Added rep \(rep) (\(name))")
        }
    }

    struct Password: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a rep's sync password (standard input) and lift a lockout.")
        @OptionGroup var database: DatabaseOption
        @Option var rep: String

        func run() throws {
            let password = try readSecretLine("sync password")
            try hubErrors { try database.openStorage().setPassword(rep: rep, passwordHash: try PasswordHash.hash(password: password, cost: .interactive)) }
            print("Password of \(rep) set")
        }
    }

    struct Scope: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the territory whose customers and the catalogue channel whose products a rep's handhelds carry (next full sync).")
        @OptionGroup var database: DatabaseOption
        @Option var rep: String
        @Option(help: "Territory id (its customers are in scope).") var territory: String?
        @Option(help: "Catalogue channel (retail, trade...); 'all' for every product.") var channel: String?
        @Option(help: "rep, merchandiser, technician, supervisor or van_seller: what the rep's handhelds may capture (docs/rep-guide.md); a supervisor's handheld carries the routes and customers of every territory below theirs).")
        var role: String?

        func run() throws {
            guard territory != nil || channel != nil || role != nil else { throw ValidationError("give --territory, --channel, --role or several") }
            try hubErrors {
                try database.openStorage().setRepScope(rep: rep, territory: territory, channel: channel.map { $0 == "all" ? nil : $0 }, role: role)
            }
            print("Scope of \(rep): territory \(territory ?? "(unchanged)"), channel \(channel ?? "(unchanged)"), role \(role ?? "(unchanged)")")
        }
    }
}

struct DeviceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "device", abstract: "Register, revoke, report lost and replace handhelds.",
                                                    subcommands: [Add.self, Revoke.self, Lost.self, Policy.self, ReleaseKey.self, Events.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a device by the public key `satchel keys` prints on it.")
        @OptionGroup var database: DatabaseOption
        @Option var device: String
        @Option var rep: String
        @Option(help: "The device's public key, 64 hex digits.") var key: String
        @Option(help: "The device this one replaces: it is revoked; this one may upload its recovered changes (sync --mode upload) and copy its state (sync --mode duplicate).")
        var replaces: String?

        func run() throws {
            let publicKey: [UInt8]
            do { publicKey = try Hex.decode(key) } catch { throw ValidationError("--key: \(error)") }
            try hubErrors {
                try database.openStorage().addDevice(id: device, rep: rep, publicKey: publicKey, now: Int64(Date().timeIntervalSince1970 * 1000), replaces: replaces)
            }
            print("Registered device \(device) for rep \(rep)\(replaces.map { ", replacing \($0) (now revoked)" } ?? "")")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse a lost or stolen device from now on.")
        @OptionGroup var database: DatabaseOption
        @Option var device: String

        func run() throws {
            try hubErrors { try database.openStorage().revokeDevice(id: device) }
            print("Revoked device \(device)")
        }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve device syncs.",
        discussion: """
            SIGTERM or SIGINT stops it gracefully: no new sessions, the open ones get --drain-seconds to finish, \
            the rest are cut (a device sends what was not acknowledged again), then it exits 0 saying how many \
            finished and how many were cut. One line per session end goes to standard error.
            """)
    @OptionGroup var database: DatabaseOption
    @Option(help: "host:port to listen on (port 0 picks one and prints it).") var listen: String = "127.0.0.1:7410"
    // 2,048: a fleet on GPRS keeps a thousand and more sessions open at once, nearly all idle on
    // round trips; the password gate bounds the memory that once made 64 the safe figure.
    @Option(help: "Sessions at once; a device beyond them is told the hub is busy and when to come back.") var sessions: Int = 2048
    @Option(help: "On SIGTERM/SIGINT: seconds the open sessions get to finish before they are cut.") var drainSeconds: Int = 30
    @Option(help: "Seconds a device refused at the session cap is told to wait before it tries again (1-3600).") var retryAfter: Int = 30
    @Option(help: ArgumentHelp("host:port of an HTTP endpoint serving GET /metrics (Prometheus text format); none by default.", valueName: "host:port"))
    var metrics: String?
    @Option(help: "Connections the system holds for the hub while every session and every busy answer is taken (the listen backlog; the kernel caps it at net.core.somaxconn).")
    var backlog: Int = 1024
    @Option(help: "MiB the sync-password checks may use at once (Argon2id, 64 MiB each at the hub's cost); sessions past it wait their turn.")
    var passwordMemoryMb: Int = PasswordGate.defaultMemoryBudget >> 20

    func run() throws {
        // First of all, before storage or any thread: from here on a stop signal is a request to
        // drain, on whichever thread it lands (StopSignals says why not a blocked mask).
        let stop = try hubErrors { try StopSignals.install() }
        signal(SIGPIPE, SIG_IGN)  // a device that drops off mid-write is an error for its session, not for the hub
        guard sessions >= 1 else { throw ValidationError("--sessions \(sessions): at least 1") }
        guard drainSeconds >= 0 else { throw ValidationError("--drain-seconds \(drainSeconds): 0 or more") }
        guard (1...3600).contains(retryAfter) else { throw ValidationError("--retry-after \(retryAfter): 1 to 3600 seconds") }
        guard (1...65_535).contains(backlog) else { throw ValidationError("--backlog \(backlog): 1 to 65535 connections") }
        guard (1...1 << 20).contains(passwordMemoryMb) else { throw ValidationError("--password-memory-mb \(passwordMemoryMb): 1 or more MiB") }
        let files = try hubErrors { try DescriptorLimit.raise(toServe: sessions, backlog: backlog) }
        if files.short {
            FileHandle.standardError.write(Data(("satchel-hub: warning: the open-files limit is \(files.after) (hard limit \(files.hard)); "
                + "--sessions \(sessions) with --backlog \(backlog) needs \(files.needed): raise the hard limit (ulimit -Hn, systemd LimitNOFILE=) "
                + "or lower --sessions, or sessions past it fail to be accepted\n").utf8))
        }
        // Both addresses are checked before storage is opened: a refused command creates no hub file.
        let listener: TCPListener
        do { listener = try TCPListener(listen, backlog: Int32(backlog)) } catch { throw ValidationError("--listen \(listen): \(error)") }
        let metricsListener: TCPListener?
        do { metricsListener = try metrics.map { address throws(StreamError) in try TCPListener(address) } } catch {
            throw ValidationError("--metrics \(metrics ?? ""): \(error)")
        }
        let connect = database.connect
        _ = try database.openStorage()
        let host = listen.split(separator: ":").first.map(String.init) ?? "127.0.0.1"
        let log: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        let server = SyncServer(maxSessions: sessions, retryAfterSeconds: retryAfter,
                                passwords: PasswordGate(memoryBudget: passwordMemoryMb << 20), log: log, makeStorage: connect)
        print("satchel-hub listening on \(host):\(listener.port)")
        if let metricsListener, let metrics {
            let metricsHost = metrics.split(separator: ":").first.map(String.init) ?? "127.0.0.1"
            print("satchel-hub metrics on http://\(metricsHost):\(metricsListener.port)/metrics")
        }
        fflush(nil)
        server.serveUntilSignalled(listener, signals: stop, drainSeconds: Double(drainSeconds), metricsListener: metricsListener)
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The sync sessions, newest first.")
    @OptionGroup var database: DatabaseOption
    @Option var limit: Int = 100
    @Flag var json = false

    func run() throws {
        let entries = try hubErrors { try database.openStorage().auditLog(limit: limit) }
        if json { return try printJSON(entries) }
        // Device ids come from the devices' HELLO and errors quote devices and master data.
        let safe = { (text: String?) in TerminalText.safe(text ?? "?") }
        for entry in entries {
            print("\(readableTime(entry.startedAt))  \(safe(entry.device))  \(safe(entry.rep))  \(safe(entry.mode))  \(entry.result)  up \(entry.bytesUp) B/\(entry.recordsUp) rec  down \(entry.bytesDown) B\(entry.error.map { "  \(TerminalText.safe($0))" } ?? "")")
        }
    }
}
