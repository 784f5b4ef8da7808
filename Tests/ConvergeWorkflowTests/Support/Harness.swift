import ConvergeCore
import ConvergeDocker
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation

/// One workflow test's world: networks on a Docker host, all served by one scripted provider,
/// journaled in a temporary SQLite store, driven by engines on manual clocks.
struct Harness {
    static let instance = "workflow-test"
    static let host = ResourceID(kind: "DockerHost", name: "local")
    /// The Docker plug-in's kinds, which the scripted sets are written in.
    static let kinds = KindRegistry.core.adding(ProviderPlugin.docker.kinds)
    /// What `WorkflowOptions` gives by default: 30-second leases, renewed every 10 seconds.
    static let renewalInterval = Duration.seconds(10)

    let store: any WorkflowStore
    let provider = ScriptedProvider()
    let files: [SourceFile]

    /// `networks` (names) on one host, plus `extra` manifests.
    static func manifests(_ networks: [String], extra: String = "") -> [SourceFile] {
        var yaml = """
            apiVersion: converge.dev/v1alpha1
            kind: DockerHost
            metadata: {name: local}
            spec: {}
            """
        for name in networks {
            yaml += """

                ---
                apiVersion: converge.dev/v1alpha1
                kind: Network
                metadata: {name: \(name)}
                spec: {}
                """
        }
        if !extra.isEmpty { yaml += "\n---\n" + extra }
        return [SourceFile(path: "set.yaml", bytes: Array(yaml.utf8))]
    }

    /// Runs `body` with a fresh store holding nothing, deleted afterwards.
    static func with<T>(networks: [String] = ["a", "b", "c"], extra: String = "", _ body: (Harness) async throws -> T)
        async throws -> T
    {
        try await ThrowawayDatabase.with(.sqlite, postgresURL: nil) { database in
            let store = try await database.openMigrated()
            return try await body(Harness(store: store, files: manifests(networks, extra: extra)))
        }
    }

    /// An engine at parallelism 1 (steps run in plan order) for `owner`, on `clock`.
    func engine(
        owner: String = "engine-a", clock: ManualClock = ManualClock(), store: (any WorkflowStore)? = nil,
        liveness: ProcessLiveness = ProcessLiveness { _ in false }, faults: FaultHook? = nil
    ) -> WorkflowEngine {
        var engine = WorkflowEngine(
            store: store ?? self.store, registry: Self.kinds, instance: Self.instance, version: "test", parallelism: 1, owner: owner,
            makeProviders: { [provider] _ in [Self.host: provider] })
        engine.clock = clock
        engine.liveness = liveness
        engine.faults = faults
        return engine
    }

    /// The plan for `files` (default: the harness's own).
    func plan(_ files: [SourceFile]? = nil, with engine: WorkflowEngine) async throws -> (Reconciler.PlannedChange, [SourceFile]) {
        let files = files ?? self.files
        return (try await engine.plan(try ManifestSet.load(files, registry: Self.kinds), source: SourceRevision(repository: "test")), files)
    }

    /// Plans and starts a run with `engine`.
    func start(with engine: WorkflowEngine, options: WorkflowOptions = WorkflowOptions()) async throws -> RunRecord {
        let (planned, files) = try await plan(with: engine)
        return try await engine.start(planned, manifests: files, options: options)
    }

    /// The only run of the harness's instance.
    func onlyRun() async throws -> RunRecord? {
        let runs = try await store.runs(RunFilter(instance: Self.instance))
        return runs.count == 1 ? runs.first : nil
    }

    /// The journal of run `id`, by resource name (`a` for `Network/a`).
    func journal(_ id: Int64) async throws -> [String: StepRecord] {
        Dictionary(uniqueKeysWithValues: try await store.steps(run: id).map { (String($0.resource.split(separator: "/").last ?? ""), $0) })
    }
}

/// What a fault hook throws to stop a run in its tracks, as a crash would.
struct Crash: Error, Equatable {}
