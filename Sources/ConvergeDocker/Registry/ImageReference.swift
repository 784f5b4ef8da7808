/// An image reference as Docker reads it (`registry.example:5000/team/app:1.4@sha256:…`):
/// where it comes from, which tag and which digest.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// The repository as written (`registry.example:5000/team/app`, `busybox`).
    public var repository: String
    public var tag: String?
    public var digest: String?

    /// Docker Hub's name for itself, which `busybox` and `team/app` imply.
    static let dockerHub = "docker.io"

    /// Nil when `text` is not a reference Docker accepts.
    public init?(_ text: String) {
        var rest = Substring(text)
        if let at = rest.firstIndex(of: "@") {
            let digest = rest[rest.index(after: at)...]
            guard Self.isDigest(digest) else { return nil }
            self.digest = String(digest)
            rest = rest[..<at]
        }
        let lastSlash = rest.lastIndex(of: "/") ?? rest.startIndex
        if let colon = rest[lastSlash...].lastIndex(of: ":") {
            let tag = rest[rest.index(after: colon)...]
            guard !tag.isEmpty, tag.count <= 128, tag.allSatisfy({ $0.isLetter || $0.isNumber || "_.-".contains($0) }) else { return nil }
            self.tag = String(tag)
            rest = rest[..<colon]
        }
        guard !rest.isEmpty, !rest.hasPrefix("/"), !rest.hasSuffix("/"), !rest.contains("//"), !rest.contains(where: \.isWhitespace)
        else { return nil }
        repository = String(rest)
        // Repository paths are lower case; a registry's host name need not be.
        let explicitHost = registry != Self.dockerHub || repository.hasPrefix("docker.io/")
        let path = explicitHost ? repository.drop { $0 != "/" }.dropFirst() : Substring(repository)
        guard !path.isEmpty, !path.contains(where: { $0.isUppercase }) else { return nil }
    }

    private static func isDigest(_ text: Substring) -> Bool {
        guard text.hasPrefix("sha256:") else { return false }
        let hex = text.dropFirst("sha256:".count)
        return hex.count == 64 && hex.allSatisfy(\.isHexDigit)
    }

    /// The registry's host (and port): the first component when it looks like one (has a
    /// `.` or `:`, or is `localhost`), Docker Hub otherwise.
    public var registry: String { String(Self.registry(of: Substring(repository))) }

    private static func registry(of repository: Substring) -> Substring {
        guard let slash = repository.firstIndex(of: "/") else { return Substring(dockerHub) }
        let first = repository[..<slash]
        return first.contains(".") || first.contains(":") || first == "localhost" ? first : Substring(dockerHub)
    }

    /// The host the registry's API answers on (Docker Hub's is not `docker.io`).
    public var registryHost: String { registry == Self.dockerHub ? "registry-1.docker.io" : registry }

    /// The repository's path on its registry (`team/app`; `library/busybox` for an official image).
    public var registryPath: String {
        guard registry == Self.dockerHub else { return String(repository.dropFirst(registry.count + 1)) }
        let path = canonicalRepository
        return path.contains("/") ? path : "library/" + path
    }

    /// The repository as the engine names it in `RepoDigests`, for comparing: Docker Hub's
    /// without its host (and `library/` for official images), others as written.
    public var canonicalRepository: String {
        guard registry == Self.dockerHub else { return repository }
        let path = repository.hasPrefix("docker.io/") ? String(repository.dropFirst("docker.io/".count)) : repository
        return path.hasPrefix("library/") ? String(path.dropFirst("library/".count)) : path
    }

    /// The tag the engine reads when none is written.
    public var effectiveTag: String { tag ?? "latest" }

    /// The reference without its digest (`registry/app:1.4`).
    public var tagged: String { repository + ":" + effectiveTag }

    /// The reference pinned to `digest`, tag kept for people reading it: `registry/app:1.4@sha256:…`.
    public func pinned(to digest: String) -> String { tagged + "@" + digest }

    public var description: String { repository + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0 } ?? "") }

    /// The digest of `canonicalRepository` among an image's `RepoDigests`, if it has one (the
    /// first in order, so plan and observation pick the same when it has several).
    public func digest(among repoDigests: [String]) -> String? {
        repoDigests.compactMap { entry -> String? in
            guard let reference = ImageReference(entry), reference.canonicalRepository == canonicalRepository else { return nil }
            return reference.digest
        }.sorted().first
    }
}

/// When a container's image is asked of its registry (`pull:`), as in Kubernetes.
public enum ImagePullPolicy: String, Sendable, Hashable {
    /// The local image when the host has the tag (no registry round trip), the registry's otherwise.
    case ifNotPresent
    /// The registry's, at every plan: a tag pushed again is seen and the container replaced.
    case always
    /// The local image only; the registry is never asked.
    case never
}
