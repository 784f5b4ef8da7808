import ConvergeCore
import Synchronization

/// The providers a process has made, one per target, kept for the process's work and shut
/// down once at its end: planning and running a plan (or a resumed run and a new one) share
/// one vCenter session instead of logging in twice.
///
/// A target whose manifest changed (a resumed run's older `VCenter`) gets a provider of its
/// own; the one made for the old manifest is still shut down at the end.
public final class ProviderPool: Sendable {
    private struct Made: Sendable {
        var spec: any ResourceSpec
        var provider: any Provider
    }

    public let registry: ProviderRegistry
    /// Per target, the providers made for each version of its manifest seen so far.
    private let made = Mutex<[ResourceID: [Made]]>([:])
    /// Each provider as it is made, for `run()` to keep alive.
    private let started = AsyncStream<any Provider>.makeStream()
    /// The provider records of the store the process opened, once it has.
    private let records = Mutex<(any ProviderRecords)?>(nil)

    public init(registry: ProviderRegistry) {
        self.registry = registry
    }

    /// One provider per target manifest of `set` whose kind a plug-in serves.
    public func providers(for set: ManifestSet) throws -> [ResourceID: any Provider] {
        var providers: [ResourceID: any Provider] = [:]
        for resource in set.resources {
            let plugins = registry.plugins(forTarget: resource.id.kind)
            guard !plugins.isEmpty else { continue }
            providers[resource.id] = try provider(for: resource, plugins: plugins)
        }
        return providers
    }

    private func provider(for target: Resource, plugins: [ProviderPlugin]) throws -> any Provider {
        if let existing = made.withLock({ Self.find(target, in: $0) }) { return existing }
        // Made outside the lock: a factory may read files (credentials, a kubeconfig). Two
        // callers racing keep the first; providers connect on first use, so the other held
        // nothing.
        let parts = try plugins.map { try $0.makeProvider(target, context) }
        let provider = parts.count == 1 ? parts[0] : CombinedProvider(parts)
        return made.withLock { made in
            if let existing = Self.find(target, in: made) { return existing }
            made[target.id, default: []].append(Made(spec: target.spec, provider: provider))
            started.continuation.yield(provider)
            return provider
        }
    }

    /// Gives the providers (made and to be made) the records of a store.
    public func useRecords(_ records: any ProviderRecords) {
        self.records.withLock { $0 = records }
    }

    /// What the factories hand their providers: this pool's other providers and its records.
    private var context: ProviderContext {
        ProviderContext(
            provider: { [weak self] target, set in
                guard let self else { return nil }
                guard let set else { return self.made.withLock { $0[target]?.last?.provider } }
                let plugins = self.registry.plugins(forTarget: target.kind)
                guard let resource = set[target], !plugins.isEmpty else { return nil }
                return try self.provider(for: resource, plugins: plugins)
            },
            records: { [weak self] in self?.records.withLock { $0 } },
            check: { [weak self] check, set in
                guard let self, let resource = set[check], let run = self.registry.check(forKind: check.kind) else { return nil }
                return await run(resource, set)
            })
    }

    /// The provider made for this version of the target's manifest. Target kinds are
    /// `Equatable`; one that is not is taken as unchanged.
    private static func find(_ target: Resource, in made: [ResourceID: [Made]]) -> (any Provider)? {
        made[target.id]?.first { entry in
            guard let spec = entry.spec as? any Equatable else { return true }
            return spec.isEqual(to: target.spec)
        }?.provider
    }

    /// Runs each provider's `run()` (its keep-alive) as it is made, as child tasks, until this
    /// task is cancelled: the owner of the pool runs this beside the work that uses it.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for await provider in started.stream {
                group.addTask { await provider.run() }
            }
        }
    }

    /// Shuts down every provider made so far; the pool can be used again afterwards.
    public func shutdown() async {
        let providers = made.withLock { made in
            defer { made.removeAll() }
            return made.values.flatMap { $0.map(\.provider) }
        }
        for provider in providers { await provider.shutdown() }
    }
}

extension Equatable {
    fileprivate func isEqual(to other: Any) -> Bool {
        (other as? Self) == self
    }
}
