import ConvergeCore
import ConvergeHTTP

/// Errors of the vSphere provider, each saying what and what to do.
///
/// A struct with a ``Code``, so that codes can be added without breaking code that reads them.
public struct VSphereProviderError: Error, Sendable, CustomStringConvertible, TransientClassifying {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case notFound, invalidReferences, credentials, unsupported, guestIP, ownership, vanished
        }

        let base: Base

        private init(_ base: Base) { self.base = base }

        /// A name in a manifest that vCenter does not have.
        public static let notFound = Self(.notFound)
        /// Several such names, found while observing, before any change (``VSphereProviderError/problems``).
        public static let invalidReferences = Self(.invalidReferences)
        /// The VCenter's credentials could not be read.
        public static let credentials = Self(.credentials)
        /// A change Converge does not make, or a vCenter that lacks what Converge needs.
        public static let unsupported = Self(.unsupported)
        /// The guest did not report the address it should have.
        public static let guestIP = Self(.guestIP)
        /// A VM that another instance, or no one, owns.
        public static let ownership = Self(.ownership)
        /// A VM that was there a moment ago is gone.
        public static let vanished = Self(.vanished)

        public var description: String { "\(base)" }
    }

    public var code: Code
    /// The whole message, as `description` gives it.
    public var message: String
    /// Each unresolved name, for ``Code/invalidReferences``.
    public var problems: [String]

    public init(_ code: Code, message: String, problems: [String] = []) {
        self.code = code
        self.message = message
        self.problems = problems
    }

    public var description: String { message }

    public var isTransient: Bool { false }

    /// A name in a manifest that vCenter does not have, with the names it does have.
    public static func notFound(_ what: String, available: [String], field: String) -> Self {
        let found =
            available.isEmpty
            ? "there are none" : "found: \(available.prefix(20).joined(separator: ", "))\(available.count > 20 ? ", …" : "")"
        return Self(.notFound, message: "\(what) does not exist on vCenter (\(field); \(found))")
    }

    public static func invalidReferences(_ problems: [String]) -> Self {
        let count = problems.count
        let message =
            "\(count) name\(count == 1 ? "" : "s") in the manifests do\(count == 1 ? "es" : "") not exist on vCenter; nothing was changed:\n"
            + problems.map { "  \($0)" }.joined(separator: "\n")
        return Self(.invalidReferences, message: message, problems: problems)
    }

    public static func credentials(_ message: String) -> Self { Self(.credentials, message: message) }

    public static func unsupported(_ message: String, hint: String) -> Self { Self(.unsupported, message: "\(message) (\(hint))") }

    public static func guestIP(_ message: String) -> Self { Self(.guestIP, message: message) }

    public static func ownership(_ message: String) -> Self { Self(.ownership, message: message) }

    public static func vanished(_ ref: String) -> Self {
        Self(.vanished, message: "VM \(ref) disappeared from vCenter while Converge worked on it")
    }
}

extension VimFault: TransientClassifying {}
