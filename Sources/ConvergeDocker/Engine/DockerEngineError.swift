/// A Docker Engine API call that failed.
///
/// `description` reads as one sentence for a person: what was attempted, on which object,
/// the engine's own words, and the HTTP exchange, e.g.
/// `Docker engine: remove container "web" failed: No such container: web (HTTP 404 on DELETE /v1.41/containers/web?force=true, socket /var/run/docker.sock)`.
public struct DockerEngineError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The engine answered with an error status.
        case http(status: Int)
        /// No response: the socket could not be reached, the connection broke, or the deadline passed.
        case transport(UnixSocketHTTPTransportError)
        /// The engine answered successfully but the body was not what the API promises.
        case invalidResponse
    }

    public var kind: Kind
    /// What was attempted, in words: `create container "web"`.
    public var operation: String
    /// HTTP method, e.g. `POST`.
    public var method: String
    /// Request target (path and query), e.g. `/v1.41/containers/create?name=web`.
    public var path: String
    /// The engine's `message` from its JSON error body, or a description of the transport or decoding failure.
    public var message: String
    public var socketPath: String

    public init(kind: Kind, operation: String, method: String, path: String, message: String, socketPath: String) {
        self.kind = kind
        self.operation = operation
        self.method = method
        self.path = path
        self.message = message
        self.socketPath = socketPath
    }

    /// HTTP status of the engine's answer, if it answered.
    public var status: Int? {
        if case .http(let status) = kind { return status }
        return nil
    }

    /// The object does not exist (404; also the 500 "No such …" some engine versions send).
    public var isNotFound: Bool {
        switch kind {
        case .http(404): return true
        case .http(500): return message.contains("No such")
        default: return false
        }
    }

    /// The request conflicts with the object's state (409), e.g. a name already in use,
    /// or removing a running container without force.
    public var isConflict: Bool { kind == .http(status: 409) }

    /// Whether the same request may succeed if retried later: the engine's 5xx (except a 500 that
    /// really means "No such …"), a refused, reset or timed-out connection. 4xx errors are permanent.
    public var isTransient: Bool {
        switch kind {
        case .http(let status):
            if status == 500 && message.contains("No such") { return false }
            return status >= 500
        case .transport(let error):
            return error.isTransient
        case .invalidResponse:
            return false
        }
    }

    public var description: String {
        switch kind {
        case .http(let status):
            return "Docker engine: \(operation) failed: \(message) (HTTP \(status) on \(method) \(path), socket \(socketPath))"
        case .transport(let error):
            return "Docker engine: \(operation) failed: \(error) (\(method) \(path))"
        case .invalidResponse:
            return "Docker engine: \(operation) failed: unexpected response: \(message) (\(method) \(path), socket \(socketPath))"
        }
    }
}
