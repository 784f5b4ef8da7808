import ArgumentParser
import ConvergeRuntime
import ConvergeStore
import Foundation

/// Where runs are journaled: the embedded SQLite file (default) or a PostgreSQL server.
struct StoreOptions: ParsableArguments {
    @Option(help: "SQLite journal file.")
    var state: String = StoreLocation.defaultSQLitePath

    @Option(help: "PostgreSQL URL (postgres://user@host:port/db) instead of SQLite; also CONVERGE_STORE.")
    var store: String?

    /// Opens the store, migrates it, runs `body`, and closes it whatever happens.
    func with<Result: Sendable>(_ body: (any WorkflowStore) async throws -> Result) async throws -> Result {
        let location = try StoreLocation(url: store ?? ProcessInfo.processInfo.environment["CONVERGE_STORE"], sqlitePath: state)
        return try await location.withStore(body)
    }
}
