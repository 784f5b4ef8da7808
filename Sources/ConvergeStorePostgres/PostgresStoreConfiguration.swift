import ConvergeStore
import Foundation
import PostgresNIO

/// Where a `PostgresWorkflowStore` connects, parsed from a URL such as
/// `postgres://user:password@host:5432/database?sslmode=require`.
///
/// TLS follows libpq's `sslmode`: `disable`; `prefer` (the default, except on loopback where
/// it is `disable`); `require` (encrypted, certificate not checked, as libpq does);
/// `verify-ca` (certificate checked, not the host name); `verify-full` (both).
public struct PostgresStoreConfiguration: Sendable {
    public enum TLSMode: String, Sendable {
        case disable
        case prefer
        case require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    /// Never printed: `redactedURL` and every error message leave it out.
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// Connections the store's pool opens at most (each busy call uses one).
    public var maximumConnections: Int = 8
    public var connectTimeout: Duration = .seconds(10)

    public init(host: String, port: Int = 5432, username: String, password: String? = nil, database: String, tls: TLSMode? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls ?? (Self.isLoopback(host) ? .disable : .prefer)
    }

    /// Parses `postgres://` or `postgresql://` URLs. Supported query parameters: `sslmode`,
    /// `connect_timeout` (seconds), `application_name` (ignored).
    public init(url: String) throws {
        func invalid(_ why: String) -> StoreError {
            .invalidConfiguration(
                "invalid PostgreSQL URL \(Self.redact(url)): \(why) (expected postgres://user[:password]@host[:port]/database)")
        }
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw invalid("not a URL")
        }
        guard scheme == "postgres" || scheme == "postgresql" else { throw invalid("the scheme must be postgres://") }
        guard let user = components.user, !user.isEmpty else { throw invalid("no user name") }
        let host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        if database.isEmpty { database = user }
        guard !database.contains("/") else { throw invalid("the database name contains '/'") }

        var tls: TLSMode?
        var connectTimeout: Duration?
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value) ?? (value == "allow" ? .prefer : nil) else {
                    throw invalid("sslmode must be disable, allow, prefer, require, verify-ca or verify-full")
                }
                tls = mode
            case "connect_timeout":
                guard let seconds = item.value.flatMap(Int.init), seconds > 0 else {
                    throw invalid("connect_timeout must be a positive number of seconds")
                }
                connectTimeout = .seconds(seconds)
            case "application_name":
                break
            default:
                throw invalid("unsupported parameter '\(item.name)' (supported: sslmode, connect_timeout, application_name)")
            }
        }
        self.init(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: database, tls: tls)
        if let connectTimeout { self.connectTimeout = connectTimeout }
    }

    /// The URL without the password, for messages and logs.
    public var redactedURL: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(username)\(password == nil ? "" : ":***")@\(hostPart):\(port)/\(database)"
    }

    /// PostgresNIO's configuration for this location.
    public var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: clientTLS)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = connectTimeout
        return configuration
    }

    private var clientTLS: PostgresClient.Configuration.TLS {
        switch tls {
        case .disable: return .disable
        case .prefer: return .prefer(clientTLSConfiguration)
        case .require, .verifyCA, .verifyFull: return .require(clientTLSConfiguration)
        }
    }

    /// The certificate checks `tls` asks for (unused when it is `disable`).
    var clientTLSConfiguration: TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch tls {
        case .disable, .prefer, .require: configuration.certificateVerification = .none
        case .verifyCA: configuration.certificateVerification = .noHostnameVerification
        case .verifyFull: break
        }
        return configuration
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// `url` with any password replaced by `***`, for error messages about unparsable URLs.
    static func redact(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", options: .backwards),
            scheme.upperBound <= at.lowerBound
        else { return url }
        let userInfo = url[scheme.upperBound..<at.lowerBound]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":***" + String(url[at.lowerBound...])
    }
}
