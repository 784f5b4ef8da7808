import ConvergeCore
import ConvergeDocker
import ConvergeStore
import ConvergeVSphere
import ConvergeWorkflow
import Synchronization

/// Builds the providers for a manifest set and the workflow engine over them.
enum EngineFactory {
    static func providers(for set: ManifestSet) -> [ResourceID: any Provider] {
        var providers: [ResourceID: any Provider] = [:]
        for host in set.resources(ofKind: DockerHostSpec.kind) {
            guard let spec = host.spec(as: DockerHostSpec.self) else { continue }
            providers[host.id] = DockerProvider(host: host.id, engine: DockerEngine(socketPath: spec.socketPath))
        }
        for vcenter in set.resources(ofKind: VCenterSpec.kind) {
            guard let spec = vcenter.spec(as: VCenterSpec.self) else { continue }
            providers[vcenter.id] = vsphereProvider(vcenter.id, spec: spec)
        }
        return providers
    }

    /// One vSphere provider (and so one vCenter session) per target for the whole command:
    /// planning and running a plan share it instead of logging in twice.
    private static let vsphereProviders = Mutex<[ResourceID: (spec: VCenterSpec, provider: VSphereProvider)]>([:])

    static func vsphereProvider(_ target: ResourceID, spec: VCenterSpec) -> VSphereProvider {
        vsphereProviders.withLock { cache in
            if let cached = cache[target], cached.spec == spec { return cached.provider }
            let provider = VSphereProvider(target: target, spec: spec)
            cache[target] = (spec, provider)
            return provider
        }
    }

    /// Logs out of every vCenter this command used: sessions are a limited resource there.
    static func closeSessions() async {
        let providers = vsphereProviders.withLock { cache in
            defer { cache.removeAll() }
            return cache.values.map(\.provider)
        }
        for provider in providers { await provider.close() }
    }

    static func engine(store: any WorkflowStore, instance: String, parallelism: Int, progress: ProgressReporter) -> WorkflowEngine {
        var engine = WorkflowEngine(
            store: store, instance: instance, version: ConvergeCommand.version, parallelism: parallelism,
            events: { progress.handle($0) }, verify: { await ProbeSuite.run($0) }, makeProviders: providers(for:))
        engine.faults = FaultInjection.hook
        return engine
    }

    /// Loads run `id`, builds an engine for its instance, applies `action`, and reports the
    /// run's outcome (line on stderr, exit code).
    static func act(onRun id: Int64, storage: StoreOptions, parallelism: Int, _ action: @escaping (WorkflowEngine) async throws -> RunRecord) async throws {
        try await storage.with { store in
            guard let record = try await store.run(id) else { throw WorkflowError.noSuchRun(id) }
            let progress = ProgressReporter(live: Terminal.stderrIsTTY)
            let run = try await action(engine(store: store, instance: record.instance, parallelism: parallelism, progress: progress))
            progress.clear()
            Terminal.log(RunReport.outcomeLine(run))
            try RunReport.exit(for: run)
        }
    }
}
