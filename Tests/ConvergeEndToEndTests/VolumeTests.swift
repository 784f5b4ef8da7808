import ConvergeDocker
import ConvergeTestSupport
import Crypto
import Foundation
import Testing

/// Named volumes that never lose data, bind mounts the DockerHost allows, tmpfs; on the real
/// engine.
@Suite struct VolumeTests {
    static func files(_ lab: Lab, volume: String?, app: String, bindAllowed: String = "") -> [String: String] {
        var documents = [
            localDockerNetwork("\(lab.prefix)-net", subnet: "\(lab.subnetA)0/24")
                .replacingOccurrences(
                    of: "spec: {endpoint: \"unix:///var/run/docker.sock\"}", with: "spec: {allowedBindPaths: [\(bindAllowed)]}")
        ]
        if let volume {
            documents.append(
                "apiVersion: converge.dev/v1alpha1\nkind: Volume\nmetadata: {name: \(lab.prefix)-data}\nspec: {\(volume)}")
        }
        documents.append(
            """
            apiVersion: converge.dev/v1alpha1
            kind: Container
            metadata: {name: \(lab.prefix)-app}
            spec:
              image: converge-lab/busybox:1
              command: [sleep, "2147483647"]
              networks: [{name: \(lab.prefix)-net}]
            \(app)
            """)
        return ["set.yaml": documents.joined(separator: "\n---\n")]
    }

    /// Runs `body` in a lab whose app mounts a new Volume at /data holding `/data/kept`
    /// ("precious"), with the volume's name and the app's mounts; removes the volume after.
    static func withMountedVolume(_ body: (Lab, String, String) async throws -> Void) async throws {
        try await Lab.with { lab in
            let volume = "\(lab.prefix)-data"
            defer { _ = try? ProcessRunner.run(["docker", "volume", "rm", "-f", volume]) }
            let mounts = "  mounts: [{volume: \(volume), target: /data}]"
            try lab.write(files(lab, volume: "", app: mounts), into: "repo")
            #expect(try await lab.reconcile("repo").exitCode == 0)
            let wrote = try await lab.engine.exec(container: "\(lab.prefix)-app", command: ["sh", "-c", "echo precious > /data/kept"])
            #expect(wrote.exitCode == 0)
            try await body(lab, volume, mounts)
        }
    }

    func read(_ lab: Lab, volume: String) async throws -> String {
        try await run(
            "docker", ["run", "--rm", "--name", "\(lab.prefix)-reader", "-v", "\(volume):/d", "converge-lab/busybox:1", "cat", "/d/kept"]
        )
        .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func aNamedVolumeOutlivesAReplacedContainerAndItsOwnManifest() async throws {
        try await Self.withMountedVolume { lab, volume, mounts in

            // A change that recreates the container keeps the volume and what is in it.
            try lab.write(Self.files(lab, volume: "", app: mounts + "\n  env: {MODE: two}"), into: "repo")
            let replaced = try await lab.reconcile("repo")
            #expect(replaced.exitCode == 0, "\(replaced.stderr)")
            #expect(try await lab.engine.exec(container: "\(lab.prefix)-app", command: ["cat", "/data/kept"]).stdout == "precious\n")

            // Its manifest removed (and its mount): the plan keeps it and says why.
            try lab.write(Self.files(lab, volume: nil, app: "  env: {MODE: two}"), into: "repo")
            let plan = try await lab.reconcile("repo", "--dry-run")
            #expect(plan.stdout.contains("Volume/\(volume) is kept although its manifest was removed"), "\(plan.stdout)")
            #expect(!plan.stdout.contains("-   Volume/"), "no delete of the volume: \(plan.stdout)")
            #expect(plan.stdout.contains("Plan: 1 to add, 0 to change, 1 to destroy."), "only the container is recreated: \(plan.stdout)")
            #expect(try await lab.reconcile("repo").exitCode == 0)
            #expect(try await lab.engine.inspectVolume(volume).name == volume)
            #expect(try await read(lab, volume: volume) == "precious")
        }
    }

    @Test func aRetainedVolumeIsNeverReplacedAndTheRunRollsBack() async throws {
        try await Self.withMountedVolume { lab, _, mounts in
            // New driver options would make the volume again, empty.
            try lab.write(Self.files(lab, volume: "driverOptions: {type: tmpfs, device: tmpfs}", app: mounts), into: "repo")
            let refused = try await lab.reconcile("repo")
            #expect(refused.exitCode == 1, "\(refused.stdout)\n\(refused.stderr)")
            #expect(refused.stderr.contains("its reclaimPolicy is retain: its data would be lost"), "\(refused.stderr)")
            #expect(refused.stderr.contains("rolled back"), "\(refused.stderr)")
            #expect(try await lab.engine.exec(container: "\(lab.prefix)-app", command: ["cat", "/data/kept"]).stdout == "precious\n")
        }
    }

    @Test func reclaimPolicyDeleteLetsARemovedManifestDeleteTheVolume() async throws {
        try await Self.withMountedVolume { lab, volume, mounts in
            // The policy changes in place: only the store's record of it.
            try lab.write(Self.files(lab, volume: "reclaimPolicy: delete", app: mounts), into: "repo")
            let change = try await lab.reconcile("repo", "--dry-run")
            #expect(
                change.stdout.contains("reclaimPolicy") && change.stdout.contains("Plan: 0 to add, 1 to change, 0 to destroy."),
                "\(change.stdout)")
            #expect(try await lab.reconcile("repo").exitCode == 0)

            try lab.write(Self.files(lab, volume: nil, app: ""), into: "repo")
            let removed = try await lab.reconcile("repo")
            #expect(removed.exitCode == 0, "\(removed.stdout)\n\(removed.stderr)")
            #expect(removed.stderr.contains("deleted Volume/\(volume)"), "\(removed.stderr)")
            await #expect(throws: DockerEngineError.self) { try await lab.engine.inspectVolume(volume) }
        }
    }

    @Test func aFileFromTheRepositoryIsMountedReadOnlyAndItsChangeRecreatesTheContainer() async throws {
        try await Lab.with { lab in
            // The files Converge wrote on the host for this lab's instance.
            defer { try? FileManager.default.removeItem(atPath: "/var/lib/converge/files/\(lab.instance)") }
            let app = "  files: [{path: config/app.conf, target: /etc/app.conf}]"
            var files = Self.files(lab, volume: nil, app: app)
            files["config/app.conf"] = "mode = one\n"
            try lab.write(files, into: "repo")
            let first = try await lab.reconcile("repo")
            #expect(first.exitCode == 0, "\(first.stdout)\n\(first.stderr)")
            let name = "\(lab.prefix)-app"
            #expect(try await lab.engine.exec(container: name, command: ["cat", "/etc/app.conf"]).stdout == "mode = one\n")
            #expect(
                try await lab.engine.exec(container: name, command: ["sh", "-c", "echo x >> /etc/app.conf"]).exitCode != 0, "read-only")
            #expect(try await lab.reconcile("repo", "--dry-run").stdout.contains("No changes."))

            files["config/app.conf"] = "mode = two\n"
            try lab.write(files, into: "repo")
            let plan = try await lab.reconcile("repo", "--dry-run")
            let digest = "sha256:" + SHA256.hash(data: Data("mode = two\n".utf8)).map { String(format: "%02x", $0) }.joined()
            #expect(plan.stdout.contains("files./etc/app.conf") && plan.stdout.contains("config/app.conf (\(digest))"), "\(plan.stdout)")
            #expect(plan.stdout.contains("-/+ Container/\(name)"), "\(plan.stdout)")
            #expect(try await lab.reconcile("repo").exitCode == 0)
            #expect(try await lab.engine.exec(container: name, command: ["cat", "/etc/app.conf"]).stdout == "mode = two\n")

            files["set.yaml"] = files["set.yaml"]!.replacingOccurrences(of: "config/app.conf", with: "config/missing.conf")
            try lab.write(files, into: "repo")
            let missing = try await lab.reconcile("repo", "--dry-run")
            #expect(missing.exitCode == 1)
            #expect(missing.stderr.contains("spec.files: config/missing.conf is not in config/"), "\(missing.stderr)")
        }
    }

    @Test func bindMountsAreReadOnlyAndOnlyFromAllowedFolders() async throws {
        try await Lab.with { lab in
            let allowed = lab.directory.appendingPathComponent("config").path
            try FileManager.default.createDirectory(atPath: allowed, withIntermediateDirectories: true)
            try "from the host\n".write(toFile: allowed + "/app.conf", atomically: true, encoding: .utf8)
            let outside = "  mounts: [{bind: /etc, target: /host-etc}]"
            try lab.write(Self.files(lab, volume: nil, app: outside, bindAllowed: allowed), into: "repo")
            let refused = try await lab.reconcile("repo")
            #expect(refused.exitCode == 1)
            #expect(
                refused.stderr.contains("spec.mounts: /etc is not under a folder DockerHost/local allows to mount"), "\(refused.stderr)")
            #expect(try await lab.managedContainers().isEmpty, "nothing was made")

            let inside = "  mounts: [{bind: \(allowed), target: /etc/app}, {tmpfs: /scratch, size: 16Mi}]"
            try lab.write(Self.files(lab, volume: nil, app: inside, bindAllowed: allowed), into: "repo")
            #expect(try await lab.reconcile("repo").exitCode == 0)
            let app = "\(lab.prefix)-app"
            #expect(try await lab.engine.exec(container: app, command: ["cat", "/etc/app/app.conf"]).stdout == "from the host\n")
            #expect(try await lab.engine.exec(container: app, command: ["sh", "-c", "echo x > /etc/app/new"]).exitCode != 0, "read-only")
            #expect(
                try await lab.engine.exec(container: app, command: ["sh", "-c", "grep ' /scratch ' /proc/mounts"]).stdout.contains("tmpfs"))
            #expect(try await lab.reconcile("repo", "--dry-run").stdout.contains("No changes."))
        }
    }
}
