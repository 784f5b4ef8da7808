/// How both backends migrate: the same versions in the same order, each recorded in
/// `schema_migrations` by the transaction that applies it.
extension WorkflowSchema {
    package enum Dialect: Sendable {
        case sqlite
        case postgres
    }

    /// Creates `schema_migrations` if missing; run first, in the migrating transaction.
    package static func migrationsTable(_ dialect: Dialect) -> String {
        switch dialect {
        case .sqlite: return sqliteMigrationsTable
        case .postgres: return postgresMigrationsTable
        }
    }

    /// Lists the applied versions, in a column `version`.
    package static let selectAppliedVersions = "SELECT version FROM schema_migrations"

    /// The statements that bring a database whose `schema_migrations` lists `applied` to
    /// `latestVersion`, to run in order in the transaction that read `applied`: each missing
    /// migration's own statements, then the row that records it, stamped `appliedAt` (an SQL
    /// expression for milliseconds since 1970).
    ///
    /// Throws `StoreError.schemaTooNew` when `applied` holds a version this build does not know:
    /// the database was written by a newer Converge, and an older one must not touch it.
    /// `location` says where the store is (without a password), for that message.
    package static func statementsToMigrate(
        applied: Set<Int>, dialect: Dialect, appliedAt: String, location: String
    ) throws -> [String] {
        if let newest = applied.max(), newest > latestVersion {
            throw StoreError.schemaTooNew(found: newest, supported: latestVersion, location: location)
        }
        var statements: [String] = []
        for migration in migrations where !applied.contains(migration.version) {
            statements += migration.statements(dialect)
            statements.append("INSERT INTO schema_migrations (version, applied_at) VALUES (\(migration.version), \(appliedAt))")
        }
        return statements
    }
}

extension WorkflowSchema.Migration {
    package func statements(_ dialect: WorkflowSchema.Dialect) -> [String] {
        switch dialect {
        case .sqlite: return sqlite
        case .postgres: return postgres
        }
    }
}
