import ConvergeCore
import ConvergeForge
import Crypto
import Foundation

/// The forges whose push webhooks the controller receives, each with its own way of proving
/// a delivery comes from the holder of the shared secret.
public enum WebhookForge: String, Sendable, CaseIterable {
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    case github
    /// Gitea and Forgejo: `X-Gitea-Signature: <hex HMAC-SHA256 of the body>`.
    case gitea
    /// GitLab: `X-Gitlab-Token: <the secret itself>` (GitLab signs nothing).
    case gitlab
    /// Any sender: `X-Converge-Signature: sha256=<hex HMAC-SHA256 of the body>`, with a body
    /// `{"ref": "refs/heads/main", "repository": "<url>"}` (repository optional).
    case generic

    /// Whether `headers` prove the sender knows `secret`. Every comparison takes the same
    /// time whatever the bytes, so timing tells an attacker nothing.
    func isAuthentic(body: [UInt8], header: (String) -> String?, secret: WebhookSecret) -> Bool {
        let key = SymmetricKey(data: secret.bytes)
        switch self {
        case .github: return Self.hmacMatches(header("X-Hub-Signature-256"), prefix: "sha256=", body: body, key: key)
        case .gitea: return Self.hmacMatches(header("X-Gitea-Signature"), prefix: "", body: body, key: key)
        case .generic: return Self.hmacMatches(header("X-Converge-Signature"), prefix: "sha256=", body: body, key: key)
        case .gitlab:
            guard let token = header("X-Gitlab-Token") else { return false }
            // The token's MAC under the secret, checked as a signature would be: the
            // comparison takes the same time whatever the bytes and lengths.
            let expected = HMAC<SHA256>.authenticationCode(for: secret.bytes, using: key)
            return HMAC<SHA256>.isValidAuthenticationCode(Array(expected), authenticating: Array(token.utf8), using: key)
        }
    }

    private static func hmacMatches(_ value: String?, prefix: String, body: [UInt8], key: SymmetricKey) -> Bool {
        guard let value, value.hasPrefix(prefix), let signature = Hex.decode(String(value.dropFirst(prefix.count))) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: body, using: key)
    }

    /// The id a forge gives a delivery, the same on its retries: a replay is recognised by it.
    func deliveryID(header: (String) -> String?) -> String? {
        switch self {
        case .github: return header("X-GitHub-Delivery")
        case .gitea: return header("X-Gitea-Delivery")
        // `Idempotency-Key` (GitLab 17.4+) stays the same across retries; the event UUID before it.
        case .gitlab: return header("Idempotency-Key") ?? header("X-Gitlab-Event-UUID")
        case .generic: return header("X-Converge-Delivery")
        }
    }

    /// Reads a push out of an authentic delivery; nil for other events (a ping, an issue).
    func push(body: [UInt8], header: (String) -> String?) throws -> WebhookPush? {
        switch self {
        case .github:
            guard header("X-GitHub-Event") == "push" else { return nil }
        case .gitea:
            guard (header("X-Gitea-Event") ?? header("X-Gogs-Event")) == "push" else { return nil }
        case .gitlab:
            guard ["Push Hook", "Tag Push Hook"].contains(header("X-Gitlab-Event") ?? "") else { return nil }
        case .generic:
            break
        }
        guard let payload = try? JSONValue.parse(body) else { throw WebhookError("the body is not JSON") }
        guard let ref = payload["ref"]?.string else { throw WebhookError("the push names no ref") }
        let revision = payload["after"]?.string ?? payload["checkout_sha"]?.string ?? payload["revision"]?.string
        var urls: [String] = []
        for object in [payload["repository"], payload["project"]] {
            if let url = object?.string { urls.append(url) }
            for field in ["clone_url", "html_url", "ssh_url", "git_url", "git_http_url", "git_ssh_url", "web_url", "url"] {
                if let url = object?[field]?.string { urls.append(url) }
            }
        }
        return WebhookPush(ref: ref, revision: revision, repositories: urls)
    }
}

extension WebhookForge {
    /// Reads a pull-request event (opened, new commit, review, comment, merge) out of an
    /// authentic delivery; nil for other events and for the generic receiver.
    func pullRequestEvent(body: [UInt8], header: (String) -> String?) -> PullRequestEvent? {
        switch self {
        case .github: return PullRequestEvent.parse(kind: .github, event: header("X-GitHub-Event"), body: body)
        case .gitea: return PullRequestEvent.parse(kind: .gitea, event: header("X-Gitea-Event") ?? header("X-Gogs-Event"), body: body)
        case .gitlab: return PullRequestEvent.parse(kind: .gitlab, event: header("X-Gitlab-Event"), body: body)
        case .generic: return nil
        }
    }
}

/// The secret shared with the forges, from a file or an environment variable; never logged.
public struct WebhookSecret: Sendable, CustomStringConvertible {
    let bytes: [UInt8]

    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard trimmed.utf8.count >= 16 else {
            throw ControllerError("the webhook secret is shorter than 16 bytes", hint: "make one with `openssl rand -hex 32`")
        }
        bytes = Array(trimmed.utf8)
    }

    public var description: String { "<webhook secret>" }
}

/// What a push webhook says: which ref moved, to which commit, in which repository (every
/// address the forge gives for it).
public struct WebhookPush: Sendable, Equatable {
    public var ref: String
    public var revision: String?
    public var repositories: [String]

    /// Whether this push moves `source`'s ref: the same ref (`main` matches `refs/heads/main`)
    /// in the same repository, by any of its addresses; a push naming no repository (generic)
    /// matches on the ref alone.
    func moves(repository: String, ref watched: String) -> Bool {
        let refs = watched.hasPrefix("refs/") ? [watched] : ["refs/heads/\(watched)", "refs/tags/\(watched)", watched]
        guard refs.contains(ref) else { return false }
        if repositories.isEmpty { return true }
        let wanted = Self.normalised(repository)
        return repositories.contains { Self.normalised($0) == wanted }
    }

    /// `https://user@Forge.example/team/infra.git/` → `forge.example/team/infra`; scp-style
    /// `git@forge.example:team/infra.git` → the same.
    static func normalised(_ address: String) -> String {
        var text = address.trimmingCharacters(in: .whitespaces)
        if let scheme = text.range(of: "://") { text = String(text[scheme.upperBound...]) }
        if let at = text.firstIndex(of: "@"), !text[..<at].contains("/") { text = String(text[text.index(after: at)...]) }
        if let colon = text.firstIndex(of: ":"), !text[..<colon].contains("/") {
            let rest = text[text.index(after: colon)...]
            // host:port/path keeps the port; host:path (scp style) becomes host/path.
            if let slash = rest.firstIndex(of: "/"), rest[..<slash].allSatisfy(\.isNumber) {
                text = String(text[..<colon]) + ":" + rest
            } else {
                text = String(text[..<colon]) + "/" + rest
            }
        }
        while text.hasSuffix("/") { text.removeLast() }
        if text.hasSuffix(".git") { text.removeLast(4) }
        guard let slash = text.firstIndex(of: "/") else { return text.lowercased() }
        return text[..<slash].lowercased() + text[slash...]
    }
}

public struct WebhookError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

enum Hex {
    static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
