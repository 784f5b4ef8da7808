/// A kind whose change runs as several journaled steps, one per phase, each in the run's
/// report with its own inputs and outputs, each resumed and rolled back on its own: a
/// rollout deploys the new version, waits for it, analyses it, switches traffic, analyses
/// again and finalizes. The provider reads the step's `phase` to know which part to do.
public protocol PhasedResource: ResourceSpec {
    /// The phases of `change`, in order; none for a change that is one ordinary step (a
    /// delete, a change of settings only).
    func phases(of change: ResourceChange) -> [StepPhase]
}

/// One phase of a phased change.
public struct StepPhase: Sendable, Equatable {
    public var name: String
    /// The run holds this phase back until it is approved (a switch without `autoPromote`):
    /// the resource's `ApprovalPolicy` approvals are asked here instead of before the run
    /// starts, and anyone may approve when no policy matches.
    public var awaitsApproval: Bool

    public init(_ name: String, awaitsApproval: Bool = false) {
        self.name = name
        self.awaitsApproval = awaitsApproval
    }
}

/// A kind that orders the changes of other resources in stages (a `Pipeline`'s waves): the
/// resources of a stage change in parallel, and every step of a stage waits for every step
/// of the stages before it, so a failure stops the later stages.
public protocol ChangeOrdering: ResourceSpec {
    /// The stages, in order.
    func stages(in set: ManifestSet) -> [[ResourceID]]
    /// The unit a member of stage `stage` rolls back with when one of its steps fails (see
    /// `PlanStep.unit`): the member alone, or its whole stage.
    func rollbackUnit(of member: ResourceID, stage: Int) -> String
    /// Who must approve before each stage after the first starts; nil when stages follow each
    /// other without one, empty when anyone may approve.
    var approversBetweenStages: [String]? { get }
}

extension Planner {
    /// Adds the stage orderings of the set's `ChangeOrdering` resources to the step drafts'
    /// dependencies: each step of a later stage waits for each step of an earlier one.
    static func orderStages(in set: ManifestSet, stepsOf: (ResourceID) -> [Int], addDependency: (_ step: Int, _ on: Int) -> Void) {
        for ordering in set.resources.compactMap({ $0.spec as? any ChangeOrdering }) {
            let stages = ordering.stages(in: set)
            for (later, laterStage) in stages.enumerated() {
                for earlierStage in stages[..<later] {
                    for member in laterStage {
                        for step in stepsOf(member) {
                            for earlierMember in earlierStage {
                                for dependency in stepsOf(earlierMember) { addDependency(step, dependency) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Replaces each step of a phased change by its phases, in a chain: the first phase takes
    /// the step's dependencies, steps that depended on it wait for the last. Marks the steps of
    /// staged resources with their rollback unit. Returns the steps and the phases that await
    /// an approval.
    static func expandPhases(
        _ steps: [PlanStep], changes: [ResourceID: ResourceChange], set: ManifestSet
    ) -> (steps: [PlanStep], awaitingApproval: [Int]) {
        var expanded: [PlanStep] = []
        var awaitingApproval: [Int] = []
        var lastIndex: [Int: Int] = [:]
        for step in steps {
            var phases: [StepPhase] = []
            if step.action != .delete, let change = changes[step.resource], let phased = set[step.resource]?.spec as? any PhasedResource {
                phases = phased.phases(of: change)
            }
            let dependencies = step.dependsOn.compactMap { lastIndex[$0] }.sorted()
            if phases.isEmpty {
                var copy = step
                copy.index = expanded.count
                copy.dependsOn = dependencies
                expanded.append(copy)
            }
            for (position, phase) in phases.enumerated() {
                if phase.awaitsApproval { awaitingApproval.append(expanded.count) }
                expanded.append(
                    PlanStep(
                        index: expanded.count, resource: step.resource, action: step.action,
                        dependsOn: position == 0 ? dependencies : [expanded.count - 1], guard: position == 0 ? step.guard : nil,
                        phase: phase.name))
            }
            lastIndex[step.index] = expanded.count - 1
        }
        for ordering in set.resources.compactMap({ $0.spec as? any ChangeOrdering }) {
            for (stage, members) in ordering.stages(in: set).enumerated() {
                for member in members {
                    let unit = ordering.rollbackUnit(of: member, stage: stage)
                    for index in expanded.indices where expanded[index].resource == member { expanded[index].unit = unit }
                }
            }
        }
        return (expanded, awaitingApproval)
    }

    /// Moves the approvals of phased changes to the phase that awaits them, and adds the
    /// approvals between stages: a run with these starts at once and waits part-way.
    static func placingApprovals(
        _ approvals: [ApprovalRequirement], steps: [PlanStep], awaitingApproval: [Int], set: ManifestSet
    ) -> [ApprovalRequirement] {
        var result = approvals
        for held in awaitingApproval {
            let resource = steps[held].resource
            var asked = false
            for index in result.indices where result[index].beforeSteps.isEmpty && result[index].resources.contains(resource) {
                result[index].resources.removeAll { $0 == resource }
                var moved = result[index]
                moved.resources = [resource]
                moved.beforeSteps = [held]
                result.append(moved)
                asked = true
            }
            if !asked {
                result.append(
                    ApprovalRequirement(policy: "promotion of \(resource)", resources: [resource], approvers: [], beforeSteps: [held]))
            }
        }
        result.removeAll { $0.resources.isEmpty }
        for resource in set.resources {
            guard let ordering = resource.spec as? any ChangeOrdering, let approvers = ordering.approversBetweenStages else { continue }
            for (stage, members) in ordering.stages(in: set).enumerated().dropFirst() {
                let firstSteps = members.compactMap { member in steps.first { $0.resource == member }?.index }
                guard !firstSteps.isEmpty else { continue }
                result.append(
                    ApprovalRequirement(
                        policy: "\(resource.id) stage \(stage + 1)",
                        resources: members.filter { member in steps.contains { $0.resource == member } },
                        approvers: approvers, beforeSteps: firstSteps.sorted()))
            }
        }
        return result
    }
}
