import ConvergeCore

/// The provider plug-ins of a process, and the kinds they bring: the one place that knows
/// which providers exist. The CLI and the controller build it once from their plug-in list.
public struct ProviderRegistry: Sendable {
    public let plugins: [ProviderPlugin]
    /// Core's kinds and every plug-in's; manifests, journaled runs included, decode with it.
    public let kinds: KindRegistry
    private let pluginsByTargetKind: [String: [ProviderPlugin]]

    /// Several plug-ins may serve one target kind: the first listed makes its providers, the
    /// others serve more kinds on the same targets (rollouts on a `DockerHost`).
    public init(_ plugins: [ProviderPlugin]) {
        self.plugins = plugins
        self.kinds = KindRegistry.core.adding(plugins.flatMap(\.kinds))
        self.pluginsByTargetKind = Dictionary(grouping: plugins, by: \.targetKind)
    }

    /// The plug-ins whose providers are made from manifests of `kind`, in the process's order;
    /// empty when none is.
    public func plugins(forTarget kind: String) -> [ProviderPlugin] {
        pluginsByTargetKind[kind] ?? []
    }

    /// How to run a check manifest of `kind` (a `Probe`), if a plug-in runs such checks.
    public func check(forKind kind: String) -> ProviderPlugin.Check? {
        plugins.lazy.compactMap { $0.checks[kind] }.first
    }

    /// The kinds of `set` that are checks, in set order.
    public func checks(in set: ManifestSet) -> [(resource: Resource, run: ProviderPlugin.Check)] {
        set.resources.compactMap { resource in check(forKind: resource.id.kind).map { (resource, $0) } }
    }
}
