import ConvergeHTTP

/// A Docker Engine API call that failed.
///
/// `description` reads as one sentence for a person: what was attempted, on which object,
/// the engine's own words, and the HTTP exchange, e.g.
/// `Docker engine: remove container "web" failed: No such container: web (HTTP 404 on DELETE /v1.41/containers/web?force=true, socket /var/run/docker.sock)`.
///
/// A struct with a ``Code``, so that codes can be added without breaking code that reads them.
public struct DockerEngineError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case http, transport, invalidResponse
        }

        let base: Base

        private init(_ base: Base) { self.base = base }

        /// The engine answered with an error status (``DockerEngineError/status``).
        public static let http = Self(.http)
        /// No response: the socket could not be reached, the connection broke, or the deadline
        /// passed (``DockerEngineError/transport``).
        public static let transport = Self(.transport)
        /// The engine answered successfully but the body was not what the API promises.
        public static let invalidResponse = Self(.invalidResponse)

        public var description: String { "\(base)" }
    }

    public var code: Code
    /// HTTP status of the engine's answer, if it answered with an error.
    public var status: Int?
    /// Why no response came, for ``Code/transport``.
    public var transport: HTTPTransportError?
    /// What was attempted, in words: `create container "web"`.
    public var operation: String
    /// HTTP method, e.g. `POST`.
    public var method: String
    /// Request target (path and query), e.g. `/v1.41/containers/create?name=web`.
    public var path: String
    /// The engine's `message` from its JSON error body, or a description of the transport or decoding failure.
    public var message: String
    public var socketPath: String

    public init(
        _ code: Code, status: Int? = nil, transport: HTTPTransportError? = nil, operation: String, method: String, path: String,
        message: String, socketPath: String
    ) {
        self.code = code
        self.status = status
        self.transport = transport
        self.operation = operation
        self.method = method
        self.path = path
        self.message = message
        self.socketPath = socketPath
    }

    /// The object does not exist (404; also the 500 "No such …" some engine versions send).
    public var isNotFound: Bool {
        switch status {
        case 404: return true
        case 500: return message.contains("No such")
        default: return false
        }
    }

    /// The request conflicts with the object's state (409), e.g. a name already in use,
    /// or removing a running container without force.
    public var isConflict: Bool { status == 409 }

    /// Whether the same request may succeed if retried later: the engine's 5xx (except a 500 that
    /// really means "No such …"), a refused, reset or timed-out connection. 4xx errors are permanent.
    public var isTransient: Bool {
        switch code.base {
        case .http:
            guard let status else { return false }
            if status == 500 && message.contains("No such") { return false }
            return status >= 500
        case .transport:
            return transport?.isTransient ?? false
        case .invalidResponse:
            return false
        }
    }

    public var description: String {
        switch code.base {
        case .http:
            return "Docker engine: \(operation) failed: \(message) (HTTP \(status ?? 0) on \(method) \(path), socket \(socketPath))"
        case .transport:
            return "Docker engine: \(operation) failed: \(transport.map { "\($0)" } ?? message) (\(method) \(path))"
        case .invalidResponse:
            return "Docker engine: \(operation) failed: unexpected response: \(message) (\(method) \(path), socket \(socketPath))"
        }
    }
}
