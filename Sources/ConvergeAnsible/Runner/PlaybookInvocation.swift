import ConvergeCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One `ansible-playbook` run: a private working folder (mode 0700) with the playbook's
/// files, a generated inventory of the target's environment, the ssh keys (mode 0600) and the
/// extra variables, all removed afterwards, and the jsonl callback's events read into a
/// `PlaybookResult`.
struct PlaybookInvocation: Sendable {
    /// The program run; `CONVERGE_ANSIBLE_PLAYBOOK` overrides it (another Ansible install).
    static var program: String {
        ProcessInfo.processInfo.environment["CONVERGE_ANSIBLE_PLAYBOOK"] ?? "ansible-playbook"
    }

    var name: String
    var bundle: PlaybookBundle
    /// The playbook file, relative to the repository root.
    var playbookPath: String
    var inventory: InventorySpec
    var hosts: [InventorySpec.Host]
    var variables: [String: JSONValue]
    var checkMode: Bool
    var forks: Int
    var timeout: Duration

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func run() async throws -> PlaybookResult {
        let folder = try Self.makePrivateFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try write(into: folder)
        var arguments = ["-i", "\(folder)/inventory.json", "--limit", hosts.map(\.name).joined(separator: ","), "--forks", String(forks)]
        if checkMode { arguments.append("--check") }
        if !variables.isEmpty { arguments += ["-e", "@\(folder)/extra-vars.json"] }
        // Absolute: ansible-playbook finds roles and files beside the playbook, whatever its
        // working directory.
        arguments.append("\(folder)/files/\(playbookPath.dropFirst(bundle.folder.count + 1))")
        let process = ChildProcess(
            executable: Self.program, arguments: arguments, environment: environment(folder),
            stdoutPath: "\(folder)/stdout.jsonl", stderrPath: "\(folder)/stderr.log")
        let clock = ContinuousClock()
        let started = clock.now
        let exit = try await process.run(timeout: timeout)
        let elapsed = clock.now - started
        let stdout = FileManager.default.contents(atPath: "\(folder)/stdout.jsonl").map { [UInt8]($0) } ?? []
        var result = PlaybookResult.read(
            jsonl: stdout, targets: hosts.map(\.name), playbook: name, exitCode: exit.code, checkMode: checkMode,
            duration: elapsed.timeInterval)
        if exit.timedOut {
            result.summary = .allFailed
            result.exitMeaning = "killed after the timeout of \(timeout)"
        }
        if exit.code != 0 || result.hosts.isEmpty {
            let stderr = FileManager.default.contents(atPath: "\(folder)/stderr.log") ?? Data()
            let tail = String(decoding: stderr.suffix(4096), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            result.errorOutput = tail.isEmpty ? nil : tail
        }
        return result
    }

    /// The environment ansible-playbook runs with: the jsonl callback, no colour, no retry
    /// files, its temporary files inside the working folder, host keys checked only against
    /// the inventory's known-hosts file, ssh pipelining unless the inventory turns it off.
    private func environment(_ folder: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { key, _ in
            ["PATH", "HOME", "LANG", "LC_ALL", "USER", "LOGNAME", "TMPDIR", "SSH_AUTH_SOCK"].contains(key)
        }
        environment["PATH"] = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        environment["ANSIBLE_STDOUT_CALLBACK"] = "ansible.posix.jsonl"
        environment["ANSIBLE_NOCOLOR"] = "1"
        environment["ANSIBLE_RETRY_FILES_ENABLED"] = "False"
        environment["ANSIBLE_PYTHON_INTERPRETER"] = "auto_silent"
        environment["ANSIBLE_LOCAL_TEMP"] = "\(folder)/tmp"
        // ssh connections of this run only: a connection another run left open would be
        // reused without the key being checked again.
        environment["ANSIBLE_SSH_CONTROL_PATH_DIR"] = "\(folder)/cp"
        environment["ANSIBLE_HOST_KEY_CHECKING"] = inventory.knownHostsFile == nil ? "False" : "True"
        environment["ANSIBLE_PIPELINING"] = inventory.pipelining ? "True" : "False"
        return environment
    }

    private static func makePrivateFolder() throws -> String {
        var template = Array((NSTemporaryDirectory() + "/converge-ansible-XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ $0.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw Failure(description: "cannot create a working folder in \(NSTemporaryDirectory()): \(String(cString: strerror(errno)))")
        }
        return String(cString: made)
    }

    private func write(into folder: String) throws {
        let manager = FileManager.default
        for file in bundle.files {
            let path = "\(folder)/files/\(file.path.dropFirst(bundle.folder.count + 1))"
            try manager.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(file.bytes).write(to: URL(fileURLWithPath: path))
        }
        try manager.createDirectory(atPath: "\(folder)/keys", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try manager.createDirectory(atPath: "\(folder)/tmp", withIntermediateDirectories: true)
        var keyFiles: [InventorySpec.PrivateKey: String] = [:]
        for host in hosts {
            guard let key = host.ssh.privateKey, keyFiles[key] == nil else { continue }
            let path = "\(folder)/keys/key-\(keyFiles.count)"
            try Self.writePrivate(try Self.read(key), to: path)
            keyFiles[key] = path
        }
        try Self.writePrivate(Array(inventoryDocument(keyFiles: keyFiles).serialized.utf8), to: "\(folder)/inventory.json")
        if !variables.isEmpty {
            try Self.writePrivate(Array(JSONValue.object(variables).serialized.utf8), to: "\(folder)/extra-vars.json")
        }
    }

    /// The key's bytes, ending with a newline (OpenSSH refuses a key file without one).
    private static func read(_ key: InventorySpec.PrivateKey) throws -> [UInt8] {
        var bytes: [UInt8]
        switch key {
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw Failure(description: "cannot read the ssh private key file \(path)")
            }
            bytes = [UInt8](data)
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw Failure(description: "the ssh private key's environment variable \(name) is not set")
            }
            bytes = Array(value.utf8)
        }
        if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        return bytes
    }

    /// Created with mode 0600 before a byte is written: a key is never readable by others.
    private static func writePrivate(_ bytes: [UInt8], to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
            offset += written
        }
    }

    /// The YAML inventory plugin's JSON form: the environment as a group whose children are
    /// its groups, with their variables and hosts.
    func inventoryDocument(keyFiles: [InventorySpec.PrivateKey: String]) -> JSONValue {
        guard let environmentName = hosts.first?.environment,
            let environment = inventory.environments.first(where: { $0.name == environmentName })
        else { return .object([:]) }
        // Only the inventory's key: an ssh agent of the process running Converge is not offered.
        let sshArguments =
            (inventory.knownHostsFile.map { "-o UserKnownHostsFile=\($0) -o StrictHostKeyChecking=yes" }
                ?? "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no") + " -o IdentitiesOnly=yes"
        var groups: [String: JSONValue] = [:]
        for group in environment.groups {
            var members: [String: JSONValue] = [:]
            for host in hosts where host.groups.contains(group.name) {
                var variables = host.vars
                variables["ansible_host"] = .string(host.address)
                variables["ansible_port"] = .int(host.ssh.port ?? 22)
                if let user = host.ssh.user { variables["ansible_user"] = .string(user) }
                if let key = host.ssh.privateKey, let path = keyFiles[key] { variables["ansible_ssh_private_key_file"] = .string(path) }
                variables["ansible_ssh_common_args"] = .string(sshArguments)
                members[host.name] = .object(variables)
            }
            guard !members.isEmpty else { continue }
            groups[group.name] = .object(["vars": .object(group.vars), "hosts": .object(members)])
        }
        return .object([
            "all": .object([
                "children": .object([environment.name: .object(["vars": .object(environment.vars), "children": .object(groups)])])
            ])
        ])
    }
}
