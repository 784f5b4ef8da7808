import ConvergeCore
import ConvergeDocker
import ConvergeStore
import ConvergeWorkflow

/// Builds the providers for a manifest set and the workflow engine over them.
enum EngineFactory {
    static func providers(for set: ManifestSet) -> [ResourceID: any Provider] {
        var providers: [ResourceID: any Provider] = [:]
        for host in set.resources(ofKind: DockerHostSpec.kind) {
            guard let spec = host.spec(as: DockerHostSpec.self) else { continue }
            providers[host.id] = DockerProvider(host: host.id, engine: DockerEngine(socketPath: spec.socketPath))
        }
        return providers
    }

    static func engine(store: any WorkflowStore, instance: String, parallelism: Int, progress: ProgressReporter) -> WorkflowEngine {
        WorkflowEngine(
            store: store, instance: instance, version: ConvergeCommand.version, parallelism: parallelism,
            events: { progress.handle($0) }, verify: { await ProbeSuite.run($0) }, makeProviders: providers(for:))
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
