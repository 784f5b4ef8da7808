import ConvergeDocker
import ConvergeTestSupport
import Foundation
import Testing

/// Images from a private registry, pinned by digest: the test registry (scripts/registry.sh)
/// with TLS and htpasswd auth, the real engine pulling from it.
@Suite struct RegistryTests {
    static func manifests(
        _ lab: Lab, image: String, pull: String = "ifNotPresent",
        registry: String = ProcessInfo.processInfo.environment["CONVERGE_TEST_REGISTRY"] ?? "",
        credentials: String
    ) -> [String: String] {
        [
            "set.yaml": localDockerNetwork("\(lab.prefix)-net", subnet: "\(lab.subnetA)0/24") + """

                ---
                apiVersion: converge.dev/v1alpha1
                kind: RegistryCredentials
                metadata: {name: lab-registry}
                spec: {registry: "\(registry)", \(credentials)}
                ---
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(lab.prefix)-app}
                spec:
                  image: \(image)
                  pull: \(pull)
                  command: [sleep, "2147483647"]
                  networks: [{name: \(lab.prefix)-net}]
                """
        ]
    }

    @Test func aPrivateImageIsPulledWithItsCredentialsAndPinnedToItsDigest() async throws {
        try await Lab.with { lab in
            let registry = try await TestRegistry.running(in: lab)
            let repository = "\(registry.address)/\(lab.prefix)/app"
            let digest = try await registry.pushNewImage(as: "\(repository):1.4", variant: "\(lab.prefix)-one")
            defer { _ = try? ProcessRunner.run(["docker", "rmi", "-f", "\(repository):1.4"]) }
            let wrongFile = lab.directory.appendingPathComponent("wrong.json")
            let rightFile = lab.directory.appendingPathComponent("right.json")
            try registry.writeDockerConfig(to: wrongFile, password: "not-the-password")
            try registry.writeDockerConfig(to: rightFile)

            // Wrong credentials: a plan error naming the image, the manifest and the
            // credentials; nothing is made and no secret is printed.
            let environment = ["CVT_REGISTRY_USER": registry.user, "CVT_REGISTRY_PASSWORD": "not-the-password"]
            try lab.write(
                Self.manifests(
                    lab, image: "\(repository):1.4", credentials: "env: {username: CVT_REGISTRY_USER, password: CVT_REGISTRY_PASSWORD}"),
                into: "repo")
            let refused = try await lab.reconcile(["repo"], environment: environment)
            #expect(refused.exitCode != 0)
            #expect(
                refused.stderr.contains("image '\(repository):1.4' of Container/\(lab.prefix)-app (repo/set.yaml:"), "\(refused.stderr)")
            #expect(
                refused.stderr.contains("the registry refused the credentials of RegistryCredentials/lab-registry"), "\(refused.stderr)")
            #expect(refused.stderr.contains("nothing was changed"))
            #expect(try await lab.managedContainers().isEmpty)
            #expect(try await lab.managedNetworks().isEmpty, "the whole plan stops, not only the container")
            try lab.write(Self.manifests(lab, image: "\(repository):1.4", credentials: "dockerConfig: \(wrongFile.path)"), into: "repo")
            let refusedFromFile = try await lab.reconcile("repo", "--dry-run")
            #expect(refusedFromFile.stderr.contains("refused the credentials"), "\(refusedFromFile.stderr)")
            #expect(!(refusedFromFile.stdout + refusedFromFile.stderr + refused.stdout + refused.stderr).contains("not-the-password"))

            // Right credentials: the plan shows the digest, the apply pulls exactly it.
            try lab.write(Self.manifests(lab, image: "\(repository):1.4", credentials: "dockerConfig: \(rightFile.path)"), into: "repo")
            let plan = try await lab.reconcile("repo", "--dry-run")
            #expect(plan.exitCode == 2, "changes to make: \(plan.stderr)")
            #expect(plan.stdout.contains(#"image                           = "\#(repository):1.4@\#(digest)""#), "\(plan.stdout)")
            let applied = try await lab.reconcile("repo")
            #expect(applied.exitCode == 0, "\(applied.stderr)")
            let container = try await lab.engine.inspectContainer("\(lab.prefix)-app")
            #expect(container.config?.image == "\(repository):1.4@\(digest)")
            #expect(
                try await lab.engine.inspectImage("\(repository):1.4").repoDigests?.contains("\(repository)@\(digest)") == true,
                "the pulled image carries its tag, as after docker pull")
            #expect(!(plan.stdout + applied.stdout + applied.stderr).contains(registry.password))

            // In sync, with the image on the host: ifNotPresent asks the registry nothing.
            let before = try registry.manifestRequests(for: "\(lab.prefix)/app")
            let again = try await lab.reconcile("repo", "--dry-run")
            #expect(again.stdout.contains("No changes"), "\(again.stdout)")
            #expect(try registry.manifestRequests(for: "\(lab.prefix)/app") == before)
        }
    }

    @Test func anApprovalAndAResumedRunCoverOnlyTheDigestThePlanPinned() async throws {
        try await Lab.with { lab in
            let registry = try await TestRegistry.running(in: lab)
            let repository = "\(registry.address)/\(lab.prefix)/app"
            defer { _ = try? ProcessRunner.run(["docker", "rmi", "-f", "\(repository):1"]) }
            let first = try await registry.pushNewImage(as: "\(repository):1", variant: "\(lab.prefix)-first")
            let config = lab.directory.appendingPathComponent("auth.json")
            try registry.writeDockerConfig(to: config)
            var files = Self.manifests(lab, image: "\(repository):1", pull: "always", credentials: "dockerConfig: \(config.path)")
            files["policy.yaml"] = """
                apiVersion: converge.dev/v1alpha1
                kind: ApprovalPolicy
                metadata: {name: protect-app}
                spec:
                  match: {kinds: [Container]}
                  actions: [create, update, delete]
                  approvers: [alice]
                """
            try lab.write(files, into: "repo")

            // The approval is for the digest the plan pinned: once the tag is pushed again,
            // approving that plan is refused.
            let waiting = try await lab.reconcile("repo")
            #expect(waiting.exitCode == 3, "\(waiting.stderr)")
            #expect(waiting.stdout.contains("\(repository):1@\(first)"), "\(waiting.stdout)")
            let second = try await registry.pushNewImage(as: "\(repository):1", variant: "\(lab.prefix)-second")
            let run = try #require(
                waiting.stderr.range(of: #"Run (\d+)"#, options: .regularExpression).map { String(waiting.stderr[$0].dropFirst(4)) })
            let approved = try await lab.converge(["approve", run, "--approver", "alice"])
            #expect(approved.exitCode != 0)
            #expect(approved.stderr.contains("the live state changed since run \(run)'s plan was reviewed"), "\(approved.stderr)")
            #expect(try await lab.engine.listContainers(all: true, nameFilters: ["\(lab.prefix)-app"]).isEmpty)

            // A run cut off before its container step, resumed after the tag moved again, runs
            // its journaled plan: the step refuses the other image and that run rolls back;
            // only a new plan, which pins the new digest, makes the container.
            files["policy.yaml"] = nil
            try FileManager.default.removeItem(at: lab.directory.appendingPathComponent("repo/policy.yaml"))
            try lab.write(files, into: "repo")
            let killed = try await lab.reconcile(["repo"], environment: ["CONVERGE_FAULT": "kill-after-step:0"])
            #expect(killed.exitCode != 0)
            let third = try await registry.pushNewImage(as: "\(repository):1", variant: "\(lab.prefix)-third")
            let resumed = try await lab.reconcile("repo")
            #expect(resumed.stderr.contains("resuming run"), "\(resumed.stderr)")
            #expect(
                resumed.stderr.contains("the plan pinned image '\(repository):1' to \(second), but it now points to \(third)"),
                "\(resumed.stderr)")
            #expect(resumed.stderr.contains("rolled back"), "\(resumed.stderr)")
            #expect(
                try await lab.engine.inspectContainer("\(lab.prefix)-app").config?.image == "\(repository):1@\(third)", "\(resumed.stderr)")
        }
    }

    @Test func anImageThatCannotBeResolvedStopsThePlanNamingIt() async throws {
        try await Lab.with { lab in
            let registry = try await TestRegistry.running(in: lab)
            let config = lab.directory.appendingPathComponent("auth.json")
            try registry.writeDockerConfig(to: config)
            try lab.write(
                Self.manifests(lab, image: "\(registry.address)/\(lab.prefix)/missing:1", credentials: "dockerConfig: \(config.path)"),
                into: "repo")
            let unknown = try await lab.reconcile("repo")
            #expect(unknown.exitCode != 0)
            #expect(unknown.stderr.contains("has no such repository or tag"), "\(unknown.stderr)")
            #expect(unknown.stderr.contains("Container/\(lab.prefix)-app (repo/set.yaml:"), "\(unknown.stderr)")

            // No registry answers on this port: said so, before any change.
            try lab.write(
                Self.manifests(lab, image: "127.0.0.1:9/\(lab.prefix)/app:1", credentials: "dockerConfig: \(config.path)"), into: "repo")
            let down = try await lab.reconcile("repo")
            #expect(down.exitCode != 0)
            #expect(down.stderr.contains("the registry 127.0.0.1:9 did not answer"), "\(down.stderr)")
            #expect(try await lab.managedNetworks().isEmpty)
        }
    }
}
