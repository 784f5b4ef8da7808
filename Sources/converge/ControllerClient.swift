import ArgumentParser
import ConvergeHTTP
import ConvergeRuntime
import Foundation
import NIOCore
import NIOHTTP1

/// `--server URL --token-file F`: talk to a running controller's API instead of opening the
/// store, as `converge approve`, `reject` and `runs` can. The approval is then recorded
/// under the token's user, not under `--approver`.
struct ServerOptions: ParsableArguments {
    @Option(help: "A controller's URL (http://host:8080); its API is used instead of the store.")
    var server: String?

    @Option(help: "With --server: file holding the API bearer token.")
    var tokenFile: String?

    func validate() throws {
        if server != nil, tokenFile == nil { throw ValidationError("--server needs --token-file") }
        if server == nil, tokenFile != nil { throw ValidationError("--token-file needs --server") }
    }

    /// Runs `body` with a client of `--server` and returns true; false without `--server`
    /// (the command then opens the store).
    func ifServer(_ body: (ControllerClient) async throws -> Void) async throws -> Bool {
        guard let server, let tokenFile else { return false }
        guard let data = FileManager.default.contents(atPath: tokenFile) else {
            throw ValidationError("--token-file: cannot read \(tokenFile)")
        }
        let client = try ControllerClient(
            server: server, token: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        do {
            try await body(client)
        } catch {
            await client.close()
            throw error
        }
        await client.close()
        return true
    }
}

/// The controller's JSON API, as the CLI uses it.
struct ControllerClient {
    let server: String
    private let token: String
    private let transport: HTTPTransport

    init(server: String, token: String) throws {
        var base = server
        while base.hasSuffix("/") { base.removeLast() }
        self.server = base
        self.token = token
        transport = try HTTPTransport(url: base, name: "the controller at \(base)")
    }

    /// Sends a request; a 2xx answer's body is decoded as `T`, anything else is an error
    /// carrying the controller's message.
    func send<T: Decodable>(_ method: HTTPMethod, _ path: String, body: [String: String]? = nil, as type: T.Type) async throws -> T {
        var headers: HTTPHeaders = ["Authorization": "Bearer \(token)", "Accept": "application/json"]
        var payload: ByteBuffer?
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            payload = ByteBuffer(bytes: try JSONEncoder().encode(body))
        }
        let response = try await transport.execute(method, path, headers: headers, body: payload, timeout: .seconds(60))
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            let message =
                (try? JSONDecoder().decode([String: String].self, from: Data(response.bodyString.utf8)))?["error"] ?? response.bodyString
            throw ControllerAPIError(status: status, message: message, server: server)
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(T.self, from: Data(response.bodyString.utf8))
    }
}

extension ControllerClient {
    func close() async { await transport.shutdown() }
}

struct ControllerAPIError: Error, CustomStringConvertible {
    var status: Int
    var message: String
    var server: String

    var description: String {
        switch status {
        case 401: return "the controller at \(server) did not accept the token (401): check --token-file"
        case 403: return "refused by the controller (403): \(message)"
        default: return "the controller at \(server) answered \(status): \(message)"
        }
    }
}
