import Foundation
import Hub
import Postgres
import SatchelTesting
import Store
import Testing

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
    static let adminURL = ProcessInfo.processInfo.environment["SATCHEL_TEST_POSTGRES"] ?? "postgresql://satchel:satchel@127.0.0.1:5432/postgres"

    struct Unreachable: Error, CustomStringConvertible {
        let cause: String
        var description: String {
            """
            the PostgreSQL backend tests need a PostgreSQL server and none answered at \(PostgresConnection.masked(adminURL)): \(cause). \
            Start one: apt-get install postgresql && pg_ctlcluster 15 main start && \
            su postgres -c "psql -c \\"CREATE ROLE satchel LOGIN SUPERUSER PASSWORD 'satchel'\\"" (.ci/run does this), \
            or point SATCHEL_TEST_POSTGRES at one (a URL whose role may create databases)
            """
        }
    }

    final class Database: @unchecked Sendable {
        let name: String
        let url: String
        init(name: String, url: String) { self.name = name; self.url = url }
        deinit {
            // Sessions may still be closing their connections: FORCE ends them (PostgreSQL 13+).
            if let admin = try? PostgresConnection(url: TestPostgres.adminURL) {
                _ = try? admin.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            }
        }
    }

    static func newDatabase() throws -> Database {
        let admin: PostgresConnection
        do { admin = try PostgresConnection(url: adminURL, timeoutSeconds: 5) } catch { throw Unreachable(cause: error.message) }
        let name = "hubtest_" + (0..<12).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
        try admin.execute("CREATE DATABASE \(name) ENCODING 'UTF8' TEMPLATE template0")
        return Database(name: name, url: url(database: name))
    }

    /// adminURL with its database replaced by `database`.
    static func url(database: String) -> String {
        guard var components = URLComponents(string: adminURL) else { return adminURL + " dbname=\(database)" }
        components.path = "/" + database
        return components.string ?? adminURL
    }
}
