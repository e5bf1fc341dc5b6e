import Foundation
import SatchelTesting
import Seal
import Store
import Testing

@Suite("Store: databases sealed page by page")
struct PageEncryptionTests {
    let directory = TemporaryDirectory("sealed")
    let names = ["Бакалия Свети Георги", "Sklep Żółć Gęślą", "Продукты Северная"]

    func key() throws -> PageEncryption { try PageEncryption(key: AEAD.generateKey()) }

    func sealedOptions(_ key: PageEncryption) -> Database.Options {
        var options = Database.Options()
        options.encryption = .key(key)
        return options
    }

    func contains(_ path: String, _ text: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else { return false }
        return data.range(of: Data(text.utf8)) != nil
    }

    /// A database with the names committed, left with its WAL (no checkpoint) and then a second
    /// copy checkpointed into the main file.
    func filled(_ name: String, key: PageEncryption?, checkpoint: Bool) throws -> (String, Database) {
        let path = directory.file(name)
        var options = Database.Options()
        options.encryption = key.map { .key($0) } ?? .plain
        let database = try Database(path: path, options: options)
        try database.execute("PRAGMA wal_autocheckpoint=0")
        try database.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        for name in names { try database.execute("INSERT INTO customers(name) VALUES (?)", [.text(name)]) }
        if checkpoint { try database.checkpoint() }
        return (path, database)
    }

    @Test func aSealedDatabaseReadsBackWhatWasWrittenAndNoFileHoldsThePlaintext() throws {
        let key = try key()
        let (path, open) = try filled("a.db", key: key, checkpoint: false)
        // While the connection is open, the commits are in the WAL.
        #expect(fileBytes(path + "-wal").count > 4096)
        for file in [path, path + "-wal"] {
            for name in names { #expect(!contains(file, name), "\(name) in \(file)") }
        }
        #expect(!contains(path + "-wal", "CREATE TABLE"))
        let reopened = try Database(path: path, options: sealedOptions(key))
        #expect(try reopened.query("SELECT name FROM customers ORDER BY id") { $0.text(0) } == names)
        _ = open
        try reopened.checkpoint()
        #expect(try reopened.integrityCheck().isEmpty)
        for name in names { #expect(!contains(path, name)) }
        #expect(PageEncryption.looksSealed(path))
    }

    @Test func thePlaintextScanFindsTheNamesInAPlainDatabase() throws {
        // The control for every scan above: without the key, the same bytes are there to find.
        let (path, open) = try filled("plain.db", key: nil, checkpoint: false)
        #expect(names.allSatisfy { contains(path + "-wal", $0) })
        _ = open
        #expect(!PageEncryption.looksSealed(path))
    }

    @Test func anotherKeyCannotOpenIt() throws {
        let (path, _) = try filled("b.db", key: try key(), checkpoint: true)
        #expect {
            _ = try Database(path: path, options: sealedOptions(try key()))
        } throws: { ($0 as? StoreError)?.isAuthenticationFailure == true }
        // Nor can plain SQLite: the header is sealed too.
        var plain = Database.Options()
        plain.encryption = .plain
        #expect(throws: StoreError.self) { _ = try Database(path: path, options: plain) }
    }

    @Test func aTamperedPageIsRefusedAndTheFileIsLeftAsItIs() throws {
        let key = try key()
        let (path, _) = try filled("c.db", key: key, checkpoint: true)
        // Flip one byte inside page 2 (the table's root page).
        var bytes = fileBytes(path)
        bytes[4096 + 300] ^= 0x01
        writeFile(path, bytes)
        let before = fileFingerprints(directory.path)
        #expect {
            let database = try Database(path: path, options: self.sealedOptions(key))
            _ = try database.query("SELECT name FROM customers") { $0.text(0) }
        } throws: { error in
            guard let error = error as? StoreError else { return false }
            return error.isAuthenticationFailure && error.path == path
        }
        #expect(fileBytes(path) == bytes)
        #expect(fileFingerprints(directory.path).filter { !$0.key.hasSuffix("-shm") && !$0.key.hasSuffix("-wal") } ==
                before.filter { !$0.key.hasSuffix("-shm") && !$0.key.hasSuffix("-wal") })
    }

    @Test func aPageMovedToAnotherPlaceFailsAuthentication() throws {
        let key = try key()
        let (path, database) = try filled("d.db", key: key, checkpoint: true)
        try database.execute("CREATE TABLE other (x TEXT)")
        try database.execute("INSERT INTO other VALUES ('Лъчезар')")
        try database.checkpoint()
        var bytes = fileBytes(path)
        // Page 3 copied over page 2: each is sealed for its own place.
        bytes.replaceSubrange(4096..<8192, with: bytes[8192..<12288])
        writeFile(path, bytes)
        #expect {
            let reopened = try Database(path: path, options: self.sealedOptions(key))
            _ = try reopened.query("SELECT name FROM customers") { $0.text(0) }
        } throws: { ($0 as? StoreError)?.isAuthenticationFailure == true }
    }

    @Test func aRegisteredDirectorySealsEveryDatabaseInItAndItsBackupCopies() throws {
        let key = try key()
        let home = directory.file("home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        key.register(directory: home)
        defer { PageEncryption.unregister(directory: home) }
        let database = try Database(path: home + "/satchel.db")
        #expect(database.encryption === key)
        try database.execute("CREATE TABLE t (x TEXT)")
        try database.execute("INSERT INTO t VALUES ('Żaneta Wójcik')")
        try database.backup(to: home + "/copy.db")
        var noWAL = Database.Options()
        noWAL.walMode = false
        let copy = try Database(path: home + "/copy.db", options: noWAL)
        #expect(try copy.text("SELECT x FROM t") == "Żaneta Wójcik")
        for file in ["satchel.db", "satchel.db-wal", "copy.db"] { #expect(!contains(home + "/" + file, "Wójcik")) }
        // Elsewhere, plain as before.
        #expect(try Database(path: directory.file("elsewhere.db")).encryption == nil)
    }

    @Test func aRollbackJournalIsSealedAndAHotJournalIsRolledBack() throws {
        let key = try key()
        let path = directory.file("journal.db")
        var options = sealedOptions(key)
        options.walMode = false
        let database = try Database(path: path, options: options)
        try database.execute("PRAGMA journal_mode=PERSIST")
        try database.execute("CREATE TABLE t (x TEXT)")
        try database.execute("INSERT INTO t VALUES ('Гошо Петров')")
        try database.execute("UPDATE t SET x = 'Мария Иванова'")
        // The persisted journal holds the page as it was before the update, sealed.
        #expect(!contains(path + "-journal", "Гошо"))
        #expect(try database.text("SELECT x FROM t") == "Мария Иванова")
        #expect(try database.integrityCheck().isEmpty)
    }
}

@Suite("Store: a sealed database after a crash")
struct SealedCrashTests {
    let directory = TemporaryDirectory("sealed-crash")

    @Test func aCopyOfTheFileAndItsWALAsACrashLeavesThemRecoversEveryCommit() throws {
        let key = try PageEncryption(key: AEAD.generateKey())
        var options = Database.Options()
        options.encryption = .key(key)
        let path = directory.file("live.db")
        let database = try Database(path: path, options: options)
        try database.execute("PRAGMA wal_autocheckpoint=0")
        try database.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, x TEXT)")
        try database.checkpoint()
        for index in 1...40 {
            try database.execute("INSERT INTO t(x) VALUES (?)", [.text(String(repeating: "Żółć \(index) ", count: 40))])
        }
        // The files as a killed process leaves them: no checkpoint, no -shm.
        let copy = directory.file("copy.db")
        for suffix in ["", "-wal"] { try FileManager.default.copyItem(atPath: path + suffix, toPath: copy + suffix) }
        let recovered = try Database(path: copy, options: options)
        #expect(try recovered.int64("SELECT count(*) FROM t") == 40)
        #expect(try recovered.integrityCheck().isEmpty)
    }
}
