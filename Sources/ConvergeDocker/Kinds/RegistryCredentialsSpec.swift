import ConvergeCore
import Foundation

/// `RegistryCredentials`: how to log in to an image registry, by reference only. Containers
/// whose image is on `registry` use them to resolve and pull it; the secret itself stays out
/// of Git, plans and reports.
///
/// ```yaml
/// kind: RegistryCredentials
/// metadata: {name: team-registry}
/// spec:
///   registry: registry.example:5000
///   dockerConfig: /etc/converge/registry/config.json   # docker's config.json format (`auths`)
///   # or, from this process's environment:
///   # env: {username: REGISTRY_USER, password: REGISTRY_PASSWORD}
/// ```
public struct RegistryCredentialsSpec: ResourceSpec, Equatable {
    public static let kind = "RegistryCredentials"
    public static let isLiveObject = false

    /// Where the username and password are read, when a pull needs them.
    public enum Source: Sendable, Equatable {
        /// A file in docker's `config.json` format; its `auths` entry for the registry.
        case dockerConfig(path: String)
        /// Two environment variables of the Converge process.
        case environment(username: String, password: String)
    }

    /// The registry's host and port, as image references name it (`docker.io` for Docker Hub).
    public var registry: String
    public var source: Source
    var registryLocation: SourceLocation

    public init?(spec: MappingReader, metadata: Metadata) {
        let registryNode = spec.required("registry", hint: "the registry's host[:port], as images name it")
        registry = registryNode?.string ?? ""
        registryLocation = registryNode?.location ?? spec.location
        if let registryNode, registry.isEmpty || registry.contains("/") || registry.contains(where: \.isWhitespace) {
            registryNode.report("'\(registry)' is not a registry host", hint: "write host[:port], e.g. registry.example:5000")
        }
        let configNode = spec.optional("dockerConfig")
        let envNode = spec.optional("env")
        switch (configNode, envNode) {
        case (let node?, nil):
            let path = node.string ?? ""
            if !path.hasPrefix("/") { node.report("'\(path)' is not an absolute path", hint: "name the config.json file from the root") }
            source = .dockerConfig(path: path)
        case (nil, let node?):
            guard let reader = node.mapping else { return nil }
            defer { reader.finish() }
            let username = reader.required("username", hint: "the variable holding the username")?.string ?? ""
            let password = reader.required("password", hint: "the variable holding the password")?.string ?? ""
            source = .environment(username: username, password: password)
        default:
            spec.node.collector.report(
                "spec: give exactly one of dockerConfig and env", at: spec.location,
                hint: "dockerConfig: a file in docker's config.json format; env: {username: VAR, password: VAR}")
            return nil
        }
    }

    public func references(in set: ManifestSet) -> [Reference] { [] }
    public func target(in set: ManifestSet) -> ResourceID? { nil }

    /// One registry, one set of credentials: two would leave the pull to chance.
    public static func validate(_ resources: [Resource], in set: ManifestSet, collector: DiagnosticCollector) {
        var seen: [String: ResourceID] = [:]
        for resource in resources {
            guard let spec = resource.spec(as: Self.self) else { continue }
            if let first = seen[spec.registry] {
                collector.report(
                    Diagnostic(
                        "spec.registry: \(first) already gives the credentials of \(spec.registry)", at: spec.registryLocation,
                        resource: resource.id, hint: "keep one RegistryCredentials per registry"))
            }
            seen[spec.registry] = resource.id
        }
    }

    /// The credentials of `set` for `registry`, if it has some.
    static func named(for registry: String, in set: ManifestSet) -> (id: ResourceID, spec: Self)? {
        for resource in set.resources {
            if let spec = resource.spec(as: Self.self), spec.registry == registry { return (resource.id, spec) }
        }
        return nil
    }

    /// Reads the username and password from the source, now (a rotated secret is picked up
    /// by the next pull); throws saying what is missing, never what was found.
    func load(as id: ResourceID, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> RegistryAuth {
        switch source {
        case .environment(let usernameVariable, let passwordVariable):
            guard let username = environment[usernameVariable], !username.isEmpty else {
                throw RegistryAuthError(id, "the environment variable \(usernameVariable) is not set")
            }
            guard let password = environment[passwordVariable], !password.isEmpty else {
                throw RegistryAuthError(id, "the environment variable \(passwordVariable) is not set")
            }
            return RegistryAuth(username: username, password: password, registry: registry)
        case .dockerConfig(let path):
            return try DockerConfigFile.credentials(for: registry, file: path, id: id)
        }
    }
}

/// A username and password for one registry, in the form the Engine API takes them.
struct RegistryAuth: Sendable, CustomStringConvertible {
    var username: String
    var password: String
    var registry: String

    /// The `X-Registry-Auth` header's value: base64url of `{"username","password","serveraddress"}`.
    var header: String {
        let body = ["username": username, "password": password, "serveraddress": registry]
        let json = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        return json.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
    }

    /// `user:password` in base64, for an `Authorization: Basic` header.
    var basicCredentials: String { Data("\(username):\(password)".utf8).base64EncodedString() }

    /// Never the password.
    var description: String { "credentials of \(username) for \(registry)" }
}

/// A registry's `auths` entry in a file of docker's `config.json` format.
enum DockerConfigFile {
    private struct Config: Decodable {
        struct Entry: Decodable {
            var auth: String?
            var username: String?
            var password: String?
        }
        var auths: [String: Entry]?
        var credsStore: String?
        var credHelpers: [String: String]?
    }

    static func credentials(for registry: String, file path: String, id: ResourceID) throws -> RegistryAuth {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RegistryAuthError(id, "cannot read \(path)")
        }
        guard let config = try? JSONDecoder().decode(Config.self, from: data) else {
            throw RegistryAuthError(id, "\(path) is not in docker's config.json format")
        }
        // Keys may carry a scheme and a path (`https://index.docker.io/v1/`).
        let hosts = registry == ImageReference.dockerHub ? [registry, "index.docker.io", "registry-1.docker.io"] : [registry]
        let entry = config.auths?.first { key, _ in
            let host = key.replacingOccurrences(of: "https://", with: "").replacingOccurrences(of: "http://", with: "")
            return hosts.contains(String(host.prefix { $0 != "/" }))
        }?.value
        guard let entry else {
            let helper = config.credHelpers?[registry] ?? config.credsStore
            throw RegistryAuthError(
                id,
                "\(path) has no auths entry for \(registry)"
                    + (helper.map {
                        " (it names the credential helper '\($0)', which Converge does not run: write the credentials in auths)"
                    } ?? ""))
        }
        if let username = entry.username, let password = entry.password, !username.isEmpty {
            return RegistryAuth(username: username, password: password, registry: registry)
        }
        guard let auth = entry.auth, let decoded = Data(base64Encoded: auth).map({ String(decoding: $0, as: UTF8.self) }),
            let colon = decoded.firstIndex(of: ":")
        else {
            throw RegistryAuthError(id, "the auths entry for \(registry) in \(path) has no username and password")
        }
        return RegistryAuth(
            username: String(decoded[..<colon]), password: String(decoded[decoded.index(after: colon)...]), registry: registry)
    }
}

/// Credentials that could not be read; says where they were looked for, never a secret.
struct RegistryAuthError: Error, CustomStringConvertible {
    var credentials: ResourceID
    var detail: String

    init(_ credentials: ResourceID, _ detail: String) {
        self.credentials = credentials
        self.detail = detail
    }

    var description: String { "\(credentials): \(detail)" }
}
