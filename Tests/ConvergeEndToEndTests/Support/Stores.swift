import Foundation
import Testing

/// The two journal backends every workflow test runs against.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// The `converge` options selecting this store for a lab. PostgreSQL comes from
    /// `CONVERGE_TEST_POSTGRES_URL` (scripts/postgres.sh starts a server and prints it);
    /// without it the test fails, it never skips.
    func arguments(for lab: Lab) throws -> [String] {
        switch self {
        case .sqlite:
            return ["--state", lab.directory.appendingPathComponent("state.db").path]
        case .postgres:
            guard let url = ProcessInfo.processInfo.environment["CONVERGE_TEST_POSTGRES_URL"], !url.isEmpty else {
                Issue.record("CONVERGE_TEST_POSTGRES_URL is not set: run `eval \"$(scripts/postgres.sh)\"` first (scripts/test.sh does)")
                throw MissingComponent(name: "PostgreSQL")
            }
            return ["--store", url]
        }
    }
}

struct MissingComponent: Error, CustomStringConvertible {
    var name: String
    var description: String { "\(name) is not available" }
}
