import ConvergeCore
import ConvergeDocker

/// Makes one provider per target manifest in the set.
enum ProviderFactory {
    static func providers(for set: ManifestSet) -> [ResourceID: any Provider] {
        var providers: [ResourceID: any Provider] = [:]
        for host in set.resources(ofKind: DockerHostSpec.kind) {
            guard let spec = host.spec(as: DockerHostSpec.self) else { continue }
            providers[host.id] = DockerProvider(host: host.id, engine: DockerEngine(socketPath: spec.socketPath))
        }
        return providers
    }
}
