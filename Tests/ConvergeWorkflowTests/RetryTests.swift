import ConvergeCore
import ConvergeDocker
import ConvergeStore
@testable import ConvergeWorkflow
import Foundation
import Testing

/// A provider whose steps fail as scripted, to drive the engine's retry and rollback logic
/// against a real SQLite journal.
final class ScriptedProvider: Provider, @unchecked Sendable {
    struct Failure: Error, TransientClassifying, CustomStringConvertible {
        var isTransient: Bool
        var description: String { isTransient ? "engine busy (503)" : "bad request (400)" }
    }

    private let lock = NSLock()
    /// Failures still to throw, per resource name, in order.
    private var script: [String: [Failure]]
    private(set) var executed: [String] = []
    private(set) var compensated: [String] = []

    init(script: [String: [Failure]]) { self.script = script }

    var managedKinds: Set<String> { [NetworkSpec.kind] }

    func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] { [] }

    func execute(_ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws {
        try lock.withLock {
            executed.append(step.resource.name)
            if var failures = script[step.resource.name], !failures.isEmpty {
                let failure = failures.removeFirst()
                script[step.resource.name] = failures
                throw failure
            }
        }
    }

    func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? { nil }

    func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {
        lock.withLock { compensated.append(step.resource.name) }
    }
}

@Suite struct RetryTests {
    static let yaml = """
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

    func run(_ provider: ScriptedProvider, retry: RetryPolicy) async throws -> (RunRecord, [StepRecord]) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cvt-retry-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteWorkflowStore(path: folder.appendingPathComponent("state.db").path)
        try await store.migrate()
        let files = [SourceFile(path: "set.yaml", bytes: Array(Self.yaml.utf8))]
        let set = try ManifestSet.load(files, registry: KindRegistry.core.adding(ProviderPlugin.docker.kinds))
        let engine = WorkflowEngine(store: store, registry: set.registry, instance: "retry-test", version: "test", parallelism: 1,
                                    makeProviders: { _ in [ResourceID(kind: "DockerHost", name: "local"): provider] })
        let planned = try await engine.plan(set, source: SourceRevision(repository: "test"))
        let run = try await engine.start(planned, manifests: files, options: WorkflowOptions(retry: retry))
        return (run, try await store.steps(run: run.id))
    }

    static let quick = RetryPolicy(initialDelay: 0.01, multiplier: 2, maximumDelay: 0.05, maximumAttempts: 3)

    @Test func transientFailuresAreRetriedUntilTheStepSucceeds() async throws {
        let provider = ScriptedProvider(script: ["a": [.init(isTransient: true), .init(isTransient: true)]])
        let (run, steps) = try await run(provider, retry: Self.quick)
        #expect(run.status == .succeeded)
        #expect(steps.first { $0.resource == "Network/a" }?.attempts == 3)
        #expect(steps.first { $0.resource == "Network/b" }?.attempts == 1)
    }

    @Test func aStepStillFailingAfterItsAttemptsRollsTheRunBack() async throws {
        let provider = ScriptedProvider(script: ["b": Array(repeating: .init(isTransient: true), count: 5)])
        let (run, steps) = try await run(provider, retry: Self.quick)
        #expect(run.status == .rolledBack)
        #expect(steps.first { $0.resource == "Network/b" }?.attempts == 3)
        #expect(provider.compensated.contains("a"), "the finished step is undone")
    }

    @Test func aPermanentFailureIsNotRetried() async throws {
        let provider = ScriptedProvider(script: ["a": [.init(isTransient: false)]])
        let (run, steps) = try await run(provider, retry: Self.quick)
        #expect(run.status == .rolledBack)
        #expect(steps.first { $0.resource == "Network/a" }?.attempts == 1)
        #expect(run.error?.contains("bad request (400)") == true)
    }

    @Test func backoffDoublesUpToItsCapWithJitter() {
        let policy = RetryPolicy.standard
        #expect(policy.delay(afterAttempt: 1, random: 1) == 1)
        #expect(policy.delay(afterAttempt: 2, random: 1) == 2)
        #expect(policy.delay(afterAttempt: 4, random: 1) == 8)
        #expect(policy.delay(afterAttempt: 10, random: 1) == 60)
        #expect(policy.delay(afterAttempt: 3, random: 0.5) == 2)
    }
}
