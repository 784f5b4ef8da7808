import ArgumentParser
import ConvergeController
import ConvergeGit
import ConvergeKubernetes
import ConvergeRuntime
import ConvergeStore
import Foundation
import Logging

/// `converge controller`: watch a repository and keep it applied, forever.
struct ControllerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "controller",
        abstract: "Keep a repository applied: poll and webhooks, drift correction, approvals, HTTP API, leader election.",
        discussion: """
            Polls --ref every --interval (with jitter) and on webhooks, and reconciles each fetch as
            `converge reconcile` does. Several replicas on one PostgreSQL store elect one leader;
            only it starts steps. SIGTERM finishes the steps in flight, releases the lease, exits 0.
            """)

    @Option(
        help:
            "The Git repository to watch: local path, file://, http:// or https:// URL. Without it, the ConvergeSource objects of --namespace are the sources."
    )
    var repo: String?

    @Option(help: "Without --repo: the namespace whose ConvergeSource objects to reconcile (default: the pod's, else default).")
    var namespace: String?

    @Option(help: "Branch or tag to follow.")
    var ref: String = "main"

    @Option(help: "Folder inside the repository holding the manifests.")
    var path: String?

    @Option(help: "How often to fetch and check drift: 30s, 5m, 1h.")
    var interval: DurationArgument = DurationArgument(.seconds(60))

    @Option(help: "Drift on an applied commit: correct it, or only report it.")
    var drift: DriftPolicy = .correct

    @Option(help: "Environment variable holding an HTTPS token for the repository.")
    var tokenEnv: String = GitSourceRequest.defaultTokenEnvironmentVariable

    @Option(help: "Name of the Converge instance (the source): it owns the objects labelled with it.")
    var instance: String = ConvergeCommand.defaultInstance

    @OptionGroup var storage: StoreOptions
    @OptionGroup var workflow: WorkflowOptionsGroup
    @OptionGroup var forge: ForgeOptions
    @OptionGroup var workers: WorkerDispatchOptions

    @Option(help: "Address of the HTTP server (API, webhooks, /healthz, /readyz, /metrics): HOST:PORT or :PORT.")
    var listen: String = ":8080"

    @Option(
        help:
            "Where the other replicas reach this one's server (http://POD_IP:8080); followers pass webhooks on to the leader's. Default: http://$POD_IP:PORT when POD_IP is set."
    )
    var advertiseURL: String?

    @Option(help: "API bearer tokens: a file of token,user lines (Kubernetes' static token format).")
    var apiTokensFile: String?

    @Option(help: "File holding the webhook secret (webhooks are off without one).")
    var webhookSecretFile: String?

    @Option(help: "Environment variable holding the webhook secret.")
    var webhookSecretEnv: String?

    @Option(
        help:
            "Where replicas elect their leader: store (a row of the run store), kubernetes (a Lease), or auto (a Lease in a cluster, else the store)."
    )
    var leaderElection: LeaderElectionBackend = .auto

    @Option(help: "With --leader-election kubernetes outside a cluster: the kubeconfig of the cluster holding the Lease.")
    var kubeconfig: String?

    @Option(help: "With --kubeconfig: its context (default: the current one).")
    var kubeContext: String?

    @Option(help: "Namespace of the Lease (default: the pod's namespace in a cluster, else default).")
    var leaseNamespace: String?

    @Option(help: "Name of the leader lease replicas share.")
    var leaseName: String = "converge-controller"

    @Option(help: "Seconds the leader lease lives without renewal.")
    var leaseDuration: Double = 15

    @Option(help: "Seconds between the leader's renewals.")
    var renewEvery: Double = 10

    @Option(help: "Seconds between a follower's attempts to take the lease.")
    var retryEvery: Double = 2

    @Option(help: "How many steps may run at once when their dependencies allow.")
    var parallelism: Int = 8

    @Option(help: "Where fetched repositories are cached.")
    var gitCache: String = GitSourceRequest.defaultCacheDirectory

    func validate() throws {
        guard renewEvery < leaseDuration, retryEvery < leaseDuration else {
            throw ValidationError("--renew-every and --retry-every must be shorter than --lease-duration")
        }
        _ = try address()
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let logger = Logger(label: "converge.controller")
        let (host, port) = try address()
        let forge = try forge.configuration()
        let sources = repo.map {
            var source = SourceConfiguration(
                name: instance, repository: $0, ref: ref, path: path, interval: interval.duration, drift: drift,
                tokenEnvironmentVariable: tokenEnv)
            source.forge = forge
            return [source]
        }
        let tokens = try apiTokensFile.map(APITokens.load(file:)) ?? APITokens([:])
        let secret = try webhookSecret()
        try await Terminal.run(instance: instance) { runtime in
            try await storage.with { store in
                let cluster = try clusterAPI()
                let lock = try leaderLock(store: store, cluster: cluster)
                let catalog =
                    sources == nil ? cluster.map { ConvergeSourceCatalog(api: $0, namespace: clusterNamespace, logger: logger) } : nil
                if sources == nil, catalog == nil {
                    throw ValidationError("give --repo, or a cluster holding ConvergeSource objects (--kubeconfig, or run in a pod)")
                }
                var configuration = Controller.Configuration(
                    sources: sources ?? [], host: host, port: port, tokens: tokens, webhookSecret: secret,
                    leaderElection: LeaderElector.Timing(
                        duration: .milliseconds(Int64(leaseDuration * 1000)), renew: .milliseconds(Int64(renewEvery * 1000)),
                        retry: .milliseconds(Int64(retryEvery * 1000)),
                        safetyMargin: .milliseconds(Int64(min(2, (leaseDuration - renewEvery) / 2) * 1000))),
                    workflow: workflow.options, parallelism: parallelism, gitCache: gitCache, faults: FaultInjection.hook)
                configuration.advertisedURL = advertiseURL ?? ProcessInfo.processInfo.environment["POD_IP"].map { "http://\($0):\(port)" }
                do {
                    try await workers.withDispatcher(store) { dispatcher in
                        configuration.dispatcher = dispatcher
                        let controller = try Controller(
                            configuration: configuration,
                            runtime: runtime, store: store, lock: lock, catalog: catalog, logger: logger)
                        try await controller.run { port in logger.info("listening on \(host):\(port)") }
                    }
                } catch {
                    await cluster?.shutdown()
                    throw error
                }
                await cluster?.shutdown()
            }
        }
    }

    private var inCluster: Bool { ProcessInfo.processInfo.environment["KUBERNETES_SERVICE_HOST"] != nil }

    /// The namespace of the Lease and the ConvergeSources: `--namespace`, else the pod's, else default.
    private var clusterNamespace: String {
        if let namespace { return namespace }
        let pod = try? String(contentsOfFile: "/var/run/secrets/kubernetes.io/serviceaccount/namespace", encoding: .utf8)
        return pod?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "default"
    }

    /// The cluster the controller uses for itself (a Lease, ConvergeSources): `--kubeconfig`,
    /// or the pod's own when it runs in one and needs it; nil otherwise.
    private func clusterAPI() throws -> KubernetesAPI? {
        if let kubeconfig { return try KubernetesAPI(kubeconfig: kubeconfig, context: kubeContext) }
        let needed = leaderElection == .kubernetes || (leaderElection == .auto && inCluster) || repo == nil
        return needed ? try KubernetesAPI.inCluster() : nil
    }

    /// The lock `--leader-election` names: `auto` takes a Lease when there is a cluster.
    private func leaderLock(store: any WorkflowStore, cluster: KubernetesAPI?) throws -> any LeaderLock {
        switch (leaderElection, cluster) {
        case (.store, _), (.auto, nil):
            return StoreLeaderLock(store: store, name: leaseName)
        case (_, let cluster?):
            return KubernetesLeaderLock(api: cluster, namespace: leaseNamespace ?? clusterNamespace, name: leaseName)
        case (.kubernetes, nil):
            throw ValidationError("--leader-election kubernetes needs --kubeconfig outside a cluster")
        }
    }

    private func address() throws -> (String, Int) {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port)
        else {
            throw ValidationError("--listen '\(listen)': expected HOST:PORT or :PORT")
        }
        let host = String(listen[..<colon])
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    private func webhookSecret() throws -> WebhookSecret? {
        if let file = webhookSecretFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("--webhook-secret-file: cannot read \(file)")
            }
            return try WebhookSecret(String(decoding: data, as: UTF8.self))
        }
        if let variable = webhookSecretEnv {
            guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
                throw ValidationError("--webhook-secret-env: \(variable) is not set")
            }
            return try WebhookSecret(value)
        }
        return nil
    }
}

extension DriftPolicy: ExpressibleByArgument {}

enum LeaderElectionBackend: String, ExpressibleByArgument, CaseIterable {
    case auto, store, kubernetes
}

/// A duration on the command line, as Go and Kubernetes write them: `90s`, `5m`, `1h30m`, `500ms`.
struct DurationArgument: ExpressibleByArgument, Sendable {
    var duration: Duration

    init(_ duration: Duration) {
        self.duration = duration
    }

    init?(argument: String) {
        guard let duration = DurationText.parse(argument) else { return nil }
        self.duration = duration
    }

    var defaultValueDescription: String { "\(duration)" }
}
