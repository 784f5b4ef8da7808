import ConvergeCore

extension ProviderPlugin {
    /// Kubernetes clusters (`KubernetesCluster`) and every object of another apiVersion,
    /// applied with server-side apply.
    public static let kubernetes = ProviderPlugin(
        name: "kubernetes",
        kinds: [KubernetesClusterSpec.self, KubernetesObjectSpec.self],
        targetKind: KubernetesClusterSpec.kind,
        makeProvider: { cluster, _ in
            guard let spec = cluster.spec(as: KubernetesClusterSpec.self) else {
                throw PluginError(target: cluster.id, expectedKind: KubernetesClusterSpec.kind)
            }
            return try KubernetesProvider(target: cluster.id, spec: spec)
        })
}
