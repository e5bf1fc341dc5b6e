import Field
import Journal
import Store
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a restore did, for the rep's screen and the technician's report.
public struct RestoreReport: Codable, Sendable, Equatable {
    public var database: String
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

    enum CodingKeys: String, CodingKey {
        case database, skipped, replayed
        case snapshotGeneration = "snapshot_generation"
        case snapshotCoversSequence = "snapshot_covers_sequence"
        case journalRecords = "journal_records"
        case lastSequence = "last_sequence"
        case truncatedJournalBytes = "truncated_journal_bytes"
        case movedAside = "moved_aside"
    }
}

/// Rebuilds the device database from the card: the newest snapshot that decrypts, matches its
/// pointer and passes `quick_check`, plus every journal entry after it, into a new file that is
/// checked with `integrity_check` before it replaces anything. The database it replaces is moved
/// aside, never deleted. Interrupted at any point, it leaves the old database in place and can
/// simply be run again.
public enum Restore {
    public static func run(home: String, layout: CardLayout, key: BackupKey, identity: CardIdentity,
                           card: any FileSystem, clock: any WallClock = SystemClock()) throws -> RestoreReport {
        let local = PosixFileSystem()
        let target = Paths.join(home, DeviceDatabase.fileName)
        let building = target + ".restoring"
        func removeBuilding() { for suffix in ["", "-wal", "-shm", "-journal"] { try? local.remove(building + suffix) } }
        removeBuilding()
        var report = RestoreReport(database: target, snapshotGeneration: nil, snapshotCoversSequence: 0, skipped: [], journalRecords: 0,
                                   replayed: 0, lastSequence: 0, truncatedJournalBytes: 0, movedAside: nil)
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
                if report.snapshotGeneration == nil {
                    try database.migrate(FieldSchema.migrations, applicationID: FieldSchema.applicationID)
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
                try database.checkpoint()
            }
            try local.sync(building)
            report.movedAside = try swap(building, into: target, clock: clock)
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
        if access(target, F_OK) == 0 || access(target + "-wal", F_OK) == 0 {
            let aside = target + ".replaced-" + String(clock.nowMilliseconds())
            for suffix in ["", "-wal", "-shm"] where access(target + suffix, F_OK) == 0 {
                guard rename(target + suffix, aside + suffix) == 0 else {
                    throw BackupError.restoreFailed("cannot move \(target + suffix) aside (errno \(errno))")
                }
            }
            movedAside = aside
        }
        guard rename(building, target) == 0 else { throw BackupError.restoreFailed("cannot move the rebuilt database into place (errno \(errno))") }
        try PosixFileSystem().syncDirectory(Paths.directory(of: target))
        return movedAside
    }
}
