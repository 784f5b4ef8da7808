import ConvergeCore

/// A rollout's analysis: `count` measurements, `interval` apart; each runs every check, and
/// the analysis fails as soon as more than `failureLimit` measurements failed (Argo Rollouts'
/// semantics). A check that cannot run (connection refused, timeout, a probe that cannot run)
/// is a failed check: an analysis succeeds only by measuring success.
///
/// ```yaml
/// postPromotion:
///   interval: 1s
///   count: 5
///   failureLimit: 0
///   checks:
///     - http: {path: /status.json, status: 200, field: healthy, equals: true}
///     - probe: app-reaches-db      # a Probe manifest
/// ```
public struct Analysis: Sendable, Equatable {
    public var checks: [Check]
    public var interval: Duration
    public var count: Int
    public var failureLimit: Int
    /// The probes' references, for dependencies and validation.
    var probes: [Reference]

    public enum Check: Sendable, Equatable {
        /// GET `path`; expect `status`, and when `field` is set, that JSON field (dotted path)
        /// to equal `equals`.
        case http(path: String, status: Int, field: String?, equals: JSONValue?)
        /// A `Probe` manifest of the set.
        case probe(String)
    }

    init?(_ node: ManifestNode) {
        guard let spec = node.mapping else { return nil }
        interval = Self.readDuration(spec.optional("interval")) ?? .seconds(1)
        count = RolloutSpec.readInt(spec.optional("count"), in: 1...1000) ?? 3
        failureLimit = RolloutSpec.readInt(spec.optional("failureLimit"), in: 0...1000) ?? 0
        checks = []
        probes = []
        let checksNode = spec.required("checks", hint: "a list of {http: {...}} or {probe: NAME}")
        for item in checksNode?.list ?? [] {
            guard let check = item.mapping else { continue }
            if let http = check.optional("http")?.mapping {
                let path = http.optional("path")?.string ?? "/"
                let status = RolloutSpec.readInt(http.optional("status"), in: 100...599) ?? 200
                let field = http.optional("field")?.string
                let equals = http.optional("equals")?.jsonValue()
                if (field == nil) != (equals == nil) {
                    http.node.report("field and equals go together: the JSON field to read and the value it must have")
                }
                checks.append(.http(path: path, status: status, field: field, equals: equals))
                http.finish()
            } else if let probeNode = check.optional("probe"), let name = probeNode.string {
                checks.append(.probe(name))
                probes.append(
                    Reference(target: ResourceID(kind: "Probe", name: name), field: "\(probeNode.path)", location: probeNode.location))
            } else {
                item.report("expected {http: {...}} or {probe: NAME}")
            }
            check.finish()
        }
        if checksNode != nil, checks.isEmpty { checksNode?.report("expected at least one check") }
        spec.finish()
    }

    static func readDuration(_ node: ManifestNode?, allowZero: Bool = false) -> Duration? {
        guard let node else { return nil }
        guard let text = node.string, let nanoseconds = DurationText.nanoseconds(text), nanoseconds > 0 || (allowZero && nanoseconds == 0)
        else {
            node.report("expected a duration such as 500ms, 10s or 1m")
            return nil
        }
        return .nanoseconds(nanoseconds)
    }
}
