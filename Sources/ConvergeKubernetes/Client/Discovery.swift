import ConvergeCore
import Synchronization

/// A resource type the API server serves: how to address objects of one group/version/kind.
struct ResourceType: Sendable, Hashable {
    var type: GroupVersionKind
    /// The URL name (`deployments`).
    var plural: String
    var namespaced: Bool

    /// `/apis/apps/v1/namespaces/shop/deployments[/web]`.
    func path(namespace: String?, name: String? = nil) -> String {
        var path = type.group.isEmpty ? "/api/\(type.version)" : "/apis/\(type.group)/\(type.version)"
        if namespaced, let namespace { path += "/namespaces/\(KubernetesClient.escape(namespace))" }
        path += "/\(plural)"
        if let name { path += "/\(KubernetesClient.escape(name))" }
        return path
    }

    func action(_ verb: String, namespace: String? = nil, name: String? = nil) -> KubernetesClient.Action {
        KubernetesClient.Action(
            verb: verb, resource: type.group.isEmpty ? plural : "\(plural).\(type.group)", namespace: namespace, name: name)
    }
}

/// The REST mapping of one cluster, read once (`/api`, `/apis`, then each group version in
/// parallel) and read again only when a kind is missing: after a CRD is applied, or when a
/// long-running process meets a kind installed since.
final class Discovery: Sendable {
    private let client: KubernetesClient
    private let types = Mutex<[GroupVersionKind: ResourceType]?>(nil)

    init(client: KubernetesClient) {
        self.client = client
    }

    /// The type serving `type`, refreshing discovery once if it is not known yet; nil when
    /// the server does not serve it.
    func resourceType(for type: GroupVersionKind) async throws -> ResourceType? {
        if let known = types.withLock({ $0 })?[type] { return known }
        let refreshed = try await refresh()
        return refreshed[type]
    }

    /// Only what is known now, without asking the server.
    func cachedResourceType(for type: GroupVersionKind) -> ResourceType? {
        types.withLock { $0 }?[type]
    }

    /// Every kind the server serves (for "did you mean" hints).
    func knownKinds() -> [GroupVersionKind] {
        types.withLock { $0.map { Array($0.keys) } ?? [] }
    }

    func loadIfNeeded() async throws {
        if types.withLock({ $0 }) == nil { _ = try await refresh() }
    }

    @discardableResult
    func refresh() async throws -> [GroupVersionKind: ResourceType] {
        let groups = try await client.send(.GET, "/apis", action: .init(verb: "discover", resource: "API groups"))
        var groupVersions = ["v1"]
        for group in groups.body["groups"]?.array ?? [] {
            for version in group["versions"]?.array ?? [] {
                if let groupVersion = version["groupVersion"]?.string { groupVersions.append(groupVersion) }
            }
        }
        let client = self.client
        let found = try await withThrowingTaskGroup(of: [ResourceType].self) { group in
            for groupVersion in groupVersions {
                group.addTask {
                    let path = groupVersion == "v1" ? "/api/v1" : "/apis/\(groupVersion)"
                    // A group version whose aggregated server is down answers 503: skip it, as kubectl does.
                    let list = try await client.send(
                        .GET, path, action: .init(verb: "discover", resource: groupVersion), allowing: [404, 503])
                    guard list.status == 200 else { return [] }
                    return (list.body["resources"]?.array ?? []).compactMap { resource -> ResourceType? in
                        guard let plural = resource["name"]?.string, !plural.contains("/"), let kind = resource["kind"]?.string else {
                            return nil
                        }
                        return ResourceType(
                            type: GroupVersionKind(apiVersion: groupVersion, kind: kind), plural: plural,
                            namespaced: resource["namespaced"] == .bool(true))
                    }
                }
            }
            return try await group.reduce(into: [ResourceType]()) { $0 += $1 }
        }
        let mapping = Dictionary(found.map { ($0.type, $0) }, uniquingKeysWith: { first, _ in first })
        types.withLock { $0 = mapping }
        return mapping
    }
}
