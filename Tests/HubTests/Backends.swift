import Foundation
import Hub
import Postgres
import SatchelTesting
import Store
import Testing
import Transport

/// The hub's two storage backends, for tests that run the same assertions on each.
enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres
    var description: String { rawValue }

    /// A new, empty hub store of this kind and a way to open more connections to it (a session
    /// each, as SyncServer does). PostgreSQL: a database of its own, dropped afterwards.
    func makeHub() throws -> TestStore {
        switch self {
        case .sqlite:
            let directory = TemporaryDirectory("hub-sqlite")
            let path = directory.path + "/hub.db"
            return TestStore(storage: try SQLiteHubStorage(path: path), open: { try SQLiteHubStorage(path: path) }, keep: directory, url: path)
        case .postgres:
            let database = try TestPostgres.newDatabase()
            return TestStore(storage: try PostgresHubStorage(url: database.url), open: { try PostgresHubStorage(url: database.url) }, keep: database,
                             url: database.url)
        }
    }
}

final class TestStore: @unchecked Sendable {
    let storage: any HubStorage
    let open: @Sendable () throws -> any HubStorage
    /// The SQLite file's path or the PostgreSQL URL.
    let url: String
    private let keep: AnyObject
    init(storage: any HubStorage, open: @escaping @Sendable () throws -> any HubStorage, keep: AnyObject, url: String) {
        self.storage = storage; self.open = open; self.keep = keep; self.url = url
    }

    /// One text value by raw SQL on the backend itself (the same SQL on both), past the hub's code.
    func text(_ sql: String) throws -> String {
        if storage is SQLiteHubStorage { return try Store.Database(path: url).text(sql) }
        return try #require(try PostgresConnection(url: url).first(sql, row: { $0.text(0) }))
    }

    /// One statement by raw SQL on the backend itself, as an `sqlite3` or `psql` shell would.
    func execute(_ sql: String) throws {
        if storage is SQLiteHubStorage { try Store.Database(path: url).execute(sql) } else { try PostgresConnection(url: url).execute(sql) }
    }
}

/// The PostgreSQL the tests use: SATCHEL_TEST_POSTGRES (a libpq URL with the right to create
/// databases), by default the local server on 127.0.0.1:5432 as role satchel. Each test gets a
/// database of its own (hubtest_…), dropped when the test ends, so tests never collide.
/// No PostgreSQL: the test FAILS, saying how to start one. It is never skipped.
enum TestPostgres {
    static let configuredURL = ProcessInfo.processInfo.environment["SATCHEL_TEST_POSTGRES"]
    static let localURL = "postgresql://satchel:satchel@127.0.0.1:5432/postgres"

    /// The server the tests use, found once per test process: SATCHEL_TEST_POSTGRES if set (it
    /// must answer; `private`: always a private cluster); else the local one on 127.0.0.1:5432 as role satchel; else a private
    /// throwaway cluster started from Debian's PostgreSQL binaries in a temporary directory
    /// (PrivateCluster), so `swift test` works on a fresh Debian machine with the postgresql
    /// package installed. Nothing of these: the tests FAIL saying how to get one.
    static let server: Result<String, Unreachable> = {
        if configuredURL == "private" {
            do { return .success(try PrivateCluster.start()) } catch { return .failure(Unreachable(url: "a private cluster", cause: "\(error)")) }
        }
        if let configuredURL {
            do { _ = try PostgresConnection(url: configuredURL, timeoutSeconds: 5); return .success(configuredURL) } catch {
                return .failure(Unreachable(url: configuredURL, cause: "\(error)"))
            }
        }
        do { _ = try PostgresConnection(url: localURL, timeoutSeconds: 3); return .success(localURL) } catch {
            let local = "\(error)"
            do { return .success(try PrivateCluster.start()) } catch {
                return .failure(Unreachable(url: localURL, cause: "\(local); no private cluster either: \(error)"))
            }
        }
    }()

    static var adminURL: String {
        get throws { try server.get() }
    }

    struct Unreachable: Error, CustomStringConvertible {
        let url: String
        let cause: String
        var description: String {
            """
            the PostgreSQL backend tests need a PostgreSQL server and none answered at \(PostgresConnection.masked(url)): \(cause). \
            Install Debian's (apt-get install -y postgresql: the tests then start a private cluster of their own), or start one on \
            127.0.0.1:5432 with a superuser role satchel (password satchel), or point SATCHEL_TEST_POSTGRES at one (a URL whose role may create databases)
            """
        }
    }

    /// A cluster of this test process alone: initdb into a temporary directory, listening on a
    /// Unix socket there and a free loopback port, stopped when the process exits. As root it runs
    /// as the `postgres` user (PostgreSQL refuses root), through runuser.
    enum PrivateCluster {
        struct Failure: Error, CustomStringConvertible { let description: String }

        static func start() throws -> String {
            let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
            guard let bin = versions.compactMap(Int.init).sorted().last.map({ "/usr/lib/postgresql/\($0)/bin" }),
                  FileManager.default.isExecutableFile(atPath: bin + "/initdb") else {
                throw Failure(description: "Debian's PostgreSQL binaries are not installed (/usr/lib/postgresql/N/bin/initdb)")
            }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("satchel-pg-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let asRoot = getuid() == 0
            if asRoot {
                guard chown(directory, Self.postgresUID(), Self.postgresGID()) == 0 else { throw Failure(description: "cannot chown \(directory) to postgres") }
            }
            let listener = try TCPListener("127.0.0.1:0")
            let port = listener.port
            _ = consume listener
            let data = directory + "/data"
            try run(bin + "/initdb", ["-D", data, "-U", "satchel", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"], asRoot: asRoot)
            try run(bin + "/pg_ctl", ["-D", data, "-l", directory + "/log", "-w", "-t", "60",
                                      "-o", "-c listen_addresses=127.0.0.1 -c port=\(port) -c unix_socket_directories=\(directory) -c fsync=off",
                                      "start"], asRoot: asRoot)
            stopAtExit = (bin, data, asRoot)
            atexit {
                if let (bin, data, asRoot) = TestPostgres.PrivateCluster.stopAtExit {
                    try? TestPostgres.PrivateCluster.run(bin + "/pg_ctl", ["-D", data, "-m", "immediate", "-w", "-t", "30", "stop"], asRoot: asRoot)
                    try? FileManager.default.removeItem(atPath: (data as NSString).deletingLastPathComponent)
                }
            }
            return "postgresql://satchel@127.0.0.1:\(port)/postgres"
        }

        nonisolated(unsafe) static var stopAtExit: (String, String, Bool)?

        static func postgresUID() -> uid_t { getpwnam("postgres")?.pointee.pw_uid ?? 0 }
        static func postgresGID() -> gid_t { getpwnam("postgres")?.pointee.pw_gid ?? 0 }

        /// posix_spawn and waitpid, not Process: Foundation's waitUntilExit did not return here
        /// once pg_ctl had left a server running. Output goes to a file the caller reads on failure.
        static func run(_ executable: String, _ arguments: [String], asRoot: Bool) throws {
            guard !asRoot || getpwnam("postgres") != nil else {
                throw Failure(description: "running as root, and there is no postgres user to run the cluster as")
            }
            let argv = asRoot ? ["/usr/sbin/runuser", "-u", "postgres", "--", executable] + arguments : [executable] + arguments
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("satchel-pg-run-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log").path
            defer { unlink(log) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
            let cArguments = argv.map { strdup($0) } + [nil]
            defer { cArguments.forEach { free($0) } }
            var pid: pid_t = 0
            let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
            guard spawned == 0 else { throw Failure(description: "cannot start \(argv[0]): \(String(cString: strerror(spawned)))") }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            guard status == 0 else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw Failure(description: "\((executable as NSString).lastPathComponent) failed (wait status \(status)): \(text.suffix(600))")
            }
        }
    }

    final class Database: @unchecked Sendable {
        let name: String
        let url: String
        init(name: String, url: String) { self.name = name; self.url = url }
        deinit {
            // Sessions may still be closing their connections: FORCE ends them (PostgreSQL 13+).
            if let url = try? TestPostgres.adminURL, let admin = try? PostgresConnection(url: url) {
                _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            }
        }
    }

    static func newDatabase() throws -> Database {
        let admin = try PostgresConnection(url: try adminURL, timeoutSeconds: 5)
        let name = "hubtest_" + (0..<12).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
        try admin.execute("CREATE DATABASE \(name) ENCODING 'UTF8' TEMPLATE template0")
        return Database(name: name, url: try url(database: name))
    }

    /// adminURL with its database replaced by `database`.
    static func url(database: String) throws -> String {
        let admin = try adminURL
        guard var components = URLComponents(string: admin) else { return admin + " dbname=\(database)" }
        components.path = "/" + database
        return components.string ?? admin
    }
}
