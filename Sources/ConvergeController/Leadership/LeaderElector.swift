import ConvergeWorkflow
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Keeps this replica's claim on the leader lease, as Kubernetes' leader election does:
/// campaign every `retry` while another leads, renew every `renew` while leading.
///
/// Only the leader starts steps, and only while its lease is surely its own: the claim counts
/// until `duration - safetyMargin` after the campaign that last succeeded began. A leader
/// that cannot renew (store or API server down, process stalled) therefore stops starting
/// steps before its lease can expire and another replica can take it.
public final class LeaderElector: Service, Sendable {
    public struct Timing: Sendable {
        /// How long a lease lives without renewal (Kubernetes' LeaseDuration).
        public var duration: Duration
        /// How often the leader renews (RenewDeadline, as a period).
        public var renew: Duration
        /// How often a follower tries to take the lease (RetryPeriod).
        public var retry: Duration
        /// How long before the lease could expire the leader stops trusting it.
        public var safetyMargin: Duration

        public init(
            duration: Duration = .seconds(15), renew: Duration = .seconds(10), retry: Duration = .seconds(2),
            safetyMargin: Duration = .seconds(2)
        ) {
            self.duration = duration
            self.renew = renew
            self.retry = retry
            self.safetyMargin = safetyMargin
        }
    }

    private struct State {
        var leadingUntil: ContinuousClock.Instant?
        var holder: String?
        var transitions = 0
    }

    public let identity: String
    public let lock: any LeaderLock
    public let timing: Timing
    private let logger: Logger
    private let state = Mutex(State())
    /// Told `true` when this replica becomes leader, `false` when it stops leading.
    private let changed: @Sendable (Bool) -> Void

    public init(
        lock: any LeaderLock, identity: String = LeaderElector.identity(), timing: Timing = Timing(), logger: Logger,
        changed: @escaping @Sendable (Bool) -> Void = { _ in }
    ) {
        self.lock = lock
        self.identity = identity
        self.timing = timing
        self.logger = logger
        self.changed = changed
    }

    /// `host:pid:random`: unique even when a pod restarts with the same host name and pid;
    /// `host:pid:random@URL` when the replica says where its API is, so followers can send
    /// the leader what only the leader acts on (webhooks).
    public static func identity(advertising url: String? = nil) -> String {
        "\(WorkflowEngine.processOwner):\(UInt32.random(in: 0...UInt32.max))" + (url.map { "@\($0)" } ?? "")
    }

    /// The API address the current holder advertised in its identity, if it did.
    public var leaderURL: String? {
        guard let holder = lastKnownHolder, let at = holder.range(of: "@http") else { return nil }
        return String(holder[holder.index(after: at.lowerBound)...])
    }

    /// Whether this replica leads right now (its lease is surely still its own).
    public var isLeader: Bool {
        state.withLock { $0.leadingUntil.map { ContinuousClock.now < $0 } ?? false }
    }

    /// Who held the lease at the last campaign (this replica or another).
    public var lastKnownHolder: String? { state.withLock { $0.holder } }

    /// A gate open only while this replica leads.
    public var gate: StepGate {
        StepGate { [self] in isLeader ? nil : "this replica is not the leader" }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let pause = await self.campaignOnce()
                try? await Task.sleep(for: pause)
            }
        }
        await resign()
    }

    /// One campaign; returns how long to wait before the next.
    private func campaignOnce() async -> Duration {
        let began = ContinuousClock.now
        do {
            let holder = try await lock.campaign(identity: identity, duration: timing.duration)
            let leads = holder == identity
            let (was, isNow) = state.withLock { state -> (Bool, Bool) in
                let was = state.leadingUntil.map { ContinuousClock.now < $0 } ?? false
                state.holder = holder
                state.leadingUntil = leads ? began + timing.duration - timing.safetyMargin : nil
                return (was, leads)
            }
            report(was: was, isNow: isNow, holder: holder)
            return leads ? timing.renew : timing.retry
        } catch {
            // The claim runs out on its own (`leadingUntil`); keep trying meanwhile.
            logger.warning("cannot reach \(lock) to campaign: \(error)")
            return timing.retry
        }
    }

    private func report(was: Bool, isNow: Bool, holder: String?) {
        guard was != isNow else { return }
        if isNow {
            logger.info("became the leader", metadata: ["identity": "\(identity)", "lock": "\(lock)"])
        } else {
            logger.warning("stopped leading", metadata: ["identity": "\(identity)", "holder": "\(holder ?? "unknown")"])
        }
        changed(isNow)
    }

    /// Gives the lease up, so the next leader need not wait for it to expire.
    public func resign() async {
        let led = state.withLock { state in
            defer { state.leadingUntil = nil }
            return state.leadingUntil != nil
        }
        guard led else { return }
        do {
            try await lock.resign(identity: identity)
            logger.info("released the leader lease", metadata: ["lock": "\(lock)"])
        } catch {
            logger.warning("cannot release the leader lease (it expires by itself): \(error)")
        }
        changed(false)
    }
}
