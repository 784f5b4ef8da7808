import ConvergeCore

/// `KubernetesCluster`: an API server that Kubernetes objects of the set are applied to.
///
/// ```yaml
/// apiVersion: converge.dev/v1alpha1
/// kind: KubernetesCluster
/// metadata: {name: prod}
/// spec:
///   kubeconfig: ~/.kube/config    # a path on the machine Converge runs on
///   context: prod-admin           # default: the kubeconfig's current-context
///   namespace: shop               # for namespaced objects that name none (default: "default")
/// # or, inside a pod:
/// #   inCluster: true             # the service account's token and CA, KUBERNETES_SERVICE_HOST/PORT
/// ```
/// Credentials come from the kubeconfig or the pod's service account, never from Git.
public struct KubernetesClusterSpec: ResourceSpec, WorkerPoolTarget, Equatable {
    public static let kind = "KubernetesCluster"
    public static let isLiveObject = false
    static let defaultNamespace = "default"

    public enum Source: Sendable, Equatable {
        case kubeconfig(path: String, context: String?)
        case inCluster
    }

    public var source: Source
    public var namespace: String?
    /// The workers that reach its API server, when not the controller's.
    public var pool: String?

    public init?(spec: MappingReader, metadata: Metadata) {
        pool = spec.workerPool()
        let kubeconfig = spec.optional("kubeconfig")?.string
        let context = spec.optional("context")?.string
        let inCluster = spec.optional("inCluster")?.bool ?? false
        namespace = spec.optional("namespace")?.string
        switch (kubeconfig, inCluster) {
        case (let path?, false):
            source = .kubeconfig(path: path, context: context)
        case (nil, true):
            if context != nil { spec.optional("context")?.report("a context applies to a kubeconfig, not to inCluster") }
            source = .inCluster
        case (_?, true):
            spec.optional("inCluster")?.report("give kubeconfig or inCluster: true, not both")
            return nil
        case (nil, false):
            spec.node.collector.report(
                "spec: required field is missing: kubeconfig or inCluster", at: spec.location,
                hint: "kubeconfig: ~/.kube/config (with an optional context), or inCluster: true when Converge runs in a pod")
            return nil
        }
    }

    public func references(in set: ManifestSet) -> [Reference] { [] }
    public func target(in set: ManifestSet) -> ResourceID? { nil }
}
