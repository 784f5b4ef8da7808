import ConvergeStore
import ConvergeStorePostgres
import Csqlite3
import Foundation
import PostgresNIO

/// The two journal backends.
public enum StoreBackend: String, CaseIterable, Sendable {
    case sqlite
    case postgres

    public var title: String { self == .sqlite ? "SQLite" : "PostgreSQL" }
}

/// A fresh, empty journal database, on which stores are opened like processes sharing it,
/// and which `destroy()` deletes. SQLite: a file in a new temporary folder. PostgreSQL: a new
/// database `<prefix><random>` on a server, so parallel tests and runs never collide.
public final class ThrowawayDatabase: @unchecked Sendable {
    // @unchecked: `stores` and `destroyed` are guarded by `lock`.
    public let backend: StoreBackend
    /// The SQLite file, for `.sqlite`.
    public let sqlitePath: String?
    /// The database, for `.postgres`.
    public let postgres: PostgresStoreConfiguration?
    /// The server's own database, when this object made the database and so drops it.
    private let admin: PostgresStoreConfiguration?
    /// The folder holding the SQLite file, when this object made it and so deletes it.
    private let folder: String?
    private let lock = NSLock()
    private var stores: [OpenStore] = []
    private var destroyed = false

    private init(
        backend: StoreBackend, sqlitePath: String? = nil, postgres: PostgresStoreConfiguration? = nil,
        admin: PostgresStoreConfiguration? = nil, folder: String? = nil
    ) {
        self.backend = backend
        self.sqlitePath = sqlitePath
        self.postgres = postgres
        self.admin = admin
        self.folder = folder
    }

    /// The PostgreSQL server tests and benchmarks make their databases on:
    /// `CONVERGE_TEST_POSTGRES_URL`, which `scripts/postgres.sh` prints.
    public static var environmentPostgresURL: String? {
        let value = ProcessInfo.processInfo.environment["CONVERGE_TEST_POSTGRES_URL"]
        return value?.isEmpty == false ? value : nil
    }

    /// Where the data lives, for messages (never a password).
    public var location: String { sqlitePath ?? postgres?.redactedURL ?? "?" }

    /// Makes an empty database; `postgresURL` (an account that may create databases) is
    /// needed for `.postgres` only.
    public static func make(_ backend: StoreBackend, postgresURL: String?, prefix: String = "converge_test_") async throws
        -> ThrowawayDatabase
    {
        let name = prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        switch backend {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
            // A nested path: the store creates missing parent folders.
            return ThrowawayDatabase(backend: backend, sqlitePath: folder + "/nested/state.db", folder: folder)
        case .postgres:
            guard let postgresURL else {
                throw TestSupportError(
                    "no PostgreSQL server: set CONVERGE_TEST_POSTGRES_URL (`eval \"$(scripts/postgres.sh)\"` starts one "
                        + "and sets it) to an account that may create databases")
            }
            let admin = try PostgresStoreConfiguration(url: postgresURL)
            var configuration = admin
            // Lower-case letters, digits and underscores only: safe to splice into SQL.
            configuration.database = name
            try await runStatement("CREATE DATABASE \(name)", on: admin)
            return ThrowawayDatabase(backend: backend, postgres: configuration, admin: admin)
        }
    }

    /// Makes a database, runs `body`, then closes every store opened on it and deletes it,
    /// whether `body` failed or not.
    public static func with<T>(
        _ backend: StoreBackend, postgresURL: String?, prefix: String = "converge_test_",
        _ body: (ThrowawayDatabase) async throws -> T
    ) async throws -> T {
        let database = try await make(backend, postgresURL: postgresURL, prefix: prefix)
        let result: T
        do {
            result = try await body(database)
        } catch {
            try? await database.destroy()
            throw error
        }
        try await database.destroy()
        return result
    }

    /// The SQLite file another process made: `destroy()` closes stores, deletes nothing.
    public static func existing(sqlitePath: String) -> ThrowawayDatabase {
        ThrowawayDatabase(backend: .sqlite, sqlitePath: sqlitePath)
    }

    /// The PostgreSQL database another process made: `destroy()` closes stores, drops nothing.
    public static func existing(postgres: PostgresStoreConfiguration) -> ThrowawayDatabase {
        ThrowawayDatabase(backend: .postgres, postgres: postgres)
    }

    /// A new store on this database, migrated.
    public func openMigrated() async throws -> any WorkflowStore {
        let store = try await open()
        try await store.migrate()
        return store
    }

    /// Closes every store and deletes what this object made. Safe to call twice.
    public func destroy() async throws {
        let stores: [OpenStore]? = lock.withLock {
            if destroyed { return nil }
            destroyed = true
            return self.stores
        }
        guard let stores else { return }
        for store in stores { await store.close() }
        if let folder { try? FileManager.default.removeItem(atPath: folder) }
        if let admin, let postgres {
            try await Self.runStatement("DROP DATABASE IF EXISTS \(postgres.database) WITH (FORCE)", on: admin)
        }
    }

    /// Runs raw SQL on the database, bypassing the store (to fake what another version wrote).
    public func executeRaw(_ sql: String) async throws {
        if let postgres {
            try await Self.runStatement(sql, on: postgres)
            return
        }
        var db: OpaquePointer?
        defer { sqlite3_close_v2(db) }
        guard sqlite3_open(sqlitePath ?? "", &db) == SQLITE_OK, let db else { throw TestSupportError("cannot open \(location)") }
        sqlite3_busy_timeout(db, 10_000)
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
            throw TestSupportError("\(sql): \(String(cString: sqlite3_errmsg(db)))")
        }
    }

    /// One statement with a client of its own.
    /// Runs `sql` as `configuration`'s user (a test's own role) and returns each row's first
    /// column as text (cast it with `::text`); throws with the server's words when refused.
    public static func rows(_ sql: String, as configuration: PostgresStoreConfiguration) async throws -> [String?] {
        let client = PostgresClient(configuration: configuration.clientConfiguration)
        return try await withThrowingTaskGroup(of: Void.self, returning: [String?].self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            do {
                var values: [String?] = []
                for try await row in try await client.query(PostgresQuery(unsafeSQL: sql)) {
                    values.append(try row.makeRandomAccess()[0].decode(String?.self))
                }
                return values
            } catch let error as PSQLError {
                throw TestSupportError(error.serverInfo?[.message] ?? String(reflecting: error))
            }
        }
    }

    private static func runStatement(_ sql: String, on configuration: PostgresStoreConfiguration) async throws {
        let client = PostgresClient(configuration: configuration.clientConfiguration)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            do {
                _ = try await client.query(PostgresQuery(unsafeSQL: sql))
            } catch {
                throw TestSupportError("PostgreSQL at \(configuration.redactedURL): \(sql): \(String(reflecting: error))")
            }
        }
    }
}

// MARK: Opening and closing stores
// The only place that knows how each backend's store starts and stops.

extension ThrowawayDatabase {
    /// A new store on this database (not migrated), closed by `close(_:)` or `destroy()`.
    public func open() async throws -> any WorkflowStore {
        let opened: OpenStore
        if let postgres {
            opened = .postgres(try await HostedPostgresStore.open(postgres))
        } else {
            opened = .sqlite(try SQLiteWorkflowStore(path: sqlitePath ?? ""))
        }
        lock.withLock { stores.append(opened) }
        return opened.store
    }

    /// Closes a store `open` made before `destroy()` would.
    public func close(_ store: any WorkflowStore) async {
        let opened = lock.withLock { () -> OpenStore? in
            guard let index = stores.firstIndex(where: { ($0.store as AnyObject) === (store as AnyObject) }) else { return nil }
            return stores.remove(at: index)
        }
        await opened?.close()
    }
}

/// A store this object opened, and how it closes.
private enum OpenStore: Sendable {
    case sqlite(SQLiteWorkflowStore)
    case postgres(HostedPostgresStore)

    var store: any WorkflowStore {
        switch self {
        case .sqlite(let store): return store
        case .postgres(let hosted): return hosted.store
        }
    }

    func close() async {
        switch self {
        case .sqlite(let store): await store.shutdown()
        case .postgres(let hosted): await hosted.close()
        }
    }
}

/// A PostgreSQL store kept open across a test's or benchmark's many steps. The store exists
/// only inside `PostgresWorkflowStore.withStore`, so a task hosts that scope until `close()`:
/// test support opens and closes stores at arbitrary points (like processes coming and
/// going), which one lexical scope cannot express; production code uses the scope directly.
private final class HostedPostgresStore: Sendable {
    let store: PostgresWorkflowStore
    private let finish: AsyncStream<Never>.Continuation
    private let host: Task<Void, any Error>

    private init(store: PostgresWorkflowStore, finish: AsyncStream<Never>.Continuation, host: Task<Void, any Error>) {
        self.store = store
        self.finish = finish
        self.host = host
    }

    static func open(_ configuration: PostgresStoreConfiguration) async throws -> HostedPostgresStore {
        let (closed, finish) = AsyncStream<Never>.makeStream()
        let (opened, handOver) = AsyncStream<PostgresWorkflowStore>.makeStream()
        let host = Task {
            defer { handOver.finish() }
            try await PostgresWorkflowStore.withStore(configuration: configuration) { store in
                handOver.yield(store)
                for await _ in closed {}
            }
        }
        for await store in opened { return HostedPostgresStore(store: store, finish: finish, host: host) }
        try await host.value
        throw TestSupportError("the PostgreSQL store at \(configuration.redactedURL) did not open")
    }

    /// Closes the store's connections and waits until they are closed.
    func close() async {
        finish.finish()
        _ = try? await host.value
    }
}

/// A helper could not set up or tear down what a test needs.
public struct TestSupportError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
