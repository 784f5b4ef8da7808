import ConvergeStore
import ConvergeStorePostgres

/// Where runs are journaled: the embedded SQLite file (the default) or a PostgreSQL server.
public enum StoreLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String)

    /// The SQLite file the CLI uses when nothing else is named.
    public static let defaultSQLitePath = ".converge/state.db"

    /// `url` when one is given (`postgres://…` or `postgresql://…`), else the SQLite file at
    /// `sqlitePath`.
    public init(url: String?, sqlitePath: String = StoreLocation.defaultSQLitePath) throws {
        guard let url else {
            self = .sqlite(path: sqlitePath)
            return
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw RuntimeError(.unsupportedStore, "unsupported store '\(url)'")
        }
        self = .postgres(url: url)
    }

    /// Opens the store, brings its schema up to date, runs `body`, and closes it whatever
    /// happens.
    public func withStore<Result: Sendable>(_ body: (any WorkflowStore) async throws -> Result) async throws -> Result {
        switch self {
        case .postgres(let url):
            return try await PostgresWorkflowStore.withStore(url: url) { postgres in
                try await postgres.migrate()
                return try await body(postgres)
            }
        case .sqlite(let path):
            return try await SQLiteWorkflowStore.withStore(path: path) { sqlite in
                try await sqlite.migrate()
                return try await body(sqlite)
            }
        }
    }
}
