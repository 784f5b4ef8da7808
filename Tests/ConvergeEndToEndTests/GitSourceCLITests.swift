import Foundation
import Testing

/// `--repo`, `--ref` and `--path` as a user gives them.
@Suite struct GitSourceCLITests {
    @Test func refSelectsBranchTagOrCommit() async throws {
        try await Lab.with { lab in
            let repo = try await lab.gitRepository()
            var first = lab.labManifests()
            first["containers.yaml"] = nil
            let firstCommit = try await repo.commit(first.mapKeys { "deploy/\($0)" }, message: "networks only")
            try await repo.git("tag", "v1")
            try await repo.git("branch", "networks-only")
            try await repo.commit(lab.labManifests().mapKeys { "deploy/\($0)" }, message: "add containers")

            func planSummary(_ extra: String...) async throws -> String {
                let result = try await run(
                    convergeBinary,
                    ["reconcile", "--dry-run", "--repo", repo.directory.path, "--path", "deploy", "--instance", lab.instance] + extra,
                    in: lab.directory)
                #expect(result.exitCode == 2, "\(result.stderr)")
                return result.stdout.split(separator: "\n").first { $0.hasPrefix("Plan:") }.map(String.init) ?? result.stderr
            }
            #expect(try await planSummary() == "Plan: 4 to add, 0 to change, 0 to destroy.")
            #expect(try await planSummary("--ref", "main") == "Plan: 4 to add, 0 to change, 0 to destroy.")
            #expect(try await planSummary("--ref", "v1") == "Plan: 2 to add, 0 to change, 0 to destroy.")
            #expect(try await planSummary("--ref", "networks-only") == "Plan: 2 to add, 0 to change, 0 to destroy.")
            #expect(try await planSummary("--ref", firstCommit) == "Plan: 2 to add, 0 to change, 0 to destroy.")
            #expect(try await planSummary("--ref", String(firstCommit.prefix(10))) == "Plan: 2 to add, 0 to change, 0 to destroy.")

            let fileURL = try await run(
                convergeBinary,
                [
                    "reconcile", "--dry-run", "--repo", "file://" + repo.directory.path, "--path", "deploy", "--ref", "v1", "--instance",
                    lab.instance, "--output", "json",
                ], in: lab.directory)
            #expect(fileURL.exitCode == 2, "\(fileURL.stderr)")
            #expect(fileURL.stdout.contains(firstCommit))

            let missingRef = try await run(
                convergeBinary, ["reconcile", "--dry-run", "--repo", repo.directory.path, "--ref", "no-such-branch"], in: lab.directory)
            #expect(missingRef.exitCode == 1)
            #expect(missingRef.stderr.contains("ref 'no-such-branch' not found"))

            let missingPath = try await run(
                convergeBinary, ["reconcile", "--dry-run", "--repo", repo.directory.path, "--path", "nowhere"], in: lab.directory)
            #expect(missingPath.exitCode == 1)
            #expect(missingPath.stderr.contains("path 'nowhere' does not exist"))

            let notARepo = try await run(
                convergeBinary, ["validate", "--repo", lab.directory.appendingPathComponent("absent").path], in: lab.directory)
            #expect(notARepo.exitCode == 1)
            #expect(!notARepo.stderr.isEmpty)
            #expect(try await lab.managedNetworks().isEmpty)
        }
    }
}

extension Dictionary where Key == String {
    func mapKeys(_ transform: (String) -> String) -> [String: Value] {
        Dictionary(uniqueKeysWithValues: map { (transform($0.key), $0.value) })
    }
}
