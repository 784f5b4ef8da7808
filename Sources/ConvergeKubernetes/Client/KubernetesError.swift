import ConvergeCore

/// What went wrong talking to a cluster, in terms a user can act on: which server, which
/// verb on which resource in which namespace, and the server's own field errors. A struct
/// with a code, so codes can be added without breaking callers.
public struct KubernetesError: Error, CustomStringConvertible, TransientClassifying {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// The cluster manifest, kubeconfig or service account cannot be used.
        public static let configuration = Code("configuration")
        /// The API server could not be reached (refused, timed out, TLS failed).
        public static let unreachable = Code("unreachable")
        /// 401: the credentials were not accepted.
        public static let unauthorized = Code("unauthorized")
        /// 403: the user may not do this.
        public static let forbidden = Code("forbidden")
        /// No resource type serves the kind (no CRD, a typo in kind or apiVersion).
        public static let unknownKind = Code("unknownKind")
        /// 422 / 400: the server rejected the object.
        public static let invalid = Code("invalid")
        /// 409: fields managed by another applier, or a concurrent change.
        public static let conflict = Code("conflict")
        /// 404 where an object was expected.
        public static let notFound = Code("notFound")
        /// 5xx, 429 or a dropped connection: trying again may help.
        public static let server = Code("server")
        /// A health gate did not pass within its timeout.
        public static let unhealthy = Code("unhealthy")

        public var description: String { name }
    }

    public var code: Code
    public var message: String
    public var hint: String?
    /// The server's per-field complaints (`spec.replicas: Invalid value…`), in its words.
    public var causes: [(field: String, message: String)]

    public init(_ code: Code, _ message: String, hint: String? = nil, causes: [(field: String, message: String)] = []) {
        self.code = code
        self.message = message
        self.hint = hint
        self.causes = causes
    }

    public var isTransient: Bool { code == .server || code == .unreachable }

    public var description: String {
        var text = message
        for cause in causes { text += "\n  \(cause.field.isEmpty ? "" : "\(cause.field): ")\(cause.message)" }
        if let hint { text += "\n  hint: \(hint)" }
        return text
    }
}
