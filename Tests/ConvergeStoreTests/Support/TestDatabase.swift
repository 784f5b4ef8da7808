import ConvergeStore
import ConvergeStorePostgres
import Csqlite3
import Foundation
import PostgresNIO
import Testing

/// The backends the behaviour suite runs against, each test once per backend.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

/// The PostgreSQL the tests use: `CONVERGE_TEST_POSTGRES_URL`, which `scripts/postgres.sh`
/// prints (and `scripts/test.sh` exports). Missing, it is a failure, not a skip: a green run
/// must mean both backends were tested.
func testPostgresConfiguration() throws -> PostgresStoreConfiguration {
    guard let url = ProcessInfo.processInfo.environment["CONVERGE_TEST_POSTGRES_URL"], !url.isEmpty else {
        throw TestSetupError(
            "CONVERGE_TEST_POSTGRES_URL is not set: start the test server with `eval \"$(scripts/postgres.sh)\"` "
                + "(scripts/test.sh does it for you), or point it at a PostgreSQL you may create databases on")
    }
    return try PostgresStoreConfiguration(url: url)
}

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A fresh, empty database for one test, on which it can open several stores (like several
/// processes sharing it). SQLite: a file in a new temporary folder. PostgreSQL: a new database
/// `converge_test_<random>` on the test server, so parallel tests and runs never collide.
///
/// Each PostgreSQL store lives inside `PostgresWorkflowStore.withStore`, in a child task of
/// `with`'s task group that ends when the test's body does.
final class TestDatabase: @unchecked Sendable {
    // @unchecked: `stores` is guarded by `lock`.
    let backend: Backend
    private let sqlitePath: String?
    private let postgres: PostgresStoreConfiguration?
    private let lock = NSLock()
    private var stores: [SQLiteWorkflowStore] = []
    /// `open()`'s requests for a PostgreSQL store, served by `servePostgresStores`.
    private let postgresRequests = AsyncStream<CheckedContinuation<PostgresWorkflowStore, any Error>>.makeStream()

    private init(backend: Backend, sqlitePath: String?, postgres: PostgresStoreConfiguration?) {
        self.backend = backend
        self.sqlitePath = sqlitePath
        self.postgres = postgres
    }

    /// A short description of where the data lives, for messages.
    var location: String { sqlitePath ?? postgres?.redactedURL ?? "?" }

    /// Creates the database, runs `body`, then shuts every store it opened down and deletes it.
    static func with<T>(_ backend: Backend, _ body: (TestDatabase) async throws -> T) async throws -> T {
        let database = try await make(backend)
        do {
            let result = try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
                group.addTask { await database.servePostgresStores() }
                defer { group.cancelAll() }
                return try await body(database)
            }
            await database.destroy()
            return result
        } catch {
            await database.destroy()
            throw error
        }
    }

    /// Opens a PostgreSQL store for each request and keeps it until cancelled.
    private func servePostgresStores() async {
        guard let postgres else { return }
        await withDiscardingTaskGroup { group in
            for await request in postgresRequests.stream {
                group.addTask {
                    var handedOut = false
                    do {
                        try await PostgresWorkflowStore.withStore(configuration: postgres) { store in
                            handedOut = true
                            request.resume(returning: store)
                            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                        }
                    } catch {
                        if !handedOut { request.resume(throwing: error) }
                    }
                }
            }
        }
    }

    private static func make(_ backend: Backend) async throws -> TestDatabase {
        switch backend {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory
                .appendingPathComponent("converge-store-tests-\(UUID().uuidString)")
            // A nested path: the store creates missing parent folders.
            let path = folder.appendingPathComponent("nested/state.db").path
            return TestDatabase(backend: backend, sqlitePath: path, postgres: nil)
        case .postgres:
            let admin = try testPostgresConfiguration()
            var configuration = admin
            configuration.database = "converge_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            // The name is generated here from hex digits: safe to splice into SQL.
            try await Self.admin(admin, "CREATE DATABASE \(configuration.database)")
            return TestDatabase(backend: backend, sqlitePath: nil, postgres: configuration)
        }
    }

    /// Runs one statement on the admin database of the test server.
    private static func admin(_ configuration: PostgresStoreConfiguration, _ sql: String) async throws {
        try await withPostgres(configuration) { client in
            _ = try await client.query(PostgresQuery(unsafeSQL: sql))
        }
    }

    private static func withPostgres<T: Sendable>(
        _ configuration: PostgresStoreConfiguration, _ body: (PostgresClient) async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: configuration.clientConfiguration)
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            do {
                return try await body(client)
            } catch {
                throw TestSetupError("PostgreSQL at \(configuration.redactedURL): \(String(reflecting: error))")
            }
        }
    }

    /// A new store on this database (not migrated), shut down by `with` at the end.
    func open() async throws -> any WorkflowStore {
        switch backend {
        case .sqlite:
            let store = try SQLiteWorkflowStore(path: sqlitePath ?? "")
            lock.withLock { stores.append(store) }
            return store
        case .postgres:
            return try await withCheckedThrowingContinuation { (request: CheckedContinuation<PostgresWorkflowStore, any Error>) in
                if case .terminated = postgresRequests.continuation.yield(request) {
                    request.resume(throwing: TestSetupError("the database is closed"))
                }
            }
        }
    }

    /// A new store on this database, migrated.
    func openMigrated() async throws -> any WorkflowStore {
        let store = try await open()
        try await store.migrate()
        return store
    }

    /// Runs raw SQL on the database, bypassing the store (to fake what another version wrote).
    func executeRaw(_ sql: String) async throws {
        switch backend {
        case .sqlite:
            var db: OpaquePointer?
            defer { sqlite3_close_v2(db) }
            guard sqlite3_open(sqlitePath ?? "", &db) == SQLITE_OK, let db else { throw TestSetupError("cannot open \(location)") }
            sqlite3_busy_timeout(db, 10_000)
            guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
                throw TestSetupError("\(sql): \(String(cString: sqlite3_errmsg(db)))")
            }
        case .postgres:
            guard let postgres else { return }
            try await Self.withPostgres(postgres) { client in _ = try await client.query(PostgresQuery(unsafeSQL: sql)) }
        }
    }

    private func destroy() async {
        let stores = lock.withLock { self.stores }
        for store in stores { await store.shutdown() }
        if let sqlitePath {
            let folder = URL(fileURLWithPath: sqlitePath).deletingLastPathComponent().deletingLastPathComponent()
            try? FileManager.default.removeItem(at: folder)
        }
        if let postgres, let admin = try? testPostgresConfiguration() {
            do {
                try await Self.admin(admin, "DROP DATABASE IF EXISTS \(postgres.database) WITH (FORCE)")
            } catch {
                Issue.record("could not drop the test database \(postgres.database): \(error)")
            }
        }
    }
}

/// A run as the tests create them: only what a test cares about varies.
func newRun(
    instance: String = "test", status: RunStatus = .running, digest: String = "sha256:abc", commit: String? = "0123abcd"
) -> NewRun {
    NewRun(
        instance: instance, repository: "file:///srv/git/infra.git", commit: commit, planDigest: digest,
        planJSON: #"{"steps":[]}"#, status: status, executor: "host:\(getpid())", convergeVersion: "0.2.0",
        optionsJSON: #"{"rollback":true}"#, manifestsJSON: "[]")
}

func step(run: Int64, index: Int, status: StepStatus = .succeeded, output: String? = nil) -> StepRecord {
    let start = Date(timeIntervalSince1970: 1_700_000_000.123_4)
    return StepRecord(
        runID: run, index: index, resource: "Container/web-\(index)", action: "create", status: status, attempts: 1,
        startedAt: start, finishedAt: status == .running ? nil : start.addingTimeInterval(0.25), output: output, error: nil,
        convergeVersion: "0.2.0")
}
