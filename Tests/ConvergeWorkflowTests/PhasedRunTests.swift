import ConvergeCore
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Testing

/// A change that runs in phases (`one`, `two`, `three`; `two` may await an approval), as a
/// rollout's does.
struct SteppedSpec: ResourceSpec, PhasedResource {
    static let kind = "Stepped"
    var host: TargetReference
    var value: String
    var gated: Bool

    init?(spec: MappingReader, metadata: Metadata) {
        host = TargetReference(kind: "DockerHost", field: "host", example: "", reading: spec)
        value = spec.optional("value")?.string ?? ""
        gated = spec.optional("gated")?.bool ?? false
    }

    func references(in set: ManifestSet) -> [Reference] { host.reference(in: set).map { [$0] } ?? [] }
    func target(in set: ManifestSet) -> ResourceID? { host.resolve(in: set) }
    func desiredFields(metadata: Metadata) -> FieldMap {
        var fields = FieldMap()
        fields["value"] = .string(value)
        return fields
    }
    static func changeMode(forField field: String) -> ChangeMode { .inPlace }
    func phases(of change: ResourceChange) -> [StepPhase] {
        [StepPhase("one"), StepPhase("two", awaitsApproval: gated), StepPhase("three")]
    }
}

/// Stages of `Stepped` resources, as a pipeline's waves.
struct StagesSpec: ResourceSpec, ChangeOrdering {
    static let kind = "Stages"
    static var isLiveObject: Bool { false }
    var stageNames: [[String]]
    var wholeStage: Bool
    var approversBetweenStages: [String]?

    init?(spec: MappingReader, metadata: Metadata) {
        stageNames = (spec.optional("stages")?.list ?? []).compactMap(\.stringList)
        wholeStage = spec.optional("wholeStage")?.bool ?? false
        approversBetweenStages = spec.optional("approvers")?.stringList
    }

    func references(in set: ManifestSet) -> [Reference] { [] }
    func target(in set: ManifestSet) -> ResourceID? { nil }
    func stages(in set: ManifestSet) -> [[ResourceID]] { stageNames.map { $0.map { ResourceID(kind: SteppedSpec.kind, name: $0) } } }
    func rollbackUnit(of member: ResourceID, stage: Int) -> String { wholeStage ? "stage \(stage)" : member.description }
}

@Suite struct PhasedRunTests {
    static let kinds = Harness.kinds.adding([SteppedSpec.self, StagesSpec.self])

    static func files(_ stepped: [(name: String, gated: Bool)], stages: String? = nil, policy: Bool = false) -> [SourceFile] {
        var documents = ["apiVersion: converge.dev/v1alpha1\nkind: DockerHost\nmetadata: {name: local}\nspec: {}"]
        for item in stepped {
            documents.append(
                "apiVersion: converge.dev/v1alpha1\nkind: Stepped\nmetadata: {name: \(item.name)}\nspec: {value: x, gated: \(item.gated)}")
        }
        if let stages { documents.append("apiVersion: converge.dev/v1alpha1\nkind: Stages\nmetadata: {name: release}\nspec: \(stages)") }
        if policy {
            documents.append(
                "apiVersion: converge.dev/v1alpha1\nkind: ApprovalPolicy\nmetadata: {name: steps}\nspec: {match: {kinds: [Stepped]}, approvers: [alice]}"
            )
        }
        return [SourceFile(path: "set.yaml", bytes: Array(documents.joined(separator: "\n---\n").utf8))]
    }

    static func with(_ body: (any WorkflowStore, ScriptedProvider, WorkflowEngine) async throws -> Void) async throws {
        try await ThrowawayDatabase.with(.sqlite, postgresURL: nil) { database in
            let store = try await database.openMigrated()
            let provider = ScriptedProvider(kinds: [SteppedSpec.kind])
            var engine = WorkflowEngine(
                store: store, registry: kinds, instance: Harness.instance, version: "test", parallelism: 4,
                makeProviders: { _ in [Harness.host: provider] })
            engine.clock = ManualClock()
            try await body(store, provider, engine)
        }
    }

    static func start(_ files: [SourceFile], _ engine: WorkflowEngine) async throws -> (RunRecord, Plan) {
        let planned = try await engine.plan(try ManifestSet.load(files, registry: kinds), source: SourceRevision(repository: "test"))
        return (try await engine.start(planned, manifests: files, options: WorkflowOptions()), planned.plan)
    }

    @Test func aPhasedChangeIsAChainOfStepsAndItsPolicyHoldsTheGatedPhase() async throws {
        try await Self.with { _, _, engine in
            let set = try ManifestSet.load(Self.files([("a", true)], policy: true), registry: Self.kinds)
            let plan = try await engine.plan(set, source: SourceRevision(repository: "test")).plan
            #expect(plan.steps.map(\.phase) == ["one", "two", "three"])
            #expect(plan.steps.map(\.dependsOn) == [[], [0], [1]])
            #expect(plan.changes.count == 1, "one change, shown once")
            #expect(plan.startApprovals.isEmpty, "the run starts at once")
            #expect(plan.approvals.map(\.beforeSteps) == [[1]])
            #expect(plan.approvals.first?.approvers == ["alice"])
            #expect(PlanRenderer.text(plan, color: false).contains("runs as one → two (waits for approval) → three"))
        }
    }

    @Test func aRunWaitsBeforeTheGatedPhaseAndGoesOnOnceApproved() async throws {
        try await Self.with { store, provider, engine in
            let (run, plan) = try await Self.start(Self.files([("a", true)], policy: true), engine)
            #expect(run.status == .awaitingApproval)
            #expect(provider.executed == ["a#one"])
            #expect(try await store.leases().isEmpty, "a waiting run holds no lease")
            await #expect(throws: WorkflowError.notAnApprover("mallory", allowed: ["alice"])) {
                try await engine.approve(run.id, approver: "mallory", comment: "", digest: nil)
            }
            let approved = try await engine.approve(run.id, approver: "alice", comment: "promote", digest: plan.digest)
            #expect(approved.status == .succeeded)
            #expect(provider.executed == ["a#one", "a#two", "a#three"], "the first phase did not run again")
            #expect(try await store.approvals(run: run.id).map(\.step) == [1])
        }
    }

    @Test func aRejectedOrSupersededWaitingRunIsRolledBack() async throws {
        try await Self.with { store, provider, engine in
            let (run, _) = try await Self.start(Self.files([("a", true)]), engine)
            #expect(run.status == .awaitingApproval, "no policy: anyone may promote, but someone must")
            let rejected = try await engine.reject(run.id, approver: "bob", comment: "not today")
            #expect(rejected.status == .rolledBack)
            #expect(rejected.error?.contains("rejected by bob") == true)
            #expect(provider.compensated == ["a#one"])

            let (second, _) = try await Self.start(Self.files([("a", true)]), engine)
            let (third, _) = try await Self.start(Self.files([("a", true), ("b", false)]), engine)
            #expect(third.id != second.id)
            let superseded = try #require(try await store.run(second.id))
            #expect(superseded.status == .rolledBack, "what it did before waiting is undone")
            #expect(superseded.error?.contains("a newer plan") == true)
        }
    }

    @Test func stagesRunInOrderAndAFailureRollsBackOnlyItsUnit() async throws {
        try await Self.with { store, provider, engine in
            provider.fail("b#two", transient: false)
            let (run, plan) = try await Self.start(
                Self.files([("a", false), ("b", false), ("c", false)], stages: "{stages: [[a, b], [c]]}"), engine)
            let first = try #require(plan.steps.first { $0.resource.name == "c" })
            var lastOfWave1: Set<Int> = []
            for step in plan.steps where step.resource.name != "c" && step.phase == "three" { lastOfWave1.insert(step.index) }
            #expect(Set(first.dependsOn) == lastOfWave1, "wave 2 waits for wave 1")
            #expect(plan.steps.filter { $0.resource.name == "a" }.allSatisfy { $0.unit == "Stepped/a" })

            #expect(run.status == .failed)
            #expect(run.error?.contains("rolled back: Stepped/b; kept: Stepped/a") == true, "\(run.error ?? "")")
            #expect(provider.executed.filter { $0.hasPrefix("a#") } == ["a#one", "a#two", "a#three"], "a finished its phases")
            #expect(!provider.executed.contains { $0.hasPrefix("c#") }, "wave 2 never started")
            #expect(Set(provider.compensated) == ["b#two", "b#one"])
            #expect(try await store.steps(run: run.id).filter { $0.resource == "Stepped/a" }.allSatisfy { $0.status == .succeeded })
        }
    }

    @Test func aWholeStageRollsBackTogetherAndAnApprovalHoldsTheNextStage() async throws {
        try await Self.with { _, provider, engine in
            provider.fail("b#three", transient: false)
            let (failed, _) = try await Self.start(
                Self.files([("a", false), ("b", false)], stages: "{stages: [[a, b]], wholeStage: true}"), engine)
            #expect(failed.status == .rolledBack, "\(failed.error ?? "")")
            #expect(provider.compensated.contains("a#one") && provider.compensated.contains("b#one"))
        }
        try await Self.with { _, provider, engine in
            let (run, plan) = try await Self.start(
                Self.files([("a", false), ("c", false)], stages: "{stages: [[a], [c]], approvers: [carol]}"), engine)
            #expect(run.status == .awaitingApproval)
            #expect(provider.executed == ["a#one", "a#two", "a#three"])
            let approved = try await engine.approve(run.id, approver: "carol", comment: "", digest: plan.digest)
            #expect(approved.status == .succeeded)
            #expect(provider.executed.suffix(3) == ["c#one", "c#two", "c#three"])
        }
    }
}
