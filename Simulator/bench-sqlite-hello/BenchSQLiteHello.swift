import ArgumentParser
import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// The memory baseline of `satchel status` (`satchel-sim bench capture`): a hello-world built
/// like `satchel` (argument parser, static stdlib, the same release flags) that opens the device
/// database the way Store's `Database` does (read-write, or with `--read-only` as the read-only
/// open `satchel status` uses: `immutable` when no `-wal` is beside the file) and runs the
/// statements `satchel-sim` hands it, which are `satchel status`'s own (Field's
/// `DeviceStatus.SQL`) after the pragmas of Store's open. So the ratio measures what satchel
/// adds, not what SQLite costs.
@main
struct BenchSQLiteHello: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench-sqlite-hello")
    struct Failure: Error, CustomStringConvertible { var description: String }

    @Option(help: "The SQLite file to open (read-write, never created).") var database: String
    @Option(name: .customLong("sql"), help: "A statement to run, in order; every column of every row is read.") var statements: [String] = []
    @Option(name: .customLong("bind"), help: "Parameters ?1, ?2, ... of every statement that has them: text:VALUE or integer:VALUE.")
    var parameters: [String] = []
    @Flag(help: "Open read-only as Store's read-only open does (immutable when no -wal is beside the file).") var readOnly = false

    func run() throws {
        var handle: OpaquePointer?
        // The flags and busy deadline of Store's `Database.init`. (Its immutable open also holds a
        // SHARED lock by hand, `QuietReader`: one descriptor and one fcntl lock, left out here.)
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE | (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE)
        var name = database
        if readOnly && access(database + "-wal", F_OK) != 0 {
            flags |= SQLITE_OPEN_URI
            name = "file:" + database + "?immutable=1"
        }
        guard sqlite3_open_v2(name, &handle, flags, nil) == SQLITE_OK, let handle else {
            throw Failure(description: "cannot open \(database)")
        }
        defer { sqlite3_close_v2(handle) }
        sqlite3_busy_timeout(handle, 5_000)
        var rows = 0, checksum = 0
        for sql in statements {
            var statement: OpaquePointer?
            guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
                throw Failure(description: "cannot prepare \(sql): \(String(cString: sqlite3_errmsg(handle)))")
            }
            defer { sqlite3_finalize(statement) }
            for index in 0..<min(Int(sqlite3_bind_parameter_count(statement)), parameters.count) {
                let parameter = parameters[index]
                if parameter.hasPrefix("integer:"), let value = Int64(parameter.dropFirst(8)) {
                    sqlite3_bind_int64(statement, Int32(index + 1), value)
                } else if parameter.hasPrefix("text:") {
                    _ = satchel_sqlite3_bind_text_copy(statement, Int32(index + 1), String(parameter.dropFirst(5)), -1)
                } else {
                    throw ValidationError("--bind \(parameter): expected text:VALUE or integer:VALUE")
                }
            }
            var code = sqlite3_step(statement)
            while code == SQLITE_ROW {
                rows += 1
                for column in 0..<sqlite3_column_count(statement) {
                    if sqlite3_column_type(statement, column) == SQLITE_TEXT {
                        checksum &+= Int(sqlite3_column_bytes(statement, column))
                    } else {
                        checksum &+= Int(truncatingIfNeeded: sqlite3_column_int64(statement, column))
                    }
                }
                code = sqlite3_step(statement)
            }
            guard code == SQLITE_DONE else { throw Failure(description: "\(sql): \(String(cString: sqlite3_errmsg(handle)))") }
        }
        print("hello, \(rows) rows (\(checksum))")
    }
}
