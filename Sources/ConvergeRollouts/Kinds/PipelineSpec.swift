import ConvergeCore

/// `Pipeline`: rollouts in ordered waves. The rollouts of a wave run in parallel; a wave
/// starts only once every rollout of the waves before it succeeded. When a rollout fails it
/// rolls back and the pipeline stops: later waves never start, and the wave's other rollouts
/// finish and stay (`onFailure: rollbackRollout`, the default) or roll back too
/// (`onFailure: rollbackWave`).
///
/// ```yaml
/// kind: Pipeline
/// metadata: {name: release}
/// spec:
///   waves:
///     - [api, worker]
///     - [web]
///   onFailure: rollbackRollout     # or rollbackWave
///   approval: {approvers: [alice]} # optional: each wave after the first waits for one
/// ```
///
/// Only rollouts that change take part: a wave with nothing to roll out is passed over.
public struct PipelineSpec: ResourceSpec, ChangeOrdering, Equatable {
    public static let kind = "Pipeline"
    public static var isLiveObject: Bool { false }

    var name: String
    public var waves: [[String]]
    var wavesLocation: SourceLocation
    public var rollbackWave: Bool
    public var approversBetweenStages: [String]?

    public init?(spec: MappingReader, metadata: Metadata) {
        name = metadata.name
        let wavesNode = spec.required("waves", hint: "a list of waves, each a list of Rollout names")
        waves = (wavesNode?.list ?? []).compactMap(\.stringList)
        wavesLocation = wavesNode?.location ?? spec.location
        if wavesNode != nil, waves.isEmpty || waves.contains(where: \.isEmpty) {
            wavesNode?.report("expected at least one wave, each naming at least one Rollout")
        }
        rollbackWave = false
        if let node = spec.optional("onFailure"), let text = node.string {
            switch text {
            case "rollbackRollout": rollbackWave = false
            case "rollbackWave": rollbackWave = true
            default: node.report("expected rollbackRollout or rollbackWave")
            }
        }
        if let approval = spec.optional("approval")?.mapping {
            approversBetweenStages = approval.optional("approvers")?.stringList ?? []
            approval.finish()
        }
    }

    func rollout(_ name: String) -> ResourceID { ResourceID(kind: RolloutSpec.kind, name: name) }

    public func references(in set: ManifestSet) -> [Reference] {
        waves.flatMap { $0.map { Reference(target: rollout($0), field: "spec.waves", location: wavesLocation) } }
    }

    public func target(in set: ManifestSet) -> ResourceID? { nil }

    public func stages(in set: ManifestSet) -> [[ResourceID]] { waves.map { $0.map(rollout) } }

    public func rollbackUnit(of member: ResourceID, stage: Int) -> String {
        rollbackWave ? "\(Self.kind)/\(name) wave \(stage + 1)" : member.description
    }

    /// A rollout in two waves, or in two pipelines, would wait for itself.
    public static func validate(_ resources: [Resource], in set: ManifestSet, collector: DiagnosticCollector) {
        var seen: [String: String] = [:]
        for resource in resources {
            guard let spec = resource.spec(as: PipelineSpec.self) else { continue }
            for name in spec.waves.joined() {
                if let first = seen[name] {
                    collector.report(
                        "spec.waves: Rollout/\(name) is already in \(first)", at: spec.wavesLocation,
                        hint: "a rollout takes part in one wave of one pipeline")
                }
                seen[name] = "\(resource.id)"
            }
        }
    }
}
