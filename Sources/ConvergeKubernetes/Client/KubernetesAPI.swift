import ConvergeCore
import Foundation

/// The REST API of one cluster for code outside the provider that keeps objects of its own
/// there: the controller's leader Lease and its `ConvergeSource` objects. JSON in and out,
/// errors as ``KubernetesError``s; no discovery, no server-side apply.
public final class KubernetesAPI: Sendable {
    private let client: KubernetesClient

    /// The cluster of a kubeconfig context (the current one when nil).
    public convenience init(kubeconfig: String, context: String? = nil) throws {
        try self.init(.kubeconfig(path: kubeconfig, context: context))
    }

    /// The cluster the process runs in, with its pod's service account.
    public static func inCluster() throws -> KubernetesAPI {
        try KubernetesAPI(.inCluster)
    }

    private init(_ source: KubernetesClusterSpec.Source) throws {
        client = try KubernetesClient(connection: try ClusterConnection.resolve(source))
    }

    /// Where the API server is and whose credentials are used, for messages.
    public var origin: String { client.connection.description }

    /// The object at `path`, or nil when there is none (404).
    public func get(_ path: String) async throws -> JSONValue? {
        let response = try await client.send(.GET, path, action: action("get", path), allowing: [404])
        return response.status == 404 ? nil : response.body
    }

    /// Lists the objects of a collection path, following `continue` tokens.
    public func list(_ path: String) async throws -> [JSONValue] {
        var items: [JSONValue] = []
        var token: String?
        repeat {
            var query = [("limit", "500")]
            if let token { query.append(("continue", token)) }
            let page = try await client.send(.GET, path, query: query, action: action("list", path)).body
            items += page["items"]?.array ?? []
            token = page["metadata"]?["continue"]?.string.flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return items
    }

    /// Creates `object` in the collection at `path`; nil when one of that name exists (409).
    public func create(_ path: String, _ object: JSONValue) async throws -> JSONValue? {
        let response = try await client.send(.POST, path, body: object.serialized, action: action("create", path), allowing: [409])
        return response.status == 409 ? nil : response.body
    }

    /// Replaces the object at `path`; nil when its `metadata.resourceVersion` is no longer the
    /// server's (409: someone else wrote it first).
    public func replace(_ path: String, _ object: JSONValue) async throws -> JSONValue? {
        let response = try await client.send(.PUT, path, body: object.serialized, action: action("replace", path), allowing: [409])
        return response.status == 409 ? nil : response.body
    }

    /// A JSON merge patch of the object at `path` (a `/status` path patches the status).
    public func mergePatch(_ path: String, _ patch: JSONValue) async throws -> JSONValue {
        try await client.send(
            .PATCH, path, body: patch.serialized, contentType: "application/merge-patch+json", action: action("patch", path)
        ).body
    }

    public func shutdown() async {
        await client.shutdown()
    }

    private func action(_ verb: String, _ path: String) -> KubernetesClient.Action {
        KubernetesClient.Action(verb: verb, resource: path, namespace: nil, name: nil)
    }
}
