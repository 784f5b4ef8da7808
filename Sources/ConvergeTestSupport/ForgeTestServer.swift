import ConvergeHTTP
import Foundation
import NIOCore
import NIOHTTP1

/// `scripts/forge-test-server.py` started for a test: a GitHub, Gitea or GitLab imitation on
/// loopback whose control API opens, pushes to, reviews, comments on and merges pull requests
/// (each sending the forge's signed webhook), and reports every API call the client made.
public final class ForgeTestServer: Sendable {
    public let flavour: String
    public let repository: String
    public let port: Int
    private let server: BackgroundServer
    private let client: HTTPTransport

    /// The API root the forge client is given.
    public var apiURL: String {
        switch flavour {
        case "gitea": return "http://127.0.0.1:\(port)/api/v1"
        case "gitlab": return "http://127.0.0.1:\(port)/api/v4"
        default: return "http://127.0.0.1:\(port)"
        }
    }

    /// Starts a `flavour` forge holding `repository`, with `users` (login → API token).
    public static func start(flavour: String, repository: String, secret: String, users: [String: String]) async throws
        -> ForgeTestServer
    {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/forge-test-server.py").path
        let arguments =
            [script, "--flavour", flavour, "--repository", repository, "--webhook-secret", secret]
            + users.sorted { $0.key < $1.key }.flatMap { ["--user", "\($0.key)=\($0.value)"] }
        guard let server = try await BackgroundServer.start("/usr/bin/python3", arguments, readyLine: "READY", inheritStderr: true),
            let port = server.values["PORT"].flatMap(Int.init)
        else { throw ForgeTestServerError(message: "the forge test server (scripts/forge-test-server.py) did not start") }
        return try ForgeTestServer(flavour: flavour, repository: repository, port: port, server: server)
    }

    private init(flavour: String, repository: String, port: Int, server: BackgroundServer) throws {
        self.flavour = flavour
        self.repository = repository
        self.port = port
        self.server = server
        client = try HTTPTransport(url: "http://127.0.0.1:\(port)")
    }

    public func stop() async {
        await client.shutdown()
        server.stop()
    }

    /// A control call; the answer's JSON.
    @discardableResult
    public func control(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil) async throws -> Any? {
        var headers = HTTPHeaders()
        var payload: ByteBuffer?
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            payload = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body))
        }
        let answer = try await client.execute(method, "/_forge\(path)", headers: headers, body: payload, timeout: .seconds(60))
        guard answer.status.code < 300 else {
            throw ForgeTestServerError(message: "\(method) /_forge\(path): \(answer.status.code) \(answer.bodyString)")
        }
        guard !answer.bodyBytes.isEmpty else { return nil }
        return try JSONSerialization.jsonObject(with: Data(answer.bodyBytes), options: [.fragmentsAllowed])
    }

    /// The HTTP status with which the webhook receiver answered the delivery a control call
    /// caused (0 when it could not be reached).
    public static func deliveryStatus(_ answer: Any?) -> Int? {
        ((answer as? [String: Any])?["delivery"] as? [String: Any])?["status"] as? Int
    }

    /// Where deliveries go from now on (the controller's webhook URL, once it listens).
    public func deliver(to url: String) async throws {
        try await control(.POST, "/webhook", ["url": url])
    }

    @discardableResult
    public func openPullRequest(author: String, head: String, number: Int? = nil) async throws -> Int? {
        var body: [String: Any] = ["author": author, "head_sha": head, "base_ref": "main"]
        body["number"] = number
        return Self.deliveryStatus(try await control(.POST, "/pulls", body))
    }

    @discardableResult
    public func push(_ number: Int, head: String) async throws -> Int? {
        Self.deliveryStatus(try await control(.POST, "/pulls/\(number)/push", ["head_sha": head]))
    }

    @discardableResult
    public func review(_ number: Int, by user: String, state: String = "APPROVED", commit: String? = nil) async throws -> Int? {
        var body: [String: Any] = ["user": user, "state": state]
        body["commit_id"] = commit
        return Self.deliveryStatus(try await control(.POST, "/pulls/\(number)/reviews", body))
    }

    @discardableResult
    public func comment(_ number: Int, by user: String, _ text: String) async throws -> Int? {
        Self.deliveryStatus(try await control(.POST, "/pulls/\(number)/comments", ["user": user, "body": text]))
    }

    @discardableResult
    public func merge(_ number: Int, as commit: String) async throws -> Int? {
        Self.deliveryStatus(try await control(.POST, "/pulls/\(number)/merge", ["merge_commit_sha": commit]))
    }

    public func team(_ org: String, _ team: String, members: [String]) async throws {
        try await control(.POST, "/teams", ["org": org, "team": team, "members": members])
    }

    /// Every comment on pull request `number`, oldest first, as the forge shows it.
    public func comments(_ number: Int) async throws -> [[String: Any]] {
        try await control(.GET, "/pulls/\(number)/comments") as? [[String: Any]] ?? []
    }

    /// The statuses set on `commit`, oldest first; the forge's state field is `state` on
    /// GitHub, `status` on Gitea and GitLab.
    public func statuses(_ commit: String) async throws -> [(state: String, description: String)] {
        let list = try await control(.GET, "/statuses/\(commit)") as? [[String: Any]] ?? []
        return list.map { ((($0["state"] ?? $0["status"]) as? String) ?? "", $0["description"] as? String ?? "") }
    }

    /// Every API request the client made so far.
    public func requests() async throws -> [[String: Any]] {
        try await control(.GET, "/requests") as? [[String: Any]] ?? []
    }

    /// The body of a comment or note.
    public static func body(_ comment: [String: Any]) -> String {
        comment["body"] as? String ?? ""
    }

    /// The login of a comment's author (`user.login`, GitLab's `author.username`).
    public static func author(_ comment: [String: Any]) -> String {
        ((comment["user"] as? [String: Any])?["login"] as? String) ?? ((comment["author"] as? [String: Any])?["username"] as? String) ?? ""
    }
}

public struct ForgeTestServerError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
