import Field
import Foundation
import ModemSimulator
import Hub
import Store
#if canImport(Glibc)
import Glibc
#endif

/// A rep's day on a simulated handheld: a seeded working set, then 20-40 visits with customer
/// checks, orders, payments, a display request and a complaint, every one through the real
/// `satchel` executable, as a rep's console would run it. At the end it checks that everything
/// `satchel` acknowledged is in the database and that the database is intact.
public struct DayRunner {
    public struct Options: Sendable {
        public var seed: UInt64
        /// Keep the device's files here (device/, card/) instead of a temporary directory.
        public var keep: String?
        public var satchelPath: String
        public var customers: Int
        public var products: Int
        /// The hardware directory (modem profiles) the satchel process reads.
        public var hardware: String
        /// Set an app password right after `init` (the plain database is encrypted then) and
        /// lock the device at the end of the day (docs/benchmarks.md, the plaintext scan).
        public var appPassword: String?

        public init(seed: UInt64, keep: String?, satchelPath: String, hardware: String, customers: Int = 300, products: Int = 400) {
            self.seed = seed; self.keep = keep; self.satchelPath = satchelPath; self.hardware = hardware
            self.customers = customers; self.products = products
        }
    }

    public struct Report: Codable, Sendable {
        public var seed: UInt64
        public var home: String
        public var routeStops: Int
        public var visits: Int
        public var customerChecks: Int
        public var ordersConfirmed: Int
        public var ordersHeldForApproval: Int
        public var orderLines: Int
        public var draftsCompletedLater: Int
        /// Lines removed from a draft before it was confirmed (one change each).
        public var draftLinesRemoved: Int = 0
        public var payments: Int
        public var displayRequests: Int
        public var complaints: Int
        public var badInputsRefused: Int
        public var acknowledged: Int
        public var lost: Int
        public var integrityOK: Bool
        /// The card at the end of the day (`satchel status --json` `"card"`): "ok" wanted.
        public var cardState: String
        /// Last change in the card journal; must equal the device's last change.
        public var cardJournalThroughSeq: Int
        /// Acknowledged changes not on the card yet; must be 0.
        public var cardBehind: Int
        /// The snapshot `satchel backup` took at the end of the day, and the change it covers.
        public var snapshotGeneration: Int
        public var snapshotCoversSeq: Int
        /// The morning's init through the simulated modem on EDGE: working-set rows and bytes down.
        public var initRows: Int = 0
        public var initBytesDown: Int = 0
        /// The evening's full sync through the simulated modem on GPRS against the day's hub.
        public var syncUploaded: Int
        public var syncBytesUp: Int
        public var syncBytesDown: Int
        public var syncDownloaded: Int = 0
        public var hubChanges: Int
        /// Orders the office accepted during the day, and how many of them the device shows as accepted after the sync.
        public var ordersAcceptedByOffice: Int = 0
        public var ordersShownAccepted: Int = 0
        public var ordersRejectedByOffice: Int = 0
        /// Sync errors after the evening sync (hub's sync_errors, device's `status --json`): 0 wanted.
        public var syncErrorsOnHub: Int = -1
        public var syncErrorsOnDevice: Int = -1
        public var commands: Int
        public var elapsedSeconds: Double
        public var problems: [String]
    }

    public enum Failure: Error, CustomStringConvertible {
        case command(String, ChildProcess.Result)
        case setup(String)
        public var description: String {
            switch self {
            case .command(let what, let result):
                return "\(what) failed with exit \(result.status)\(result.timedOut ? " (timed out)" : ""): \(result.stderr)"
            case .setup(let what): return what
            }
        }
    }

    public static func run(_ options: Options) throws -> Report {
        let started = ChildProcess.monotonicSeconds()
        guard access(options.satchelPath, X_OK) == 0 else {
            throw Failure.setup("satchel executable not found at \(options.satchelPath): build it first (`swift build`), or set SATCHEL_BIN")
        }
        let root = try options.keep ?? makeTemporaryDirectory()
        let home = root + "/device"
        for directory in [root, home, root + "/card"] { mkdir(directory, 0o700) }
        var report = Report(seed: options.seed, home: home, routeStops: 0, visits: 0, customerChecks: 0, ordersConfirmed: 0,
                            ordersHeldForApproval: 0, orderLines: 0, draftsCompletedLater: 0, payments: 0, displayRequests: 0,
                            complaints: 0, badInputsRefused: 0, acknowledged: 0, lost: 0, integrityOK: false, cardState: "", cardJournalThroughSeq: 0,
                            cardBehind: -1, snapshotGeneration: 0, snapshotCoversSeq: 0, syncUploaded: 0, syncBytesUp: 0,
                            syncBytesDown: 0, hubChanges: 0, commands: 0,
                            elapsedSeconds: 0, problems: [])

        // The handheld has a flash card: every command mirrors to it, as the device's profile sets SATCHEL_CARD.
        var card = ["SATCHEL_CARD": root + "/card"]
        // The unlocked key lives on tmpfs (DeviceLock), one runtime directory per simulated device.
        let runtime = "/dev/shm/satchel-day-\(getpid())-\(options.seed)"
        if options.appPassword != nil { card["SATCHEL_RUNTIME_DIR"] = runtime }
        defer { if options.appPassword != nil { try? FileManager.default.removeItem(atPath: runtime) } }
        func satchel(_ arguments: [String], expectExit: Int32 = 0, stdin: String? = nil, _ what: String) throws -> ChildProcess.Result {
            report.commands += 1
            let result = try ChildProcess.run(options.satchelPath, arguments + ["--home", home], environment: card, stdin: stdin, timeoutSeconds: 60)
            guard result.status == expectExit, !result.timedOut else { throw Failure.command("\(what) (satchel \(arguments.joined(separator: " ")))", result) }
            return result
        }
        func json(_ result: ChildProcess.Result) throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
                throw Failure.setup("satchel printed no JSON object: \(result.stdout)")
            }
            return object
        }

        let deviceID = "SIM\(options.seed % 1000)"
        let today = CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())
        // The office: a hub of its own (embedded SQLite under hub/), loaded with an ERP extract
        // for this rep. The device is registered and provisioned the way a technician does it.
        let password = "hasło-synchronizacji"
        let hub = try DayHub(directory: root + "/hub", password: password)
        defer { hub.stop() }
        let seeded: Seeder.Summary
        var overdue: [String: Int64] = [:]
        do {
            let erp = try DeviceDatabase.create(home: root + "/hub/erp", deviceID: deviceID, repID: "R01")
            seeded = try Seeder.seed(erp, plan: .init(customers: options.customers, products: options.products, seed: options.seed,
                                                      routeStops: 20...40, today: today))
            try hub.storage.importMasterData(from: erp.path, assignTo: "R01")
            overdue = Dictionary(try erp.database.query("SELECT id, overdue_minor FROM customers") { ($0.text(0), $0.int64(1)) }, uniquingKeysWith: { first, _ in first })
        }
        _ = try satchel(["init", "--device", deviceID, "--rep", "R01"], "init")
        // A copy of the sync key as init made it, outside the device and the card, for the
        // plaintext scan (`EncryptionBench.scannedDay`) to look for.
        if let key = FileManager.default.contents(atPath: home + "/device.key") {
            mkdir(root + "/witness", 0o700)
            _ = FileManager.default.createFile(atPath: root + "/witness/device.key", contents: key, attributes: [.posixPermissions: 0o600])
        }
        if let appPassword = options.appPassword {
            _ = try satchel(["password", "set"], stdin: appPassword + "\n" + appPassword + "\n", "password set")
        }
        let keys = try json(try satchel(["keys", "--json"], "keys"))
        try hub.register(device: deviceID, rep: "R01", publicKey: keys["public_key"] as? String ?? "")
        _ = try satchel(["provision", "--hub", hub.address, "--hub-key", hub.publicKey], "provision")

        // Syncs go through the handheld's modem: the simulated SIMCom on a pty, its data session
        // shaped like the link (delays scaled down, bandwidth not).
        let lock = root + "/lock"
        mkdir(lock, 0o700)
        func syncOverModem(_ mode: String, link: LinkProfile) throws -> [String: Any] {
            let modem = try SimulatedModem(config: .simcomWithoutPIN(link: link, guardSeconds: 0.05, timeScale: 0.05))
            modem.start()
            defer { modem.stop() }
            return try json(try satchel(["sync", "--mode", mode, "--over-modem", "--apn", "internet", "--port", modem.path, "--lock-dir", lock,
                                         "--hardware", options.hardware, "--timeout", "2", "--timeout-scale", "0.05", "--guard-ms", "50", "--json"],
                                        stdin: password + "\n", "sync --mode \(mode) over the simulated modem"))
        }
        // The morning: the working set arrives by init.
        let initial = try syncOverModem("init", link: .edge)
        report.initRows = initial["downloaded"] as? Int ?? 0
        report.initBytesDown = initial["bytes_down"] as? Int ?? 0
        if let mismatched = initial["mismatched"] as? [String], !mismatched.isEmpty {
            report.problems.append("after init, tables \(mismatched) do not match the hub")
        }
        report.routeStops = seeded.routeStops
        // The technician starts backups before the rep sets off; the passphrase goes on stdin.
        _ = try satchel(["card", "init"], stdin: "day passphrase \(options.seed)\n", "card init")
        let catalogue = (0..<options.products).map { "PN-\(10_000 + $0)" }
        let day = RepDay.plan(route: seeded.todaysRoute, overdue: overdue, catalogue: catalogue, displayTypes: seeded.displayTypes, seed: options.seed)

        var acknowledgedOrders: [String: String] = [:]  // id -> state reported
        var ordersInCapture: [(id: String, held: Bool)] = []
        var acknowledgedOther = 0, expectedChanges = 0
        for (index, stop) in day.stops.enumerated() {
            let customer = stop.customer
            _ = try json(try satchel(["customer", "show", customer, "--json"], "customer check"))
            report.customerChecks += 1
            if let order = stop.order {
                let lines = order.lines.map { "\($0.part):\($0.quantity)" }
                let saved: [String: Any]
                if let draftLines = order.draftLines {
                    // A draft started, edited later in the visit, then confirmed.
                    let draft = try json(try satchel(["order", "new", "--customer", customer] + lines.prefix(draftLines).flatMap { ["--line", $0] } + ["--json"], "draft order"))
                    guard let id = draft["id"] as? String else { throw Failure.setup("order new printed no id") }
                    _ = try satchel(["order", "add-line", id] + lines.dropFirst(draftLines) + ["--json"], "add lines")
                    if let lineNo = order.removeLineNo {
                        _ = try satchel(["order", "remove-line", id, "\(lineNo)", "--json"], "remove a line")
                        report.draftLinesRemoved += 1
                    }
                    saved = try json(try satchel(["order", "confirm", id, "--json"], "confirm"))
                    report.draftsCompletedLater += 1
                } else {
                    saved = try json(try satchel(["order", "new", "--customer", customer] + lines.flatMap { ["--line", $0] } + ["--confirm", "--json"], "order"))
                }
                if let id = record(saved, into: &acknowledgedOrders, report: &report, lines: order.finalLineCount) {
                    ordersInCapture.append((id: id, held: (saved["order"] as? [String: Any])?["approval"] as? String == "pending"))
                }
                expectedChanges += order.changes
            }
            if index == 3 {
                // A typo on the handheld keyboard: refused with exit 65, nothing written.
                let before = try json(try satchel(["status", "--json"], "status"))["changes"] as? Int ?? -1
                _ = try satchel(["order", "new", "--customer", customer, "--line", "PN-X:3", "--confirm"], expectExit: 65, "order with a typo")
                _ = try satchel(["order", "new", "--customer", customer, "--line", "\(catalogue[0]):-2", "--confirm"], expectExit: 65, "order with a negative quantity")
                let after = try json(try satchel(["status", "--json"], "status"))["changes"] as? Int ?? -2
                if before == after { report.badInputsRefused += 2 } else { report.problems.append("a refused order changed the journal") }
            }
            _ = try satchel(["visit", "--customer", customer, "--outcome", stop.outcome, "--note", stop.note], "visit")
            report.visits += 1
            acknowledgedOther += 1
            if let payment = stop.payment {
                let amount = payment.amountMinor
                _ = try satchel(["payment", "--customer", customer, "--amount", "\(amount / 100).\(amount % 100 < 10 ? "0" : "")\(amount % 100)",
                                 "--method", payment.method, "--receipt", payment.receipt], "payment")
                report.payments += 1
                acknowledgedOther += 1
            }
            if let display = stop.display {
                _ = try satchel(["display-request", "--customer", customer, "--type", display.type,
                                 "--width", "\(display.widthCm)", "--height", "\(display.heightCm)", "--note", display.note], "display request")
                report.displayRequests += 1
                acknowledgedOther += 1
            }
            if let complaint = stop.complaint {
                _ = try satchel(["complaint", "--customer", customer, "--category", "damaged", "--text", complaint.text, "--part", complaint.part], "complaint")
                report.complaints += 1
                acknowledgedOther += 1
            }
        }
        expectedChanges += acknowledgedOther

        // Everything acknowledged must be there, in the state it was acknowledged in.
        let listed = try JSONSerialization.jsonObject(with: Data(try satchel(["order", "list", "--json"], "order list").stdout.utf8)) as? [[String: Any]] ?? []
        var stored: [String: String] = [:]
        for order in listed { if let id = order["id"] as? String { stored[id] = order["state"] as? String } }
        for (id, state) in acknowledgedOrders where stored[id] != state {
            report.lost += 1
            report.problems.append("order \(id) acknowledged as \(state) is \(stored[id] ?? "missing")")
        }
        let status = try json(try satchel(["status", "--json"], "status"))
        let journal = status["changes"] as? Int ?? 0
        report.acknowledged = acknowledgedOrders.count + acknowledgedOther
        if journal != expectedChanges {
            report.problems.append("change journal holds \(journal) entries, expected \(expectedChanges)")
            report.lost += max(0, expectedChanges - journal)
        }
        // Everything acknowledged is on the card too, and the day ends with a snapshot.
        if let cardState = status["card"] as? [String: Any] {
            report.cardState = cardState["state"] as? String ?? ""
            report.cardJournalThroughSeq = cardState["journal_through_seq"] as? Int ?? -1
            report.cardBehind = cardState["behind"] as? Int ?? -1
        }
        if report.cardState != "ok" || report.cardBehind != 0 || report.cardJournalThroughSeq != journal {
            report.problems.append("card is \(report.cardState), journal through \(report.cardJournalThroughSeq) of \(journal), \(report.cardBehind) behind")
        }
        let backup = try json(try satchel(["backup", "--json"], "backup"))
        report.snapshotGeneration = backup["snapshot_generation"] as? Int ?? 0
        report.snapshotCoversSeq = backup["snapshot_covers_seq"] as? Int ?? 0
        if report.snapshotCoversSeq != journal { report.problems.append("the end-of-day snapshot covers change \(report.snapshotCoversSeq), not \(journal)") }

        // Meanwhile the office answers the day's orders (none of which has reached the hub yet)
        // and the ERP's evening change lands: a few hundred prices, stock counted.
        let answers = try OfficeDay.answer(hub.storage, device: deviceID, orders: ordersInCapture, seed: options.seed, now: SystemClock().nowMilliseconds())
        report.ordersAcceptedByOffice = answers.accepted.count
        report.ordersRejectedByOffice = answers.rejected.count
        _ = try OfficeDay.eveningChange(hubPath: hub.storage.path, prices: max(20, seeded.prices / 20), stockRows: max(40, seeded.stockRows / 5), seed: options.seed)

        // The end of the day: a full sync through the modem on GPRS (orders up, the office's answers and prices down).
        let synced = try syncOverModem("full", link: .gprs)
        report.syncUploaded = synced["uploaded"] as? Int ?? 0
        report.syncBytesUp = synced["bytes_up"] as? Int ?? 0
        report.syncBytesDown = synced["bytes_down"] as? Int ?? 0
        report.syncDownloaded = synced["downloaded"] as? Int ?? 0
        report.hubChanges = Int(try hub.changes(device: deviceID))
        if report.syncUploaded != journal || report.hubChanges != journal {
            report.problems.append("sync sent \(report.syncUploaded) and the hub holds \(report.hubChanges) of \(journal) changes")
        }
        if let mismatched = synced["mismatched"] as? [String], !mismatched.isEmpty {
            report.problems.append("after the evening sync, tables \(mismatched) do not match the hub")
        }
        // The normal lifecycle leaves no sync error behind, on the hub or on the device.
        report.syncErrorsOnHub = try hub.storage.syncErrors(device: deviceID).count
        report.syncErrorsOnDevice = try json(try satchel(["status", "--json"], "status"))["sync_errors"] as? Int ?? -1
        if report.syncErrorsOnHub != 0 || report.syncErrorsOnDevice != 0 {
            report.problems.append("the day left \(report.syncErrorsOnHub) sync errors on the hub and \(report.syncErrorsOnDevice) on the device")
        }
        let rejected = try satchel(["order", "list", "--state", "rejected", "--json"], "order list")
        if (try JSONSerialization.jsonObject(with: Data(rejected.stdout.utf8)) as? [Any])?.count != report.ordersRejectedByOffice {
            report.problems.append("the office rejected \(report.ordersRejectedByOffice) orders, the device shows another number")
        }
        let accepted = try satchel(["order", "list", "--state", "accepted", "--json"], "order list")
        report.ordersShownAccepted = (try JSONSerialization.jsonObject(with: Data(accepted.stdout.utf8)) as? [Any])?.count ?? -1
        if report.ordersShownAccepted != report.ordersAcceptedByOffice {
            report.problems.append("the office accepted \(report.ordersAcceptedByOffice) orders, the device shows \(report.ordersShownAccepted)")
        }

        let doctor = try satchel(["doctor", "--json"], "doctor")
        report.integrityOK = (try json(doctor)["ok"] as? Bool) == true
        if options.appPassword != nil {
            // The rep puts the handheld away: locked, as it would be found if lost.
            _ = try satchel(["lock"], "lock")
            _ = try satchel(["status"], expectExit: 77, "status while locked")
        }
        report.elapsedSeconds = ChildProcess.monotonicSeconds() - started
        return report
    }

    @discardableResult
    private static func record(_ saved: [String: Any], into orders: inout [String: String], report: inout Report, lines: Int) -> String? {
        guard let id = saved["id"] as? String, let order = saved["order"] as? [String: Any], let state = order["state"] as? String else {
            report.problems.append("an acknowledged order printed no id")
            return nil
        }
        orders[id] = state
        report.ordersConfirmed += 1
        report.orderLines += lines
        if (order["approval"] as? String) == "pending" { report.ordersHeldForApproval += 1 }
        return id
    }

    static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/satchel-day-XXXXXX".utf8CString)
        guard let result = mkdtemp(&template) else { throw Failure.setup("cannot create a temporary directory in /tmp") }
        return String(cString: result)
    }
}
