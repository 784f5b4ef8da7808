import Crypto
import Foundation

/// What `converge reconcile` will do: the changes a person reviews, the steps the
/// executor runs, and a digest that identifies exactly this plan.
///
/// Encoded as JSON this is the documented `--output json` schema (`formatVersion` 1):
/// fields are only ever added, never renamed or removed, within a format version.
public struct Plan: Sendable, Codable, Equatable {
    public static let formatVersion = 1

    public var formatVersion: Int
    public var source: SourceRevision
    /// The Converge instance whose objects were compared (the `converge.dev/managed-by` value).
    public var instance: String
    /// `sha256:` of the canonical encoding of `changes` and `steps`. The source commit
    /// is left out on purpose: an identical change set from a later commit is the same plan,
    /// while any different change gives a different digest (approvals bind to it).
    public var digest: String
    public var summary: Summary
    public var changes: [ResourceChange]
    public var steps: [PlanStep]
    /// Approvals the plan must get before it runs, one per `ApprovalPolicy` that matches.
    public var approvals: [ApprovalRequirement]
    /// What a person should know before approving, from the steps' guards (a VM that cannot
    /// be snapshotted, so its update runs unguarded). In the JSON only when there are some,
    /// so plans without warnings encode as they did before warnings existed.
    public var warnings: [String] {
        get { encodedWarnings ?? [] }
        set { encodedWarnings = newValue.isEmpty ? nil : newValue }
    }
    private var encodedWarnings: [String]?
    /// Why a plan acts on a resource whatever its state (`on demand (converge playbooks run)`,
    /// `scheduled for …`); nil for a plan of the differences. An action neither supersedes
    /// nor is superseded by the plans of the differences waiting for approval.
    public var action: String?
    /// True for an action that may run beside another run of the same resources (a schedule
    /// with `concurrencyPolicy: Allow`): its leases are its own. In the JSON only when true.
    public var concurrent: Bool {
        get { encodedConcurrent ?? false }
        set { encodedConcurrent = newValue ? true : nil }
    }
    private var encodedConcurrent: Bool?

    private enum CodingKeys: String, CodingKey {
        case formatVersion, source, instance, digest, summary, changes, steps, approvals, action
        case encodedWarnings = "warnings"
        case encodedConcurrent = "concurrent"
    }

    public struct Summary: Sendable, Codable, Equatable {
        public var add: Int
        public var change: Int
        public var destroy: Int

        public init(add: Int, change: Int, destroy: Int) {
            self.add = add
            self.change = change
            self.destroy = destroy
        }
    }

    public var isEmpty: Bool { changes.isEmpty }

    /// The approvals the run waits for before its first step.
    public var startApprovals: [ApprovalRequirement] { approvals.filter(\.beforeSteps.isEmpty) }

    /// The approvals that hold steps back in a run under way, by the step that identifies them.
    public var stepApprovals: [Int: [ApprovalRequirement]] {
        Dictionary(grouping: approvals.filter { !$0.beforeSteps.isEmpty }, by: { $0.gate ?? 0 })
    }

    init(source: SourceRevision, instance: String, changes: [ResourceChange], steps: [PlanStep], approvals: [ApprovalRequirement]) {
        self.formatVersion = Self.formatVersion
        self.source = source
        self.instance = instance
        self.changes = changes
        self.steps = steps
        self.approvals = approvals
        self.summary = Summary(
            add: changes.filter { $0.action == .create || $0.action == .replace }.count,
            change: changes.filter { $0.action == .update }.count,
            destroy: changes.filter { $0.action == .delete || $0.action == .replace }.count)
        self.digest = Self.digest(changes: changes, steps: steps)
        self.warnings = steps.compactMap { $0.guard?.warning }
    }

    static func digest(changes: [ResourceChange], steps: [PlanStep]) -> String {
        struct Canonical: Encodable {
            var changes: [ResourceChange]
            var steps: [PlanStep]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Canonical(changes: changes, steps: steps))) ?? Data()
        return "sha256:" + SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

/// One `ApprovalPolicy` that protects changes of this plan.
public struct ApprovalRequirement: Sendable, Codable, Equatable {
    /// The policy's name.
    public var policy: String
    /// The changes it protects.
    public var resources: [ResourceID]
    /// Who may approve (people, or forge teams written `@org/team`); empty means anyone.
    public var approvers: [String]
    /// Whether a pull request's author may approve the plan of their own change. In the JSON
    /// only when true, so plans encode as they did before the setting existed.
    public var allowSelfApproval: Bool {
        get { encodedAllowSelfApproval ?? false }
        set { encodedAllowSelfApproval = newValue ? true : nil }
    }
    private var encodedAllowSelfApproval: Bool?
    /// The steps this approval holds back, in a run that starts without it: a rollout's
    /// switch (`autoPromote: false`), a pipeline's next wave. Empty (and absent from the JSON)
    /// for an approval of the whole plan, which the run waits for before its first step.
    public var beforeSteps: [Int] {
        get { encodedBeforeSteps ?? [] }
        set { encodedBeforeSteps = newValue.isEmpty ? nil : newValue }
    }
    private var encodedBeforeSteps: [Int]?

    private enum CodingKeys: String, CodingKey {
        case policy, resources, approvers
        case encodedAllowSelfApproval = "allowSelfApproval"
        case encodedBeforeSteps = "beforeSteps"
    }

    public init(
        policy: String, resources: [ResourceID], approvers: [String], allowSelfApproval: Bool = false, beforeSteps: [Int] = []
    ) {
        self.policy = policy
        self.resources = resources
        self.approvers = approvers
        self.allowSelfApproval = allowSelfApproval
        self.beforeSteps = beforeSteps
    }

    /// The step that identifies a mid-run approval (its first held step); nil for the plan's.
    public var gate: Int? { beforeSteps.min() }
}

public enum ChangeAction: String, Sendable, Codable, Hashable {
    case create, update, replace, delete
}

/// One resource's change, as the plan shows it.
public struct ResourceChange: Sendable, Codable, Equatable {
    public var resource: ResourceID
    public var action: ChangeAction
    /// Why, when it is not evident from the fields (a replacement caused by a dependency).
    public var reason: String?
    public var fields: [FieldChange]
    /// The values the provider pinned when the plan was made (`Provider.resolve`: an image
    /// tag's digest), by field; the step runs exactly these. Nil, and absent from the JSON (so
    /// older plans keep their digests), when there are none.
    public var resolved: [String: String]?

    public init(resource: ResourceID, action: ChangeAction, reason: String? = nil, fields: [FieldChange], resolved: [String: String]? = nil) {
        self.resource = resource
        self.action = action
        self.reason = reason
        self.fields = fields
        self.resolved = resolved
    }
}

/// One field's change. `path` is dotted for nested maps (`env.MODE`, `networks.net.ipv4`).
public struct FieldChange: Sendable, Codable, Equatable {
    public var path: String
    public var before: FieldValue?
    public var after: FieldValue?
    public var forcesReplacement: Bool

    public init(path: String, before: FieldValue?, after: FieldValue?, forcesReplacement: Bool) {
        self.path = path
        self.before = before
        self.after = after
        self.forcesReplacement = forcesReplacement
    }
}

/// One executable step. A replacement is two steps (delete, then create) so that all
/// deletes can run before the creates that reuse their names and addresses.
public struct PlanStep: Sendable, Codable, Equatable {
    public enum Action: String, Sendable, Codable {
        case create, update, delete
    }

    /// Position in `Plan.steps`; `dependsOn` refers to these.
    public var index: Int
    public var resource: ResourceID
    public var action: Action
    public var dependsOn: [Int]
    /// What to do right before the step so it can be undone by hand if it goes wrong, chosen
    /// by the resource's kind; nil (and absent from the JSON, so the digest of an unguarded
    /// plan is what it always was) for none.
    public var `guard`: StepGuard?
    /// Which part of a change that runs as several steps this one is (a rollout's `deploy`,
    /// `switch`…; see `PhasedResource`); nil, and absent from the JSON, for a whole change.
    public var phase: String?
    /// The steps that roll back together, and only together, when one of them fails (a
    /// pipeline's rollout, or its wave): the other units' changes stay. Nil, and absent from
    /// the JSON, for the run's saga: a failure undoes every step.
    public var unit: String?

    public init(
        index: Int, resource: ResourceID, action: Action, dependsOn: [Int], guard stepGuard: StepGuard? = nil, phase: String? = nil,
        unit: String? = nil
    ) {
        self.index = index
        self.resource = resource
        self.action = action
        self.dependsOn = dependsOn
        self.guard = stepGuard
        self.phase = phase
        self.unit = unit
    }
}

/// A precaution the provider takes right before a step: today a snapshot of a VM before it
/// is changed in place, since a VM, unlike a container, cannot be rebuilt from its manifest
/// (its disks hold state). Part of the step, and so of the digest: an approval covers
/// whether a change runs guarded.
public struct StepGuard: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// Snapshot the object before the step; the snapshot is kept for the target's
        /// retention (`VCenter.spec.snapshotRetention`) so the change can be reverted.
        case snapshot
    }

    public var kind: Kind
    /// Set when planning already found that the guard cannot be taken (the VM cannot be
    /// snapshotted): the provider then runs the step without it, and the plan's `warnings`
    /// say so before anyone approves.
    public var warning: String?

    public init(kind: Kind, warning: String? = nil) {
        self.kind = kind
        self.warning = warning
    }
}
