import ConvergeCore
import ConvergeDocker
import ConvergeRuntime
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Testing

/// The reconcile tick the CLI and the controller share, through the runtime, on a journal
/// and a scripted provider: resume, plan, then run or wait for approval.
@Suite struct ReconcileTickTests {
    /// Docker's kinds, served by one scripted provider for every DockerHost.
    static func runtime(_ provider: ScriptedProvider) -> Runtime {
        let scripted = ProviderPlugin(name: "scripted", kinds: ProviderPlugin.docker.kinds, targetKind: DockerHostSpec.kind) { _, _ in provider
        }
        return Runtime(plugins: [scripted], instance: "tick-test", version: "test")
    }

    static func files(policy: Bool = false) -> [SourceFile] {
        var yaml = """
            apiVersion: converge.dev/v1alpha1
            kind: DockerHost
            metadata: {name: local}
            spec: {}
            ---
            apiVersion: converge.dev/v1alpha1
            kind: Network
            metadata: {name: a}
            spec: {}
            ---
            apiVersion: converge.dev/v1alpha1
            kind: Network
            metadata: {name: b}
            spec: {}
            """
        if policy {
            yaml +=
                "\n---\napiVersion: converge.dev/v1alpha1\nkind: ApprovalPolicy\nmetadata: {name: nets}\nspec: {match: {kinds: [Network]}}\n"
        }
        return [SourceFile(path: "set.yaml", bytes: Array(yaml.utf8))]
    }

    static func withStore(_ body: (any WorkflowStore) async throws -> Void) async throws {
        let database = try await ThrowawayDatabase.make(.sqlite, postgresURL: nil)
        do {
            try await body(try await database.openMigrated())
            try await database.destroy()
        } catch {
            try await database.destroy()
            throw error
        }
    }

    @Test func aPlanWithChangesRunsAndItsPlanIsToldFirst() async throws {
        try await Self.withStore { store in
            let provider = ScriptedProvider()
            let runtime = Self.runtime(provider)
            let files = Self.files()
            let planned = Recorder<Plan>()
            let tick = ReconcileTick(
                engine: runtime.engine(store: store, parallelism: 1), options: WorkflowOptions(),
                planned: { plan in planned.append(plan) })
            let outcome = try await tick.run(try runtime.load(files), files: files, revision: testSource)

            guard case .ran(let plan, let run) = outcome else { Issue.record("expected a run, got \(outcome)"); return }
            #expect(run.status == .succeeded)
            #expect(planned.all.map(\.digest) == [plan.digest])
            #expect(provider.executed.sorted() == ["a", "b"])
            #expect(try await store.run(run.id)?.planDigest == plan.digest, "the run is journaled with its plan")
        }
    }

    @Test func aProtectedChangeWaitsAndTheSamePlanReusesTheWaitingRun() async throws {
        try await Self.withStore { store in
            let provider = ScriptedProvider()
            let runtime = Self.runtime(provider)
            let files = Self.files(policy: true)
            let tick = ReconcileTick(engine: runtime.engine(store: store, parallelism: 1), options: WorkflowOptions())
            let set = try runtime.load(files)

            guard case .ran(_, let waiting) = try await tick.run(set, files: files, revision: testSource) else {
                Issue.record("expected a waiting run")
                return
            }
            #expect(waiting.status == .awaitingApproval)
            guard case .ran(_, let again) = try await tick.run(set, files: files, revision: testSource) else {
                Issue.record("expected the waiting run again")
                return
            }
            #expect(again.id == waiting.id)
            #expect(provider.executed.isEmpty, "nothing runs before an approval")
        }
    }
}

/// Values a `@Sendable` callback hands over, in order.
final class Recorder<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Value] = []

    func append(_ value: Value) { lock.withLock { values.append(value) } }
    var all: [Value] { lock.withLock { values } }
}
