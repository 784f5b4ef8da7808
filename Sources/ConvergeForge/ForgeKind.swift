import Foundation

/// The forges whose pull requests Converge plans, reviews and approves on. The REST shapes
/// followed: GitHub REST API 2022-11-28 (GitHub Enterprise Server alike), Gitea API v1 as of
/// 1.22 (Forgejo keeps it), GitLab REST API v4 as of 17.x.
public enum ForgeKind: String, Sendable, CaseIterable, Codable {
    case github
    case gitea
    case gitlab

    public var displayName: String {
        switch self {
        case .github: return "GitHub"
        case .gitea: return "Gitea"
        case .gitlab: return "GitLab"
        }
    }

    /// The API of the public service, for a configuration that names none (Gitea has none).
    public var defaultAPIURL: String? {
        switch self {
        case .github: return "https://api.github.com"
        case .gitlab: return "https://gitlab.com/api/v4"
        case .gitea: return nil
        }
    }

    /// The longest comment body the forge accepts: GitHub refuses bodies over 65,536
    /// characters (422); Gitea documents no limit, and gets GitHub's so a plan reads the
    /// same; GitLab notes take 1,000,000.
    public var commentLimit: Int {
        switch self {
        case .github, .gitea: return 65_536
        case .gitlab: return 1_000_000
        }
    }

    /// The ref under which the forge publishes a pull request's head commit in the
    /// repository, fetchable like a branch.
    public func headRef(ofPullRequest number: Int) -> String {
        switch self {
        case .github, .gitea: return "refs/pull/\(number)/head"
        case .gitlab: return "refs/merge-requests/\(number)/head"
        }
    }

    /// How a pull request is written on this forge (`#42`, GitLab's `!42`).
    func reference(_ number: Int, repository: String) -> String {
        self == .gitlab ? "\(repository)!\(number)" : "\(repository)#\(number)"
    }
}

/// Where a source's pull requests live: the forge, its API, the repository on it and the
/// token Converge acts with there.
public struct ForgeConfiguration: Sendable, Equatable {
    public var kind: ForgeKind
    /// The API root: `https://api.github.com`, `https://ghe.example/api/v3`,
    /// `https://gitea.example/api/v1`, `https://gitlab.example/api/v4`.
    public var apiURL: String
    /// `owner/name` on GitHub and Gitea; the project's full path on GitLab.
    public var repository: String
    public var token: ForgeToken

    public init(kind: ForgeKind, apiURL: String? = nil, repository: String, token: ForgeToken) throws {
        guard let url = apiURL ?? kind.defaultAPIURL else {
            throw ForgeError(.configuration, "a \(kind.displayName) forge needs its API URL (https://gitea.example/api/v1)")
        }
        guard url.hasPrefix("https://") || url.hasPrefix("http://"), URL(string: url)?.host != nil else {
            throw ForgeError(.configuration, "the forge API URL '\(url)' is not an http(s) URL")
        }
        guard repository.split(separator: "/").count >= 2 else {
            throw ForgeError(.configuration, "the forge repository '\(repository)' is not owner/name (or a GitLab group/project path)")
        }
        self.kind = kind
        self.apiURL = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.repository = repository
        self.token = token
    }
}

/// The token Converge acts with on a forge; never printed.
public struct ForgeToken: Sendable, Equatable, CustomStringConvertible {
    let value: String

    public init(_ value: String) throws {
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ForgeError(.configuration, "the forge token is empty") }
        self.value = trimmed
    }

    /// The token in file `path` (a mounted Secret, a CI secret file).
    public init(file path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ForgeError(.configuration, "cannot read the forge token file '\(path)'")
        }
        try self.init(text)
    }

    /// The token in environment variable `name`.
    public init(environment name: String) throws {
        guard let text = ProcessInfo.processInfo.environment[name], !text.isEmpty else {
            throw ForgeError(.configuration, "the environment variable \(name), which should hold the forge token, is not set")
        }
        try self.init(text)
    }

    public var description: String { "<forge token>" }
}
