public import Field
public import Journal
import Store
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a restore did, for the rep's screen and the technician's report.
public struct RestoreReport: Codable, Sendable, Equatable {
    public var database: String
    public var device: String = ""
    public var snapshotGeneration: UInt64?
    public var snapshotCoversSequence: Int64
    /// Snapshots that were tried and refused, with why.
    public var skipped: [String]
    public var journalRecords: Int
    public var replayed: Int
    public var lastSequence: Int64
    public var truncatedJournalBytes: Int64
    /// Where the replaced (damaged) database was moved, if there was one.
    public var movedAside: String?
    /// Older copies moved aside by earlier restores, removed so they do not pile up (only the
    /// newest copy is kept).
    public var removedAside: [String] = []
    /// The epoch of the device's id space from now on (recorded on the card before the swap);
    /// nil when the restore is only a copy to read from (upload mode).
    public var epoch: Int64?
    /// What became of the sync identity (device key, hub pin) kept on the card.
    public var identity: [String] = []
    /// With `--force` on a database that opened: what it had that the card lacked.
    public var dropped: RestorePreview?

    enum CodingKeys: String, CodingKey {
        case database, device, skipped, replayed
        case snapshotGeneration = "snapshot_generation"
        case snapshotCoversSequence = "snapshot_covers_sequence"
        case journalRecords = "journal_records"
        case lastSequence = "last_sequence"
        case truncatedJournalBytes = "truncated_journal_bytes"
        case movedAside = "moved_aside"
        case removedAside = "removed_aside"
        case epoch, identity, dropped
    }
}

/// What replacing a database that opens with the card's copy would drop: its documents and its
/// changes the card does not have, by id.
public struct RestorePreview: Codable, Sendable, Equatable {
    public var documents: [String] = []
    public var changes: [String] = []
    public var isEmpty: Bool { documents.isEmpty && changes.isEmpty }

    public init(documents: [String] = [], changes: [String] = []) {
        self.documents = documents
        self.changes = changes
    }

    static func list(_ ids: [String]) -> String {
        let shown = ids.prefix(20).joined(separator: ", ")
        return ids.count > 20 ? shown + " and \(ids.count - 20) more" : shown
    }

    func refusal(database: String) -> String {
        var text = "\(database) opens and is not damaged: a restore would replace it with the card's copy and drop what the card lacks:"
        if !documents.isEmpty { text += "\n  \(documents.count) document\(documents.count == 1 ? "" : "s"): \(Self.list(documents))" }
        if !changes.isEmpty { text += "\n  \(changes.count) change\(changes.count == 1 ? "" : "s"): \(Self.list(changes))" }
        return text + "\nNothing was changed. Bring the card up to date first (satchel backup) and sync; to replace the database anyway, run `satchel restore --force` (the current one is kept beside it, and no id is ever issued again)."
    }
}

/// Rebuilds the device database from the card: the newest snapshot that decrypts, matches its
/// pointer and passes `quick_check`, plus every journal entry after it, into a new file that is
/// checked with `integrity_check` before it replaces anything. The database it replaces is moved
/// aside, never deleted. Interrupted at any point, it leaves the old database in place and can
/// simply be run again.
public enum Restore {
    /// `force`: replace a database that opens and has documents or changes the card lacks
    /// (otherwise refused, with what it would drop).
    /// `advancingEpoch`: false only for a copy nobody issues ids from (upload mode reads the
    /// replaced handheld's card into one); every other restore moves the id space on.
    public static func run(home: String, layout: CardLayout, key: BackupKey, identity: CardIdentity,
                           card: any FileSystem, clock: any WallClock = SystemClock(), force: Bool = false,
                           advancingEpoch: Bool = true) throws -> RestoreReport {
        let local = PosixFileSystem()
        let target = Paths.join(home, DeviceDatabase.fileName)
        let building = target + ".restoring"
        func removeBuilding() { for suffix in ["", "-wal", "-shm", "-journal"] { try? local.remove(building + suffix) } }
        removeBuilding()
        var report = RestoreReport(database: target, snapshotGeneration: nil, snapshotCoversSequence: 0, skipped: [], journalRecords: 0,
                                   replayed: 0, lastSequence: 0, truncatedJournalBytes: 0, movedAside: nil)
        report.device = layout.device
        do {
            try local.createDirectory(home)
            let snapshots = Snapshots(layout: layout, key: key, card: card, local: local)
            let pointers = try snapshots.pointers()
            for pointer in pointers {
                do {
                    try snapshots.restore(pointer, to: building)
                    try check(snapshotAt: building, device: layout.device)
                    report.snapshotGeneration = pointer.generation
                    report.snapshotCoversSequence = pointer.coversSequence
                    break
                } catch {
                    report.skipped.append("generation \(pointer.generation): \(error)")
                    removeBuilding()
                }
            }
            // Without a snapshot the journal alone must hold the whole history; once a snapshot has
            // been taken, older journal segments may be gone, and a database rebuilt from the rest
            // would silently miss documents. Better to refuse and let the technician look.
            if report.snapshotGeneration == nil && !pointers.isEmpty {
                throw BackupError.noBackup(path: layout.deviceDirectory + " (no snapshot is usable: " + report.skipped.joined(separator: "; ") + ")")
            }
            var options = Database.Options()
            // The working set may be missing (no snapshot yet): documents are kept all the same,
            // and the next sync brings the customers and products they refer to.
            options.foreignKeys = false
            do {
                let database = try Database(path: building, options: options)
                // A snapshot from an older satchel is brought up to this one's schema (the epoch
                // lives in the device row); without a snapshot, this makes the database.
                try database.migrate(FieldSchema.migrations, applicationID: FieldSchema.applicationID)
                if report.snapshotGeneration == nil {
                    try database.execute("INSERT INTO device(id, rep_id, created_at) VALUES (?, ?, ?)",
                                         [.text(identity.device), .text(identity.rep), .integer(clock.nowMilliseconds())])
                }
                let journal = CardJournal(layout: layout, key: key, fileSystem: card)
                let replay = Replay(database)
                try database.transaction {
                    let startsAfter = report.snapshotCoversSequence
                    let recovery = try journal.open(repair: card.isWritable(layout.journalDirectory)) { entry in
                        if report.journalRecords == 0 && entry.seq > startsAfter + 1 {
                            throw BackupError.noBackup(path: "\(layout.journalDirectory) (the journal starts at change \(entry.seq), after the snapshot's \(startsAfter): changes in between are missing)")
                        }
                        report.journalRecords += 1
                        if try replay.apply(entry) { report.replayed += 1 }
                    }
                    report.truncatedJournalBytes = recovery.truncatedBytes
                }
                report.lastSequence = try database.int64("SELECT COALESCE(max(seq), 0) FROM changes")
                let problems = try database.integrityCheck()
                guard problems.isEmpty else { throw BackupError.restoreFailed("the rebuilt database fails integrity_check: \(problems.joined(separator: "; "))") }
                // A database that opens is replaced only if the card holds everything it has (a
                // restore interrupted after its swap, run again), or with --force.
                if let preview = try previewIfHealthy(target, rebuilt: database) {
                    guard force || preview.isEmpty else { throw BackupError.restoreWouldDrop(database: target, drop: preview) }
                    report.dropped = preview
                }
                if advancingEpoch {
                    report.epoch = try advanceEpoch(database, layout: layout, key: key, card: card)
                    report.identity = try CardSyncIdentity(layout: layout, key: key, card: card).restore(into: home, now: clock.nowMilliseconds())
                }
                try database.checkpoint()
            }
            try local.sync(building)
            report.movedAside = try swap(building, into: target, clock: clock)
            report.removedAside = removeOlderAside(target, keeping: report.movedAside)
            return report
        } catch let error as StoreError {
            removeBuilding()
            throw BackupError.restoreFailed(error.description)
        } catch let error as FileSystemError {
            removeBuilding()
            throw BackupError.fileSystem(error)
        } catch {
            removeBuilding()
            throw error
        }
    }

    /// The next epoch, past the card's record and past every epoch the rebuilt database has seen,
    /// recorded durably on the card first and only then written into the rebuilt database: if the
    /// card refuses, nothing is replaced and no id of the new epoch exists anywhere.
    static func advanceEpoch(_ database: Database, layout: CardLayout, key: BackupKey, card: any FileSystem) throws -> Int64 {
        let cardEpoch = CardEpoch(layout: layout, key: key, card: card)
        let next = max(try cardEpoch.read() ?? 1, try database.int64("SELECT epoch FROM device")) + 1
        do {
            try cardEpoch.record(next)
        } catch BackupError.fileSystem(let error) {
            throw BackupError.epochNotRecorded(path: layout.deviceDirectory, detail: error.description)
        }
        try database.execute("UPDATE device SET epoch = ?", [.integer(next)])
        return next
    }

    /// nil when `target` is missing, damaged (now, or marked so once) or not a Satchel database (a
    /// restore is what it needs); otherwise what it holds that `rebuilt` lacks.
    static func previewIfHealthy(_ target: String, rebuilt: Database) throws -> RestorePreview? {
        guard PosixFileSystem().exists(target) else { return nil }
        // Damage SQLite reported once (the marker beside it) makes it damaged even where a
        // quick_check now passes.
        if DamageMarker(home: Paths.directory(of: target)).finding(for: target) != nil { return nil }
        // Read-only: a refused restore leaves the database exactly as it was (a read-write
        // connection would checkpoint its WAL on closing).
        let current: Database
        do {
            var options = Database.Options()
            options.create = false
            options.readOnly = true
            current = try Database(path: target, options: options)
            guard try current.applicationID == Int64(FieldSchema.applicationID), try current.quickCheck().isEmpty else { return nil }
        } catch {
            return nil
        }
        func missing(_ sql: String) throws -> [String] {
            let kept = Set(try rebuilt.query(sql) { $0.text(0) })
            return try current.query(sql) { $0.text(0) }.filter { !kept.contains($0) }
        }
        var preview = RestorePreview()
        preview.changes = try missing("SELECT change_id FROM changes ORDER BY seq")
        for (entity, table) in [("order", "orders"), ("visit", "visits"), ("payment", "payments"), ("display_request", "display_requests"),
                                ("complaint", "complaints"), ("quote", "quotes"), ("maintenance", "maintenance")] {
            preview.documents += try missing("SELECT id FROM \(table) ORDER BY id").map { "\(entity) \($0)" }
        }
        return preview
    }

    /// Earlier `satchel.db.replaced-*` copies, removed once a newer one is kept.
    static func removeOlderAside(_ target: String, keeping kept: String?) -> [String] {
        guard let kept else { return [] }
        let directory = Paths.directory(of: target), prefix = Paths.name(of: target) + ".replaced-"
        let local = PosixFileSystem()
        var removed: [String] = []
        for name in (try? local.listDirectory(directory)) ?? [] where name.hasPrefix(prefix) {
            let path = Paths.join(directory, name)
            guard path != kept, path != kept + "-wal", path != kept + "-shm" else { continue }
            if (try? local.remove(path)) != nil { removed.append(path) }
        }
        if !removed.isEmpty { try? local.syncDirectory(directory) }
        return removed
    }

    static func check(snapshotAt path: String, device: String) throws {
        var options = Database.Options()
        options.walMode = false
        let database = try Database(path: path, options: options)
        let problems = try database.quickCheck()
        guard problems.isEmpty else { throw BackupError.snapshotInvalid(path: path, detail: problems.joined(separator: "; ")) }
        guard try database.applicationID == Int64(FieldSchema.applicationID) else {
            throw BackupError.snapshotInvalid(path: path, detail: "not a Satchel database")
        }
        let owner = try database.text("SELECT id FROM device")
        guard owner == device else { throw BackupError.snapshotInvalid(path: path, detail: "a snapshot of device \(owner), not \(device)") }
    }

    /// Moves the old database (and its WAL) aside, then the rebuilt one into place; both renames
    /// are atomic on the internal file system, and the directory is fsynced after them.
    static func swap(_ building: String, into target: String, clock: any WallClock) throws -> String? {
        var movedAside: String?
        let local = PosixFileSystem()
        if local.exists(target) || local.exists(target + "-wal") {
            let aside = target + ".replaced-" + String(clock.nowMilliseconds())
            for suffix in ["", "-wal", "-shm"] where local.exists(target + suffix) {
                do { try local.rename(target + suffix, to: aside + suffix) } catch {
                    throw BackupError.restoreFailed("cannot move \(target + suffix) aside (\(error))")
                }
            }
            movedAside = aside
        }
        do { try local.rename(building, to: target) } catch { throw BackupError.restoreFailed("cannot move the rebuilt database into place (\(error))") }
        try local.syncDirectory(Paths.directory(of: target))
        return movedAside
    }
}
