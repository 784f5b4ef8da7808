import ConvergeHTTP
import Foundation
import NIOCore
import NIOHTTP1

/// JSON over the shared HTTP layer, with the forge's authentication header, pagination and
/// errors that say what the forge answered.
struct ForgeHTTP: Sendable {
    let transport: HTTPTransport
    let kind: ForgeKind
    private let authorization: (name: String, value: String)
    private let path: String

    init(_ configuration: ForgeConfiguration) throws {
        guard let url = URL(string: configuration.apiURL), let scheme = url.scheme, let host = url.host else {
            throw ForgeError(.configuration, "the forge API URL '\(configuration.apiURL)' is not a URL")
        }
        let origin = "\(scheme)://\(host)" + (url.port.map { ":\($0)" } ?? "")
        transport = try HTTPTransport(url: origin, name: "\(configuration.kind.displayName) at \(configuration.apiURL)")
        path = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
        kind = configuration.kind
        switch configuration.kind {
        case .github: authorization = ("Authorization", "Bearer \(configuration.token.value)")
        case .gitea: authorization = ("Authorization", "token \(configuration.token.value)")
        case .gitlab: authorization = ("PRIVATE-TOKEN", configuration.token.value)
        }
    }

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
    }

    /// Sends a request and returns a 2xx answer; anything else is a `ForgeError`, or nil for a
    /// 404 when `missingIsNil`.
    @discardableResult
    func send(_ method: HTTPMethod, _ target: String, body: (any Encodable)? = nil, missingIsNil: Bool = false) async throws -> Answer? {
        var headers = HTTPHeaders()
        headers.add(name: authorization.name, value: authorization.value)
        headers.add(name: "Accept", value: kind == .github ? "application/vnd.github+json" : "application/json")
        headers.add(name: "User-Agent", value: "converge")
        if kind == .github { headers.add(name: "X-GitHub-Api-Version", value: "2022-11-28") }
        var payload: ByteBuffer?
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            payload = ByteBuffer(bytes: try encoder.encode(body))
        }
        let response: HTTPTransportResponse
        do {
            response = try await transport.execute(method, path + target, headers: headers, body: payload, timeout: .seconds(30))
        } catch let error as HTTPTransportError {
            throw ForgeError(.unavailable, "\(kind.displayName) did not answer \(method) \(target): \(error)")
        }
        let status = Int(response.status.code)
        if (200..<300).contains(status) { return Answer(status: status, headers: response.headers, body: Data(response.bodyBytes)) }
        if status == 404 && missingIsNil { return nil }
        let said = Self.message(in: response.bodyBytes) ?? response.bodyString.prefix(300).description
        let what = "\(kind.displayName) answered \(method) \(target) with \(status): \(said)"
        switch status {
        case 401: throw ForgeError(.unauthorized, what + " (check the forge token)")
        case 403: throw ForgeError(.forbidden, what + " (the token lacks a permission)")
        case 404: throw ForgeError(.notFound, what)
        case 400, 409, 422: throw ForgeError(.rejected, what)
        default: throw ForgeError(.unavailable, what)
        }
    }

    /// Decodes a 2xx answer as `T`.
    func get<T: Decodable>(_ target: String, as type: T.Type, missingIsNil: Bool = false) async throws -> T? {
        guard let answer = try await send(.GET, target, missingIsNil: missingIsNil) else { return nil }
        return try decode(type, answer.body, target: target)
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data, target: String) throws -> T {
        do {
            return try Self.decoder.decode(type, from: data)
        } catch {
            throw ForgeError(.unexpectedAnswer, "\(kind.displayName) answered \(target) in an unexpected shape: \(error)")
        }
    }

    /// Every page of a list: `page` from 1 with `size` items each, until a short page.
    func pages<T: Decodable>(_ target: String, size: Int, sizeParameter: String, as type: T.Type) async throws -> [T] {
        var items: [T] = []
        let separator = target.contains("?") ? "&" : "?"
        for page in 1... {
            let chunk = try await get("\(target)\(separator)\(sizeParameter)=\(size)&page=\(page)", as: [T].self) ?? []
            items += chunk
            if chunk.count < size || page >= 100 { break }
        }
        return items
    }

    func shutdown() async {
        await transport.shutdown()
    }

    private static func message(in body: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        if let message = object["message"] as? String {
            if let errors = object["errors"] as? [[String: Any]] {
                let details = errors.compactMap { $0["message"] as? String }
                if !details.isEmpty { return message + ": " + details.joined(separator: "; ") }
            }
            return message
        }
        if let message = object["message"] { return "\(message)" }
        return object["error"] as? String
    }

    /// Dates as the forges write them: ISO 8601, with or without fractional seconds.
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = ForgeDate.parse(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 date: \(text)"))
            }
            return date
        }
        return decoder
    }()
}

enum ForgeDate {
    static func parse(_ text: String) -> Date? {
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = fractional.date(from: text) { return date }
        return ISO8601DateFormatter().date(from: text)
    }
}

/// A path segment with everything but unreserved characters percent-encoded (GitLab's
/// `group%2Fproject`).
func pathSegment(_ text: String) -> String {
    text.addingPercentEncoding(
        withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~"))
        ?? text
}
