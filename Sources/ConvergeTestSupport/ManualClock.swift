import ConvergeWorkflow
import Foundation

/// A `WorkflowClock` that moves only when a test says so, after postgres-nio's `MockClock`:
/// a sleep waits until `advance(by:)` passes its deadline, so a retry's backoff or a lease
/// running out takes no real time, and `nextSleep(where:)` tells the test what the engine is
/// waiting for.
public final class ManualClock: WorkflowClock, @unchecked Sendable {
    // @unchecked: every field is guarded by `lock`.
    private struct Sleeper {
        var id: Int
        var deadline: Date
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct Watcher {
        var matches: @Sendable (Duration) -> Bool
        var continuation: CheckedContinuation<Duration, Never>
    }

    private let lock = NSLock()
    private var current: Date
    private var sleepers: [Sleeper] = []
    /// Sleeps begun that no `nextSleep` has reported yet.
    private var unreported: [Duration] = []
    private var watchers: [Watcher] = []
    private var started: [Duration] = []
    private var lastID = 0

    /// A clock reading `now` until it is advanced.
    public init(now: Date = Date()) {
        current = now
    }

    public var now: Date { lock.withLock { current } }

    /// Every sleep begun so far, in order.
    public var sleeps: [Duration] { lock.withLock { started } }

    public func sleep(for duration: Duration) async throws {
        let id = lock.withLock {
            lastID += 1
            return lastID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Action { case wait, resume, cancel }
                let (action, watcher) = lock.withLock { () -> (Action, Watcher?) in
                    started.append(duration)
                    var watcher: Watcher?
                    if let index = watchers.firstIndex(where: { $0.matches(duration) }) {
                        watcher = watchers.remove(at: index)
                    } else {
                        unreported.append(duration)
                    }
                    if Task.isCancelled { return (.cancel, watcher) }
                    if duration <= .zero { return (.resume, watcher) }
                    sleepers.append(Sleeper(id: id, deadline: current.adding(duration), continuation: continuation))
                    return (.wait, watcher)
                }
                watcher?.continuation.resume(returning: duration)
                switch action {
                case .wait: break
                case .resume: continuation.resume()
                case .cancel: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let sleeper = lock.withLock { () -> Sleeper? in
                guard let index = sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the time forward and wakes every sleep whose deadline it reaches.
    public func advance(by duration: Duration) {
        let due = lock.withLock { () -> [Sleeper] in
            current = current.adding(duration)
            let due = sleepers.filter { $0.deadline <= current }
            sleepers.removeAll { $0.deadline <= current }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Waits until a sleep whose duration `matches` has begun (one begun before this call
    /// counts, unless an earlier call reported it), and returns its duration.
    @discardableResult
    public func nextSleep(where matches: @escaping @Sendable (Duration) -> Bool = { _ in true }) async -> Duration {
        await withCheckedContinuation { (continuation: CheckedContinuation<Duration, Never>) in
            let found = lock.withLock { () -> Duration? in
                if let index = unreported.firstIndex(where: matches) { return unreported.remove(at: index) }
                watchers.append(Watcher(matches: matches, continuation: continuation))
                return nil
            }
            if let found { continuation.resume(returning: found) }
        }
    }
}

extension Date {
    fileprivate func adding(_ duration: Duration) -> Date {
        let (seconds, attoseconds) = duration.components
        return addingTimeInterval(Double(seconds) + Double(attoseconds) / 1e18)
    }
}
