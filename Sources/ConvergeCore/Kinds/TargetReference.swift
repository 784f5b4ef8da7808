/// The field by which a resource names its target (`host:` → a DockerHost, `vcenter:` → a
/// VCenter): optional when the set has exactly one target of that kind.
public struct TargetReference: Sendable, Hashable {
    /// The target's kind, e.g. `DockerHost`.
    public var kind: String
    /// The field under `spec`, e.g. `host`.
    public var field: String
    /// What a minimal target manifest sets, for the hint when the set has none.
    public var example: String
    public var name: String?
    public var location: SourceLocation

    public init(kind: String, field: String, example: String, reading spec: MappingReader) {
        self.kind = kind
        self.field = field
        self.example = example
        let node = spec.optional(field)
        name = node?.string
        location = node?.location ?? spec.location
    }

    public func resolve(in set: ManifestSet) -> ResourceID? {
        if let name { return ResourceID(kind: kind, name: name) }
        return set.defaultTarget(kind: kind)
    }

    public func reference(in set: ManifestSet) -> Reference? {
        resolve(in: set).map { Reference(target: $0, field: "spec.\(field)", location: location) }
    }

    /// Reports a missing field that cannot be defaulted: no target of the kind, or several.
    public func validate(in set: ManifestSet, collector: DiagnosticCollector) {
        guard name == nil, resolve(in: set) == nil else { return }
        let targets = set.resources(ofKind: kind).map(\.id.name)
        collector.report(
            "spec.\(field): required field is missing", at: location,
            hint: targets.isEmpty
                ? "add a \(kind) manifest (\(example))" : "several \(kind)s are defined (\(targets.joined(separator: ", "))); name one")
    }
}

/// A target kind whose steps may run on workers (`converge worker --pool NAME`) where the
/// target can be reached: its manifest names the pool (`pool: dmz`); nil is the default pool,
/// the controller's own.
public protocol WorkerPoolTarget: ResourceSpec {
    var pool: String? { get }
}

extension MappingReader {
    /// A target's `pool:` (letters, digits, `-` and `_`), reported where written when invalid.
    public func workerPool() -> String? {
        guard let node = optional("pool"), let pool = node.string else { return nil }
        if pool.isEmpty || !pool.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) {
            node.report("invalid pool name '\(pool)'", hint: "letters, digits, - and _")
        }
        return pool
    }
}
