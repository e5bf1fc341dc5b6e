import Agent
import ArgumentParser
import Backup
import Field

@main
struct Satchel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "satchel",
        abstract: "The field-sales agent on the rep's handheld: capture orders and documents durably, check customers.",
        discussion: """
            Data lives in the data directory (--home, or SATCHEL_HOME, default /var/lib/satchel).
            A command that says a document is saved has committed it to storage that survives a power cut.
            The device's own settings (card, board, modem, battery) are in <data directory>/device.conf
            (`satchel config show`); flags and environment variables override them for one command.
            Exit codes: 0 ok, 64 usage, 65 bad input, 66 not initialised, 69 damaged or foreign database,
            70 internal error, 73 already initialised, 74 storage full or failing, 75 busy, 77 no permission (also: this handheld's workplace does not do that),
            78 damaged device configuration.
            """,
        version: "0.1.0",
        subcommands: [
            Init.self, Status.self, Keys.self, Provision.self, ConfigCommand.self, SyncCommand.self, SyncErrorsCommand.self, CardCommand.self, BackupCommand.self, RestoreCommand.self, Daemon.self, CustomerCommand.self, ProductCommand.self, OrderCommand.self, Visit.self, Payment.self,
            DisplayRequest.self, Complaint.self, Quote.self, Maintenance.self, Route.self, Doctor.self,
            ModemCommand.self, ConsoleCommand.self, Unlock.self, Lock.self, PasswordCommand.self,
        ])
}

/// Options every command takes: where the data and the card are.
struct HomeOptions: ParsableArguments {
    @Option(name: .long, help: "Data directory (default: $SATCHEL_HOME, else /var/lib/satchel).")
    var home: String?

    @Option(name: .long, help: "Mount point of the flash card for backups (default: $SATCHEL_CARD, else the device configuration's).")
    var card: String?

    var resolvedHome: String {
        if let home { return home }
        if let fromEnvironment = Environment.value("SATCHEL_HOME"), !fromEnvironment.isEmpty { return fromEnvironment }
        return "/var/lib/satchel"
    }

    var resolvedCard: String? {
        if let card { return card }
        if let fromEnvironment = Environment.value("SATCHEL_CARD"), !fromEnvironment.isEmpty { return fromEnvironment }
        return nil
    }

    /// The device's agent: its configuration (`<home>/device.conf`) under this command's flags
    /// and environment. `battery` overrides the configured battery directory.
    func agent(battery: String? = nil) throws -> DeviceAgent {
        var configuration = try AgentConfiguration.load(home: resolvedHome, card: resolvedCard,
                                                        battery: battery ?? Environment.value("SATCHEL_BATTERY").flatMap { $0.isEmpty ? nil : $0 },
                                                        hardware: Environment.value("SATCHEL_HARDWARE"))
        if let every = Environment.value("SATCHEL_SNAPSHOT_EVERY").flatMap({ Int64($0) }), every > 0 { configuration.snapshotEvery = every }
        return DeviceAgent(configuration)
    }

    /// Opens the database for a command that only reads: nothing is migrated, restored or
    /// rewritten (a lost database is reported, with `satchel restore` when the card has it).
    func open() throws -> DeviceDatabase {
        try agent().openForReading()
    }
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print the result as JSON.")
    var json = false
}

struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create the device database in the data directory.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "This device's id (letters, digits, '_' or '.'); it prefixes every document id.") var device: String
    @Option(help: "The rep who carries this device.") var rep: String

    func run() throws {
        try reportingErrors {
            let database = try DeviceDatabase.create(home: home.resolvedHome, deviceID: device, repID: rep)
            // The device's sync key is made with the device (and never by a command that reads it).
            try DeviceSync(home.agent()).makeKeyPair()
            if output.json {
                try printJSON(["device": device, "rep": rep, "database": database.path])
            } else {
                print("Initialised device \(device) for rep \(rep) in \(database.path)")
            }
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "What this device holds and what has not been synced yet.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let agent = try home.agent()
            let device = try agent.openForReading(whileLocked: true)
            let status = try DeviceStatus.read(device)
            let card = agent.cardReport(device)
            let writing = agent.writing()
            // The last reading the agent recorded; status never asks the modem (read-only, fast).
            let signal = agent.lastSignal()
            if output.json { return try printJSON(StatusWithCard(status: status, card: card, writing: writing, signal: signal)) }
            if writing.stopped {
                let next = writing.resumesOnNextWrite ? "the battery allows it again: the next command that writes resumes" : "plug in the charger; the next command that writes resumes once it charges"
                print("WRITING STOPPED: \(writing.reason ?? "stopped"); \(next)")
            }
            print("Device \(status.device), rep \(status.rep) (\(status.home))")
            print("Working set: \(status.customers) customers, \(status.products) products, \(status.prices) prices, \(status.stockRows) stock rows")
            print("Today: \(status.routeStopsToday) route stops, \(status.visitsToday) visits, \(status.paymentsToday) payments")
            let orders = status.orders.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            print("Orders: \(orders.isEmpty ? "none" : orders)\(status.ordersHeldForApproval > 0 ? ", \(status.ordersHeldForApproval) held for approval" : "")")
            print("Not yet synced: \(status.unsyncedChanges) of \(status.changes) changes")
            if status.syncErrors > 0 { print("Sync errors: \(status.syncErrors): the office's value won (satchel sync-errors)") }
            print("Database: \(status.databaseBytes) bytes, schema \(status.schemaVersion), SQLite \(status.sqliteVersion)")
            print("Card: \(describe(card))")
            if let battery = writing.battery { print("Battery: \(battery.percent)%\(battery.charging ? ", charging" : "")\(battery.level == .normal ? "" : " (\(battery.level.rawValue))")") }
            print("Signal: \(SignalReading.describe(signal, now: device.clock.nowMilliseconds()))")
            print(syncReminder(lastSyncAt: status.lastSyncAt, now: device.clock.nowMilliseconds()))
        }
    }
}

/// The company rule: sync at least once a day (FIELD-NOTES §1); the hour does not matter.
func syncReminder(lastSyncAt: Int64?, now: Int64) -> String {
    guard let last = lastSyncAt else { return "Last sync: never. SYNC TODAY (company rule: at least once a day)" }
    let hours = (now - last) / 3_600_000
    let when = "Last sync: \(CalendarDay.minute(fromMilliseconds: last))"
    return hours >= 24 ? when + ", \(hours) hours ago. SYNC TODAY (company rule: at least once a day)" : when
}

/// `status --json`: the device's counts with the card's state beside them under `"card"`,
/// whether writing is stopped (critical battery) under `"writing"`, and the modem's last
/// recorded signal under `"signal"` (`{"dbm", "at"}`, null when none was read yet).
struct StatusWithCard: Encodable {
    var status: DeviceStatus
    var card: CardReport
    var writing: DeviceAgent.Writing
    var signal: SignalReading?

    func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(card, forKey: .card)
        try container.encode(writing, forKey: .writing)
        try container.encode(signal, forKey: .signal)
    }

    enum Key: String, CodingKey { case card, writing, signal }
}

struct Route: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The day's route: customers to visit, in order.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Day as YYYY-MM-DD (default: today).") var day: String?

    struct Stop: Encodable {
        var position: Int64; var customerId: String; var name: String
        /// Payment reminders there: overdue, and due within a week (the ERP's open items).
        var payments: PaymentReminders.Summary
    }

    func run() throws {
        try reportingErrors {
            let database = try home.open()
            let day = self.day ?? CalendarDay.string(fromMilliseconds: database.clock.nowMilliseconds())
            let reminders = PaymentReminders(database)
            let stops = try WorkingSet(database).route(day: day).map {
                Stop(position: $0.position, customerId: $0.customerID, name: $0.name, payments: try reminders.summary(customerID: $0.customerID, today: day))
            }
            if output.json { return try printJSON(stops) }
            if stops.isEmpty { print("No route for \(day).") }
            for stop in stops {
                var reminder = ""
                if !stop.payments.overdue.isEmpty { reminder += "  OVERDUE " + stop.payments.overdue.map(\.formatted).joined(separator: ", ") }
                if !stop.payments.dueSoon.isEmpty { reminder += "  due soon " + stop.payments.dueSoon.map(\.formatted).joined(separator: ", ") }
                print("\(stop.position). \(TerminalText.safe(stop.customerId))  \(TerminalText.safe(stop.name))\(TerminalText.safe(reminder))")
            }
        }
    }
}

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the whole device for a technician: modem, SIM, network, card, battery, database, keys, sync, clock, permissions; changes nothing.",
        discussion: """
            Each finding is ok, warning or problem, with what to do next. The database is opened read-only,
            the card only read, the modem only asked (never a PIN; every wait bounded). Exit 0 when nothing is
            a problem (warnings included), 1 when something is.
            """)
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Directory of the modem port's UUCP lock file.") var lockDir: String = "/var/lock"
    @Option(help: "Seconds to wait for one modem command.") var modemTimeout: Double = 2
    @Option(help: "Seconds for the whole modem probe.") var probeTimeout: Double = 15

    func validate() throws {
        guard modemTimeout > 0 && modemTimeout <= 30 else { throw ValidationError("--modem-timeout must be between 0 and 30 seconds") }
        guard probeTimeout > 0 && probeTimeout <= 120 else { throw ValidationError("--probe-timeout must be between 0 and 120 seconds") }
    }

    func run() throws {
        var report: DoctorReport?
        try reportingErrors {
            var options = DoctorModemOptions()
            options.lockDirectory = lockDir.isEmpty ? nil : lockDir
            options.commandTimeout = modemTimeout
            options.probeTimeout = probeTimeout
            options.hardware = Environment.value("SATCHEL_HARDWARE")
            let result = try home.agent().doctor(modem: options)
            report = result
            if output.json { return try printJSON(result) }
            for finding in result.findings {
                let mark = finding.severity == .ok ? "ok     " : finding.severity == .warning ? "WARNING" : "PROBLEM"
                print("\(mark) \(finding.check): \(TerminalText.safe(finding.detail, multiline: true))")
                if let next = finding.next { print("        next: \(TerminalText.safe(next, multiline: true))") }
            }
            print(result.hasProblem ? "Problems found: fix them before the handheld goes out." : "No problems\(result.severity == .warning ? " (see the warnings)" : "").")
        }
        // A database that cannot be opened ends as every read-only command does (66, 69), after the findings.
        if let failure = report?.openFailure { try reportingErrors { throw failure } }
        if report?.hasProblem == true { throw ExitCode(1) }
    }
}
