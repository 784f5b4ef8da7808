import ConvergeHTTP
import Foundation
import NIOHTTP1

/// Reads the digest an image tag has in its registry, over the registry's own API (Docker
/// Registry HTTP API v2, the OCI distribution spec): one `HEAD` of the manifest per image,
/// whose `Docker-Content-Digest` is the digest `docker pull` records. (The engine's
/// `/distribution` endpoint sends a HEAD and then a GET of the same manifest.)
///
/// It trusts what the engine on this host trusts for the registry (`/etc/docker/certs.d/HOST/ca.crt`,
/// beside the system's roots) and authenticates as registries ask: it asks `/v2/` once per
/// registry how (nothing, `Basic`, or `Bearer` tokens from the registry's token service) and
/// then fetches a pull token per repository. One client serves one plan or one step; end it
/// with `shutdown()`.
actor RegistryClient {
    /// Where the engine keeps per-registry trust roots, as docker does.
    static let certificatesDirectory = "/etc/docker/certs.d"
    /// Manifest kinds a tag may point to, list and index first: the digest of a multi-platform
    /// image is that of its list, as the engine records it.
    static let manifestTypes = [
        "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json",
    ].joined(separator: ", ")

    /// How a registry asks to be authenticated, from its `/v2/` answer.
    enum Challenge: Sendable {
        case none
        case basic
        case bearer(realm: String, service: String?)
    }

    private var transports: [String: HTTPTransport] = [:]
    private var challenges: [String: Task<Challenge, any Error>] = [:]
    let timeout: Duration

    init(timeout: Duration = .seconds(30)) {
        self.timeout = timeout
    }

    /// The manifest digest of `reference`'s tag now.
    func digest(of reference: ImageReference, auth: RegistryAuth?) async throws -> String {
        let host = reference.registryHost
        let challenge = try await challenge(of: host)
        var headers = HTTPHeaders([("Accept", Self.manifestTypes)])
        switch challenge {
        case .none: break
        case .basic:
            if let auth { headers.add(name: "Authorization", value: "Basic " + auth.basicCredentials) }
        case .bearer(let realm, let service):
            let token = try await token(realm: realm, service: service, scope: "repository:\(reference.registryPath):pull", auth: auth)
            headers.add(name: "Authorization", value: "Bearer " + token)
        }
        let target = "/v2/\(reference.registryPath)/manifests/\(reference.effectiveTag)"
        let response = try await transport(for: "https://\(host)").execute(.HEAD, target, headers: headers, timeout: timeout)
        guard response.status == .ok else { throw RegistryError(status: Int(response.status.code), host: host, headers: response.headers) }
        guard let digest = response.headers.first(name: "Docker-Content-Digest"), digest.hasPrefix("sha256:") else {
            throw RegistryError(detail: "\(host) answered the manifest of \(reference.tagged) without a sha256 Docker-Content-Digest")
        }
        return digest
    }

    /// Closes the connections.
    func shutdown() async {
        for transport in transports.values { await transport.shutdown() }
        transports = [:]
    }

    /// `/v2/`'s answer, asked once per registry however many images are resolved at once.
    private func challenge(of host: String) async throws -> Challenge {
        if let asked = challenges[host] { return try await asked.value }
        let transport = try transport(for: "https://\(host)")
        let timeout = self.timeout
        let asking = Task<Challenge, any Error> {
            let response = try await transport.execute(.GET, "/v2/", timeout: timeout)
            if response.status == .ok { return .none }
            guard response.status == .unauthorized, let header = response.headers.first(name: "WWW-Authenticate") else {
                throw RegistryError(status: Int(response.status.code), host: host, headers: response.headers)
            }
            let scheme = header.prefix { $0 != " " }.lowercased()
            let parameters = Self.parameters(of: header)
            if scheme == "bearer", let realm = parameters["realm"] { return .bearer(realm: realm, service: parameters["service"]) }
            return .basic
        }
        challenges[host] = asking
        return try await asking.value
    }

    /// A pull token from the registry's token service (credentials sent when there are some;
    /// anonymous pulls get a token too).
    private func token(realm: String, service: String?, scope: String, auth: RegistryAuth?) async throws -> String {
        guard let url = URL(string: realm), let scheme = url.scheme, let host = url.host else {
            throw RegistryError(detail: "the registry's token service '\(realm)' is not a URL")
        }
        let origin = "\(scheme)://\(host)" + (url.port.map { ":\($0)" } ?? "")
        var query = [("scope", scope)]
        if let service { query.insert(("service", service), at: 0) }
        let target = (url.path.isEmpty ? "/" : url.path) + "?" + query.map { "\($0.0)=\(Self.encode($0.1))" }.joined(separator: "&")
        var headers = HTTPHeaders()
        if let auth { headers.add(name: "Authorization", value: "Basic " + auth.basicCredentials) }
        let response = try await transport(for: origin).execute(.GET, target, headers: headers, timeout: timeout)
        guard response.status == .ok else { throw RegistryError(status: Int(response.status.code), host: host, headers: response.headers) }
        struct Token: Decodable {
            var token: String?
            var accessToken: String?
            enum CodingKeys: String, CodingKey {
                case token
                case accessToken = "access_token"
            }
        }
        guard let decoded = try? JSONDecoder().decode(Token.self, from: Data(response.body.readableBytesView)),
            let token = decoded.token ?? decoded.accessToken
        else {
            throw RegistryError(detail: "the token service of \(host) answered without a token")
        }
        return token
    }

    private func transport(for origin: String) throws -> HTTPTransport {
        if let transport = transports[origin] { return transport }
        let host = origin.components(separatedBy: "://").last ?? origin
        let ca = "\(Self.certificatesDirectory)/\(host)/ca.crt"
        let transport = try HTTPTransport(
            url: origin, name: host,
            tls: HTTPTransport.TLS(
                caFile: FileManager.default.fileExists(atPath: ca) ? ca : nil,
                hint: "Converge trusts the system's roots and \(ca), as the engine does"))
        transports[origin] = transport
        return transport
    }

    /// `key="value"` pairs of a `WWW-Authenticate` header.
    static func parameters(of header: String) -> [String: String] {
        var parameters: [String: String] = [:]
        let pattern = #/([A-Za-z_]+)="([^"]*)"/#
        for match in header.matches(of: pattern) { parameters[String(match.1).lowercased()] = String(match.2) }
        return parameters
    }

    private static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~:"))) ?? text
    }
}

/// A registry's refusal or silence, kept as the registry said it.
struct RegistryError: Error, CustomStringConvertible {
    /// The HTTP status, when the registry answered.
    var status: Int?
    var detail: String

    init(detail: String) {
        self.detail = detail
    }

    init(status: Int, host: String, headers: HTTPHeaders) {
        self.status = status
        detail = "\(host) answered HTTP \(status)"
    }

    var description: String { detail }
}
