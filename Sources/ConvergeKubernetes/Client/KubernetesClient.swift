import ConvergeCore
import ConvergeHTTP
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// The Kubernetes REST API of one cluster over the shared HTTP layer: JSON requests with the
/// bearer token, the server's `Status` answers turned into ``KubernetesError``s that name
/// the verb, resource and namespace, and a count of round trips (the benchmarks report it).
final class KubernetesClient: Sendable {
    let connection: ClusterConnection
    private let transport: HTTPTransport
    private let cachedToken = Mutex<(value: String, read: ContinuousClock.Instant)?>(nil)
    private let roundTrips = Atomic<Int>(0)
    static let requestTimeout: Duration = .seconds(60)

    init(connection: ClusterConnection) throws {
        self.connection = connection
        do {
            transport = try HTTPTransport(url: connection.server, name: "the API server \(connection.server)", tls: connection.tls)
        } catch let error as HTTPTransportError {
            throw KubernetesError(.configuration, "\(error)", hint: "check the cluster's certificate settings (\(connection.origin))")
        }
    }

    func shutdown() async { await transport.shutdown() }

    /// Requests sent so far.
    var requestCount: Int { roundTrips.load(ordering: .relaxed) }

    /// What a request does, for error messages: `list configmaps in namespace shop`.
    struct Action: Sendable, CustomStringConvertible {
        var verb: String
        var resource: String
        var namespace: String?
        var name: String?

        var description: String {
            var text = "\(verb) \(resource)"
            if let name { text += " '\(name)'" }
            if let namespace { text += " in namespace \(namespace)" }
            return text
        }
    }

    struct Response: Sendable {
        var status: Int
        var body: JSONValue
    }

    /// Sends one request; 2xx answers come back decoded. `allowing` lists other statuses the
    /// caller handles itself (404 for a lookup, 409 to read a conflict); the rest throw.
    func send(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: String? = nil,
        contentType: String = "application/json", action: Action, allowing: Set<Int> = []
    ) async throws -> Response {
        var target = path
        if !query.isEmpty {
            target += "?" + query.map { "\($0.0)=\(Self.escape($0.1))" }.joined(separator: "&")
        }
        var headers: HTTPHeaders = ["Accept": "application/json"]
        if let token = try currentToken() { headers.add(name: "Authorization", value: "Bearer \(token)") }
        if body != nil { headers.add(name: "Content-Type", value: contentType) }
        roundTrips.add(1, ordering: .relaxed)
        let response: HTTPTransportResponse
        do {
            response = try await transport.execute(
                method, target, headers: headers, body: body.map { ByteBuffer(string: $0) }, timeout: Self.requestTimeout)
        } catch let error as HTTPTransportError {
            throw KubernetesError(
                .unreachable, "cannot \(action): \(error)",
                hint: error.code == .tls
                    ? "check the cluster's certificate-authority (\(connection.origin))"
                    : "is the API server running? (\(connection.origin))")
        }
        let status = Int(response.status.code)
        let decoded = response.body.readableBytes == 0 ? JSONValue.null : ((try? JSONValue.parse(response.body.readableBytesView)) ?? .null)
        if (200..<300).contains(status) || allowing.contains(status) { return Response(status: status, body: decoded) }
        throw error(status: status, body: decoded, text: response.bodyString, action: action)
    }

    private func error(status: Int, body: JSONValue, text: String, action: Action) -> KubernetesError {
        let message = body["message"]?.string ?? String(text.prefix(300))
        let causes = (body["details"]?["causes"]?.array ?? []).map { cause in
            (field: cause["field"]?.string ?? "", message: cause["message"]?.string ?? cause["reason"]?.string ?? "")
        }
        switch status {
        case 401:
            return KubernetesError(
                .unauthorized, "the API server \(connection.server) did not accept the credentials (401) to \(action)",
                hint: "the token or client certificate of \(connection.origin) is wrong or expired")
        case 403:
            return KubernetesError(
                .forbidden, "not allowed to \(action) (403): \(message)",
                hint: "grant the user of \(connection.origin) this verb through RBAC, or leave the object out")
        case 404:
            return KubernetesError(.notFound, "cannot \(action): not found (404)")
        case 409:
            return KubernetesError(.conflict, "cannot \(action): \(message)", causes: causes)
        case 400, 422:
            return KubernetesError(.invalid, "the API server rejected the object (\(action)): \(message)", causes: causes)
        case 429, 500...:
            return KubernetesError(.server, "the API server failed to \(action) (\(status)): \(message)", causes: causes)
        default:
            return KubernetesError(.invalid, "cannot \(action) (\(status)): \(message)", causes: causes)
        }
    }

    private func currentToken() throws -> String? {
        switch connection.token {
        case nil: return nil
        case .literal(let token): return token
        case .file(let path):
            let now = ContinuousClock.now
            if let cached = cachedToken.withLock({ $0 }), now - cached.read < .seconds(60) { return cached.value }
            do {
                let token = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                cachedToken.withLock { $0 = (token, now) }
                return token
            } catch {
                throw KubernetesError(.configuration, "cannot read the token file \(path) (\(connection.origin))")
            }
        }
    }

    private static let unreserved = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
    }
}
