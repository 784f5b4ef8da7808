import ConvergeCore
import Foundation

extension ProviderPlugin {
    /// Docker engines (`DockerHost`) with their networks and containers, and the network
    /// kinds built on them: routers, firewall policies, and the probes that check them.
    public static let docker = ProviderPlugin(
        name: "docker",
        kinds: [
            DockerHostSpec.self, NetworkSpec.self, VolumeSpec.self, ContainerSpec.self, RouterSpec.self, ProbeSpec.self, FirewallPolicySpec.self,
            RegistryCredentialsSpec.self,
        ],
        targetKind: DockerHostSpec.kind,
        checks: [ProbeSpec.kind: runProbe],
        makeProvider: { host, context in
            guard let spec = host.spec(as: DockerHostSpec.self) else {
                throw PluginError(target: host.id, expectedKind: DockerHostSpec.kind)
            }
            return DockerProvider(host: host.id, engine: DockerEngine(socketPath: spec.socketPath), context: context)
        })

    /// Runs one `Probe` through the engine of its source's DockerHost. A probe that cannot run
    /// (its container is gone) counts as unreachable, with the reason.
    @Sendable private static func runProbe(_ probe: Resource, in set: ManifestSet) async -> ProbeResult {
        let spec = probe.spec(as: ProbeSpec.self)
        do {
            guard let spec, let host = set[spec.source(in: set)]?.spec.target(in: set),
                let socket = set[host]?.spec(as: DockerHostSpec.self)?.socketPath
            else {
                throw ProbeError.unresolved(probe.id)
            }
            return try await ProbeRunner(engine: DockerEngine(socketPath: socket)).run(probe, in: set)
        } catch {
            return ProbeResult(
                probe: probe.id.name, summary: spec?.summary(in: set) ?? probe.id.description, reachable: false,
                expected: spec?.expectReachable ?? true, detail: "could not run: \(error)")
        }
    }
}
