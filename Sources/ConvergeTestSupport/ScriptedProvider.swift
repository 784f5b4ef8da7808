import ConvergeCore
import Foundation

/// A `Provider` that changes nothing and follows a script: a step fails a given number of
/// times, transiently or for good, or is held in flight until the test lets it go. It
/// records every call in order and counts the executions of each resource's steps.
///
/// Resources are named by their manifest name (`a` for `Network/a`); a phase of a phased
/// change by the name and the phase (`a#switch`), in the script and in what it records.
public final class ScriptedProvider: Provider, @unchecked Sendable {
    // @unchecked: every mutable field is guarded by `lock`.

    /// What a scripted failure throws: a 503 (transient) or a 400 (permanent).
    public struct Failure: Error, TransientClassifying, CustomStringConvertible {
        public var isTransient: Bool
        public var resource: String
        public var description: String {
            "\(resource): " + (isTransient ? "engine busy (503)" : "bad request (400)")
        }
    }

    /// One call the engine made, in the order it made them.
    public enum Call: Sendable, Equatable {
        case observe
        case snapshot(String)
        case execute(String)
        case compensate(String, snapshot: String?)
    }

    public let managedKinds: Set<String>

    private let lock = NSLock()
    private var failures: [String: [Failure]] = [:]
    private var held: Set<String> = []
    private var holding: [String: CheckedContinuation<Void, any Error>] = [:]
    private var startWatchers: [String: [CheckedContinuation<Void, Never>]] = [:]
    private var recorded: [Call] = []
    private var compensationFailures: Set<String> = []

    /// A provider for resources of `kinds`, failing nothing until told.
    public init(kinds: Set<String> = ["Network"]) {
        managedKinds = kinds
    }

    // MARK: The script

    /// The next `times` executions of `resource`'s step fail.
    public func fail(_ resource: String, times: Int = 1, transient: Bool) {
        lock.withLock {
            failures[resource, default: []] += Array(repeating: Failure(isTransient: transient, resource: resource), count: times)
        }
    }

    /// `resource`'s compensation fails.
    public func failCompensation(_ resource: String) {
        lock.withLock { _ = compensationFailures.insert(resource) }
    }

    /// The next execution of `resource`'s step waits, in flight, until `release(resource)`
    /// or until its task is cancelled (then it throws `CancellationError`).
    public func hold(_ resource: String) {
        lock.withLock { _ = held.insert(resource) }
    }

    /// Lets a held step finish.
    public func release(_ resource: String) {
        let continuation = lock.withLock { holding.removeValue(forKey: resource) }
        continuation?.resume()
    }

    /// Waits until an execution of `resource`'s step has begun (one before this call counts).
    public func waitUntilExecuting(_ resource: String) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let begun = lock.withLock {
                if recorded.contains(.execute(resource)) { return true }
                startWatchers[resource, default: []].append(continuation)
                return false
            }
            if begun { continuation.resume() }
        }
    }

    // MARK: What happened

    /// Every call so far, in order.
    public var calls: [Call] { lock.withLock { recorded } }

    /// The resources whose steps were executed, in order (a retried step once per attempt).
    public var executed: [String] {
        calls.compactMap { if case .execute(let name) = $0 { return name } else { return nil } }
    }

    /// The resources whose steps were compensated, in order.
    public var compensated: [String] {
        calls.compactMap { if case .compensate(let name, _) = $0 { return name } else { return nil } }
    }

    /// How many times `resource`'s step was executed.
    public func executions(of resource: String) -> Int {
        executed.filter { $0 == resource }.count
    }

    // MARK: Provider

    public func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] {
        lock.withLock { recorded.append(.observe) }
        return []
    }

    public func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? {
        lock.withLock { recorded.append(.snapshot(step.resource.name)) }
        return "before \(step.resource.name)"
    }

    public func execute(
        _ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String
    ) async throws {
        let name = step.phase.map { "\(step.resource.name)#\($0)" } ?? step.resource.name
        let (watchers, hold) = lock.withLock { () -> ([CheckedContinuation<Void, Never>], Bool) in
            recorded.append(.execute(name))
            return (startWatchers.removeValue(forKey: name) ?? [], held.remove(name) != nil)
        }
        for watcher in watchers { watcher.resume() }
        if hold { try await waitForRelease(name) }
        let failure = lock.withLock { () -> Failure? in
            guard var queue = failures[name], !queue.isEmpty else { return nil }
            let failure = queue.removeFirst()
            failures[name] = queue
            return failure
        }
        if let failure { throw failure }
    }

    public func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {
        let name = step.phase.map { "\(step.resource.name)#\($0)" } ?? step.resource.name
        let fails = lock.withLock {
            recorded.append(.compensate(name, snapshot: snapshot))
            return compensationFailures.contains(name)
        }
        if fails { throw Failure(isTransient: false, resource: name) }
    }

    private func waitForRelease(_ name: String) async throws {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let cancelled = lock.withLock {
                    if Task.isCancelled { return true }
                    holding[name] = continuation
                    return false
                }
                if cancelled { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let continuation = lock.withLock { holding.removeValue(forKey: name) }
            continuation?.resume(throwing: CancellationError())
        }
    }
}
