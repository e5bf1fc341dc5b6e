import Backup
import Field
import Journal
import Modem
import Store
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `satchel doctor`: everything a technician checks on a handheld, each finding with a severity
/// and what to do next. It changes nothing: the database is opened read-only, the card is only
/// read (no catch-up, no snapshot), the modem is only asked (never a PIN, never the power key),
/// every modem wait is bounded.
public struct DoctorFinding: Codable, Sendable, Equatable {
    public enum Severity: String, Codable, Sendable, Comparable {
        case ok, warning, problem
        var rank: Int { self == .ok ? 0 : self == .warning ? 1 : 2 }
        public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
    }

    /// What was checked (`database`, `card`, `sim`, ...).
    public var check: String
    public var severity: Severity
    /// What was found, in words.
    public var detail: String
    /// What the technician does next; nil when nothing is needed.
    public var next: String?

    public init(_ check: String, _ severity: Severity, _ detail: String, next: String? = nil) {
        self.check = check
        self.severity = severity
        self.detail = detail
        self.next = next
    }
}

public struct DoctorReport: Encodable {
    public var findings: [DoctorFinding]
    /// Why the database could not be opened, when it could not (the command exits with its code,
    /// as every read-only command does: 66 not initialised or lost, 69 damaged or foreign).
    public var openFailure: (any Error)?
    /// The worst severity found.
    public var severity: DoctorFinding.Severity { findings.map(\.severity).max() ?? .ok }
    public var hasProblem: Bool { severity == .problem }

    enum CodingKeys: String, CodingKey { case ok, severity, findings }
    /// `{"ok": no problem, "severity": the worst, "findings": [...]}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(!hasProblem, forKey: .ok)
        try container.encode(severity, forKey: .severity)
        try container.encode(findings, forKey: .findings)
    }
    public init(findings: [DoctorFinding], openFailure: (any Error)? = nil) {
        self.findings = findings
        self.openFailure = openFailure
    }
}

/// How the doctor reaches the modem: bounded waits, the lock directory of the serial port.
public struct DoctorModemOptions: Sendable {
    public var lockDirectory: String? = "/var/lock"
    /// Deadline of one AT command, and of the whole probe.
    public var commandTimeout = 2.0
    public var probeTimeout = 15.0
    /// The hardware directory (profiles); nil: the usual places (`HardwareDirectory.locate`).
    public var hardware: String?

    public init() {}
}

extension DeviceAgent {
    /// The earliest instant a sane clock can show: this code did not exist before it.
    static let clockFloorMilliseconds: Int64 = 1_735_689_600_000 // 2025-01-01T00:00:00Z

    /// Runs every check; never throws (a check that cannot run is itself a finding).
    public func doctor(modem options: DoctorModemOptions = DoctorModemOptions()) -> DoctorReport {
        var findings: [DoctorFinding] = []
        findings += permissionFindings()
        let device: DeviceDatabase
        do { device = try openForReading(whileLocked: true) } catch {
            findings.append(DoctorFinding("database", .problem, "cannot be opened: \(error)",
                                          next: "if the card holds a backup: satchel restore; otherwise satchel init (a new device)"))
            findings += batteryFindings()
            findings += modemFindings(options)
            return DoctorReport(findings: findings, openFailure: error)
        }
        findings += databaseFindings(device)
        findings += keyFindings()
        findings += cardFindings(device)
        findings += batteryFindings()
        findings += modemFindings(options)
        return DoctorReport(findings: findings)
    }

    // MARK: permissions

    func permissionFindings() -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        let home = configuration.home
        var info = stat()
        guard stat(home, &info) == 0 else {
            return [DoctorFinding("data directory", .problem, "\(home) cannot be read (\(String(cString: strerror(errno))))",
                                  next: "check that the data directory exists and belongs to the user satchel runs as")]
        }
        let mode = info.st_mode & 0o777
        if access(home, W_OK) != 0 {
            findings.append(DoctorFinding("data directory", .problem, "\(home) is not writable by this user (mode \(octal(mode)))",
                                          next: "chown -R satchel:satchel \(home) (captures would fail with exit 77)"))
        } else if mode & 0o077 != 0 {
            findings.append(DoctorFinding("data directory", .warning, "\(home) is readable by other users (mode \(octal(mode)))",
                                          next: "chmod 700 \(home)"))
        } else {
            findings.append(DoctorFinding("data directory", .ok, "\(home), mode \(octal(mode))"))
        }
        for name in ["device.key", "card.key", "hub.pin", DeviceSettings.fileName] {
            let path = Paths.join(home, name)
            guard stat(path, &info) == 0 else { continue }
            let fileMode = info.st_mode & 0o777
            if fileMode & 0o077 != 0 {
                let secret = name.hasSuffix(".key")
                findings.append(DoctorFinding("permissions", secret ? .problem : .warning, "\(name) has mode \(octal(fileMode)): other users can read it",
                                              next: "chmod 600 \(path)\(secret ? "; the key may have been copied: consider new keys" : "")"))
            }
        }
        return findings
    }

    // MARK: the database and what it holds

    func databaseFindings(_ device: DeviceDatabase) -> [DoctorFinding] {
        var findings: [DoctorFinding] = []
        do {
            let problems = try device.guarded { try device.database.integrityCheck() }
            if problems.isEmpty {
                findings.append(DoctorFinding("database", .ok, "\(device.path): integrity_check ok"))
            } else {
                findings.append(DoctorFinding("database", .problem, "\(device.path) is damaged: \(problems.prefix(3).joined(separator: "; "))",
                                              next: "copy the data directory aside, then satchel restore from the card (docs/technician-guide.md, A damaged database)"))
            }
        } catch {
            findings.append(DoctorFinding("database", .problem, "integrity_check could not run: \(error)", next: "satchel restore from the card"))
            return findings
        }
        guard let status = try? device.guarded({ try DeviceStatus.read(device) }) else { return findings }
        let now = device.clock.nowMilliseconds()

        // Working set against the budgets the device declares to the hub.
        let counts = ["customers": status.customers, "products": status.products]
        for (table, budget) in DeviceDownload.defaultBudgets.sorted(by: { $0.key < $1.key }) {
            let count = counts[table] ?? 0
            if count > Int64(budget) {
                findings.append(DoctorFinding("working set", .warning, "\(count) \(table), over the budget of \(budget)",
                                              next: "narrow the rep's territory or channel at the hub (satchel-hub rep scope), then sync"))
            } else {
                findings.append(DoctorFinding("working set", .ok, "\(count) \(table) of a budget of \(budget)"))
            }
        }

        // Sync: the company rule is once a day (FIELD-NOTES §1).
        if let last = status.lastSyncAt {
            let hours = (now - last) / 3_600_000
            findings.append(hours >= 24
                ? DoctorFinding("last sync", .warning, "\(hours) hours ago", next: "sync today: satchel sync (check signal and SIM below)")
                : DoctorFinding("last sync", .ok, "\(max(0, hours)) hours ago"))
        } else {
            findings.append(DoctorFinding("last sync", .warning, "never synced", next: "satchel provision, then satchel sync"))
        }
        if status.unsyncedChanges > 0 {
            findings.append(DoctorFinding("unsent documents", .warning, "\(status.unsyncedChanges) of \(status.changes) changes not yet sent to the office",
                                          next: "satchel sync; never reinitialise this device before they are sent (they are also on the card)"))
        } else {
            findings.append(DoctorFinding("unsent documents", .ok, "all \(status.changes) changes sent"))
        }

        // Clock: a device whose clock is before this software existed, or behind its own
        // history, stamps documents wrongly and reads its sync age wrong.
        if now < Self.clockFloorMilliseconds {
            findings.append(DoctorFinding("clock", .problem, "the clock says \(CalendarDay.minute(fromMilliseconds: now)), before 2025",
                                          next: "set the time (timedatectl set-time, or let the network set it), then check again"))
        } else if let latest = [status.lastChangeAt, status.lastSyncAt].compactMap({ $0 }).max(), latest > now + 300_000 {
            findings.append(DoctorFinding("clock", .problem, "the clock (\(CalendarDay.minute(fromMilliseconds: now))) is behind the device's own history (\(CalendarDay.minute(fromMilliseconds: latest)))",
                                          next: "the clock went back: set the time before capturing more"))
        } else {
            findings.append(DoctorFinding("clock", .ok, CalendarDay.minute(fromMilliseconds: now)))
        }
        return findings
    }

    // MARK: keys

    func keyFindings() -> [DoctorFinding] {
        let home = configuration.home
        var findings: [DoctorFinding] = []
        let hasKey = access(Paths.join(home, "device.key"), F_OK) == 0
        let hasPin = access(Paths.join(home, "hub.pin"), F_OK) == 0
        findings.append(hasKey
            ? DoctorFinding("device key", .ok, "device.key present")
            : DoctorFinding("device key", .warning, "no device key yet", next: "satchel keys (creates it), then register it at the hub"))
        findings.append(hasPin
            ? DoctorFinding("hub pin", .ok, "hub.pin present (the hub's address and key)")
            : DoctorFinding("hub pin", .warning, "the hub is not pinned: this device cannot sync", next: "satchel provision --hub HOST:PORT --hub-key KEY"))
        return findings
    }

    // MARK: the card

    func cardFindings(_ device: DeviceDatabase) -> [DoctorFinding] {
        let report = cardReport(device)
        var findings: [DoctorFinding] = []
        switch report.state {
        case .notConfigured:
            return [DoctorFinding("card", .warning, "no card configured: captures are on internal flash only",
                                  next: "satchel card init --card /media/card (or the board's card)")]
        case .ok:
            findings.append(DoctorFinding("card", .ok, report.summary))
        case .behind:
            findings.append(DoctorFinding("card", .warning, report.summary, next: "the next capture or the daemon catches it up; check that satchel-daemon runs"))
        case .absent, .notInitialised, .foreign, .keyMissing, .readOnly, .full, .failing:
            findings.append(DoctorFinding("card", .problem, report.summary, next: cardAdvice(report.state)))
        }
        guard let root = configuration.cardRoot, report.state != .absent else { return findings }
        if access(root, W_OK) != 0 {
            findings.append(DoctorFinding("card writable", .problem, "\(root) is not writable (\(String(cString: strerror(errno))))",
                                          next: "check the card's write-protect switch and mount options (mount -o remount,rw)"))
        }
        var space = statvfs()
        if statvfs(root, &space) == 0 {
            let free = Int64(space.f_bavail) * Int64(space.f_frsize)
            let needed = (try? backupBytesNeeded(device)) ?? 0
            let megabytes = free / 1_048_576
            if free < needed {
                findings.append(DoctorFinding("card space", .problem, "\(megabytes) MB free, less than a snapshot needs (\(needed / 1_048_576) MB)", next: "replace the card with a larger one"))
            } else if free < needed * 4 {
                findings.append(DoctorFinding("card space", .warning, "\(megabytes) MB free, room for fewer than 4 snapshots", next: "plan a larger card"))
            } else {
                findings.append(DoctorFinding("card space", .ok, "\(megabytes) MB free"))
            }
        }
        if let covers = report.snapshotCoversSeq, report.isUsable {
            let last = (try? device.lastChangeSeq()) ?? covers
            let coveredAt = try? device.guarded { try device.database.first("SELECT at FROM changes WHERE seq <= ? ORDER BY seq DESC LIMIT 1", [.integer(covers)]) { $0.int64(0) } }
            let age = coveredAt.flatMap { $0 }.map { (device.clock.nowMilliseconds() - $0) / 3_600_000 }
            let behind = last - covers
            if behind > 0, let age, age >= 24 {
                findings.append(DoctorFinding("last snapshot", .warning, "covers changes up to \(age) hours ago; \(behind) later changes only in the journal",
                                              next: "satchel backup (a restore replays the journal, but takes longer)"))
            } else {
                findings.append(DoctorFinding("last snapshot", .ok, "#\(report.snapshotGeneration ?? 0), \(behind) changes after it in the journal"))
            }
        } else if report.isUsable {
            findings.append(DoctorFinding("last snapshot", .warning, "none on the card yet", next: "satchel backup"))
        }
        return findings
    }

    func cardAdvice(_ state: CardReport.State) -> String {
        switch state {
        case .absent: return "insert the card (and mount it); captures go on without a backup meanwhile"
        case .notInitialised: return "satchel card init"
        case .foreign: return "this card belongs to another device: put in this device's card, or satchel card init on a new card"
        case .keyMissing: return "the card's key is not on this device: satchel restore with the backup passphrase"
        case .readOnly: return "check the write-protect switch and mount options"
        case .full: return "replace the card with a larger one"
        case .failing: return "replace the card; copy the old one first"
        case .behind, .ok, .notConfigured: return "none"
        }
    }

    // MARK: battery

    func batteryFindings() -> [DoctorFinding] {
        guard let directory = configuration.batteryDirectory else { return [] }
        guard let battery = readBattery() else {
            return [DoctorFinding("battery", .warning, "\(directory) gives no reading", next: "check the battery setting in device.conf (satchel config set battery DIR)")]
        }
        let detail = "\(battery.percent)%\(battery.charging ? ", charging" : "")"
        switch battery.level {
        case .normal: return [DoctorFinding("battery", .ok, detail)]
        case .low: return [DoctorFinding("battery", .warning, detail + " (low)", next: "charge the handheld")]
        case .critical: return [DoctorFinding("battery", .problem, detail + " (critical: writes stop)", next: "plug in the charger now")]
        }
    }

    // MARK: modem

    /// The modem's port: `modem_port` in device.conf, else the board's serial port.
    func modemPortAndProfile(_ directory: HardwareDirectory?) -> (port: String, profile: String?)? {
        let settings = configuration.settings
        let board = settings.board.flatMap { try? directory?.board($0) }
        guard let port = settings.modemPort ?? board?.serialDevice else { return nil }
        return (port, settings.modemProfile ?? board?.modemProfile)
    }

    /// This handheld's modem (device.conf, else its board), opened, started, its profile chosen,
    /// every wait bounded by `options`, never power-cycled; nil when none is configured. The
    /// caller closes it.
    func openConfiguredModem(_ options: DoctorModemOptions) throws(ModemError) -> (modem: Modem, port: String)? {
        let directory = HardwareDirectory.locate(override: options.hardware)
        guard let (port, profileName) = modemPortAndProfile(directory) else { return nil }
        var config = ModemConfig()
        config.commandTimeout = options.commandTimeout
        config.probeTimeout = options.probeTimeout
        config.simBusyTimeout = min(config.simBusyTimeout, options.probeTimeout / 3)
        config.powerKey = nil // never power-cycled here
        var profile = ModemProfile.builtInGeneric
        if let profileName, let named = try? directory?.modem(profileName) { profile = named }
        let modem = try Modem.open(port: port, profile: profile, config: config, lockDirectory: options.lockDirectory)
        do {
            if let directory { modem.adoptVendorCodes(from: directory) }
            try modem.start()
            if profileName != nil { modem.use(requested: profile, by: "device.conf") } else { _ = try modem.chooseProfile(in: directory) }
        } catch {
            modem.close()
            throw error
        }
        return (modem, port)
    }

    func modemFindings(_ options: DoctorModemOptions) -> [DoctorFinding] {
        guard let port = modemPortAndProfile(HardwareDirectory.locate(override: options.hardware))?.port else { return [] }
        let report: ProbeReport
        do {
            guard let (modem, _) = try openConfiguredModem(options) else { return [] }
            defer { modem.close() }
            report = try modem.probe()
        } catch {
            return [DoctorFinding("modem", .problem, "\(port): \(error)", next: modemAdvice(error))]
        }
        var findings = [DoctorFinding("modem", .ok, "\(port): \([report.identity.manufacturer, report.identity.model].compactMap { $0 }.joined(separator: " ")) (profile \(report.profile))")]
        if let sim = report.sim {
            let attempts = sim.pinAttempts.map { ", \($0) PIN attempts left" } ?? ""
            switch sim.state {
            case .ready:
                findings.append(DoctorFinding("sim", .ok, "ready\(attempts)"))
            case .pinRequired where (sim.pinAttempts ?? 3) <= 1:
                findings.append(DoctorFinding("sim", .problem, "PIN required, only \(sim.pinAttempts ?? 0) attempt left: the next wrong PIN locks the SIM",
                                              next: "do not guess: get the right PIN from the office, then satchel modem unlock"))
            case .pinRequired:
                findings.append(DoctorFinding("sim", .warning, "PIN required\(attempts)", next: "satchel modem unlock (asks for the PIN; the doctor never sends one)"))
            case .pukRequired:
                findings.append(DoctorFinding("sim", .problem, "PUK required\(sim.pukAttempts.map { ", \($0) PUK attempts left" } ?? ""): the SIM is locked",
                                              next: "get the PUK from the operator (the office has it), never guess it"))
            case .notInserted:
                findings.append(DoctorFinding("sim", .problem, "no SIM inserted", next: "insert the SIM (handheld off), then check again"))
            default:
                findings.append(DoctorFinding("sim", .warning, sim.state.name + attempts, next: "satchel modem probe for details"))
            }
        } else {
            findings.append(DoctorFinding("sim", .warning, "the modem did not say", next: "satchel modem probe for details"))
        }
        if let registration = report.network.overall {
            if registration.isRegistered {
                findings.append(DoctorFinding("registration", .ok, registration.name + (report.network.operatorName.map { ", \($0)" } ?? "")))
            } else if registration == .denied {
                findings.append(DoctorFinding("registration", .problem, "denied by the network", next: "the SIM is barred or unpaid: call the operator"))
            } else if report.sim?.state == .ready {
                findings.append(DoctorFinding("registration", .warning, registration.name, next: "move to better coverage and check again; check the antenna"))
            }
        }
        if let dbm = report.network.rssiDBm {
            findings.append(dbm <= -105
                ? DoctorFinding("signal", .warning, "\(dbm) dBm (weak)", next: "check the antenna; sync where coverage is better")
                : DoctorFinding("signal", .ok, "\(dbm) dBm"))
        }
        return findings
    }

    func modemAdvice(_ error: ModemError) -> String {
        switch error {
        case .portNotFound: return "the modem is not there: check the udev rule (/dev/satchel-modem), the USB cable or the board's modem power"
        case .portInUse: return "another program holds the modem (pppd, minicom, ModemManager): stop it"
        case .permissionDenied, .lockFailed: return "add the satchel user to group dialout; check /run/lock is writable"
        case .notResponding, .noAnswer: return "the modem does not answer: power-cycle it (or the handheld), then check again"
        default: return "satchel modem probe for details"
        }
    }
}

private func octal(_ mode: mode_t) -> String {
    String(UInt32(mode), radix: 8)
}
