import Agent
import ArgumentParser
import Field
import Modem
import Seal
import Sync
import Transport
import Backup

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "This device's public key (to register it on the hub) and the hub it is pinned to.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions

    struct Report: Encodable { var device: String; var publicKey: String; var hub: DeviceSync.Pin? }

    func run() throws {
        try syncErrors {
            let agent = try home.agent()
            let device = try agent.openForReading(whileLocked: true)
            let sync = DeviceSync(agent)
            let report = Report(device: try device.deviceID(), publicKey: Hex.encode(try sync.keyPair().publicKey), hub: try sync.pin())
            if output.json { return try printJSON(report) }
            print("Device \(report.device) public key: \(report.publicKey)")
            print("Register it on the hub: satchel-hub device add --device \(report.device) --rep REP --key \(report.publicKey)")
            print("Hub: \(report.hub.map { "\($0.address), key \($0.publicKey)" } ?? "not provisioned (satchel provision)")")
        }
    }
}

struct SyncCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync with the hub. Reads the sync password (separate from the app password) from standard input.",
        discussion: """
            Modes: fast (this device's changes up), full (changes up, then what changed in the working set down), \
            init (changes up, then the working set from scratch), duplicate (a replacement device gets the working set and the \
            documents of the device it replaces), upload (a replacement device sends the changes recovered from the old \
            device's card, under the old identity: --from-card DIR; the card passphrase is the second line on standard input). \
            A dropped link resumes where it stopped on the next sync.
            """)
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions
    @Option(help: "fast, full, init, duplicate or upload.") var mode: String = "fast"
    @Option(help: "HOST:PORT of the hub, instead of the pinned address.") var hub: String?
    @Flag(help: "Sync through the GSM modem's own data session (transparent TCP) instead of the host's network.") var overModem = false
    @Option(help: "Access point name for --over-modem (often a private APN; default: the device configuration's apn, else internet).") var apn: String?
    @OptionGroup(title: "Modem (with --over-modem)") var modem: ModemOptions
    @Option(help: "Upload mode: the mount point of the replaced device's card.") var fromCard: String?
    @Option(help: "Upload mode: the replaced device's id, when its card holds several.") var oldDevice: String?
    @Flag(help: "Upload mode: line 2 of standard input is the old device's key the hub released (satchel-hub device release-key), instead of the card passphrase.")
    var releasedKey = false

    func run() throws {
        // Timed from here (`phases` in --json): where a slow sync's seconds went.
        let started = Deadline.monotonicNanoseconds()
        try syncErrors {
            guard let mode = SyncMode(name: mode) else {
                throw FieldError.invalidInput(what: "sync mode", value: mode, reason: "use fast, full, init, duplicate or upload")
            }
            if mode == .upload && fromCard == nil {
                throw FieldError.invalidInput(what: "sync mode", value: "upload", reason: "needs --from-card DIR: the mount point of the replaced device's card")
            }
            if let fromCard, mode != .upload {
                throw FieldError.invalidInput(what: "--from-card", value: fromCard, reason: "only upload mode reads another device's card (--mode upload)")
            }
            let password = try readSecret("sync password")
            let passphrase = mode == .upload ? try readSecret(releasedKey ? "released key of the replaced device" : "card passphrase of the replaced device") : ""
            let agent = try home.agent()
            agent.reached(.start, at: started)
            // The old card is read before any link is opened: a wrong card or passphrase costs no call.
            let recovered = try fromCard.map { card in
                releasedKey ? try DeviceSync(agent).recover(fromCard: card, oldDevice: oldDevice, releasedKey: passphrase)
                    : try DeviceSync(agent).recover(fromCard: card, oldDevice: oldDevice, passphrase: passphrase)
            }
            let link: SyncLink
            if overModem {
                // The modem's port and profiles come from the device configuration unless given.
                var modem = self.modem
                let settings = agent.configuration.settings
                modem.port = modem.port ?? settings.modemPort
                modem.profile = modem.profile ?? settings.modemProfile
                modem.board = modem.board ?? settings.board
                link = .modem(ModemLink(open: { () throws(ModemError) in try modem.open().0 }, apn: apn ?? settings.apn ?? "internet", pppd: modem.pppd, pppTimeout: modem.pppTimeout))
            } else {
                link = .network
            }
            let report = try agent.sync(mode, password: password, over: link, hub: hub, recovered: recovered, notice: printNotice)
            if output.json {
                agent.reached(.exit)
                return Swift.print(TerminalText.escapingJSON(Self.withPhases(try FieldJSON.encode(report), agent.phaseTimes)))
            }
            var line = "Synced (\(report.mode)) with \(report.hub): \(report.uploaded) change\(report.uploaded == 1 ? "" : "s") sent"
            if report.duplicates > 0 { line += ", \(report.duplicates) the hub already had" }
            if report.resentToHub > 0 { line += " (\(report.resentToHub) of them again: the hub had lost them)" }
            if report.pull != nil { line += "; \(report.downloaded) working-set rows received" }
            if report.documents > 0 || report.skippedDocuments > 0 {
                line += "; \(report.documents) documents of the replaced device copied\(report.skippedDocuments > 0 ? " (\(report.skippedDocuments) refer to customers or products outside this working set: left out)" : "")"
            }
            if let old = report.recoveredFrom { line += " (recovered \(report.recoveredChanges) from \(old)'s card)" }
            print(line + "; \(report.bytesUp) bytes up, \(report.bytesDown) down")
            if !report.mismatched.isEmpty {
                print("The working set did not check out (\(report.mismatched.joined(separator: ", "))): the next sync loads it again.")
            }
        }
    }

    /// The report's JSON object with `phases` last: `[{"at": seconds, "phase": name}, ...]` for
    /// every phase reached, in `SyncPhase` order (the order a sync reaches them). Written here
    /// rather than through Codable: a loop, where an Encodable type would cost the handheld's
    /// binary kilobytes of encoder code.
    static func withPhases(_ report: String, _ times: [UInt64]) -> String {
        var json = report
        json.removeLast()
        json += ",\"phases\":["
        for (index, at) in times.enumerated() where at != 0 {
            guard let phase = SyncPhase(rawValue: UInt8(index)) else { continue }
            if !json.hasSuffix("[") { json += "," }
            json += "{\"at\":\(Double(at / 1_000) / 1e6),\"phase\":\"\(phase.name)\"}"
        }
        return json + "]}"
    }
}

struct SyncErrorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync-errors", abstract: "Changes of this device the hub did not take as they were: the office's value won; yours is kept here.")
    @OptionGroup var home: HomeOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors {
            let device = try home.open()
            let entries = try SyncErrorEntry.all(device)
            if output.json { return try printJSON(entries) }
            if entries.isEmpty { return print("No sync errors.") }
            for entry in entries {
                let safe = { (text: String) in TerminalText.safe(text) }
                print("\(CalendarDay.minute(fromMilliseconds: entry.at))  \(safe(entry.entity)) \(safe(entry.entityId)) \(safe(entry.field)): yours \(safe(entry.deviceValue ?? "-")), office \(safe(entry.hubValue ?? "-"))")
                print("    \(safe(entry.reason)) (change \(safe(entry.changeId)))")
            }
        }
    }
}

func syncErrors(_ body: () throws -> Void) throws {
    try modemReportingErrors {
        try reportingErrors {
            do {
                try body()
            } catch let error as DeviceSync.Failure {
                printError(error.description)
                throw ExitCode(error.exitCode)
            }
        }
    }
}
