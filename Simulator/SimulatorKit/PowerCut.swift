import Agent
import Field
import Foundation
import Hub
import Seal
import Store

/// `satchel-sim powercut`: the real `satchel` captures documents as a child process and is
/// SIGKILLed at random instants, in the middle of a capture, a card-journal append or a snapshot
/// (captures take one every few changes here, and `satchel backup` children are killed too).
/// With `wipeInternal`, the whole data directory is deleted on some cycles, as the PDAs of the
/// first deployment lost it when their batteries died, and `satchel restore` must bring back
/// everything from the card. After every cycle the database is checked against what `satchel`
/// acknowledged.
///
/// With `behindCard` the device also syncs (`satchel sync --mode fast`, killed too at times) with
/// a real hub in this process (`DayHub`: the SyncServer over loopback TCP), and the card falls
/// behind: for stretches of cycles its mount point is empty, captures go to internal storage only
/// and sync to the hub; some of those stretches end with the internal storage wiped, the card put
/// back and the device restored from it, behind, then synced. At the end every document `satchel`
/// acknowledged must be on the hub with the customer (and order state) acknowledged, no id may
/// have been acknowledged twice, and no document on the hub may hold two contents.
///
/// What this does and does not test: SIGKILL ends the process but not the machine, so writes
/// the process made are still in the OS page cache and reach the disk. It tests the atomicity
/// of every step against a process dying at any instant; lost or reordered unsynced writes at a
/// real power cut are covered by the crash-state enumeration tests over the `FileSystem` seam.
public struct PowerCut {
    public struct Options: Sendable {
        public var cycles: Int
        public var seed: UInt64
        public var wipeInternal: Bool
        public var satchelPath: String
        /// Keep the device's files (device/, card/) here instead of a temporary directory.
        public var keep: String?
        /// Acknowledged changes between snapshots: small, so kills land mid-snapshot often.
        public var snapshotEvery: Int = 5
        /// One cycle in `wipeEvery` deletes the data directory (with `wipeInternal`).
        public var wipeEvery: Int = 3
        public var customers: Int = 40
        public var products: Int = 80
        /// Sync with a hub and let the card fall behind (see the type's comment).
        public var behindCard = false
        /// With `behindCard`: a sync on one cycle in this many.
        public var syncEvery: Int = 6
        /// With `behindCard`: the card's mount point goes empty on one cycle in this many.
        public var cardAwayEvery: Int = 12
        /// Set an app password after `init`: every kill lands on the sealed database, and each
        /// wipe (with `wipeInternal`) takes the session too, unlocked again after the restore.
        public var appPassword: String?
        /// Called every `progressEvery` cycles with the report so far.
        public var progressEvery: Int = 0
        public var progress: (@Sendable (Report) -> Void)?

        public init(cycles: Int, seed: UInt64, wipeInternal: Bool, satchelPath: String, keep: String? = nil) {
            self.cycles = cycles; self.seed = seed; self.wipeInternal = wipeInternal; self.satchelPath = satchelPath; self.keep = keep
        }
    }

    public struct Report: Codable, Sendable {
        public var cycles = 0
        /// Documents whose `"acknowledged":true` reached us before the kill (or the exit).
        public var acknowledged = 0
        /// Acknowledged documents missing, or back in an earlier state, at some check (on the
        /// device, and with `behindCard` on the hub at the end).
        public var lost = 0
        /// An id `satchel` acknowledged for two documents.
        public var idsReused = 0
        /// With `behindCard`: syncs run, killed, restores from a card that was behind, documents
        /// checked on the hub at the end, and those of them the hub lacks or holds otherwise.
        public var syncs = 0
        public var syncsKilled = 0
        public var restoresFromBehindCard = 0
        public var documentsCapturedWithoutCard = 0
        public var hubChecked = 0
        public var hubLost = 0
        public var hubDuplicates = 0
        /// An id acknowledged twice, for two documents, or a device id counter that would hand
        /// out an id already used, or a change id twice in the journal.
        public var duplicates = 0
        /// Checks where `integrity_check` failed, the change journal had a gap, or the database
        /// could not be opened at all.
        public var integrityFailures = 0
        public var wipes = 0
        /// Successful `satchel restore` runs (a restore killed on purpose, then rerun, counts once).
        public var restores = 0
        public var restoresKilled = 0
        /// Children SIGKILLed while still running.
        public var kills = 0
        /// Kills that left a snapshot half made: its plaintext copy on internal storage, or a
        /// snapshot file on the card that no pointer names yet.
        public var killsMidSnapshot = 0
        /// Kills after the change was committed to the device but before the acknowledgement got out.
        public var killsAfterCommitBeforeAck = 0
        public var backupsKilled = 0
        /// Children that exited on their own with an error (must be 0: a kill must not leave the device broken).
        public var unexpectedExits = 0
        public var changes: Int64 = 0
        public var seed: UInt64 = 0
        public var home = ""
        public var elapsedSeconds = 0.0
        /// The first problems found, for the log (counted in full above).
        public var problems: [String] = []

        public var passed: Bool { lost == 0 && duplicates == 0 && idsReused == 0 && integrityFailures == 0 && unexpectedExits == 0 }
    }

    public enum Failure: Error, CustomStringConvertible {
        case setup(String)
        public var description: String {
            switch self {
            case .setup(let what): return what
            }
        }
    }

    static let passphrase = "power-cut passphrase 7"

    /// A document `satchel` acknowledged, as it was acknowledged.
    struct Acknowledged {
        var kind: String
        var customer: String
        var state: String?
    }

    public static func run(_ options: Options) throws -> Report {
        let started = ChildProcess.monotonicSeconds()
        guard access(options.satchelPath, X_OK) == 0 else {
            throw Failure.setup("satchel executable not found at \(options.satchelPath): build it first (`swift build`), or give --satchel")
        }
        let root = try options.keep ?? DayRunner.makeTemporaryDirectory()
        let home = root + "/device", cardPath = root + "/card", checkCopy = root + "/check"
        for directory in [root, home, cardPath, checkCopy] { mkdir(directory, 0o700) }
        var random = SeededRandom(seed: options.seed)
        var report = Report()
        report.seed = options.seed
        report.home = home
        var environment = ["SATCHEL_HOME": home, "SATCHEL_CARD": cardPath, "SATCHEL_SNAPSHOT_EVERY": String(options.snapshotEvery)]
        // The unlocked key lives on tmpfs (DeviceLock); verify() opens the copies with it.
        let runtime = "/dev/shm/satchel-powercut-\(getpid())-\(options.seed)"
        if options.appPassword != nil { environment["SATCHEL_RUNTIME_DIR"] = runtime }
        defer { if options.appPassword != nil { try? FileManager.default.removeItem(atPath: runtime) } }
        var pageKey: PageEncryption?
        func problem(_ text: String) { if report.problems.count < 20 { report.problems.append(text) } }
        let syncPassword = "hasło-синхр 7"
        let hub = options.behindCard ? try DayHub(directory: root + "/hub", password: syncPassword) : nil
        defer { hub?.stop() }

        // A device with a small working set and a card, as the technician hands it out.
        let deviceID = "PC\(options.seed % 1000)"
        let initialised = try ChildProcess.run(options.satchelPath, ["init", "--device", deviceID, "--rep", "R01"], environment: environment, timeoutSeconds: 60)
        guard initialised.succeeded else { throw Failure.setup("satchel init failed: \(initialised.stderr)") }
        let customers: [String]
        do {
            let device = try DeviceDatabase.open(home: home)
            _ = try Seeder.seed(device, plan: .init(customers: options.customers, products: options.products, seed: options.seed,
                                                    historyOrdersPerCustomer: 1, routeStops: 5...10,
                                                    today: CalendarDay.string(fromMilliseconds: SystemClock().nowMilliseconds())))
            customers = try device.database.query("SELECT id FROM customers ORDER BY id") { $0.text(0) }
        }
        if let hub {
            // The office knows the device by the key `satchel init` made; the device pins the hub.
            let key = try DeviceSync(DeviceAgent(AgentConfiguration(home: home))).keyPair().publicKey
            try hub.storage.addRep(id: "R01", name: "Paweł Wróblewski", passwordHash: try PasswordHash.hash(password: syncPassword, cost: Self.hubPasswordCost))
            try hub.storage.addDevice(id: deviceID, rep: "R01", publicKey: key, now: SystemClock().nowMilliseconds())
            let provisioned = try ChildProcess.run(options.satchelPath, ["provision", "--hub", hub.address, "--hub-key", hub.publicKey],
                                                   environment: environment, timeoutSeconds: 60)
            guard provisioned.succeeded else { throw Failure.setup("satchel provision failed: \(provisioned.stderr)") }
        }
        if let appPassword = options.appPassword {
            let set = try ChildProcess.run(options.satchelPath, ["password", "set"], environment: environment,
                                           stdin: appPassword + "\n" + appPassword + "\n", timeoutSeconds: 60)
            guard set.succeeded else { throw Failure.setup("satchel password set failed: \(set.stderr)") }
            setenv("SATCHEL_RUNTIME_DIR", runtime, 1)
            let key = try DeviceLock(home: home, settings: try DeviceSettings.load(home: home)).unlock(password: appPassword)
            pageKey = try key.pageEncryption()
            pageKey?.register(directory: checkCopy)
            if !PageEncryption.looksSealed(home + "/satchel.db") { throw Failure.setup("password set left the database plain") }
        }
        defer { PageEncryption.unregister(directory: checkCopy) }
        /// After a wipe and a restore the device has its data key back from the card (in
        /// `card.key`) but no app password: the technician sets one again, which seals the key.
        func setPasswordAgain() throws {
            guard let appPassword = options.appPassword else { return }
            let set = try ChildProcess.run(options.satchelPath, ["password", "set"], environment: environment,
                                           stdin: appPassword + "\n" + appPassword + "\n", timeoutSeconds: 60)
            if !set.succeeded { problem("password set after the restore exited \(set.status): \(set.stderr.prefix(300))") }
        }
        let cardInit = try ChildProcess.run(options.satchelPath, ["card", "init"], environment: environment, stdin: passphrase + "\n", timeoutSeconds: 60)
        guard cardInit.succeeded else { throw Failure.setup("satchel card init failed: \(cardInit.stderr)") }
        let cardAway = root + "/card-away"
        var cardIsAway = false
        func setCard(away: Bool) {
            guard away != cardIsAway else { return }
            let manager = FileManager.default
            if away {
                try? manager.moveItem(atPath: cardPath, toPath: cardAway)
                mkdir(cardPath, 0o700)   // the mount point, with nothing mounted on it
            } else {
                try? manager.removeItem(atPath: cardPath)
                try? manager.moveItem(atPath: cardAway, toPath: cardPath)
            }
            cardIsAway = away
        }
        /// Acknowledged while the card was away and not yet known to be on it: a wipe before the
        /// card catches up leaves them on the hub only (the sync before the wipe sends them).
        var withoutCard = Set<String>()
        var hubOnly = Set<String>()
        /// One `satchel sync --mode fast`; `kill` lets the power cut land in it. Returns whether it synced.
        func sync(cycle: Int, kill: Bool) throws -> Bool {
            let delay = Double.random(in: 0...0.25, using: &random)
            let synced = try ChildProcess.run(options.satchelPath, ["sync", "--mode", "fast", "--json"], environment: environment,
                                              stdin: syncPassword + "\n", killAfterSeconds: kill ? delay : nil, timeoutSeconds: 120)
            report.syncs += 1
            if synced.killed { report.syncsKilled += 1; report.kills += 1; return false }
            guard synced.result.succeeded else {
                report.unexpectedExits += 1
                problem("cycle \(cycle): satchel sync exited \(synced.result.status): \(synced.result.stderr.prefix(300))")
                return false
            }
            // A sync brings a card that is there up to date before it sends anything.
            if !cardIsAway { withoutCard.removeAll() }
            return true
        }
        let parts = (0..<options.products).map { "PN-\(10_000 + $0)" }

        var acknowledged: [String: Acknowledged] = [:]
        var lostIDs = Set<String>()
        // How long children run when nothing kills them, so kills can be spread over that span.
        // Sampled only from children left to run on purpose: children that happened to finish
        // before their kill are the fast ones, and learning from them would shrink the span
        // cycle after cycle until nothing was ever acknowledged.
        var captureSeconds: [Double] = [], backupSeconds: [Double] = []
        func typical(_ samples: [Double], _ fallback: Double) -> Double {
            guard samples.count >= 3 else { return max(fallback, samples.max() ?? 0) }
            return samples.suffix(60).sorted()[samples.suffix(60).count / 2]
        }
        var lastSequence: Int64 = 0

        for cycle in 0..<options.cycles {
            report.cycles = cycle + 1
            if options.behindCard, !cardIsAway, random.int(1...options.cardAwayEvery) == 1 { setCard(away: true) }
            // `satchel backup` needs the card; with its mount point empty the cycle captures instead.
            let isBackup = random.chance(0.07) && !cardIsAway
            var arguments: [String]
            if isBackup {
                arguments = ["backup"]
            } else {
                let customer = random.pick(customers)
                let roll = random.int(0...99)
                if roll < 55 {
                    let lines = (0..<random.int(1...12)).flatMap { _ in ["--line", "\(random.pick(parts)):\(random.int(1...20))"] }
                    arguments = ["order", "new", "--customer", customer] + lines + (roll < 50 ? ["--confirm"] : []) + ["--json"]
                } else if roll < 80 {
                    arguments = ["visit", "--customer", customer, "--outcome", random.pick(["no_order", "not_met", "merchandising"]),
                                 "--note", "Wizyta — визит \(cycle)", "--json"]
                } else {
                    arguments = ["payment", "--customer", customer, "--amount", "\(random.int(1...900)).\(random.int(10...99))",
                                 "--receipt", "KP/\(cycle)", "--json"]
                }
            }
            // Spread kills over the child's median run time and past it, so many children finish and
            // acknowledge; half the delays aim at the later part, where commit, card append and
            // snapshot happen (process start-up is most of the early part).
            let span = isBackup ? typical(backupSeconds, 0.15) : typical(captureSeconds, 0.1)
            let delay = random.chance(0.5) ? Double.random(in: 0...span, using: &random)
                                           : Double.random(in: (span * 0.5)...(span * 1.6), using: &random)
            let calibrating = random.int(1...(isBackup ? 4 : 10)) == 1
            let leftoversBefore = snapshotLeftovers(home: home, card: cardPath)
            let child = try ChildProcess.run(options.satchelPath, arguments, environment: environment, killAfterSeconds: calibrating ? nil : delay, timeoutSeconds: 60)
            if child.result.timedOut {
                report.unexpectedExits += 1
                problem("cycle \(cycle): satchel \(arguments.first ?? "") hung for 60 s")
            } else if child.killed {
                report.kills += 1
                if isBackup { report.backupsKilled += 1 }
                let leftovers = snapshotLeftovers(home: home, card: cardPath)
                if !leftovers.isEmpty && leftovers != leftoversBefore { report.killsMidSnapshot += 1 }
            } else if child.result.status == 0 {
                // A command that ran to the end with the card there caught the card up.
                if !cardIsAway { withoutCard.removeAll() }
                if calibrating && isBackup { backupSeconds.append(child.seconds) }
                if calibrating && !isBackup { captureSeconds.append(child.seconds) }
            } else {
                report.unexpectedExits += 1
                problem("cycle \(cycle): satchel \(arguments.prefix(2).joined(separator: " ")) exited \(child.result.status): \(child.result.stderr.prefix(300))")
            }
            var ackedNow = false
            if !isBackup, let saved = acknowledgement(in: child.result.stdout) {
                ackedNow = true
                let customer = arguments[arguments.firstIndex(of: "--customer")! + 1]
                if let earlier = acknowledged[saved.id] {
                    report.idsReused += 1
                    problem("cycle \(cycle): id \(saved.id) acknowledged again (first for a \(earlier.kind) of \(earlier.customer))")
                } else {
                    acknowledged[saved.id] = Acknowledged(kind: arguments[0], customer: customer, state: saved.state)
                    report.acknowledged += 1
                    if cardIsAway { withoutCard.insert(saved.id); report.documentsCapturedWithoutCard += 1 }
                }
            }
            if options.behindCard, random.int(1...options.syncEvery) == 1 { _ = try sync(cycle: cycle, kill: random.chance(0.3)) }

            var wiped = false
            var fromBehindCard = false
            if options.behindCard, cardIsAway, random.chance(0.3) {
                // The card comes back; the next command that runs to the end catches it up.
                setCard(away: false)
            }
            if options.wipeInternal, random.int(1...options.wipeEvery) == 1 {
                if options.behindCard && (cardIsAway || !withoutCard.isEmpty) {
                    // Repro 1 of issue 10: what the card missed went to the hub; then the card is
                    // back, behind, and the handheld's storage dies before any command catches it up.
                    guard try sync(cycle: cycle, kill: false) else { continue }
                    setCard(away: false)
                    hubOnly.formUnion(withoutCard)
                    withoutCard.removeAll()
                    fromBehindCard = true
                }
                // The PDA's internal storage is gone: data directory, database, WAL, backup key,
                // sync key and hub pin (those come back from the card).
                try? FileManager.default.removeItem(atPath: home)
                report.wipes += 1
                wiped = true
                // Sometimes the restore itself is cut short; it must leave nothing that stops a rerun.
                if random.chance(0.1) {
                    let interrupted = try ChildProcess.run(options.satchelPath, ["restore", "--passphrase-stdin"], environment: environment,
                                                           stdin: passphrase + "\n", killAfterSeconds: Double.random(in: 0...0.08, using: &random), timeoutSeconds: 60)
                    if interrupted.killed { report.restoresKilled += 1 }
                }
                let restored = try ChildProcess.run(options.satchelPath, ["restore", "--passphrase-stdin", "--json"], environment: environment,
                                                    stdin: passphrase + "\n", timeoutSeconds: 60)
                if restored.succeeded {
                    report.restores += 1
                    try setPasswordAgain()
                    if fromBehindCard {
                        report.restoresFromBehindCard += 1
                        // Straight after the restore, the first sync: it must be accepted as this device.
                        _ = try sync(cycle: cycle, kill: false)
                    }
                } else {
                    report.integrityFailures += 1
                    problem("cycle \(cycle): satchel restore exited \(restored.status): \(restored.stderr.prefix(300))")
                }
            }

            let check = verify(home: home, copy: checkCopy, acknowledged: acknowledged.filter { !hubOnly.contains($0.key) }, alreadyLost: &lostIDs,
                               report: &report, cycle: cycle)
            if let last = check, !wiped, child.killed, !ackedNow, !isBackup, last > lastSequence { report.killsAfterCommitBeforeAck += 1 }
            if let last = check { lastSequence = last; report.changes = last }
            if let progress = options.progress, options.progressEvery > 0, (cycle + 1) % options.progressEvery == 0 {
                report.elapsedSeconds = ChildProcess.monotonicSeconds() - started
                progress(report)
            }
        }

        // The end of the day: bring the card up to date, then lose the handheld's storage one
        // last time; everything acknowledged must come back from the card alone (except what only
        // the hub has: documents captured while the card was away, before a wipe).
        if cardIsAway { setCard(away: false) }
        let backup = try ChildProcess.run(options.satchelPath, ["backup"], environment: environment, timeoutSeconds: 120)
        if !backup.succeeded {
            report.unexpectedExits += 1
            problem("final satchel backup exited \(backup.status): \(backup.stderr.prefix(300))")
        }
        if options.wipeInternal {
            try? FileManager.default.removeItem(atPath: home)
            report.wipes += 1
            let restored = try ChildProcess.run(options.satchelPath, ["restore", "--passphrase-stdin"], environment: environment,
                                                stdin: passphrase + "\n", timeoutSeconds: 120)
            if restored.succeeded { report.restores += 1; try setPasswordAgain() } else {
                report.integrityFailures += 1
                problem("final satchel restore exited \(restored.status): \(restored.stderr.prefix(300))")
            }
            if let last = verify(home: home, copy: checkCopy, acknowledged: acknowledged.filter { !hubOnly.contains($0.key) }, alreadyLost: &lostIDs,
                                 report: &report, cycle: options.cycles) { report.changes = last }
        }
        if let hub {
            // The evening sync, then the office's view: every acknowledged document, as acknowledged.
            if try sync(cycle: options.cycles, kill: false) {
                checkHub(hub.storage.path, acknowledged: acknowledged, report: &report)
            } else {
                report.hubLost += acknowledged.count
                report.lost += acknowledged.count
            }
        }
        report.elapsedSeconds = ChildProcess.monotonicSeconds() - started
        try? FileManager.default.removeItem(atPath: checkCopy)
        if options.keep == nil { try? FileManager.default.removeItem(atPath: root) }
        return report
    }

    /// Tests only: the hub verifies the sync password on every sync of the run.
    static let hubPasswordCost = PasswordHash.Cost(opsLimit: 1, memLimit: 64 * 1024)

    /// Every acknowledged document on the hub, for the customer (and at least in the order state)
    /// acknowledged; and no document on the hub with changes naming two customers (an id reused).
    static func checkHub(_ path: String, acknowledged: [String: Acknowledged], report: inout Report) {
        func problem(_ text: String) { if report.problems.count < 20 { report.problems.append(text) } }
        do {
            var options = Database.Options()
            options.readOnly = true
            let database = try Database(path: path, options: options)
            var held: [String: (customers: Set<String>, states: [String])] = [:]
            _ = try database.query("SELECT entity_id, payload FROM device_changes") { row -> Void in
                let object = try? JSONSerialization.jsonObject(with: Data(row.text(1).utf8)) as? [String: Any]
                var entry = held[row.text(0)] ?? ([], [])
                entry.customers.insert(object?["customer_id"] as? String ?? "?")
                if let state = object?["state"] as? String { entry.states.append(state) }
                held[row.text(0)] = entry
            }
            for (id, entry) in held where entry.customers.count > 1 {
                report.hubDuplicates += 1
                report.duplicates += 1
                problem("hub: document \(id) holds changes for \(entry.customers.sorted().joined(separator: " and "))")
            }
            let orderRank = Dictionary(uniqueKeysWithValues: OrderState.allCases.enumerated().map { ($1.rawValue, $0) })
            for (id, document) in acknowledged {
                report.hubChecked += 1
                guard let entry = held[id] else {
                    report.hubLost += 1
                    report.lost += 1
                    problem("hub: acknowledged \(document.kind) \(id) is not on the hub")
                    continue
                }
                if !entry.customers.contains(document.customer) {
                    report.hubDuplicates += 1
                    report.duplicates += 1
                    problem("hub: \(id) was acknowledged for \(document.customer), the hub holds it for \(entry.customers.sorted().joined(separator: ", "))")
                } else if let state = document.state, (entry.states.compactMap { orderRank[$0] }.max() ?? -1) < (orderRank[state] ?? 0) {
                    report.hubLost += 1
                    report.lost += 1
                    problem("hub: order \(id) acknowledged as \(state) is \(entry.states.last ?? "?") on the hub")
                }
            }
        } catch {
            report.integrityFailures += 1
            problem("hub: cannot check \(path): \(error)")
        }
    }

    /// The id (and order state) from a capture's `--json` line, only if it says acknowledged.
    static func acknowledgement(in stdout: String) -> (id: String, state: String?)? {
        for line in stdout.split(separator: "\n") where line.hasPrefix("{") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["acknowledged"] as? Bool == true, let id = object["id"] as? String else { continue }
            return (id, (object["order"] as? [String: Any])?["state"] as? String)
        }
        return nil
    }

    /// Signs that a snapshot was cut off: the plaintext copy it makes on internal storage, or a
    /// sealed file on the card newer than both pointer slots name, with their sizes; empty when
    /// there are none. A kill landed mid-snapshot when this changed across it (leftovers of an
    /// earlier kill stay until the next snapshot clears them).
    static func snapshotLeftovers(home: String, card: String) -> [String] {
        var found: [String] = []
        let manager = FileManager.default
        if let size = (try? manager.attributesOfItem(atPath: home + "/snapshot.tmp"))?[.size] as? NSNumber { found.append("snapshot.tmp:\(size)") }
        let devices = (try? FileManager.default.contentsOfDirectory(atPath: card + "/satchel")) ?? []
        for device in devices {
            let directory = card + "/satchel/" + device
            // Slot layout (Backup/Snapshots.swift): "SATP" | u16 | u16 | generation u64 LE | ...
            let committed = ["pointer-a", "pointer-b"].compactMap { name -> UInt64? in
                guard let bytes = FileManager.default.contents(atPath: directory + "/" + name), bytes.count == 128,
                      bytes.prefix(4) == Data("SATP".utf8) else { return nil }
                return bytes[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }.max() ?? 0
            let files = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/snapshots")) ?? []
            for name in files where name.hasPrefix("snap-") {
                let digits = name.dropFirst(5).prefix { $0.isNumber }
                if let generation = UInt64(digits), generation > committed {
                    let size = ((try? manager.attributesOfItem(atPath: directory + "/snapshots/" + name))?[.size] as? NSNumber)?.intValue ?? -1
                    found.append("\(name):\(size)")
                }
            }
        }
        return found
    }

    /// Checks the database against the acknowledgements; returns its last change sequence, or
    /// nil when it could not be checked at all. It works on a copy of the database and its WAL
    /// (taken while no child runs, so a consistent crash image): opening the original would
    /// recover and checkpoint it, and the next `satchel` would no longer find the state a kill left.
    static func verify(home: String, copy: String, acknowledged: [String: Acknowledged], alreadyLost: inout Set<String>,
                       report: inout Report, cycle: Int) -> Int64? {
        // Problems go into the report this function already holds exclusively (a closure that
        // also wrote to the caller's report would be a second, conflicting access).
        func problem(_ text: String) { if report.problems.count < 20 { report.problems.append(text) } }
        let manager = FileManager.default
        for suffix in ["", "-wal", "-shm"] { try? manager.removeItem(atPath: copy + "/satchel.db" + suffix) }
        do {
            for suffix in ["", "-wal"] where manager.fileExists(atPath: home + "/satchel.db" + suffix) {
                try manager.copyItem(atPath: home + "/satchel.db" + suffix, toPath: copy + "/satchel.db" + suffix)
            }
        } catch {
            report.integrityFailures += 1
            problem("cycle \(cycle): cannot copy the database: \(error)")
            return nil
        }
        guard manager.fileExists(atPath: copy + "/satchel.db") else {
            report.integrityFailures += 1
            problem("cycle \(cycle): no database in \(home)")
            return nil
        }
        do {
            var options = Database.Options()
            options.create = false
            let database = try Database(path: copy + "/satchel.db", options: options)
            let problems = try database.integrityCheck()
            if !problems.isEmpty {
                report.integrityFailures += 1
                problem("cycle \(cycle): integrity_check: \(problems.prefix(3).joined(separator: "; "))")
            }
            let (count, last) = try database.first("SELECT count(*), COALESCE(max(seq), 0) FROM changes") { ($0.int64(0), $0.int64(1)) } ?? (0, 0)
            if count != last {
                report.integrityFailures += 1
                problem("cycle \(cycle): the change journal has gaps: \(count) entries up to seq \(last)")
            }
            let repeatedChangeIDs = try database.int64("SELECT count(*) - count(DISTINCT change_id) FROM changes")
            if repeatedChangeIDs > 0 {
                report.duplicates += Int(repeatedChangeIDs)
                problem("cycle \(cycle): \(repeatedChangeIDs) change ids repeated in the change journal")
            }
            // Every id the device handed out is <device>-<sequence>; the counter must be past all of them.
            let nextSequence = try database.int64("SELECT next_seq FROM device")
            let used = try database.query("""
                SELECT change_id FROM changes UNION ALL SELECT id FROM orders UNION ALL SELECT id FROM visits UNION ALL SELECT id FROM payments
                """) { $0.text(0) }
            let highest = used.compactMap { id in id.lastIndex(of: "-").flatMap { Int64(id[id.index(after: $0)...]) } }.max() ?? 0
            if highest >= nextSequence {
                report.duplicates += 1
                problem("cycle \(cycle): next_seq \(nextSequence) would reuse id sequence \(highest)")
            }
            let orderRank = Dictionary(uniqueKeysWithValues: OrderState.allCases.enumerated().map { ($1.rawValue, $0) })
            for (id, document) in acknowledged where !alreadyLost.contains(id) {
                let table = document.kind == "order" ? "orders" : document.kind == "visit" ? "visits" : "payments"
                let row = try database.first("SELECT customer_id, \(document.kind == "order" ? "state" : "''") FROM \(table) WHERE id = ?",
                                             [.text(id)]) { ($0.text(0), $0.text(1)) }
                guard let (customer, state) = row else {
                    alreadyLost.insert(id)
                    report.lost += 1
                    problem("cycle \(cycle): acknowledged \(document.kind) \(id) is missing")
                    continue
                }
                if customer != document.customer {
                    alreadyLost.insert(id)
                    report.duplicates += 1
                    problem("cycle \(cycle): id \(id) was acknowledged for \(document.customer) but now belongs to \(customer)")
                } else if let acknowledgedState = document.state, (orderRank[state] ?? -1) < (orderRank[acknowledgedState] ?? 0) {
                    alreadyLost.insert(id)
                    report.lost += 1
                    problem("cycle \(cycle): order \(id) acknowledged as \(acknowledgedState) is \(state)")
                }
            }
            return last
        } catch {
            report.integrityFailures += 1
            problem("cycle \(cycle): cannot check the database: \(error)")
            return nil
        }
    }
}
