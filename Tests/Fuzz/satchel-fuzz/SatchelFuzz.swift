import FuzzTargets
import Journal

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// To stderr, unbuffered (a trap right after must not lose it).
func writeError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(2, &bytes, bytes.count)
}

#if SATCHEL_LIBFUZZER
// Built by Tests/Fuzz/run.sh with `swift build --sanitize fuzzer -Xswiftc -DSATCHEL_LIBFUZZER`:
// libFuzzer owns main and calls these; the target comes from SATCHEL_FUZZ_TARGET.

nonisolated(unsafe) var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let name = getenv("SATCHEL_FUZZ_TARGET").map({ String(cString: $0) }), let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        writeError("satchel-fuzz: set SATCHEL_FUZZ_TARGET to one of: \(names)\n")
        exit(64)
    }
    selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try selected!.run(input)
    } catch {
        // A finding is a crash to libFuzzer: it saves the input and stops.
        fatalError("\(error)")
    }
    return 0
}

#else

/// `satchel-fuzz replay TARGET PATH...`: runs corpus files (or directories of them) through a
/// target's decoder and says what each did; exit 1 when one is a finding (a trap ends the
/// process with the input's name already printed).
/// `satchel-fuzz seed DIRECTORY`: writes every target's seed corpus, DIRECTORY/TARGET/NAME.
/// `satchel-fuzz list`: the targets.
@main
struct SatchelFuzz {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else { usage() }
        let command = arguments.removeFirst()
        switch command {
        case "list":
            for target in FuzzTarget.allCases { print(target.rawValue) }
        case "seed" where arguments.count == 1:
            seed(into: arguments[0])
        case "replay" where arguments.count >= 2:
            guard let target = FuzzTarget(rawValue: arguments[0]) else { fail("unknown target \(arguments[0]); `satchel-fuzz list` names them", code: 64) }
            replay(target, paths: Array(arguments.dropFirst()))
        default:
            usage()
        }
    }

    static var files: PosixFileSystem { PosixFileSystem() }

    static func seed(into directory: String) {
        do {
            try? files.createDirectory(directory)
            for target in FuzzTarget.allCases {
                let folder = Paths.join(directory, target.rawValue)
                try? files.createDirectory(folder)
                for seed in try target.seeds() {
                    try files.writeDurably(Paths.join(folder, seed.name), seed.bytes)
                }
                print("\(target.rawValue): \(try target.seeds().count) seeds")
            }
        } catch {
            fail("writing seeds into \(directory): \(error)", code: 74)
        }
    }

    static func replay(_ target: FuzzTarget, paths: [String]) {
        var findings = 0, accepted = 0, refused = 0
        for path in paths.flatMap(inputs) {
            let input: [UInt8]
            do { input = try files.read(path, max: 1 << 26) } catch { fail("\(error)", code: 66) }
            // Said before the run, so a trap's report follows the name of the input that caused it.
            writeError("\(path)\n")
            do {
                switch try target.run(input) {
                case .accepted: accepted += 1; print("\(path): accepted")
                case .refused: refused += 1; print("\(path): refused")
                }
            } catch {
                findings += 1
                print("\(path): FINDING \(error)")
            }
        }
        print("\(target.rawValue): \(accepted) accepted, \(refused) refused, \(findings) findings")
        if findings > 0 { exit(1) }
    }

    /// A file, or the files in a directory (sorted; hidden ones skipped).
    static func inputs(_ path: String) -> [String] {
        guard let names = try? files.listDirectory(path) else { return [path] }
        return names.filter { !$0.hasPrefix(".") }.map { Paths.join(path, $0) }
    }

    static func usage() -> Never {
        fail("usage: satchel-fuzz list | seed DIRECTORY | replay TARGET PATH...", code: 64)
    }

    static func fail(_ message: String, code: Int32) -> Never {
        writeError("satchel-fuzz: \(message)\n")
        exit(code)
    }
}
#endif
