import ConvergeCore
import ConvergeKubernetes
import Foundation
import Synchronization

/// The leader lease as a `coordination.k8s.io/v1` Lease, as client-go's leader election keeps
/// it: `holderIdentity`, `leaseDurationSeconds`, `acquireTime`, `renewTime`,
/// `leaseTransitions`, written with the object's `resourceVersion` so two replicas cannot
/// both win.
///
/// Like client-go, expiry is judged by this process's own clock from when it last saw the
/// record change, never by comparing `renewTime` with the local time: replicas whose clocks
/// disagree still agree on when a lease ran out.
public final class KubernetesLeaderLock: LeaderLock {
    public let api: KubernetesAPI
    public let namespace: String
    public let name: String
    /// The record last read and when it was first seen (this process's monotonic clock).
    private let observed = Mutex<(record: JSONValue?, at: ContinuousClock.Instant)>((nil, .now))

    public init(api: KubernetesAPI, namespace: String, name: String) {
        self.api = api
        self.namespace = namespace
        self.name = name
    }

    private var collection: String { "/apis/coordination.k8s.io/v1/namespaces/\(namespace)/leases" }
    private var path: String { "\(collection)/\(name)" }

    public func campaign(identity: String, duration: Duration) async throws -> String {
        let now = Self.microTime(Date())
        let seconds = Int(duration.components.seconds)
        guard let current = try await api.get(path) else {
            let lease = Self.lease(
                name: name, namespace: namespace,
                spec: Self.spec(identity: identity, seconds: seconds, acquired: now, renewed: now, transitions: 0))
            if try await api.create(collection, lease) != nil { return identity }
            return try await api.get(path)?[path: "spec.holderIdentity"]?.string ?? ""
        }
        let spec = current["spec"] ?? .object([:])
        let holder = spec["holderIdentity"]?.string ?? ""
        let expired = observe(spec)
        guard holder.isEmpty || holder == identity || expired else { return holder }
        let transitions = (spec["leaseTransitions"]?.int ?? 0) + (holder == identity ? 0 : 1)
        let acquired = holder == identity ? (spec["acquireTime"]?.string ?? now) : now
        guard var fields = current.objectFields else { return holder }
        fields["spec"] = Self.spec(identity: identity, seconds: seconds, acquired: acquired, renewed: now, transitions: transitions)
        guard let written = try await api.replace(path, .object(fields)) else {
            // Another replica wrote first; whoever it is holds it now.
            return try await api.get(path)?[path: "spec.holderIdentity"]?.string ?? holder
        }
        _ = observe(written["spec"] ?? .object([:]))
        return identity
    }

    public func resign(identity: String) async throws {
        guard let current = try await api.get(path), current[path: "spec.holderIdentity"]?.string == identity,
            var fields = current.objectFields, case .object(var spec)? = fields["spec"]
        else { return }
        // As client-go releases: no holder, and a lease of one second.
        spec["holderIdentity"] = .string("")
        spec["leaseDurationSeconds"] = .int(1)
        fields["spec"] = .object(spec)
        _ = try await api.replace(path, .object(fields))
    }

    public var description: String { "the Lease \(namespace)/\(name) (\(api.origin))" }

    /// Records `spec` as seen now if it changed; true when it has not changed for longer
    /// than its lease duration.
    private func observe(_ spec: JSONValue) -> Bool {
        let seconds = spec["leaseDurationSeconds"]?.int ?? 15
        return observed.withLock { observed in
            if observed.record != spec {
                observed = (spec, .now)
                return false
            }
            return ContinuousClock.now - observed.at > .seconds(seconds)
        }
    }

    private static func spec(identity: String, seconds: Int, acquired: String, renewed: String, transitions: Int) -> JSONValue {
        .object([
            "holderIdentity": .string(identity), "leaseDurationSeconds": .int(seconds), "acquireTime": .string(acquired),
            "renewTime": .string(renewed), "leaseTransitions": .int(transitions),
        ])
    }

    private static func lease(name: String, namespace: String, spec: JSONValue) -> JSONValue {
        .object([
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": .object(["name": .string(name), "namespace": .string(namespace)]), "spec": spec,
        ])
    }

    /// Kubernetes' MicroTime: RFC 3339 with microseconds, in UTC.
    static func microTime(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"
        return formatter.string(from: date)
    }
}
