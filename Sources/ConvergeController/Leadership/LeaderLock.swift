import ConvergeStore

/// A lease only one replica holds at a time: a row in the shared store, or a Kubernetes Lease.
public protocol LeaderLock: Sendable, CustomStringConvertible {
    /// Takes the lease for `identity`, or renews it, when it is free, expired or already
    /// `identity`'s; returns who holds it afterwards.
    func campaign(identity: String, duration: Duration) async throws -> String
    /// Gives the lease up at once when `identity` holds it, so a successor need not wait.
    func resign(identity: String) async throws
}

/// The leader lease as a row of the run store (PostgreSQL for replicas on several hosts;
/// SQLite works for replicas on one host). Expiry is judged by the store's clock.
public struct StoreLeaderLock: LeaderLock {
    public var store: any WorkflowStore
    public var name: String

    public init(store: any WorkflowStore, name: String) {
        self.store = store
        self.name = name
    }

    public func campaign(identity: String, duration: Duration) async throws -> String {
        try await store.campaign(for: name, holder: identity, ttl: duration).holder
    }

    public func resign(identity: String) async throws {
        try await store.resign(name, holder: identity)
    }

    public var description: String { "the store's leader lease '\(name)'" }
}
