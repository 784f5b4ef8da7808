import ConvergeTestSupport
import Foundation
import Testing

/// Playbook targets for a test: containers of the lab image `converge-lab/sshd:1` (sshd and
/// python3, user `converge` with passwordless sudo) on a network of their own, reachable over
/// real ssh with a key made for the test. Built on `Lab`, whose cleanup removes them.
struct AnsibleLab {
    static let image = "converge-lab/sshd:1"

    let lab: Lab
    /// Host name (`h1`…) → the container's address.
    let addresses: [String: String]
    let keyPath: String

    var directory: URL { lab.directory }
    var prefix: String { lab.prefix }

    /// Starts `hosts` targets, runs `body`, and removes everything the lab made.
    static func with(hosts count: Int, _ body: (AnsibleLab) async throws -> Void) async throws {
        try await Lab.with { lab in
            let ansible = try await start(lab, hosts: count)
            try await body(ansible)
        }
    }

    /// Starts `count` targets in `lab` (cleaned up with it).
    static func start(_ lab: Lab, hosts count: Int) async throws -> AnsibleLab {
        guard (try? await run("docker", ["image", "inspect", image])).map(\.succeeded) == true else {
            Issue.record("the lab image \(image) is missing: run scripts/lab-images.sh (scripts/setup.sh does)")
            throw MissingComponent(name: image)
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ansible-playbook") else {
            Issue.record("ansible-playbook is missing: install Debian's ansible (scripts/setup.sh does)")
            throw MissingComponent(name: "ansible")
        }
        let keyPath = lab.directory.appendingPathComponent("id_ed25519").path
        try await expectSuccess(run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "converge-test", "-f", keyPath]))
        let publicKey = try String(contentsOfFile: keyPath + ".pub", encoding: .utf8)
        let network = "\(lab.prefix)-net"
        try await expectSuccess(run("docker", ["network", "create", "--label", "converge.dev/managed-by=\(lab.instance)", network]))
        var addresses: [String: String] = [:]
        for index in 1...count {
            let name = "\(lab.prefix)-h\(index)"
            try await expectSuccess(
                run(
                    "docker",
                    [
                        "run", "-d", "--name", name, "--hostname", "h\(index)", "--network", network, "-e", "AUTHORIZED_KEYS=\(publicKey)",
                        image,
                    ]))
            let inspect = try await run("docker", ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name])
            addresses["h\(index)"] = inspect.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        // sshd listens within a moment of the container's start; wait until each answers.
        for (host, address) in addresses {
            var attempts = 0
            while try await !run("docker", ["exec", "\(lab.prefix)-\(host)", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/22"]).succeeded {
                attempts += 1
                if attempts > 50 { throw MissingComponent(name: "sshd on \(host) (\(address))") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        return AnsibleLab(lab: lab, addresses: addresses, keyPath: keyPath)
    }

    private static func expectSuccess(_ result: CommandResult) throws {
        guard result.succeeded else { throw MissingComponent(name: result.summary) }
    }

    /// An Inventory `lab` with environment `test`: group `web` holding `hosts` (default: all),
    /// plus `extraHosts` YAML lines (e.g. an unreachable host) in the same group.
    func inventory(hosts: [String]? = nil, extraHosts: [String] = [], groups: String = "") -> String {
        let names = hosts ?? addresses.keys.sorted()
        let entries = names.map { "            \($0): {address: \(addresses[$0] ?? "")}" } + extraHosts.map { "            \($0)" }
        return """
            apiVersion: converge.dev/v1alpha1
            kind: Inventory
            metadata: {name: lab}
            spec:
              ssh: {user: converge, privateKey: {file: \(keyPath)}}
              environments:
                test:
                  groups:
                    web:
                      hosts:
            \(entries.joined(separator: "\n"))
            \(groups)
            """
    }

    /// A Playbook `NAME` at `ansible/NAME.yml` and a PlaybookRun `NAME` on `target`.
    func playbook(_ name: String, target: String = "web", runSpec: String = "") -> String {
        """
        apiVersion: converge.dev/v1alpha1
        kind: Playbook
        metadata: {name: \(name)}
        spec: {path: ansible/\(name).yml}
        ---
        apiVersion: converge.dev/v1alpha1
        kind: PlaybookRun
        metadata: {name: \(name)}
        spec:
          playbook: \(name)
          target: \(target)
        \(runSpec)
        """
    }

    /// Writes `files` (relative path → content) into the manifests folder `repo`.
    func write(_ files: [String: String]) throws {
        try lab.write(files, into: "repo")
    }

    /// `converge reconcile repo` as the lab's instance.
    func reconcile(_ arguments: [String] = [], environment: [String: String] = [:]) async throws -> CommandResult {
        try await lab.reconcile(["repo"] + arguments, environment: environment)
    }

    /// Any `converge` command in the lab's folder.
    func converge(_ arguments: [String]) async throws -> CommandResult {
        try await lab.converge(arguments)
    }

    /// A file's content on host `host`, or nil when it does not exist.
    func file(_ path: String, on host: String) async throws -> String? {
        let result = try await run("docker", ["exec", "\(prefix)-\(host)", "cat", path])
        return result.succeeded ? result.stdout : nil
    }
}
