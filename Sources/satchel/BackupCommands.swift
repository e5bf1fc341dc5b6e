import Agent
import ArgumentParser
import Backup
import Field

struct CardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "card", abstract: "The flash card that holds this device's encrypted journal and snapshots.",
        subcommands: [InitCard.self, CardStatus.self])

    struct InitCard: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Start backing up to the card. Reads the backup passphrase (at least 8 characters) from standard input.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let passphrase = try readSecret("backup passphrase")
                let agent = try home.agent()
                let report = try agent.initCard(try agent.open(notice: printNotice), passphrase: passphrase)
                if output.json { return try printJSON(report) }
                print("Card ready: \(describe(report))")
                print("Keep the backup passphrase with the technician: a wiped handheld needs it to restore.")
            }
        }
    }

    struct CardStatus: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "The card's state; changes nothing.")
        @OptionGroup var home: HomeOptions
        @OptionGroup var output: OutputOptions

        func run() throws {
            try reportingErrors {
                let agent = try home.agent()
                let report = agent.cardReport(try agent.openForReading())
                if output.json { return try printJSON(report) }
                print(describe(report))
            }
        }
    }
}

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup", abstract: "Bring the card journal up to date and take a snapshot now (before a sync, or when the battery is low).")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let agent = try home.agent()
            let device = try agent.open(notice: printNotice)
            let pointer = try agent.snapshot(device)
            let report = agent.cardReport(device)
            if output.json { return try printJSON(report) }
            print("Snapshot #\(pointer.generation) on the card covers change \(pointer.coversSequence) (\(pointer.plaintextSize) bytes); \(describe(report))")
        }
    }
}

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Rebuild the database from the card: newest valid snapshot plus the journal. The old database is moved aside, never deleted.",
        discussion: """
            On a wiped handheld the backup key is gone too: give the backup passphrase on standard input (--passphrase-stdin), \
            and with --app-password-stdin a new app password on the next line, which seals the key at once (without one, the key \
            of a sealed backup is kept in memory only until `satchel password set`). On a handheld with an app password, \
            --app-password-stdin is its current one: a passphrase restore there needs it (or `satchel unlock` first) and is \
            refused when the card's key is not the device's data key or the keys were destroyed (restore into an empty data \
            directory then): no key is ever kept in plaintext beside data.key. \
            The device's sync key and hub pin come back from the card with the database. A database that opens and is not \
            damaged is replaced only with --force: without it, restore lists the documents and changes the card lacks and \
            changes nothing (exit 73). Every restore moves the device's ids into a new epoch (recorded on the card first), \
            so no id is ever issued twice. Only the newest satchel.db.replaced-* copy is kept.
            """)
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "Card to restore from (default: --card / $SATCHEL_CARD).") var from: String?
    @Option(help: "Device whose backup to restore, when the card holds several.") var device: String?
    @Flag(help: "Read the backup passphrase from standard input.") var passphraseStdin = false
    @Flag(help: "Then read the app password (the next line): on a handheld without one a new one, which seals the key the passphrase unwraps at once; on a handheld with one its current one, which unlocks it.")
    var appPasswordStdin = false
    @Flag(help: "Replace a database that opens and is not damaged, dropping what the card lacks (listed first by a restore without it).") var force = false

    func run() throws {
        try reportingErrors {
            var configuration = try home.agent().configuration
            if let from { configuration.cardRoot = from }
            let passphrase = passphraseStdin ? try readSecret("backup passphrase") : nil
            let appPassword = appPasswordStdin ? try readSecret("app password") : nil
            let report = try DeviceAgent(configuration).restore(passphrase: passphrase, device: device, force: force, appPassword: appPassword)
            if output.json { return try printJSON(report) }
            print("Restored \(report.database): snapshot \(report.snapshotGeneration.map { "#\($0)" } ?? "none"), \(report.replayed) journal entries replayed, through change \(report.lastSequence)")
            for skipped in report.skipped { print("  skipped \(TerminalText.safe(skipped, multiline: true))") }
            if let epoch = report.epoch {
                print("  new documents get ids of epoch \(epoch) (\(TerminalText.safe(ClientID.prefix(device: report.device, epoch: epoch)))-…): no id issued before can repeat")
            }
            for line in report.identity { print("  \(TerminalText.safe(line))") }
            if let dropped = report.dropped, !dropped.isEmpty {
                print("  dropped (not on the card): \(TerminalText.safe((dropped.documents + dropped.changes).joined(separator: ", ")))")
            }
            if let aside = report.movedAside { print("  the previous database was kept as \(aside)") }
            if !report.removedAside.isEmpty { print("  older copies removed: \(TerminalText.safe(report.removedAside.joined(separator: ", ")))") }
        }
    }
}

struct Daemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run in the background: keep the card caught up, snapshot on a schedule and on low battery, stop writes on critical battery, snapshot on SIGTERM/SIGPWR.")
    @OptionGroup var home: HomeOptions
    @Option(help: "The battery's sysfs power_supply directory (default: the device configuration's, or its board's).") var battery: String?
    @Option(help: "Seconds between checks.") var interval: Int = 30
    @Option(help: "Seconds between scheduled snapshots (when something changed).") var snapshotInterval: Int = 1800
    @Option(help: "Stop after this many checks (0: run until signalled).") var ticks: Int = 0

    func run() throws {
        try reportingErrors {
            let agent = try home.agent(battery: battery)
            var loop = DaemonLoop(agent: agent, snapshotInterval: Int64(snapshotInterval) * 1000, log: { print(TerminalText.safe($0, multiline: true)); fflushStdout() })
            loop.run(intervalSeconds: interval, ticks: ticks, notifier: SystemdNotifier.fromEnvironment())
        }
    }
}
