import ConvergeCore

/// The provider plug-ins of a process, and the kinds they bring: the one place that knows
/// which providers exist. The CLI and the controller build it once from their plug-in list.
public struct ProviderRegistry: Sendable {
    public let plugins: [ProviderPlugin]
    /// Core's kinds and every plug-in's; manifests, journaled runs included, decode with it.
    public let kinds: KindRegistry
    private let pluginByTargetKind: [String: ProviderPlugin]

    /// Two plug-ins serving the same kind are a wiring mistake of the process: the first wins.
    public init(_ plugins: [ProviderPlugin]) {
        self.plugins = plugins
        self.kinds = KindRegistry.core.adding(plugins.flatMap(\.kinds))
        self.pluginByTargetKind = Dictionary(plugins.map { ($0.targetKind, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The plug-in whose providers are made from manifests of `kind`, if any.
    public func plugin(forTarget kind: String) -> ProviderPlugin? {
        pluginByTargetKind[kind]
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
