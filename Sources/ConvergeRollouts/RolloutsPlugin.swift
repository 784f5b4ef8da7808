import ConvergeCore
import ConvergeDocker

extension ProviderPlugin {
    /// Blue-green `Rollout`s behind HAProxy entry points and `Pipeline`s of them in waves, on
    /// the Docker engines of `DockerHost`s (beside the Docker plug-in's own kinds).
    public static let rollouts = ProviderPlugin(
        name: "rollouts",
        kinds: [RolloutSpec.self, PipelineSpec.self],
        targetKind: DockerHostSpec.kind,
        makeProvider: { host, context in
            guard let spec = host.spec(as: DockerHostSpec.self) else {
                throw PluginError(target: host.id, expectedKind: DockerHostSpec.kind)
            }
            return RolloutProvider(host: host.id, engine: DockerEngine(socketPath: spec.socketPath), context: context)
        })
}
