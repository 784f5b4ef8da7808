import ConvergeCore
import Foundation

/// Any Kubernetes object committed beside Converge's kinds: every document whose apiVersion
/// is not `converge.dev/*`.
///
/// ```yaml
/// apiVersion: apps/v1
/// kind: Deployment
/// metadata:
///   name: web
///   namespace: shop                      # default: the cluster's namespace, for namespaced kinds
///   annotations:
///     converge.dev/cluster: prod         # default: the only KubernetesCluster of the set
///     converge.dev/depends-on: Container/db
///     converge.dev/force-conflicts: "true"   # take fields another applier manages
///     converge.dev/health-timeout: 2m        # how long the health gate waits (default 5m)
/// spec: …
/// ```
///
/// Its id is `Kind[.group]/[namespace/]name` (`Deployment.apps/shop/web`, `Namespace/shop`):
/// the group keeps `Network.example.com` apart from Converge's `Network`, the namespace keeps
/// two `web`s apart. The document goes to the API server as written (server-side apply);
/// Converge adds its ownership labels and drops its own `converge.dev/` annotations.
public struct KubernetesObjectSpec: APIObjectSpec, Equatable {
    public static let kind = "KubernetesObject"
    public static let nameRule = NameRule { name in
        guard name.isEmpty || name.count > 253 || name.contains("/") || name.contains("%") || name == "." || name == ".." else {
            return nil
        }
        return "Kubernetes names are at most 253 characters, without '/' or '%'"
    }

    public var type: GroupVersionKind
    /// `metadata.namespace` as written; nil for cluster-scoped kinds and for namespaced ones
    /// that take the cluster's default namespace.
    public var namespace: String?
    public var name: String
    public var labels: [String: String]
    /// Without Converge's own `converge.dev/` annotations, which are directives, not state.
    public var annotations: [String: String]
    /// Every top-level field but `apiVersion`, `kind` and `metadata` (`spec`, `data`, `rules`…).
    public var content: [String: JSONValue]
    /// `converge.dev/cluster`, when the object names its cluster.
    public var cluster: String?
    public var forceConflicts: Bool
    public var healthTimeout: Duration
    /// Where the manifest writes each field, to point the API server's complaints at lines.
    let locations: ManifestJSON
    let location: SourceLocation

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.type == rhs.type && lhs.namespace == rhs.namespace && lhs.name == rhs.name && lhs.labels == rhs.labels
            && lhs.annotations == rhs.annotations && lhs.content == rhs.content && lhs.cluster == rhs.cluster
    }

    public enum Annotation {
        public static let cluster = "converge.dev/cluster"
        public static let forceConflicts = "converge.dev/force-conflicts"
        public static let healthTimeout = "converge.dev/health-timeout"
    }

    public init?(document: MappingReader, apiVersion: String, kind: String, metadata: Metadata) {
        type = GroupVersionKind(apiVersion: apiVersion, kind: kind)
        namespace = metadata.namespace
        name = metadata.name
        labels = metadata.labels
        annotations = metadata.annotations.filter { !$0.key.hasPrefix(OwnershipLabel.prefix) }
        cluster = metadata.annotations[Annotation.cluster]
        location = document.location
        var reader = ManifestJSON()
        var content: [String: JSONValue] = [:]
        for key in document.keys where !["apiVersion", "kind", "metadata"].contains(key) {
            guard let node = document.optional(key) else { continue }
            content[key] = reader.value(of: node)
        }
        self.content = content
        self.locations = reader
        var ok = true
        switch metadata.annotations[Annotation.forceConflicts] {
        case nil, "false": forceConflicts = false
        case "true": forceConflicts = true
        case let other?:
            document.node.collector.report(
                "metadata.annotations[\(Annotation.forceConflicts)]: expected \"true\" or \"false\", found '\(other)'",
                at: document.location)
            forceConflicts = false
            ok = false
        }
        healthTimeout = .seconds(300)
        if let text = metadata.annotations[Annotation.healthTimeout] {
            if let nanoseconds = DurationText.nanoseconds(text), nanoseconds > 0 {
                healthTimeout = .nanoseconds(nanoseconds)
            } else {
                document.node.collector.report(
                    "metadata.annotations[\(Annotation.healthTimeout)]: '\(text)' is not a duration", at: document.location,
                    hint: "write it like 90s, 5m or 1h")
                ok = false
            }
        }
        if type.isSecret, let data = content["data"]?.objectFields {
            for (key, value) in data where Data(base64Encoded: value.string ?? "") == nil {
                document.node.collector.report(
                    "data.\(key): a Secret's data values are base64",
                    at: locations.location(ofServerPath: "data.\(key)", in: .object(content)),
                    hint: "encode the value, or put the plain text under stringData")
                ok = false
            }
        }
        if !ok { return nil }
    }

    public static func resourceID(apiVersion: String, kind: String, metadata: Metadata) -> ResourceID {
        let type = GroupVersionKind(apiVersion: apiVersion, kind: kind)
        return ResourceID(kind: type.qualifiedKind, name: metadata.namespace.map { "\($0)/\(metadata.name)" } ?? metadata.name)
    }

    public func target(in set: ManifestSet) -> ResourceID? {
        cluster.map { ResourceID(kind: KubernetesClusterSpec.kind, name: $0) } ?? set.defaultTarget(kind: KubernetesClusterSpec.kind)
    }

    /// The cluster, the object's Namespace and its CustomResourceDefinition when the set has
    /// them, and for namespaced objects the set's cluster-scoped objects other than
    /// Namespaces and CRDs (a ClusterRole before the RoleBindings that name it): CRDs and
    /// Namespaces first, then cluster-scoped objects, then namespaced ones.
    public func references(in set: ManifestSet) -> [Reference] {
        var references: [Reference] = []
        if let target = target(in: set) {
            references.append(Reference(target: target, field: "metadata.annotations[\(Annotation.cluster)]", location: location))
        }
        if let definition = Self.definition(of: type, in: set) {
            references.append(Reference(target: definition.id, field: "kind", location: location))
        }
        guard let namespace = effectiveNamespace(in: set) else { return references }
        let namespaceID = ResourceID(kind: "Namespace", name: namespace)
        if set[namespaceID] != nil {
            references.append(Reference(target: namespaceID, field: "metadata.namespace", location: location))
        }
        for kind in set.kinds where kind != "Namespace" && kind != GroupVersionKind.customResourceDefinition {
            for resource in set.resources(ofKind: kind) {
                guard let object = resource.spec(as: KubernetesObjectSpec.self), object.isClusterScoped(in: set) == true else { break }
                references.append(Reference(target: resource.id, field: "metadata.namespace", location: location))
            }
        }
        return references
    }

    /// The namespace the object goes to: as written, or the cluster's default for a kind
    /// known to be namespaced; nil for cluster-scoped kinds and unknown ones without one
    /// (discovery decides those when the plan is made).
    func effectiveNamespace(in set: ManifestSet) -> String? {
        if let namespace { return namespace }
        guard isClusterScoped(in: set) == false else { return nil }
        let cluster = target(in: set).flatMap { set[$0]?.spec(as: KubernetesClusterSpec.self) }
        return cluster?.namespace ?? KubernetesClusterSpec.defaultNamespace
    }

    /// Whether the kind is cluster-scoped, from the built-in kinds and the set's CRDs; nil
    /// when neither knows it.
    func isClusterScoped(in set: ManifestSet) -> Bool? {
        if namespace != nil { return false }
        if let scoped = GroupVersionKind.builtInClusterScoped[type.groupKind] { return scoped }
        if let definition = Self.definition(of: type, in: set)?.spec(as: KubernetesObjectSpec.self) {
            return definition.content["spec"]?["scope"]?.string == "Cluster"
        }
        return nil
    }

    /// The set's CustomResourceDefinition that defines `type`, if any.
    static func definition(of type: GroupVersionKind, in set: ManifestSet) -> Resource? {
        guard !type.isBuiltIn else { return nil }
        return set.resources(ofKind: GroupVersionKind.customResourceDefinition).first { resource in
            guard let spec = resource.spec(as: KubernetesObjectSpec.self)?.content["spec"] else { return false }
            return spec["group"]?.string == type.group && spec["names"]?["kind"]?.string == type.kind
        }
    }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        guard target(in: set) == nil else { return }
        let clusters = set.resources(ofKind: KubernetesClusterSpec.kind).map(\.id.name)
        collector.report(
            "no KubernetesCluster to apply it to", at: resource.location,
            hint: clusters.isEmpty
                ? "add a KubernetesCluster manifest (spec.kubeconfig: ~/.kube/config, or spec.inCluster: true)"
                : "several KubernetesClusters are defined (\(clusters.joined(separator: ", "))); name one with the annotation \(Annotation.cluster)"
        )
    }

    public static func changeMode(forField field: String) -> ChangeMode { .inPlace }

    /// The object's state in the diff's shape: its top-level fields, labels and annotations.
    /// A Secret's values are replaced by their digests (`stringData` folded into `data`, as
    /// the server does), so plans and journals never hold them.
    public func desiredFields(metadata: Metadata) -> FieldMap {
        var fields = FieldMap()
        for (key, value) in content where !(type.isSecret && key == "stringData") {
            fields[key] = value.fieldValue
        }
        if type.isSecret { fields["data"] = Self.maskedSecretData(secretData) }
        if !labels.isEmpty { fields["labels"] = .stringMap(labels.filter { !$0.key.hasPrefix(OwnershipLabel.prefix) }) }
        if !annotations.isEmpty { fields["annotations"] = .stringMap(annotations) }
        return fields
    }

    /// A Secret's `data`, with `stringData` encoded into it: what the server will hold.
    var secretData: [String: String] {
        var data = (content["data"]?.objectFields ?? [:]).compactMapValues(\.string)
        for (key, value) in content["stringData"]?.objectFields ?? [:] {
            if let text = value.string { data[key] = Data(text.utf8).base64EncodedString() }
        }
        return data
    }

    /// `(sensitive, sha256:…)` per key: equal values show equal, and nothing of them shows.
    static func maskedSecretData(_ base64Values: [String: String]) -> FieldValue {
        .stringMap(
            base64Values.mapValues { value in
                "(sensitive, sha256:\(ObjectShape.sha256Hex(Data(base64Encoded: value) ?? Data(value.utf8)).prefix(12)))"
            })
    }
}

/// An object's `apiVersion` and `kind`, split as the API server routes them.
public struct GroupVersionKind: Sendable, Hashable, CustomStringConvertible {
    public var group: String
    public var version: String
    public var kind: String

    public init(group: String, version: String, kind: String) {
        self.group = group
        self.version = version
        self.kind = kind
    }

    public init(apiVersion: String, kind: String) {
        if let slash = apiVersion.lastIndex(of: "/") {
            self.init(group: String(apiVersion[..<slash]), version: String(apiVersion[apiVersion.index(after: slash)...]), kind: kind)
        } else {
            self.init(group: "", version: apiVersion, kind: kind)
        }
    }

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    /// `Kind.group`, or `Kind` in the core group: the kind part of a resource id.
    public var qualifiedKind: String { group.isEmpty ? kind : "\(kind).\(group)" }
    public var groupKind: String { qualifiedKind }
    public var description: String { "\(apiVersion) \(kind)" }
    var isSecret: Bool { group.isEmpty && kind == "Secret" }
    /// Kubernetes' own groups; any other is a custom resource's (served through a CRD).
    var isBuiltIn: Bool {
        group.isEmpty || group.hasSuffix(".k8s.io") || ["apps", "batch", "autoscaling", "policy", "extensions"].contains(group)
    }

    public static let customResourceDefinition = "CustomResourceDefinition.apiextensions.k8s.io"

    /// Scope of the built-in kinds (`Kind.group` → cluster-scoped), so plans are ordered before
    /// discovery has been asked; anything else is settled by discovery.
    static let builtInClusterScoped: [String: Bool] = {
        let cluster = [
            "Namespace", "Node", "PersistentVolume", "ComponentStatus",
            "CustomResourceDefinition.apiextensions.k8s.io", "APIService.apiregistration.k8s.io",
            "ClusterRole.rbac.authorization.k8s.io", "ClusterRoleBinding.rbac.authorization.k8s.io",
            "StorageClass.storage.k8s.io", "CSIDriver.storage.k8s.io", "CSINode.storage.k8s.io", "VolumeAttachment.storage.k8s.io",
            "PriorityClass.scheduling.k8s.io", "IngressClass.networking.k8s.io", "RuntimeClass.node.k8s.io",
            "MutatingWebhookConfiguration.admissionregistration.k8s.io", "ValidatingWebhookConfiguration.admissionregistration.k8s.io",
            "PodSecurityPolicy.policy", "CertificateSigningRequest.certificates.k8s.io",
            "FlowSchema.flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration.flowcontrol.apiserver.k8s.io",
        ]
        let namespaced = [
            "ConfigMap", "Secret", "Service", "ServiceAccount", "Pod", "PersistentVolumeClaim", "Endpoints", "LimitRange",
            "ResourceQuota", "ReplicationController", "Event", "PodTemplate",
            "Deployment.apps", "StatefulSet.apps", "DaemonSet.apps", "ReplicaSet.apps", "ControllerRevision.apps",
            "Job.batch", "CronJob.batch", "Ingress.networking.k8s.io", "NetworkPolicy.networking.k8s.io",
            "Role.rbac.authorization.k8s.io", "RoleBinding.rbac.authorization.k8s.io",
            "HorizontalPodAutoscaler.autoscaling", "PodDisruptionBudget.policy", "Lease.coordination.k8s.io",
            "EndpointSlice.discovery.k8s.io",
        ]
        return Dictionary(uniqueKeysWithValues: cluster.map { ($0, true) } + namespaced.map { ($0, false) })
    }()
}
