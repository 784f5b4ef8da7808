import ConvergeCore

/// `Volume`: a named Docker volume, for data that must outlive the containers using it.
///
/// ```yaml
/// kind: Volume
/// metadata: {name: pgdata, labels: {app: db}}
/// spec:
///   driver: local                 # the default
///   driverOptions: {type: tmpfs, device: tmpfs}
///   reclaimPolicy: retain         # the default; delete lets a removed manifest delete it
/// ```
/// A volume holding data is never deleted by a prune unless its manifest said
/// `reclaimPolicy: delete` when it was last applied: the store keeps that policy per volume.
/// A removed manifest of a retained volume leaves it in place, and the plan says so. A
/// driver or its options cannot change on an existing volume: a change replaces it, and the
/// containers mounting it with it.
public struct VolumeSpec: ResourceSpec, Equatable {
    public static let kind = "Volume"
    public static let reclaimPolicies = ["retain", "delete"]

    var host: TargetReference
    public var driver: String
    public var driverOptions: [String: String]
    public var reclaimPolicy: String

    public init?(spec: MappingReader, metadata: Metadata) {
        host = .dockerHost(reading: spec)
        driver = spec.optional("driver")?.string ?? "local"
        driverOptions = spec.optional("driverOptions")?.stringMap ?? [:]
        reclaimPolicy = "retain"
        if let node = spec.optional("reclaimPolicy"), let text = node.string {
            if Self.reclaimPolicies.contains(text) {
                reclaimPolicy = text
            } else {
                node.report("invalid reclaimPolicy '\(text)'", hint: "use retain (the default) or delete")
            }
        }
    }

    public func references(in set: ManifestSet) -> [Reference] { host.reference(in: set).map { [$0] } ?? [] }
    public func target(in set: ManifestSet) -> ResourceID? { host.resolve(in: set) }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        host.validate(in: set, collector: collector)
    }

    public func desiredFields(metadata: Metadata) -> FieldMap {
        var fields = FieldMap()
        fields["driver"] = .string(driver)
        fields["driverOptions"] = .stringMap(driverOptions)
        fields["labels"] = .stringMap(metadata.labels)
        fields["reclaimPolicy"] = .string(reclaimPolicy)
        return fields
    }

    /// Only the reclaim policy changes in place (it is Converge's own record); the engine
    /// cannot change a volume's driver, options or labels.
    public static func changeMode(forField field: String) -> ChangeMode { field == "reclaimPolicy" ? .inPlace : .replace }
}
