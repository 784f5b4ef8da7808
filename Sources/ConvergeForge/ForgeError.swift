/// A forge call that failed, or a forge configuration that cannot be used. A struct with a
/// code, so codes can be added without breaking callers.
public struct ForgeError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// The settings (URL, repository, token) cannot be used.
        public static let configuration = Code("configuration")
        /// The forge refused the token (401).
        public static let unauthorized = Code("unauthorized")
        /// The token may not do this (403).
        public static let forbidden = Code("forbidden")
        /// No such pull request, comment, team (404).
        public static let notFound = Code("notFound")
        /// The forge refused the request's content (400, 409, 422: a body too long).
        public static let rejected = Code("rejected")
        /// The forge did not answer, or answered 5xx.
        public static let unavailable = Code("unavailable")
        /// The answer was not in the documented shape.
        public static let unexpectedAnswer = Code("unexpectedAnswer")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
