/// `metadata` of a manifest, as in Kubernetes.
public struct Metadata: Sendable, Hashable {
    public var name: String
    public var labels: [String: String]
    public var annotations: [String: String]

    public init(name: String, labels: [String: String] = [:], annotations: [String: String] = [:]) {
        self.name = name
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

    /// How a change to the top-level field `field` is applied.
    static func changeMode(forField field: String) -> ChangeMode

    /// The precaution to take right before a step of `action` on this resource runs (a VM
    /// snapshot before an update), or nil. `observed` is the live object (nil for a create);
    /// its `facts` say whether the precaution is possible.
    func stepGuard(for action: PlanStep.Action, observed: ObservedResource?) -> StepGuard?
}

extension ResourceSpec {
    public static var isLiveObject: Bool { true }
    public static var nameRule: NameRule { .portable }
    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {}
    public static func validate(_ resources: [Resource], in set: ManifestSet, collector: DiagnosticCollector) {}
    public func desiredFields(metadata: Metadata) -> FieldMap { FieldMap() }
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

    public init(apiVersion: String, metadata: Metadata, spec: any ResourceSpec, location: SourceLocation) {
        self.id = ResourceID(kind: type(of: spec).kind, name: metadata.name)
        self.apiVersion = apiVersion
        self.metadata = metadata
        self.spec = spec
        self.location = location
    }

    public var isLiveObject: Bool { type(of: spec).isLiveObject }

    /// The spec as its concrete type, for providers that serve that kind.
    public func spec<Spec: ResourceSpec>(as type: Spec.Type) -> Spec? { spec as? Spec }
}
