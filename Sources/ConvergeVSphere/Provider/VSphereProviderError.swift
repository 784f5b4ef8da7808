import ConvergeCore

/// Errors of the vSphere provider, each saying what and what to do.
public enum VSphereProviderError: Error, Sendable, CustomStringConvertible, TransientClassifying {
    /// A name in a manifest that vCenter does not have.
    case notFound(String, available: [String], field: String)
    /// Several such names, found while observing, before any change.
    case invalidReferences([String])
    case credentials(String)
    case unsupported(String, hint: String)
    case guestIP(String)
    case ownership(String)
    /// A VM that was there a moment ago is gone.
    case vanished(String)

    public var description: String {
        switch self {
        case .notFound(let what, let available, let field):
            let found = available.isEmpty ? "there are none" : "found: \(available.prefix(20).joined(separator: ", "))\(available.count > 20 ? ", …" : "")"
            return "\(what) does not exist on vCenter (\(field); \(found))"
        case .invalidReferences(let problems):
            return "\(problems.count) name\(problems.count == 1 ? "" : "s") in the manifests do\(problems.count == 1 ? "es" : "") not exist on vCenter; nothing was changed:\n" + problems.map { "  \($0)" }.joined(separator: "\n")
        case .credentials(let message): return message
        case .unsupported(let message, let hint): return "\(message) (\(hint))"
        case .guestIP(let message): return message
        case .ownership(let message): return message
        case .vanished(let ref): return "VM \(ref) disappeared from vCenter while Converge worked on it"
        }
    }

    public var isTransient: Bool { false }
}

extension VimFault: TransientClassifying {}
