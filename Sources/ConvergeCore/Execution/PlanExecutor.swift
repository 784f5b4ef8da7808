/// Runs a plan's steps as soon as their dependencies are done, several at a time.
///
/// On the first failure no new step starts (but those the caller lets continue: a pipeline's
/// rollouts already under way in other units); those already running finish, and the error
/// lists what was done, what failed and what was never started.
public struct PlanExecutor: Sendable {
    public struct Progress: Sendable {
        public var finished: Int
        public var total: Int
        public var running: [PlanStep]
    }

    public var parallelism: Int

    public init(parallelism: Int = 8) {
        self.parallelism = max(1, parallelism)
    }

    /// Runs every step of `plan` not in `alreadyDone` (steps a resumed run finished before).
    /// After a failure, only steps that `continuingAfterFailure` lets go on start (given the
    /// failures so far and the finished steps); by default none.
    public func run(
        _ plan: Plan,
        alreadyDone: Set<Int> = [],
        continuingAfterFailure: @escaping (PlanStep, [PlanExecutionError.Failure], Set<Int>) -> Bool = { _, _, _ in false },
        progress: @Sendable (Progress) -> Void = { _ in },
        perform: @escaping @Sendable (PlanStep) async throws -> Void
    ) async throws {
        let steps = plan.steps
        var remaining = steps.map { $0.dependsOn.filter { !alreadyDone.contains($0) }.count }
        var dependents = Array(repeating: [Int](), count: steps.count)
        for step in steps {
            for dependency in step.dependsOn { dependents[dependency].append(step.index) }
        }
        var ready = steps.filter { !alreadyDone.contains($0.index) && remaining[$0.index] == 0 }.map(\.index).reversed() as [Int]
        var running: [Int: PlanStep] = [:]
        var finished: [Int] = alreadyDone.sorted()
        var failures: [(PlanStep, any Error)] = []

        try await withThrowingTaskGroup(of: (Int, (any Error)?).self) { group in
            func launch() {
                if !failures.isEmpty {
                    let failed = failures.map { PlanExecutionError.Failure(step: $0.0, message: String(describing: $0.1), underlying: $0.1) }
                    let done = Set(finished)
                    ready.removeAll { !continuingAfterFailure(steps[$0], failed, done) }
                }
                while running.count < parallelism, let next = ready.popLast() {
                    let step = steps[next]
                    running[next] = step
                    group.addTask {
                        do {
                            try await perform(step)
                            return (next, nil)
                        } catch {
                            return (next, error)
                        }
                    }
                }
                progress(Progress(finished: finished.count, total: steps.count, running: running.values.sorted { $0.index < $1.index }))
            }
            launch()
            while let (index, error) = try await group.next() {
                running[index] = nil
                if let error {
                    failures.append((steps[index], error))
                } else {
                    finished.append(index)
                    for dependent in dependents[index] {
                        remaining[dependent] -= 1
                        if remaining[dependent] == 0 { ready.insert(dependent, at: 0) }
                    }
                }
                launch()
            }
        }
        if !failures.isEmpty {
            let done = Set(finished)
            let failed = Set(failures.map(\.0.index))
            throw PlanExecutionError(
                completed: finished.sorted().map { steps[$0] },
                failures: failures.map { .init(step: $0.0, message: String(describing: $0.1), underlying: $0.1) },
                notStarted: steps.filter { !done.contains($0.index) && !failed.contains($0.index) })
        }
    }
}

/// Some steps failed; the rest of the plan was not started.
public struct PlanExecutionError: Error, CustomStringConvertible {
    public struct Failure: Sendable {
        public var step: PlanStep
        public var message: String
        public var underlying: any Error
    }

    public var completed: [PlanStep]
    public var failures: [Failure]
    public var notStarted: [PlanStep]

    public var description: String {
        var lines = failures.map { "\($0.step.action) \($0.step.resource) failed: \($0.message)" }
        lines.append("\(completed.count) step\(completed.count == 1 ? "" : "s") completed, \(notStarted.count) not started; reconcile again once the cause is fixed.")
        return lines.joined(separator: "\n")
    }
}
