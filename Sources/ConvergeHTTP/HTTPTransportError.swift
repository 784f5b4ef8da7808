import ConvergeCore

/// Why a request produced no usable response: the peer could not be reached, the connection
/// broke, the deadline passed, or the answer was too large.
///
/// A struct with a ``Code`` rather than an enum, so that codes can be added without breaking
/// code that switches over them.
public struct HTTPTransportError: Error, Sendable, Hashable, CustomStringConvertible, TransientClassifying {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case socketNotFound, permissionDenied, connectionRefused, connectTimeout, deadlineExceeded
            case connectionClosed, responseTooLarge, invalidAddress, tls, unavailable, io
        }

        let base: Base

        private init(_ base: Base) { self.base = base }

        /// Nothing exists at the socket path (`ENOENT`).
        public static let socketNotFound = Self(.socketNotFound)
        /// The socket exists but this process may not open it (`EACCES`/`EPERM`).
        public static let permissionDenied = Self(.permissionDenied)
        /// No one accepts connections there (`ECONNREFUSED`), e.g. the daemon is restarting.
        public static let connectionRefused = Self(.connectionRefused)
        /// Opening the connection took longer than the connect timeout.
        public static let connectTimeout = Self(.connectTimeout)
        /// The whole exchange took longer than the request's deadline.
        public static let deadlineExceeded = Self(.deadlineExceeded)
        /// The peer closed or reset the connection before the response was complete.
        public static let connectionClosed = Self(.connectionClosed)
        /// The response body was larger than the transport accepts.
        public static let responseTooLarge = Self(.responseTooLarge)
        /// The address cannot be used (a socket path too long for `sockaddr_un`, a bad URL).
        public static let invalidAddress = Self(.invalidAddress)
        /// The TLS handshake failed, or the trust settings could not be loaded.
        public static let tls = Self(.tls)
        /// An HTTP error status without the answer the protocol promises (a 503 while a
        /// service restarts). Raised by the clients above the transport.
        public static let unavailable = Self(.unavailable)
        /// Any other I/O failure.
        public static let io = Self(.io)

        public var description: String { "\(base)" }
    }

    public var code: Code
    /// The socket path or URL the request went to.
    public var endpoint: String
    /// The underlying failure in words, when there is more to say.
    public var detail: String?
    /// The deadline or connect timeout that passed.
    public var timeout: Duration?
    /// The body size limit that was exceeded.
    public var limit: Int?
    /// The HTTP status, for ``Code/unavailable``.
    public var status: Int?
    /// What the reader can do about it, added by the client that knows its settings
    /// (for TLS: the target's trust options).
    public var hint: String?

    public init(
        _ code: Code, endpoint: String, detail: String? = nil, timeout: Duration? = nil, limit: Int? = nil,
        status: Int? = nil, hint: String? = nil
    ) {
        self.code = code
        self.endpoint = endpoint
        self.detail = detail
        self.timeout = timeout
        self.limit = limit
        self.status = status
        self.hint = hint
    }

    public var description: String {
        let detail = self.detail ?? "unknown cause"
        let timeout = self.timeout.map { "\($0)" } ?? "its deadline"
        let text: String
        switch code.base {
        case .socketNotFound:
            text = "no socket at \(endpoint) (is the daemon running, and is the path right?)"
        case .permissionDenied:
            text = "permission denied opening \(endpoint) (run as a user allowed to use it, e.g. in the 'docker' group)"
        case .connectionRefused:
            text = "connection refused on \(endpoint) (the daemon is not accepting connections; is it starting or stopped?)"
        case .connectTimeout:
            text = "connecting to \(endpoint) timed out after \(timeout)"
        case .deadlineExceeded:
            text = "no complete response from \(endpoint) within \(timeout)"
        case .connectionClosed:
            text = "connection to \(endpoint) closed before the response was complete (\(detail))"
        case .responseTooLarge:
            text = "response from \(endpoint) is larger than the \(limit ?? 0)-byte limit"
        case .invalidAddress:
            text = "cannot use \(endpoint): \(detail)"
        case .tls:
            text = "TLS handshake with \(endpoint) failed: \(detail)"
        case .unavailable:
            let why = self.detail ?? "without the expected response (is it starting or overloaded?)"
            text = "\(endpoint) answered HTTP \(status ?? 0) \(why)"
        case .io:
            text = "I/O error on \(endpoint): \(detail)"
        }
        return hint.map { "\(text) (\($0))" } ?? text
    }

    /// Whether retrying the same request later may succeed: a refused, reset or timed-out
    /// connection and an unavailable server may recover; a missing socket, a refused
    /// certificate or an oversized answer will not.
    public var isTransient: Bool {
        switch code.base {
        case .connectionRefused, .connectTimeout, .deadlineExceeded, .connectionClosed, .unavailable, .io:
            return true
        case .socketNotFound, .permissionDenied, .responseTooLarge, .invalidAddress, .tls:
            return false
        }
    }
}
