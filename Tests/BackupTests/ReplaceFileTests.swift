#if canImport(Glibc)
import Glibc
#endif
import Agent
import Backup
import Field
import Foundation
import Journal
import SatchelTesting
import SystemCalls
import Testing

/// Every small file the agent replaces goes through `SystemCalls.replaceFile`: a symbolic link
/// planted at the predictable temporary name is never followed (what it points at stays byte for
/// byte what it was), and the typed error says what was refused and where.
@Suite("Replacing a file: temp file with O_EXCL|O_NOFOLLOW, fsync, rename, directory fsync")
struct ReplaceFileTests {
    /// A directory with `victim` (the file an attacker wants overwritten) and a symbolic link to
    /// it at `temporary`.
    struct Planted {
        let directory = TemporaryDirectory("replace")
        let victim: String
        let original = Array("the victim's own bytes\n".utf8)
        init(linkAt temporary: (TemporaryDirectory) -> String) throws {
            victim = directory.file("victim")
            try Data(original).write(to: URL(fileURLWithPath: victim))
            try FileManager.default.createSymbolicLink(atPath: temporary(directory), withDestinationPath: victim)
        }
        var victimBytes: [UInt8] { (try? Array(Data(contentsOf: URL(fileURLWithPath: victim)))) ?? [] }
    }

    @Test("the shim: a planted link at the temporary name is refused, its target unchanged, the error names the temporary file")
    func shimRefusesPlantedLink() throws {
        let planted = try Planted { $0.file("settings.tmp") }
        let target = planted.directory.file("settings")
        let error = #expect(throws: ReplaceFileError.self) { try SystemCalls.replaceFile(target, with: Array("new\n".utf8)) }
        #expect(planted.victimBytes == planted.original)
        #expect(error?.path == target + ".tmp" && error?.target == target && error?.errno == .exists)
        #expect(error?.description.contains("symbolic link") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test("the shim: a plain temporary file left by an interrupted write is replaced; the file is written whole, 0600")
    func shimReplacesStaleTemporary() throws {
        let directory = TemporaryDirectory("replace")
        let target = directory.file("settings")
        try Data("half of an old wri".utf8).write(to: URL(fileURLWithPath: target + ".tmp"))
        try SystemCalls.replaceFile(target, with: Array("whole\n".utf8))
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: target))) == Array("whole\n".utf8))
        #expect(!FileManager.default.fileExists(atPath: target + ".tmp"))
        var info = stat()
        #expect(stat(target, &info) == 0 && info.st_mode & 0o777 == 0o600)
    }

    @Test("the shim: EIO at fsync or close leaves the old file and no temporary; overwrite: false keeps an existing file")
    func shimFailuresChangeNothing() throws {
        let directory = TemporaryDirectory("replace")
        let target = directory.file("settings")
        try SystemCalls.replaceFile(target, with: Array("old\n".utf8))
        for call in ["fsync", "close", "rename"] {
            var caught: ReplaceFileError?
            SystemCalls.withFaults([.onCall(1, of: call, .ioError)]) {
                do throws(ReplaceFileError) { try SystemCalls.replaceFile(target, with: Array("new\n".utf8)) } catch { caught = error }
            }
            #expect(caught?.errno == .ioError && caught?.step.hasPrefix(call) == true, "\(call): \(String(describing: caught))")
            #expect(try Array(Data(contentsOf: URL(fileURLWithPath: target))) == Array("old\n".utf8), "\(call)")
            #expect(!FileManager.default.fileExists(atPath: target + ".tmp"), "\(call)")
        }
        let kept = #expect(throws: ReplaceFileError.self) { try SystemCalls.replaceFile(target, with: Array("new\n".utf8), overwrite: false) }
        #expect(kept?.errno == .exists && kept?.path == target)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: target))) == Array("old\n".utf8))
    }

    @Test("DamageMarker: a link planted at satchel.db.damaged.tmp is not followed and the refusal names it")
    func damageMarker() throws {
        let planted = try Planted { $0.file(DamageMarker.fileName + ".tmp") }
        let database = planted.directory.file("satchel.db")
        try Data("not really a database".utf8).write(to: URL(fileURLWithPath: database))
        let marker = DamageMarker(home: planted.directory.path)
        let error = #expect(throws: ReplaceFileError.self) { try marker.record(database: database, detail: "quick_check: page 7") }
        #expect(planted.victimBytes == planted.original)
        #expect(error?.path == marker.path + ".tmp" && error?.description.contains("symbolic link") == true)
        #expect(marker.finding(for: database) == nil)
    }

    @Test("device.conf: a link planted at device.conf.new is not followed; AgentError names the file and the refusal")
    func deviceConfiguration() throws {
        let planted = try Planted { $0.file(DeviceSettings.fileName + ".new") }
        let error = #expect(throws: AgentError.self) { try DeviceSettings().write(home: planted.directory.path) }
        #expect(planted.victimBytes == planted.original)
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(DeviceSettings.path(home: planted.directory.path) + ".new") && text.contains("symbolic link"), "\(text)")
    }

    @Test("identity files (the PosixFileSystem path): a link planted at the .tmp name is not followed; BackupError names it")
    func identityFiles() throws {
        let planted = try Planted { $0.file("device.key.tmp") }
        let target = planted.directory.file("device.key")
        let error = #expect(throws: BackupError.self) { try IdentityFiles.writeAtomically(target, Array(repeating: 7, count: 32)) }
        #expect(planted.victimBytes == planted.original)
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains(target + ".tmp") && text.contains("symbolic link"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: target))
    }
}
