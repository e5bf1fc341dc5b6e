import Foundation

/// A fresh directory under /tmp for one test, removed when the value goes away.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(_ label: String = "test") {
        var template = Array("/tmp/satchel-\(label)-XXXXXX".utf8CString)
        path = String(cString: mkdtemp(&template)!)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The executables `swift build` / `swift test` put beside the test bundle.
public enum BuiltExecutable {
    public static func path(_ name: String) -> String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = bundle.deletingLastPathComponent()
        // On Linux the tests run from <build>/debug/<Package>PackageTests.xctest; on macOS from inside a bundle.
        while directory.path != "/" && !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent(name).path
    }
}

/// Reads a whole file (for "the file was left untouched" checks).
public func fileBytes(_ path: String) -> [UInt8] {
    (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
}

public func writeFile(_ path: String, _ bytes: [UInt8]) {
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

/// The hub's history (receipts, the changes devices sent, the audit log) is append-only by
/// trigger. A test that stages what the hub's own code can never produce (a hub file restored
/// from an older copy, a receipt from before content hashes, another handheld's copy of the
/// same ids) drops the triggers on its own file first, saying so.
public let dropHubHistoryTriggers = ["receipts", "device_changes", "audit"]
    .flatMap { ["DROP TRIGGER IF EXISTS \($0)_append_only_update;", "DROP TRIGGER IF EXISTS \($0)_append_only_delete;"] }
    .joined(separator: " ")
