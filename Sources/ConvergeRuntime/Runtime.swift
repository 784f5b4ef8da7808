import ConvergeCore
import ConvergeStore
import ConvergeWorkflow
import Foundation

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

    /// Decodes and validates `files` with the kinds of this process's plug-ins, reading the
    /// files beside them that kinds need from `repository`.
    public func load(_ files: [SourceFile], repository: RepositoryFiles? = nil) throws -> ManifestSet {
        try ManifestSet.load(files, registry: registry.kinds, repository: repository)
    }

    /// Decodes and validates what a source gave.
    public func load(_ snapshot: ManifestSource.Snapshot) throws -> ManifestSet {
        try load(snapshot.files, repository: snapshot.repository)
    }

    /// Observes and plans `set` without recording anything (a dry run, a pull request's plan).
    public func plan(_ set: ManifestSet, source: SourceRevision) async throws -> Reconciler.PlannedChange {
        try await Reconciler(providers: try providers.providers(for: set), instance: instance).plan(set, source: source)
    }

    /// A plan that acts on one resource now (an on-demand playbook run): see
    /// `Reconciler.planAction`.
    public func planAction(
        on id: ResourceID, in set: ManifestSet, fields: [FieldChange], reason: String, source: SourceRevision, concurrent: Bool = false
    ) async throws -> Reconciler.PlannedChange {
        try await Reconciler(providers: try providers.providers(for: set), instance: instance)
            .planAction(on: id, in: set, fields: fields, reason: reason, source: source, concurrent: concurrent)
    }

    /// Lets the providers keep their records in `store`, under this runtime's instance (a
    /// `PlaybookRun`'s last inputs). `engine(store:)` does it; a plan without a run calls it.
    public func useStore(_ store: any WorkflowStore) {
        providers.useRecords(StoreProviderRecords(store: store, instance: instance))
    }

    /// The workflow engine over `store` for runs of `instance` (this runtime's unless a run
    /// names another), with this runtime's providers and checks. `gate` holds steps back (a
    /// controller replica that does not lead); `faults` is for crash tests.
    public func engine(
        store: any WorkflowStore, instance: String? = nil, parallelism: Int,
        events: @escaping @Sendable (WorkflowEvent) -> Void = { _ in }, gate: StepGate? = nil, faults: FaultHook? = nil
    ) -> WorkflowEngine {
        useStore(store)
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

/// The store's `provider_records` of one instance, as the providers see them.
struct StoreProviderRecords: ProviderRecords {
    let store: any WorkflowStore
    let instance: String

    func put(_ key: String, value: String) async throws {
        try await store.putRecord(instance: instance, key: key, value: value)
    }

    func records(prefix: String) async throws -> [(key: String, value: String, updatedAt: Date)] {
        try await store.records(instance: instance, prefix: prefix).map { ($0.key, $0.value, $0.updatedAt) }
    }

    func remove(_ key: String) async throws {
        try await store.removeRecord(instance: instance, key: key)
    }
}
