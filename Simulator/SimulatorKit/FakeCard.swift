public import Foundation

/// The rep's flash card as a directory the simulator can pull out and push back in. Removal is
/// a rename of the mount point away (the agent then finds nothing at the path, as after an
/// unmount), insertion the rename back, so what was on the card comes back as it was.
///
/// Read-only and full are not simulated here: as root (CI) a chmod does not stop writes, and a
/// read-only or tiny bind mount needs mount privileges CI does not have. Those states are
/// produced through the Journal `FileSystem` seam in the Backup and Journal tests instead.
public struct FakeCard: Sendable {
    public let path: String
    /// Where the card's contents wait while it is out of the slot.
    public var pulledPath: String { path + ".pulled" }

    public init(path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    public var isInserted: Bool { FileManager.default.fileExists(atPath: path) }

    /// Pulls the card out: nothing is at `path` afterwards.
    public func remove() throws {
        guard rename(path, pulledPath) == 0 else { throw Failure.rename(from: path, to: pulledPath, errno: errno) }
    }

    /// Pushes the same card back in.
    public func insert() throws {
        guard rename(pulledPath, path) == 0 else { throw Failure.rename(from: pulledPath, to: path, errno: errno) }
    }

    /// Every regular file on the card with its bytes, for scans (plaintext leaks, wear).
    public func files() -> [(path: String, bytes: Data)] {
        guard let walker = FileManager.default.enumerator(atPath: path) else { return [] }
        var found: [(path: String, bytes: Data)] = []
        while let relative = walker.nextObject() as? String {
            let full = path + "/" + relative
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let bytes = FileManager.default.contents(atPath: full) else { continue }
            found.append((full, bytes))
        }
        return found.sorted { $0.path < $1.path }
    }

    /// Total bytes of every file on the card.
    public func totalBytes() -> Int { files().reduce(0) { $0 + $1.bytes.count } }

    /// Where any of `needles` (UTF-8) appears in a file on the card, as "file: needle".
    public func plaintextHits(_ needles: [String]) -> [String] {
        let patterns = Set(needles.filter { $0.utf8.count >= 4 }).map { (text: $0, bytes: Data($0.utf8)) }
        var hits: [String] = []
        for file in files() {
            for pattern in patterns where file.bytes.range(of: pattern.bytes) != nil {
                hits.append("\(file.path): \(pattern.text)")
            }
        }
        return hits
    }

    public enum Failure: Error, CustomStringConvertible {
        case rename(from: String, to: String, errno: Int32)
        public var description: String {
            switch self {
            case .rename(let from, let to, let code): return "cannot move \(from) to \(to): \(String(cString: strerror(code)))"
            }
        }
    }
}
