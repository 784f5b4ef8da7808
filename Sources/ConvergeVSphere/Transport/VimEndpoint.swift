import ConvergeHTTP

/// How to reach one vCenter: host, port, and whether and how to speak TLS.
public struct VimEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var path: String
    public var useTLS: Bool
    /// Accept any certificate (a lab's self-signed one). Per target, never global.
    public var insecureSkipVerify: Bool
    /// An extra PEM trust root, e.g. the vCenter's own CA.
    public var caFile: String?

    public init(host: String, port: Int, path: String, useTLS: Bool, insecureSkipVerify: Bool = false, caFile: String? = nil) {
        self.host = host
        self.port = port
        self.path = path
        self.useTLS = useTLS
        self.insecureSkipVerify = insecureSkipVerify
        self.caFile = caFile
    }

    /// Parses `https://host[:port][/path]`; the path defaults to `/sdk`.
    public init?(url: String, insecureSkipVerify: Bool = false, caFile: String? = nil) {
        let scheme: String
        if url.hasPrefix("https://") { scheme = "https" } else if url.hasPrefix("http://") { scheme = "http" } else { return nil }
        let rest = url.dropFirst(scheme.count + 3)
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        var host = String(authority)
        var port = scheme == "https" ? 443 : 80
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65535).contains(parsed) else { return nil }
            port = parsed
            host = String(authority[..<colon])
        }
        host = host.trimmingCharacters(in: ["[", "]"])
        guard !host.isEmpty else { return nil }
        self.init(
            host: host, port: port, path: path.isEmpty || path == "/" ? "/sdk" : String(path),
            useTLS: scheme == "https", insecureSkipVerify: insecureSkipVerify, caFile: caFile)
    }

    public var description: String { "\(useTLS ? "https" : "http")://\(host):\(port)\(path)" }
}

extension VimEndpoint {
    /// What a TLS failure should add: the VCenter's trust settings.
    static let tlsHint =
        "for a self-signed certificate set spec.tls.insecureSkipVerify: true or spec.tls.caFile on the VCenter"

    /// A transport of its own for this vCenter (its trust settings are per target); ended by
    /// `VimClient.logout()`.
    func makeTransport() throws -> HTTPTransport {
        let host = host.contains(":") ? "[\(host)]" : host
        return try HTTPTransport(
            url: "\(useTLS ? "https" : "http")://\(host):\(port)", name: description,
            tls: HTTPTransport.TLS(insecureSkipVerify: insecureSkipVerify, caFile: caFile, hint: Self.tlsHint))
    }
}
