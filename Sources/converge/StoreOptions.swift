import ArgumentParser
import ConvergeStore
import ConvergeStorePostgres
import Foundation

/// Where runs are journaled: the embedded SQLite file (default) or a PostgreSQL server.
struct StoreOptions: ParsableArguments {
    @Option(help: "SQLite journal file.")
    var state: String = ".converge/state.db"

    @Option(help: "PostgreSQL URL (postgres://user@host:port/db) instead of SQLite; also CONVERGE_STORE.")
    var store: String?

    /// Opens the store, migrates it, runs `body`, and closes it whatever happens.
    func with<Result: Sendable>(_ body: (any WorkflowStore) async throws -> Result) async throws -> Result {
        do {
            return try await open(body)
        } catch let error as StoreError where error.code == .runNotFound {
            throw CLIError("\(error)", hint: "list runs with `converge runs`")
        }
    }

    private func open<Result: Sendable>(_ body: (any WorkflowStore) async throws -> Result) async throws -> Result {
        let url = store ?? ProcessInfo.processInfo.environment["CONVERGE_STORE"]
        if let url, url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return try await PostgresWorkflowStore.withStore(url: url) { postgres in
                try await postgres.migrate()
                return try await body(postgres)
            }
        }
        if let url {
            throw CLIError("unsupported store '\(url)'", hint: "use postgres://user@host:port/database, or --state PATH for SQLite")
        }
        return try await SQLiteWorkflowStore.withStore(path: state) { sqlite in
            try await sqlite.migrate()
            return try await body(sqlite)
        }
    }
}
