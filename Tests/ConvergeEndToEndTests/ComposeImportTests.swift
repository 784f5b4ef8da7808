import ConvergeTestSupport
import Foundation
import Testing

/// `converge import compose`: a five-service compose file run by docker-compose, and its
/// import run by Converge, give the same containers.
@Suite struct ComposeImportTests {
    static func composeFile(port: Int, subnet: String) -> String {
        """
        version: "3.8"
        services:
          web:
            image: converge-lab/busybox:1
            command: httpd -f -p 80 -h /www
            ports: ["127.0.0.1:\(port):80"]
            networks: [front]
            depends_on: [api]
            volumes: ["./conf:/etc/web:ro"]
            restart: unless-stopped
          api:
            image: converge-lab/busybox:1
            command: ["sleep", "2147483647"]
            environment: {MODE: prod, DB: db}
            networks:
              front: {}
              back: {aliases: [backend]}
            depends_on:
              db: {condition: service_healthy}
            mem_limit: 64m
          worker:
            image: converge-lab/busybox:1
            command: sh -c "sleep 2147483647"
            environment: ["QUEUE=jobs"]
            networks: [back]
            cap_drop: [ALL]
            stop_grace_period: 5s
          db:
            image: converge-lab/busybox:1
            command: sh -c 'touch /tmp/ready && exec sleep 2147483647'
            healthcheck: {test: ["CMD-SHELL", "test -f /tmp/ready"], interval: 1s, retries: 10}
            networks: [back]
            volumes: ["data:/data"]
            build: .
          cache:
            image: converge-lab/busybox:1
            command: sleep 2147483647
            tmpfs: [/scratch]
            user: "1000"
        networks:
          front: {}
          back:
            ipam: {config: [{subnet: \(subnet)}]}
        volumes:
          data: {}
        """
    }

    static let services = ["web", "api", "worker", "db", "cache"]

    /// What makes two containers the same, from `docker inspect`: everything but names and ids.
    static func shape(_ container: String, project: String) async throws -> [String: String] {
        let inspect = try await run("docker", ["inspect", container])
        let object = try #require((try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [[String: Any]])?.first)
        let config = object["Config"] as? [String: Any] ?? [:]
        let host = object["HostConfig"] as? [String: Any] ?? [:]
        let endpoints = (object["NetworkSettings"] as? [String: Any])?["Networks"] as? [String: [String: Any]] ?? [:]
        var shape: [String: String] = [:]
        shape["image"] = config["Image"] as? String
        shape["cmd"] = (config["Cmd"] as? [String])?.joined(separator: " ")
        shape["env"] = (config["Env"] as? [String] ?? []).sorted().joined(separator: ",")
        shape["user"] = config["User"] as? String
        shape["stopTimeout"] = (config["StopTimeout"] as? Int).map(String.init)
        shape["healthcheck"] = (config["Healthcheck"] as? [String: Any]).map {
            "\($0["Test"] ?? "") \($0["Interval"] ?? "") \($0["Retries"] ?? "")"
        }
        // docker-compose leaves the policy empty where Converge writes "no": the same policy.
        let restart = (host["RestartPolicy"] as? [String: Any])?["Name"] as? String ?? ""
        shape["restart"] = restart.isEmpty ? "no" : restart
        shape["memory"] = (host["Memory"] as? Int).map(String.init)
        shape["capDrop"] = (host["CapDrop"] as? [String])?.joined(separator: ",")
        shape["ports"] = (host["PortBindings"] as? [String: Any]).flatMap { $0.isEmpty ? nil : "\($0.keys.sorted())" }
        let shortID = String((object["Id"] as? String ?? "").prefix(12))
        let name = (object["Name"] as? String ?? "").trimmingCharacters(in: ["/"])
        shape["networks"] = endpoints.keys.sorted().map { network in
            let aliases = (endpoints[network]?["Aliases"] as? [String] ?? []).filter { $0 != shortID && $0 != name }.sorted()
            return String(network.dropFirst(project.count + 1)) + ":" + aliases.joined(separator: "+")
        }.joined(separator: " ")
        // A tmpfs is a mount for Converge and a `Tmpfs` entry for docker-compose: it is
        // compared as what the container sees (below).
        shape["mounts"] = (object["Mounts"] as? [[String: Any]] ?? []).filter { $0["Type"] as? String != "tmpfs" }.map { mount in
            "\(mount["Type"] ?? "") \(mount["Destination"] ?? "") rw=\(mount["RW"] ?? "")"
        }.sorted().joined(separator: ",")
        shape["tmpfs"] = try await run("docker", ["exec", container, "sh", "-c", "grep -c ' /scratch tmpfs ' /proc/mounts || true"]).stdout
        return shape
    }

    @Test func aComposeFileAndItsImportGiveTheSameContainers() async throws {
        try await Lab.with { lab in
            let folder = lab.directory.appendingPathComponent("shop")
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("conf"), withIntermediateDirectories: true)
            try "listen 80\n".write(to: folder.appendingPathComponent("conf/web.conf"), atomically: true, encoding: .utf8)
            let compose = folder.appendingPathComponent("docker-compose.yml").path
            try Self.composeFile(port: Int.random(in: 20000..<40000), subnet: "\(lab.subnetB)0/24").write(
                toFile: compose, atomically: true, encoding: .utf8)
            let token = lab.prefix.filter { $0.isLetter || $0.isNumber }
            let composeProject = token + "compose", convergeProject = token + "converge"

            // docker-compose runs it, and is taken down again (the same subnet and port follow).
            let down = ["docker-compose", "-p", composeProject, "-f", compose, "down", "-v", "--timeout", "1"]
            defer { _ = try? ProcessRunner.run(down) }
            let up = try await run("docker-compose", ["-p", composeProject, "-f", compose, "up", "-d", "--no-build"])
            #expect(up.exitCode == 0, "\(up.stderr)")
            var expected: [String: [String: String]] = [:]
            for service in Self.services {
                expected[service] = try await Self.shape("\(composeProject)_\(service)_1", project: composeProject)
            }
            #expect(try await run(down[0], Array(down.dropFirst())).exitCode == 0)

            // Converge runs its import.
            let imported = try await lab.converge(["import", "compose", compose, "--out", "repo", "--project", convergeProject])
            #expect(imported.exitCode == 0, "\(imported.stderr)")
            #expect(imported.stderr.contains("services.db.build: not translated"), "\(imported.stderr)")
            defer {
                _ = try? ProcessRunner.run(["docker", "rm", "-f"] + Self.services.map { "\(convergeProject)_\($0)_1" })
                _ = try? ProcessRunner.run(["docker", "volume", "rm", "-f", "\(convergeProject)_data"])
            }
            let applied = try await lab.reconcile("repo")
            #expect(applied.exitCode == 0, "\(applied.stdout)\n\(applied.stderr)")
            for service in Self.services {
                let shape = try await Self.shape("\(convergeProject)_\(service)_1", project: convergeProject)
                #expect(shape == expected[service], "\(service): converge \(shape) vs compose \(expected[service] ?? [:])")
            }
            #expect(try await lab.reconcile("repo", "--dry-run").stdout.contains("No changes."))
        }
    }
}
