import ConvergeCore
import Foundation

/// Where a source stands, as the API and a `ConvergeSource`'s status show it. Its conditions
/// follow kstatus: `Ready` (applied and in sync, or why not), `Reconciling` (a reconcile is
/// under way), `Stalled` (it cannot progress without a person: bad manifests, an
/// unreachable repository).
public struct SourceStatus: Sendable, Codable, Equatable {
    public struct Condition: Sendable, Codable, Equatable {
        public var type: String
        /// `True`, `False` or `Unknown`, as Kubernetes writes them.
        public var status: String
        public var reason: String
        public var message: String
        public var lastTransitionTime: Date
    }

    public struct PendingApproval: Sendable, Codable, Equatable {
        public var runID: Int64
        public var planDigest: String
    }

    public var name: String
    public var repository: String
    public var ref: String
    public var path: String?
    public var drift: DriftPolicy
    /// The commit last fetched.
    public var lastFetchedRevision: String?
    public var lastFetchedAt: Date?
    /// The commit last applied in full (or found in sync).
    public var lastAppliedRevision: String?
    /// The digest of the last plan made for the source (empty plans included).
    public var lastPlanDigest: String?
    /// Changes between the live systems and the applied commit not corrected (yet).
    public var driftedResources: Int
    public var pendingApproval: PendingApproval?
    /// The last run the controller started for the source.
    public var lastRunID: Int64?
    /// Objects the source's manifests declare.
    public var managedResources: Int
    public var conditions: [Condition]

    init(_ source: SourceConfiguration) {
        name = source.name
        repository = source.repository
        ref = source.ref
        path = source.path
        drift = source.drift
        driftedResources = 0
        managedResources = 0
        conditions = []
    }

    /// Sets condition `type`, keeping its transition time when its status did not change.
    mutating func set(_ type: String, _ value: Bool?, reason: String, message: String, at now: Date = Date()) {
        let status = value.map { $0 ? "True" : "False" } ?? "Unknown"
        if let index = conditions.firstIndex(where: { $0.type == type }) {
            let changed = conditions[index].status != status
            conditions[index] = Condition(
                type: type, status: status, reason: reason, message: message,
                lastTransitionTime: changed ? now : conditions[index].lastTransitionTime)
        } else {
            conditions.append(Condition(type: type, status: status, reason: reason, message: message, lastTransitionTime: now))
        }
    }

    /// Ready with `reason`, not stalled, done reconciling.
    mutating func settle(ready: Bool, reason: String, message: String) {
        set("Ready", ready, reason: reason, message: message)
        set("Reconciling", false, reason: reason, message: "")
        set("Stalled", false, reason: reason, message: "")
    }

    /// Stalled with `reason`: not ready, not reconciling until something changes.
    mutating func stall(reason: String, message: String) {
        set("Ready", false, reason: reason, message: message)
        set("Reconciling", false, reason: reason, message: "")
        set("Stalled", true, reason: reason, message: message)
    }
}
