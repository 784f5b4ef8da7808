import ConvergeStore
import ConvergeStorePostgres
import ConvergeTestSupport
import Foundation
import Testing

/// The backends the behaviour suite runs against, each test once per backend.
typealias Backend = StoreBackend

extension StoreBackend: CustomTestStringConvertible {
    public var testDescription: String { rawValue }
}

/// A fresh, empty database for one test, on which it can open several stores (like several
/// processes sharing it).
typealias TestDatabase = ThrowawayDatabase

extension ThrowawayDatabase {
    /// Makes the database, runs `body`, then shuts every store it opened down and deletes it.
    /// PostgreSQL is `CONVERGE_TEST_POSTGRES_URL`, which `scripts/postgres.sh` prints (and
    /// `scripts/test.sh` exports). Missing, it is a failure, not a skip: a green run must mean
    /// both backends were tested.
    static func with<T>(_ backend: Backend, _ body: (TestDatabase) async throws -> T) async throws -> T {
        try await with(backend, postgresURL: environmentPostgresURL, body)
    }
}

/// The test server's PostgreSQL, for tests that open stores themselves.
func testPostgresConfiguration() throws -> PostgresStoreConfiguration {
    guard let url = ThrowawayDatabase.environmentPostgresURL else {
        throw TestSupportError(
            "CONVERGE_TEST_POSTGRES_URL is not set: start the test server with `eval \"$(scripts/postgres.sh)\"` "
                + "(scripts/test.sh does it for you), or point it at a PostgreSQL you may create databases on")
    }
    return try PostgresStoreConfiguration(url: url)
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
