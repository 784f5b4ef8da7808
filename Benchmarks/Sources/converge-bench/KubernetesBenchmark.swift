import ConvergeCore
import ConvergeKubernetes
import ConvergeRuntime
import ConvergeStore
import ConvergeWorkflow
import Foundation

/// Kubernetes against the test kube-apiserver (scripts/kube-apiserver.sh): applying 1,000
/// ConfigMaps in 10 namespaces with Converge (in-process: the runtime and journal the CLI
/// uses) against `kubectl apply --server-side -f DIR`, the in-sync dry-run of the same set
/// with its API round trips, and (`kubernetes-scale`, in a child of its own) the peak RSS of
/// a reconcile of 10,000 objects.
///
/// Everything it makes lives in namespaces `cvb-<random>-…`, emptied and deleted at the end
/// (they stay Terminating: the test server runs no namespace controller).
enum KubernetesBenchmark {
    static let name = "kubernetes"
    static let scaleName = "kubernetes-scale"
    static let namespaces = 10

    struct Cluster {
        var kubeconfig: String
    }

    static func cluster(packagePath: String) throws -> Cluster {
        let started = try Subprocess.run(["/bin/bash", packagePath + "/scripts/kube-apiserver.sh", "--start"], inheritStderr: true)
        guard started.succeeded else { throw Subprocess.Failure(description: "scripts/kube-apiserver.sh --start failed") }
        for line in started.stdout.split(separator: "\n") where line.hasPrefix("CONVERGE_TEST_KUBECONFIG=") {
            return Cluster(kubeconfig: String(line.dropFirst("CONVERGE_TEST_KUBECONFIG=".count)))
        }
        throw Subprocess.Failure(description: "scripts/kube-apiserver.sh printed no kubeconfig")
    }

    /// The manifests: the cluster, `namespaces` Namespaces and `count` ConfigMaps spread over them.
    static func manifests(prefix: String, count: Int, cluster: Cluster) -> (converge: [SourceFile], kubectl: String) {
        var objects = ""
        for namespace in 0..<namespaces {
            objects += "apiVersion: v1\nkind: Namespace\nmetadata: {name: \(prefix)-\(namespace)}\n---\n"
        }
        for index in 0..<count {
            objects += """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: settings-\(index), namespace: \(prefix)-\(index % namespaces), labels: {app: bench}}
                data: {index: "\(index)", mode: fast, payload: "\(String(repeating: "x", count: 64))"}
                ---

                """
        }
        let clusterManifest = """
            apiVersion: converge.dev/v1alpha1
            kind: KubernetesCluster
            metadata: {name: bench}
            spec: {kubeconfig: \(cluster.kubeconfig)}
            """
        return (
            [
                SourceFile(path: "cluster.yaml", bytes: Array(clusterManifest.utf8)),
                SourceFile(path: "objects.yaml", bytes: Array(objects.utf8)),
            ], objects
        )
    }

    static func run(runs: Int, rounds: Int, packagePath: String) throws -> [Row] {
        let cluster = try cluster(packagePath: packagePath)
        let count = 1000
        var convergeTimes: [Double] = []
        var kubectlTimes: [Double] = []
        var dryRunTimes: [Double] = []
        var roundTrips = 0
        var prefixes: [String] = []
        defer { cleanUp(prefixes, cluster: cluster) }
        for round in 1...rounds {
            // kubectl: the files on disk, one server-side apply of the folder.
            let kubectlPrefix = "cvb-\(randomSuffix())"
            prefixes.append(kubectlPrefix)
            let folder = try makeTemporaryDirectory(prefix: "cvb-kube-")
            defer { try? FileManager.default.removeItem(atPath: folder) }
            try manifests(prefix: kubectlPrefix, count: count, cluster: cluster).kubectl.write(
                toFile: folder + "/objects.yaml", atomically: true, encoding: .utf8)
            let (kubectl, kubectlTime) = try Clock.time {
                try Subprocess.run([
                    "kubectl", "--kubeconfig", cluster.kubeconfig, "apply", "--server-side", "--field-manager=cvb", "-f", folder,
                ])
            }
            guard kubectl.succeeded else { throw Subprocess.Failure(description: "kubectl apply failed: \(kubectl.stderr.prefix(500))") }
            kubectlTimes.append(kubectlTime)

            // Converge: plan (with its dry-runs) and the journaled run, as `converge reconcile` does.
            let prefix = "cvb-\(randomSuffix())"
            prefixes.append(prefix)
            let files = manifests(prefix: prefix, count: count, cluster: cluster).converge
            let state = try makeTemporaryDirectory(prefix: "cvb-kube-state-")
            defer { try? FileManager.default.removeItem(atPath: state) }
            let (measured, convergeTime) = try Clock.time {
                try blocking { try await reconcile(files, instance: prefix, statePath: state + "/state.db", dryRuns: runs) }
            }
            convergeTimes.append(convergeTime - measured.dryRunSeconds.reduce(0, +))
            dryRunTimes += measured.dryRunSeconds
            roundTrips = measured.roundTrips
            log(
                "kubernetes: round \(round)/\(rounds): converge \(Table.format(convergeTimes.last!, .seconds)), kubectl \(Table.format(kubectlTime, .seconds)), in-sync dry-run \(Table.format(measured.dryRunSeconds.min() ?? 0, .seconds)) in \(roundTrips) requests"
            )
        }
        let ratios = zip(convergeTimes, kubectlTimes).map { $0 / $1 }
        return [
            Row(
                name, "converge reconcile: 1,000 ConfigMaps + 10 Namespaces", samples: convergeTimes,
                note: "plan with dry-runs, journaled run (SQLite), parallelism 16"),
            Row(name, "kubectl apply --server-side -f DIR (same objects)", samples: kubectlTimes, note: "kubectl \(kubectlVersion())"),
            Row(name, "converge / kubectl", samples: ratios, unit: .ratio, target: "≤ 0.3", bound: 0.3),
            Row(name, "dry-run of the 1,000 objects in sync", samples: dryRunTimes, target: "< 1 s", bound: 1.0),
            Row(
                name, "API requests of that dry-run", samples: [Double(roundTrips)], unit: .count,
                note: "discovery, the inventory read, one paged list per type; no per-object call"),
        ]
    }

    /// `kubernetes-scale`: a reconcile of 10,000 ConfigMaps, for the child's peak RSS.
    static func runScale(packagePath: String) throws -> [Row] {
        let cluster = try cluster(packagePath: packagePath)
        let prefix = "cvb-\(randomSuffix())"
        defer { cleanUp([prefix], cluster: cluster) }
        let files = manifests(prefix: prefix, count: 10_000, cluster: cluster).converge
        let state = try makeTemporaryDirectory(prefix: "cvb-kube-state-")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let (_, seconds) = try Clock.time {
            try blocking { try await reconcile(files, instance: prefix, statePath: state + "/state.db", dryRuns: 1) }
        }
        return [
            Row(scaleName, "reconcile of 10,000 ConfigMaps (then an in-sync plan)", samples: [seconds]),
            Row(
                scaleName, "peak RSS (getrusage ru_maxrss)", samples: [peakRSSMiB()], unit: .mebibytes, target: "< 200 MB",
                bound: 200_000_000 / 1_048_576,
                note: "whole child process; Flux's kustomize-controller: 3.3 GiB for 12 Kustomizations (flux #801)"),
        ]
    }

    struct Measured: Sendable {
        var dryRunSeconds: [Double]
        var roundTrips: Int
    }

    /// Plans and runs `files`, then plans `dryRuns` more times in sync (timed, with requests counted).
    static func reconcile(_ files: [SourceFile], instance: String, statePath: String, dryRuns: Int) async throws -> Measured {
        let runtime = Runtime(plugins: [.kubernetes], instance: instance, version: "bench")
        return try await runtime.run { runtime in
            let set = try runtime.load(files)
            try await SQLiteWorkflowStore.withStore(path: statePath) { store in
                try await store.migrate()
                let tick = ReconcileTick(engine: runtime.engine(store: store, parallelism: 16), options: WorkflowOptions())
                guard
                    case .ran(_, let run) = try await tick.run(
                        set, files: files, revision: SourceRevision(repository: "bench", commit: String(repeating: "0", count: 40))),
                    run.status == .succeeded
                else { throw Subprocess.Failure(description: "the reconcile did not succeed") }
            }
            guard let provider = try runtime.providers.providers(for: set).values.first as? KubernetesProvider else {
                throw Subprocess.Failure(description: "no Kubernetes provider")
            }
            var seconds: [Double] = []
            var requests = 0
            for _ in 0..<dryRuns {
                let before = provider.requestCount
                let start = Clock.now()
                let plan = try await runtime.plan(
                    set, source: SourceRevision(repository: "bench", commit: String(repeating: "0", count: 40))
                ).plan
                seconds.append(Clock.now() - start)
                requests = provider.requestCount - before
                guard plan.isEmpty else {
                    throw Subprocess.Failure(description: "the plan after the reconcile is not empty: \(plan.summary)")
                }
            }
            return Measured(dryRunSeconds: seconds, roundTrips: requests)
        }
    }

    static func kubectlVersion() -> String {
        let result = try? Subprocess.run(["kubectl", "version", "--client", "-o", "json"])
        return result?.stdout.split(separator: "\"").drop { $0 != "gitVersion" }.dropFirst(2).first.map(String.init) ?? "?"
    }

    /// Empties and deletes the benchmark's namespaces.
    static func cleanUp(_ prefixes: [String], cluster: Cluster) {
        for prefix in prefixes {
            for namespace in 0..<namespaces {
                _ = try? Subprocess.run([
                    "kubectl", "--kubeconfig", cluster.kubeconfig, "delete", "configmaps", "--all", "-n", "\(prefix)-\(namespace)",
                    "--wait=false",
                ])
                _ = try? Subprocess.run([
                    "kubectl", "--kubeconfig", cluster.kubeconfig, "delete", "namespace", "\(prefix)-\(namespace)", "--wait=false",
                    "--ignore-not-found",
                ])
            }
            _ = try? Subprocess.run([
                "kubectl", "--kubeconfig", cluster.kubeconfig, "delete", "configmap", "-n", "default", "converge-inventory-\(prefix)",
                "--ignore-not-found",
            ])
        }
    }
}
