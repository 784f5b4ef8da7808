/// What a provider module plugs into Converge: the kinds it serves, the target kind its
/// providers are made for, and how to make one. Each provider module exports one value
/// (`ProviderPlugin.docker`, `ProviderPlugin.vSphere`); the process that runs Converge lists
/// them once, and nothing else in Core, the runtime or the CLI learns a provider's kinds.
public struct ProviderPlugin: Sendable {
    /// Makes the provider for one target manifest (a `DockerHost`, a `VCenter`). Called once
    /// per target and process; the provider holds its connections until `shutdown()`. The
    /// context reaches other targets' providers and the process's provider records.
    public typealias Factory = @Sendable (Resource, ProviderContext) throws -> any Provider
    /// Runs one check manifest (a `Probe`) against the live systems. Never throws: a check
    /// that cannot run is reported as failed, with the reason in its detail.
    public typealias Check = @Sendable (Resource, ManifestSet) async -> ProbeResult

    /// A short name for messages and the README (`docker`, `vsphere`).
    public var name: String
    /// Every kind this module decodes: its target kind, the live objects its providers
    /// manage, and kinds that only configure them (probes, policies).
    public var kinds: [any ResourceSpec.Type]
    /// The kind of the manifests `makeProvider` takes.
    public var targetKind: String
    public var makeProvider: Factory
    /// The kinds that are checks of the live systems, and how to run each; run after every
    /// run (their results go into its report) and on demand.
    public var checks: [String: Check]

    public init(
        name: String, kinds: [any ResourceSpec.Type], targetKind: String, checks: [String: Check] = [:], makeProvider: @escaping Factory
    ) {
        self.name = name
        self.kinds = kinds
        self.targetKind = targetKind
        self.checks = checks
        self.makeProvider = makeProvider
    }
}

/// A plug-in's factory was handed a manifest that is not its target kind: the registry that
/// called it is wired wrongly.
public struct PluginError: Error, CustomStringConvertible {
    public var target: ResourceID
    public var expectedKind: String

    public init(target: ResourceID, expectedKind: String) {
        self.target = target
        self.expectedKind = expectedKind
    }

    public var description: String {
        "\(target) is not a \(expectedKind); a provider is made only from its plug-in's target kind"
    }
}
