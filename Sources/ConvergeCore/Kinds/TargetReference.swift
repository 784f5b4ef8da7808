/// The field by which a resource names its target (`host:` → a DockerHost, `vcenter:` → a
/// VCenter): optional when the set has exactly one target of that kind.
struct TargetReference: Sendable, Hashable {
    /// The target's kind, e.g. `DockerHost`.
    var kind: String
    /// The field under `spec`, e.g. `host`.
    var field: String
    /// What a minimal target manifest sets, for the hint when the set has none.
    var example: String
    var name: String?
    var location: SourceLocation

    init(kind: String, field: String, example: String, reading spec: MappingReader) {
        self.kind = kind
        self.field = field
        self.example = example
        let node = spec.optional(field)
        name = node?.string
        location = node?.location ?? spec.location
    }

    func resolve(in set: ManifestSet) -> ResourceID? {
        if let name { return ResourceID(kind: kind, name: name) }
        return set.defaultTarget(kind: kind)
    }

    func reference(in set: ManifestSet) -> Reference? {
        resolve(in: set).map { Reference(target: $0, field: "spec.\(field)", location: location) }
    }

    /// Reports a missing field that cannot be defaulted: no target of the kind, or several.
    func validate(in set: ManifestSet, collector: DiagnosticCollector) {
        guard name == nil, resolve(in: set) == nil else { return }
        let targets = set.resources(ofKind: kind).map(\.id.name)
        collector.report(
            "spec.\(field): required field is missing", at: location,
            hint: targets.isEmpty ? "add a \(kind) manifest (\(example))" : "several \(kind)s are defined (\(targets.joined(separator: ", "))); name one")
    }
}
