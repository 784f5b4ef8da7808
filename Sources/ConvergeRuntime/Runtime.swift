import ConvergeCore
import ConvergeStore
import ConvergeWorkflow

/// What the CLI and the controller share: the plug-ins of the process, the providers made
/// from them, and the instance and version runs are recorded under. One value per process
/// (or per command); `shutdown()` at its end closes the providers' sessions.
public struct Runtime: Sendable {
    public let registry: ProviderRegistry
    public let providers: ProviderPool
    /// The Converge instance: it owns the objects labelled with its name.
    public var instance: String
    /// The Converge version written on every run and step it drives.
    public var version: String

    public init(plugins: [ProviderPlugin], instance: String, version: String) {
        let registry = ProviderRegistry(plugins)
        self.registry = registry
        self.providers = ProviderPool(registry: registry)
        self.instance = instance
        self.version = version
    }

    /// Decodes and validates `files` with the kinds of this process's plug-ins.
    public func load(_ files: [SourceFile]) throws -> ManifestSet {
        try ManifestSet.load(files, registry: registry.kinds)
    }

    /// Observes and plans `set` without recording anything (a dry run, a pull request's plan).
    public func plan(_ set: ManifestSet, source: SourceRevision) async throws -> Reconciler.PlannedChange {
        try await Reconciler(providers: try providers.providers(for: set), instance: instance).plan(set, source: source)
    }

    /// The workflow engine over `store` for runs of `instance` (this runtime's unless a run
    /// names another), with this runtime's providers and checks. `gate` holds steps back (a
    /// controller replica that does not lead); `faults` is for crash tests.
    public func engine(
        store: any WorkflowStore, instance: String? = nil, parallelism: Int,
        events: @escaping @Sendable (WorkflowEvent) -> Void = { _ in }, gate: StepGate? = nil, faults: FaultHook? = nil
    ) -> WorkflowEngine {
        let providers = self.providers
        let checks = ProbeSuite(registry: registry)
        var engine = WorkflowEngine(
            store: store, registry: registry.kinds, instance: instance ?? self.instance, version: version, parallelism: parallelism,
            events: events, verify: { await checks.run($0) }, makeProviders: { try providers.providers(for: $0) })
        engine.faults = faults
        engine.gate = gate
        return engine
    }

    /// Runs `body` with this runtime while the providers it makes are kept alive beside it,
    /// then shuts them down, whether `body` returns or throws.
    public func run<Result: Sendable>(_ body: (Runtime) async throws -> Result) async throws -> Result {
        do {
            let result = try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
                group.addTask { await self.providers.run() }
                defer { group.cancelAll() }
                return try await body(self)
            }
            await shutdown()
            return result
        } catch {
            await shutdown()
            throw error
        }
    }

    /// Closes what the providers hold open (vCenter sessions).
    public func shutdown() async {
        await providers.shutdown()
    }
}
