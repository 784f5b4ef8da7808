import ConvergeCore
import ConvergeRuntime
import Synchronization
import Testing

/// A target kind as a plug-in brings it: where its provider connects.
private struct BenchTargetSpec: ResourceSpec, Equatable {
    static let kind = "BenchTarget"
    static let isLiveObject = false
    var endpoint: String

    init?(spec: MappingReader, metadata: Metadata) {
        guard let endpoint = spec.required("endpoint")?.string else { return nil }
        self.endpoint = endpoint
    }

    func references(in set: ManifestSet) -> [Reference] { [] }
    func target(in set: ManifestSet) -> ResourceID? { nil }
}

/// Counts the providers a plug-in made and the shutdowns they got.
private final class Ledger: Sendable {
    let made = Mutex<[String]>([])
    let shutDown = Mutex<[String]>([])
    /// Providers whose `run()` (their keep-alive) has begun, and those whose `run()` ended.
    let running = Mutex<[String]>([])
    let ended = Mutex<[String]>([])
}

private struct CountingProvider: Provider {
    let endpoint: String
    let ledger: Ledger
    var managedKinds: Set<String> { [] }
    func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] { [] }
    func execute(
        _ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet,
        instance: String
    ) async throws {}
    func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? { nil }
    func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {}
    func shutdown() async { ledger.shutDown.withLock { $0.append(endpoint) } }
    func run() async {
        ledger.running.withLock { $0.append(endpoint) }
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(60)) }
        ledger.ended.withLock { $0.append(endpoint) }
    }
}

private func plugin(_ ledger: Ledger) -> ProviderPlugin {
    ProviderPlugin(name: "bench", kinds: [BenchTargetSpec.self], targetKind: BenchTargetSpec.kind) { target, _ in
        let endpoint = target.spec(as: BenchTargetSpec.self)!.endpoint
        ledger.made.withLock { $0.append(endpoint) }
        return CountingProvider(endpoint: endpoint, ledger: ledger)
    }
}

private func targets(_ endpoints: [String: String], registry: KindRegistry) throws -> ManifestSet {
    let yaml = endpoints.sorted { $0.key < $1.key }.map { name, endpoint in
        "apiVersion: converge.dev/v1alpha1\nkind: BenchTarget\nmetadata: {name: \(name)}\nspec: {endpoint: '\(endpoint)'}\n"
    }.joined(separator: "---\n")
    return try ManifestSet.load([SourceFile(path: "targets.yaml", bytes: Array(yaml.utf8))], registry: registry)
}

@Suite struct ProviderPoolTests {
    @Test("one provider per target for the whole command, a new one when its manifest changed, each shut down once")
    func providersAreMadeOncePerTargetManifest() async throws {
        let ledger = Ledger()
        let runtime = Runtime(plugins: [plugin(ledger)], instance: "test", version: "test")
        let set = try targets(["a": "one", "b": "two"], registry: runtime.registry.kinds)
        let first = try runtime.providers.providers(for: set)
        let again = try runtime.providers.providers(for: set)
        #expect(first.keys.map(\.name).sorted() == ["a", "b"])
        #expect(ledger.made.withLock { $0.sorted() } == ["one", "two"], "planning and running share the providers")
        #expect((again[ResourceID(kind: "BenchTarget", name: "a")] as? CountingProvider)?.endpoint == "one")

        // A resumed run brings an older manifest of target a: it gets a provider of its own.
        let changed = try targets(["a": "one-moved", "b": "two"], registry: runtime.registry.kinds)
        _ = try runtime.providers.providers(for: changed)
        #expect(ledger.made.withLock { $0.sorted() } == ["one", "one-moved", "two"])

        await runtime.shutdown()
        #expect(ledger.shutDown.withLock { $0.sorted() } == ["one", "one-moved", "two"])
        await runtime.shutdown()
        #expect(ledger.shutDown.withLock { $0.count } == 3, "a second shutdown has nothing left to close")
    }

    @Test("the registry joins Core's kinds with the plug-ins' and finds plug-ins by target kind")
    func registryKnowsThePluginsKinds() {
        let registry = ProviderRegistry([plugin(Ledger())])
        #expect(registry.kinds.kindNames == ["ApprovalPolicy", "BenchTarget"])
        #expect(registry.plugins(forTarget: "BenchTarget").map(\.name) == ["bench"])
        #expect(registry.plugins(forTarget: "ApprovalPolicy").isEmpty)
    }

    @Test("a runtime keeps each provider it makes alive beside its work, then stops and shuts them down")
    func providersRunBesideTheWork() async throws {
        let ledger = Ledger()
        let runtime = Runtime(plugins: [plugin(ledger)], instance: "test", version: "test")
        try await runtime.run { runtime in
            _ = try runtime.providers.providers(for: try targets(["a": "one"], registry: runtime.registry.kinds))
            while ledger.running.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
            #expect(ledger.shutDown.withLock { $0.isEmpty }, "still in use")
        }
        #expect(ledger.running.withLock { $0 } == ["one"])
        #expect(ledger.ended.withLock { $0 } == ["one"], "its keep-alive ends with the work")
        #expect(ledger.shutDown.withLock { $0 } == ["one"])
    }
}
