import ConvergeCore
import ConvergeRuntime
import ConvergeVSphere
import Foundation
import Testing

@testable import ConvergeAnsible

/// A folder of manifests and playbooks on disk, loaded as `converge reconcile FOLDER` does.
struct RepositoryFolder {
    let root: URL

    init(_ files: [String: String]) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("cvt-ansible-\(UUID().uuidString.prefix(8))")
        try write(files)
    }

    func write(_ files: [String: String]) throws {
        for (path, content) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try content.write(to: url, atomically: true, encoding: .utf8)
        }
    }

    func load(_ runtime: Runtime = Runtime(plugins: [.ansible, .vSphere], instance: "test", version: "test")) async throws -> ManifestSet {
        try runtime.load(try await ManifestSource.folder(root.path).load())
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    /// Every diagnostic of loading the folder, as `file:line: message` with paths from the root.
    func problems() async -> [String] {
        do {
            _ = try await load()
            return []
        } catch let error as ManifestValidationError {
            return error.diagnostics.map { diagnostic in
                let location =
                    diagnostic.location.map { "\($0.file.replacingOccurrences(of: root.path + "/", with: "")):\($0.line): " } ?? ""
                return location + diagnostic.message
            }
        } catch {
            return ["\(error)"]
        }
    }
}

@Suite struct AnsibleKindsTests {
    static let keyFile: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cvt-ansible-test-key").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("not a real key\n".utf8))
        return path
    }()

    static func inventory(_ environments: String) -> String {
        """
        apiVersion: converge.dev/v1alpha1
        kind: Inventory
        metadata: {name: lab}
        spec:
          ssh: {user: converge, privateKey: {file: \(keyFile)}}
          environments:
        \(environments)
        """
    }

    static let twoEnvironments = inventory(
        """
            production:
              groups:
                web:
                  hosts:
                    web-1: {address: 10.0.0.11}
                    web-2: {address: 10.0.0.12, vars: {weight: 2}}
                db:
                  hosts:
                    db-1: {address: 10.0.0.21}
            staging:
              groups:
                web:
                  hosts:
                    stage-1: {address: 10.0.1.11}
        """)

    static func run(_ name: String, target: String, playbook: String = "site", extra: String = "") -> String {
        """

        ---
        apiVersion: converge.dev/v1alpha1
        kind: PlaybookRun
        metadata: {name: \(name)}
        spec: {playbook: \(playbook), target: \(target)\(extra)}
        """
    }

    static let playbook = """

        ---
        apiVersion: converge.dev/v1alpha1
        kind: Playbook
        metadata: {name: site}
        spec: {path: ansible/site.yml, extraVars: {release: "1.4"}}
        """

    static let playbookFiles = [
        "ansible/site.yml": "- hosts: all\n  roles: [base]\n",
        "ansible/roles/base/tasks/main.yml": "- ping:\n",
    ]

    @Test func targetsResolveToHostsGroupsAndEnvironments() async throws {
        let folder = try RepositoryFolder(
            Self.playbookFiles.merging([
                "manifests.yaml": Self.twoEnvironments + Self.playbook + Self.run("db", target: "db")
                    + Self.run("prod", target: "production")
                    + Self.run("stage-web", target: "staging/web") + Self.run("one", target: "web-2")
            ]) { $1 })
        defer { folder.remove() }
        let set = try await folder.load()
        func hosts(_ name: String) -> [String] {
            set[ResourceID(kind: PlaybookRunSpec.kind, name: name)]?.spec(as: PlaybookRunSpec.self)?.hosts(in: set).map(\.name) ?? []
        }
        #expect(hosts("db") == ["db-1"])
        #expect(hosts("prod") == ["web-1", "web-2", "db-1"])
        #expect(hosts("stage-web") == ["stage-1"])
        #expect(hosts("one") == ["web-2"])
        // The playbook's files are not read as manifests, and are pinned by their digest.
        #expect(set.repositoryFolders["ansible"]?.map(\.path) == ["ansible/roles/base/tasks/main.yml", "ansible/site.yml"])
    }

    @Test func badReferencesAreValidationErrorsWithTheirLines() async throws {
        let folder = try RepositoryFolder(
            Self.playbookFiles.merging([
                "manifests.yaml": Self.twoEnvironments + """

                    ---
                    apiVersion: converge.dev/v1alpha1
                    kind: Inventory
                    metadata: {name: other}
                    spec:
                      ssh: {user: converge, privateKey: {file: /nonexistent/converge-key}}
                      environments:
                        a:
                          groups: {g: {hosts: {shared: {address: 10.9.0.1}}}}
                        b:
                          groups: {g: {hosts: {shared: {address: 10.9.0.2}}}}
                    """ + Self.playbook + Self.run("typo", target: "wbe", extra: ", inventory: lab")
                    + Self.run("ambiguous", target: "web", extra: ", inventory: lab")
                        + """

                        ---
                        apiVersion: converge.dev/v1alpha1
                        kind: Playbook
                        metadata: {name: outside}
                        spec: {path: ../../etc/site.yml}
                        ---
                        apiVersion: converge.dev/v1alpha1
                        kind: Playbook
                        metadata: {name: missing}
                        spec: {path: ansible/absent.yml}
                        ---
                        apiVersion: converge.dev/v1alpha1
                        kind: Playbook
                        metadata: {name: nofolder}
                        spec: {path: playbooks/site.yml}
                        ---
                        apiVersion: converge.dev/v1alpha1
                        kind: ScheduledPlaybook
                        metadata: {name: badcron}
                        spec: {playbook: site, inventory: lab, target: db, schedule: "0 25 * * *"}
                        ---
                        apiVersion: converge.dev/v1alpha1
                        kind: ScheduledPlaybook
                        metadata: {name: badzone}
                        spec: {playbook: site, inventory: lab, target: db, schedule: "0 3 * * *", timeZone: CET, concurrencyPolicy: Sometimes}
                        """
            ]) { $1 })
        defer { folder.remove() }
        let problems = await folder.problems()
        let expected = [
            "spec.target: 'wbe' is not a host, group or environment of Inventory/lab",
            "spec.target: group 'web' exists in several environments",
            "host 'shared' is in environments 'a' and 'b'",
            "ssh private key file '/nonexistent/converge-key' (for host 'shared') does not exist or cannot be read",
            "spec.path: '../../etc' is outside the repository",
            "spec.path: playbook 'ansible/absent.yml' does not exist in the folder",
            "spec.path: folder 'playbooks' does not exist in the folder",
            "spec.schedule: hour: '25' is out of range 0-23",
            "spec.timeZone: unknown time zone 'CET'",
            "spec.concurrencyPolicy: expected Forbid, Allow or Replace",
        ]
        for message in expected {
            #expect(problems.contains { $0.contains(message) }, "missing '\(message)' in:\n\(problems.joined(separator: "\n"))")
        }
        #expect(
            problems.allSatisfy { $0.hasPrefix("manifests.yaml:") }, "every problem has file:line:\n\(problems.joined(separator: "\n"))")
    }

    @Test func aVMToProvisionMustRunAtAnAddressSomeInventoryReaches() async throws {
        let folder = try RepositoryFolder(
            Self.playbookFiles.merging([
                "manifests.yaml": Self.twoEnvironments + Self.playbook + """

                    ---
                    apiVersion: converge.dev/v1alpha1
                    kind: VCenter
                    metadata: {name: lab}
                    spec: {url: "https://127.0.0.1:1/sdk", datacenter: DC0, credentials: {username: u, passwordEnv: CVT_NONE}}
                    ---
                    apiVersion: converge.dev/v1alpha1
                    kind: VirtualMachine
                    metadata: {name: lonely}
                    spec:
                      template: tmpl-linux
                      cluster: DC0_C0
                      cpus: 1
                      memoryMB: 1024
                      powerState: poweredOff
                      provision: {playbook: site}
                    ---
                    apiVersion: converge.dev/v1alpha1
                    kind: VirtualMachine
                    metadata: {name: ghost}
                    spec: {template: tmpl-linux, cluster: DC0_C0, cpus: 1, memoryMB: 1024, provision: {playbook: nosuch}}
                    """
            ]) { $1 })
        defer { folder.remove() }
        let problems = await folder.problems()
        for message in [
            "spec.provision: a VM is provisioned over the network once it runs",
            "spec.provision: no Inventory has VirtualMachine/lonely among its hosts",
            "spec.provision.playbook: refers to Playbook/nosuch, which is not defined",
        ] {
            #expect(problems.contains { $0.contains(message) }, "missing '\(message)' in:\n\(problems.joined(separator: "\n"))")
        }
    }

    @Test func theInputsOfARunAreItsPlaybooksFilesVariablesAndHosts() async throws {
        let folder = try RepositoryFolder(
            Self.playbookFiles.merging(["manifests.yaml": Self.twoEnvironments + Self.playbook + Self.run("web", target: "production/web")])
            { $1 })
        defer { folder.remove() }
        func fields() async throws -> FieldMap {
            let set = try await folder.load()
            let run = try #require(set[ResourceID(kind: PlaybookRunSpec.kind, name: "web")])
            return run.spec.desiredFields(metadata: run.metadata, in: set)
        }
        let before = try await fields()
        #expect(before["vars"] == .map(FieldMap(["release": .string("1.4")])))
        #expect(before["hosts"] == .map(FieldMap(["web-1": .string("converge@10.0.0.11:22"), "web-2": .string("converge@10.0.0.12:22")])))

        try folder.write(["ansible/roles/base/tasks/main.yml": "- ping:\n- debug: {msg: changed}\n"])
        let roleChanged = try await fields()
        #expect(roleChanged["playbookDigest"] != before["playbookDigest"], "a role's file is part of the playbook's digest")
        #expect(roleChanged["inventoryVars"] == before["inventoryVars"])

        try folder.write([
            "manifests.yaml": Self.twoEnvironments.replacingOccurrences(of: "weight: 2", with: "weight: 3") + Self.playbook
                + Self.run("web", target: "production/web")
        ])
        #expect(try await fields()["inventoryVars"] != roleChanged["inventoryVars"], "a host variable is an input")
    }
}
