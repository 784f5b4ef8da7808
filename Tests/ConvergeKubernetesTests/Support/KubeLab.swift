import ConvergeCore
import ConvergeDocker
import ConvergeKubernetes
import ConvergeRuntime
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Testing

struct MissingComponent: Error, CustomStringConvertible {
    var name: String
    var description: String { "\(name) is not available" }
}

/// The test kube-apiserver (started by scripts/kube-apiserver.sh) seen by one test: its own
/// Converge instance, namespace prefix and journal, so tests never see each other's objects.
/// Cleans up what it created; namespaces stay Terminating (no controller finalizes them),
/// under names no other test uses.
struct KubeLab {
    let kubeconfig: String
    let token: String
    let id: String
    let directory: URL

    var instance: String { "cvk-\(id)" }
    var namespace: String { "cvk-\(id)" }
    var statePath: String { directory.appendingPathComponent("state.db").path }

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func with(_ body: (KubeLab) async throws -> Void) async throws {
        var environment = ProcessInfo.processInfo.environment
        if environment["CONVERGE_TEST_KUBECONFIG"] == nil,
            let saved = try? String(contentsOf: root.appendingPathComponent(".build-kube/env"), encoding: .utf8)
        {
            for line in saved.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { environment[parts[0]] = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            }
        }
        guard let kubeconfig = environment["CONVERGE_TEST_KUBECONFIG"], let tokenFile = environment["CONVERGE_TEST_KUBE_TOKEN_FILE"],
            let token = try? String(contentsOfFile: tokenFile, encoding: .utf8)
        else {
            Issue.record("no test kube-apiserver: run `eval \"$(scripts/kube-apiserver.sh --start)\"` (scripts/test.sh does)")
            throw MissingComponent(name: "kube-apiserver")
        }
        let id = UUID().uuidString.prefix(8).lowercased()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cvk-\(id)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let lab = KubeLab(
            kubeconfig: kubeconfig, token: token.trimmingCharacters(in: .whitespacesAndNewlines), id: String(id), directory: directory)
        defer { lab.cleanUp() }
        try await body(lab)
    }

    func cleanUp() {
        _ = try? kubectl(["delete", "namespace", namespace, "--wait=false", "--ignore-not-found"])
        _ = try? kubectl(["delete", "crd", "-l", "cvk-test=\(id)", "--ignore-not-found"])
        _ = try? kubectl([
            "delete", "configmap,secret", "-n", "default", "-l", "converge.dev/inventory-of=\(instance)", "--ignore-not-found",
        ])
        _ = try? kubectl(["delete", "secret", "-n", "default", "converge-snapshot-key-\(instance)", "--ignore-not-found"])
        try? FileManager.default.removeItem(at: directory)
    }

    func clusterManifest(kubeconfig: String? = nil) -> String {
        """
        apiVersion: converge.dev/v1alpha1
        kind: KubernetesCluster
        metadata: {name: lab}
        spec:
          kubeconfig: \(kubeconfig ?? self.kubeconfig)
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {name: \(namespace)}

        """
    }

    func files(_ yaml: String, cluster: String? = nil) -> [SourceFile] {
        [
            SourceFile(path: "cluster.yaml", bytes: Array((cluster ?? clusterManifest()).utf8)),
            SourceFile(path: "objects.yaml", bytes: Array(yaml.utf8)),
        ]
    }

    func runtime(plugins: [ProviderPlugin] = [.kubernetes]) -> Runtime {
        Runtime(plugins: plugins, instance: instance, version: "test")
    }

    /// The plan for `yaml` (beside the cluster and the lab's namespace).
    func plan(_ yaml: String, cluster: String? = nil, plugins: [ProviderPlugin] = [.kubernetes]) async throws -> Plan {
        try await runtime(plugins: plugins).run { runtime in
            try await runtime.plan(try runtime.load(files(yaml, cluster: cluster)), source: testSource).plan
        }
    }

    /// Plans and runs `yaml` on the lab's journal.
    func reconcile(_ yaml: String) async throws -> ReconcileTick.Outcome {
        let files = files(yaml)
        return try await runtime().run { runtime in
            try await SQLiteWorkflowStore.withStore(path: statePath) { store in
                try await store.migrate()
                let options = WorkflowOptions(retry: RetryPolicy(initialDelay: 0.1, multiplier: 2, maximumDelay: 1, maximumAttempts: 2))
                let tick = ReconcileTick(engine: runtime.engine(store: store, parallelism: 8), options: options)
                return try await tick.run(try runtime.load(files), files: files, revision: testSource)
            }
        }
    }

    @discardableResult
    func kubectl(_ arguments: [String]) throws -> String {
        try ProcessRunner.check(["kubectl", "--kubeconfig", kubeconfig] + arguments).stdout
    }

    func json(_ arguments: [String]) throws -> [String: Any] {
        let text = try kubectl(["get"] + arguments + ["-o", "json"])
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }

    /// Plays the missing deployment controller for `name`: writes a rolled-out status through
    /// the status subresource as soon as the Deployment exists, until the task is cancelled.
    func rollOut(deployment name: String) -> Task<Void, Never> {
        Task {
            var written: Int?
            while !Task.isCancelled {
                if let object = try? json(["deployment", name, "-n", namespace]),
                    let metadata = object["metadata"] as? [String: Any], let generation = metadata["generation"] as? Int,
                    generation != written
                {
                    let replicas = (object["spec"] as? [String: Any])?["replicas"] as? Int ?? 1
                    let status = """
                        {"status":{"observedGeneration":\(generation),"replicas":\(replicas),"updatedReplicas":\(replicas),"readyReplicas":\(replicas),"availableReplicas":\(replicas)}}
                        """
                    if (try? kubectl(["patch", "deployment", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", status]))
                        != nil
                    {
                        written = generation
                    }
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

extension ReconcileTick.Outcome {
    var run: RunRecord? {
        if case .ran(_, let run) = self { return run }
        return nil
    }
}
