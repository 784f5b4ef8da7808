/// Why a manifest set could not be read from Git.
///
/// It exists so callers (the CLI, the controller) can show one clear sentence — what went
/// wrong, where, and what to do — and can still branch on `kind` (for example, to treat a
/// missing ref differently from a network failure). Messages never contain credentials.
public struct GitSourceError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The broad class of failure.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// The local path does not exist.
        case repositoryNotFound
        /// The local path exists but is not a Git repository.
        case notARepository
        /// The repository has no commit yet (unborn HEAD) and no ref was given.
        case emptyRepository
        /// The ref is neither a branch, a tag nor a commit id of the repository.
        case refNotFound
        /// An abbreviated commit id matches more than one object.
        case ambiguousRef
        /// The ref names an object that is not (and does not peel to) a commit.
        case notACommit
        /// `path` does not exist in the commit's tree.
        case pathNotFound
        /// `path` names something that is neither a folder nor a YAML file.
        case unsupportedPath
        /// Cloning or fetching a remote repository failed (network, authentication, URL).
        case fetchFailed
        /// The cache folder could not be created or used.
        case cacheFailed
        /// Any other libgit2 failure (corrupt object, I/O error, …).
        case libgit2
    }

    public var kind: Kind
    /// The full sentence(s) shown to a person.
    public var message: String
    /// libgit2's return code when the failure came from libgit2.
    public var code: Int32?

    public init(_ kind: Kind, _ message: String, code: Int32? = nil) {
        self.kind = kind
        self.message = message
        self.code = code
    }

    public var description: String { message }

    /// Builds an error from the last libgit2 failure: "could not <what>: <libgit2 message>. <hint>"
    static func libgit2(_ kind: Kind, code: Int32, what: String, hint: String? = nil) -> GitSourceError {
        var message = "could not \(what)"
        if let detail = Libgit2.lastErrorMessage() {
            message += ": \(URLRedaction.redactURLs(in: detail))"
        } else {
            message += " (libgit2 error \(code))"
        }
        if !message.hasSuffix(".") { message += "." }
        if let hint { message += " \(hint)" }
        return GitSourceError(kind, message, code: code)
    }
}
