/// `ApprovalPolicy`: which changes must wait for a person's approval before they run.
///
/// ```yaml
/// kind: ApprovalPolicy
/// metadata: {name: protect-edge}
/// spec:
///   match:                      # every criterion given must hold; none given: everything
///     kinds: [Container]
///     names: [s1-server]
///     labels: {tier: edge}      # on the manifest (for a delete: on the live object)
///   actions: [create, update, delete]   # the default; a replacement counts as all three
///   approvers: [alice, "@acme/netops"]   # people, or forge teams (`@org/team`); anyone when left out
///   allowSelfApproval: false    # whether a pull request's author may approve its own plan
/// ```
public struct ApprovalPolicySpec: ResourceSpec {
    public static let kind = "ApprovalPolicy"
    public static let isLiveObject = false
    public static let allActions: [ChangeAction] = [.create, .update, .delete]

    public var kinds: [String]
    public var names: [String]
    public var labels: [String: String]
    public var actions: Set<ChangeAction>
    public var approvers: [String]
    public var allowSelfApproval: Bool
    var kindsLocation: SourceLocation?

    public init(spec: MappingReader, metadata: Metadata) {
        kinds = []
        names = []
        labels = [:]
        if let match = spec.optional("match")?.mapping {
            kinds = match.optional("kinds")?.stringList ?? []
            kindsLocation = match.optional("kinds")?.location
            names = match.optional("names")?.stringList ?? []
            labels = match.optional("labels")?.stringMap ?? [:]
            match.finish()
        }
        actions = Set(Self.allActions)
        if let node = spec.optional("actions"), let items = node.list {
            actions = []
            for item in items {
                guard let text = item.string else { continue }
                if let action = ChangeAction(rawValue: text), action != .replace {
                    actions.insert(action)
                } else {
                    item.report("unknown action '\(text)'", hint: "use create, update or delete")
                }
            }
        }
        approvers = (spec.optional("approvers")?.stringList ?? []).map {
            $0.hasPrefix("@") && !$0.contains("/") ? String($0.dropFirst()) : $0
        }
        allowSelfApproval = spec.optional("allowSelfApproval")?.bool ?? false
    }

    public func references(in set: ManifestSet) -> [Reference] { [] }
    public func target(in set: ManifestSet) -> ResourceID? { nil }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        let registry = set.registry
        for kind in kinds where registry.type(forKind: kind) == nil {
            collector.report(
                "spec.match.kinds: unknown kind '\(kind)'", at: kindsLocation ?? resource.location,
                hint: closestName(to: kind, among: registry.kindNames).map { "did you mean '\($0)'?" })
        }
    }

    /// True when `change` (to a resource with `labels`) needs this policy's approval.
    public func matches(_ change: ResourceChange, labels: [String: String]) -> Bool {
        guard kinds.isEmpty || kinds.contains(change.resource.kind),
            names.isEmpty || names.contains(change.resource.name),
            self.labels.allSatisfy({ labels[$0.key] == $0.value })
        else { return false }
        switch change.action {
        case .replace: return !actions.isEmpty
        default: return actions.contains(change.action)
        }
    }
}
