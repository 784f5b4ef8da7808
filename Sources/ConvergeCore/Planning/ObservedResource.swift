/// What a provider found on a live system for one object, in the same field shape the kind
/// uses for its desired state.
public struct ObservedResource: Sendable {
    public enum Ownership: Sendable, Hashable {
        /// Carries this instance's `converge.dev/managed-by` label.
        case managed
        /// Has the same name as a manifest but no ownership label: never touched.
        case unmanaged
        /// Owned by another Converge instance (its name is given): never touched.
        case otherInstance(String)
    }

    public var id: ResourceID
    public var fields: FieldMap
    public var ownership: Ownership
    /// The live system's own id (Docker object id, vSphere moref), for the steps that act on it.
    public var externalID: String
    /// Resources the live object needs (a container's networks); deletes are ordered by these.
    public var dependencies: [ResourceID]
    /// What the provider knows about the object that is not its desired state and is never
    /// diffed, but that a kind may need to plan it (`"snapshotSupported": "false"` for a VM
    /// that cannot be snapshotted).
    public var facts: [String: String]

    /// The fact that keeps a managed object whose manifest was removed (a volume whose
    /// reclaim policy is retain): the plan deletes nothing and shows its value (why) instead.
    public static let keptWhenRemovedFact = "keptWhenRemoved"

    public init(id: ResourceID, fields: FieldMap, ownership: Ownership, externalID: String, dependencies: [ResourceID] = [],
                facts: [String: String] = [:]) {
        self.id = id
        self.fields = fields
        self.ownership = ownership
        self.externalID = externalID
        self.dependencies = dependencies
        self.facts = facts
    }
}
