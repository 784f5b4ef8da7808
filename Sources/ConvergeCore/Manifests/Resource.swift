/// `metadata` of a manifest, as in Kubernetes.
public struct Metadata: Sendable, Hashable {
    public var name: String
    /// Only objects of other apiVersions (Kubernetes objects) may set it; Converge's kinds
    /// live in their target, not in a namespace.
    public var namespace: String?
    public var labels: [String: String]
    public var annotations: [String: String]

    public init(name: String, namespace: String? = nil, labels: [String: String] = [:], annotations: [String: String] = [:]) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
    }
}

/// A field of one manifest that names another resource; validation checks the target
/// exists, and the planner orders the referencing resource after it.
public struct Reference: Sendable, Hashable {
    public var target: ResourceID
    /// The field holding the reference, e.g. `spec.networks[0].name`.
    public var field: String
    public var location: SourceLocation
    /// True when the referencing object cannot outlive the target: replacing the target
    /// replaces it too (a container on a network that is recreated).
    public var bindsLifetime: Bool

    public init(target: ResourceID, field: String, location: SourceLocation, bindsLifetime: Bool = false) {
        self.target = target
        self.field = field
        self.location = location
        self.bindsLifetime = bindsLifetime
    }
}

/// Whether the live system can take a change to a field in place, or the object must be
/// destroyed and created again (`-/+` in the plan).
public enum ChangeMode: Sendable {
    case inPlace
    case replace
}

/// One kind of manifest. Each kind is one small type in its provider's `Kinds/`: it decodes and checks its
/// own `spec`, names what it references, and says which fields the diff compares.
public protocol ResourceSpec: Sendable {
    /// The `kind:` this type decodes.
    static var kind: String { get }
    /// False for kinds that configure Converge rather than describe a live object: targets
    /// (`DockerHost`: where other resources live) and policies (`ApprovalPolicy`). They are
    /// never observed and never appear in a plan.
    static var isLiveObject: Bool { get }
    /// The names this kind accepts (`.portable` unless the live system allows others).
    static var nameRule: NameRule { get }

    /// Decodes `spec`, reporting every problem through the reader; nil when unusable.
    init?(spec: MappingReader, metadata: Metadata)

    /// The resources this one needs, resolved against the whole set (defaults such as "the
    /// only DockerHost" are applied here).
    func references(in set: ManifestSet) -> [Reference]

    /// The target (e.g. `DockerHost/local`) whose provider manages this resource.
    func target(in set: ManifestSet) -> ResourceID?

    /// Checks that need other resources (an IP inside its network's subnet, for example).
    func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector)

    /// Checks across all resources of this kind (unique addresses, non-overlapping
    /// subnets), done once per set so large sets stay fast.
    static func validate(_ resources: [Resource], in set: ManifestSet, collector: DiagnosticCollector)

    /// The fields the diff compares: those the manifest sets, plus those whose engine
    /// default is known to be empty (so removing them from a manifest is seen).
    func desiredFields(metadata: Metadata) -> FieldMap

    /// The fields the diff compares when they depend on other resources of the set (a
    /// playbook run's targets and the digest of its playbook's files); by default
    /// `desiredFields(metadata:)`.
    func desiredFields(metadata: Metadata, in set: ManifestSet) -> FieldMap

    /// How a change to the top-level field `field` is applied.
    static func changeMode(forField field: String) -> ChangeMode

    /// The precaution to take right before a step of `action` on this resource runs (a VM
    /// snapshot before an update), or nil. `observed` is the live object (nil for a create);
    /// its `facts` say whether the precaution is possible.
    func stepGuard(for action: PlanStep.Action, observed: ObservedResource?) -> StepGuard?
}

/// A kind that takes every document whose apiVersion is not Converge's (Kubernetes objects:
/// `v1`, `apps/v1`, a custom resource's group). One plug-in may provide it; the decoder hands
/// it the whole document, since such objects keep their state beside `spec` (`data`,
/// `rules`, `stringData`), and the kind names the resource, since its kind and name alone do
/// not identify it (`Deployment.apps/shop/web`).
public protocol APIObjectSpec: ResourceSpec {
    /// Decodes the document's fields other than `apiVersion`, `kind` and `metadata`, reporting
    /// problems through the reader; nil when unusable.
    init?(document: MappingReader, apiVersion: String, kind: String, metadata: Metadata)

    /// The id of the resource; never equal to one of a Converge kind.
    static func resourceID(apiVersion: String, kind: String, metadata: Metadata) -> ResourceID
}

extension APIObjectSpec {
    /// Never used: the decoder calls `init(document:apiVersion:kind:metadata:)`.
    public init?(spec: MappingReader, metadata: Metadata) { nil }
}

extension ResourceSpec {
    public static var isLiveObject: Bool { true }
    public static var nameRule: NameRule { .portable }
    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {}
    public static func validate(_ resources: [Resource], in set: ManifestSet, collector: DiagnosticCollector) {}
    public func desiredFields(metadata: Metadata) -> FieldMap { FieldMap() }
    public func desiredFields(metadata: Metadata, in set: ManifestSet) -> FieldMap { desiredFields(metadata: metadata) }
    public static func changeMode(forField field: String) -> ChangeMode { .replace }
    public func stepGuard(for action: PlanStep.Action, observed: ObservedResource?) -> StepGuard? { nil }
}

/// One decoded manifest document.
public struct Resource: Sendable {
    public var id: ResourceID
    public var apiVersion: String
    public var metadata: Metadata
    public var spec: any ResourceSpec
    /// Where the document's `kind:` is written; errors about the whole resource point here.
    public var location: SourceLocation

    public init(apiVersion: String, metadata: Metadata, spec: any ResourceSpec, location: SourceLocation, id: ResourceID? = nil) {
        self.id = id ?? ResourceID(kind: type(of: spec).kind, name: metadata.name)
        self.apiVersion = apiVersion
        self.metadata = metadata
        self.spec = spec
        self.location = location
    }

    public var isLiveObject: Bool { type(of: spec).isLiveObject }

    /// What this resource needs: what its spec references, and what its
    /// `converge.dev/depends-on` annotation names (across kinds and providers).
    public func references(in set: ManifestSet) -> [Reference] {
        spec.references(in: set) + explicitDependencies
    }

    /// The ids listed in the `converge.dev/depends-on` annotation (comma-separated
    /// `Kind/name`); the decoder reports entries that are not ids.
    public var explicitDependencies: [Reference] {
        guard let list = metadata.annotations[DependsOnAnnotation.key] else { return [] }
        return DependsOnAnnotation.parse(list).compactMap { entry in
            entry.id.map { Reference(target: $0, field: "metadata.annotations[\(DependsOnAnnotation.key)]", location: location) }
        }
    }

    /// The spec as its concrete type, for providers that serve that kind.
    public func spec<Spec: ResourceSpec>(as type: Spec.Type) -> Spec? { spec as? Spec }
}

/// `metadata.annotations["converge.dev/depends-on"]`: resources (`Kind/name`, comma-separated)
/// that must be created or updated first, whatever provider serves them: a Kubernetes
/// Deployment after the Docker container it talks to.
public enum DependsOnAnnotation {
    public static let key = "converge.dev/depends-on"

    /// The entries of the annotation's value, each with its id when it is one.
    public static func parse(_ value: String) -> [(text: String, id: ResourceID?)] {
        value.split(separator: ",").map { entry in
            let text = String(entry.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
            return (text, ResourceID(text))
        }.filter { !$0.text.isEmpty }
    }
}
