/// One manifest file as read from a source (a Git tree or a plain folder), before decoding.
///
/// `path` is relative to the source root and is what error messages show, so a person can
/// open the file; `bytes` is the raw content, which may not be UTF-8 (that is an error
/// reported by the decoder, with the path).
public struct SourceFile: Sendable, Hashable {
    public var path: String
    public var bytes: [UInt8]

    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
    }
}

/// Where a manifest set came from; the plan names it so a reviewer knows what was compared.
public struct SourceRevision: Sendable, Hashable, Codable {
    /// The repository as the user gave it (path or URL, credentials never included).
    public var repository: String
    /// The ref the user asked for (`main`, `v1.2`, a commit), if any.
    public var ref: String?
    /// The full commit id the manifests were read from; nil for a plain folder.
    public var commit: String?
    /// The folder inside the repository, if any.
    public var path: String?

    public init(repository: String, ref: String? = nil, commit: String? = nil, path: String? = nil) {
        self.repository = repository
        self.ref = ref
        self.commit = commit
        self.path = path
    }
}
