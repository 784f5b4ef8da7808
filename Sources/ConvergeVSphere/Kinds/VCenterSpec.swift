import ConvergeCore
import Foundation

/// `VCenter`: a vCenter Server (one datacenter of it) that `VirtualMachine` manifests live on.
///
/// ```yaml
/// kind: VCenter
/// metadata: {name: lab}
/// spec:
///   url: https://vcenter.example.test/sdk    # http:// is accepted for labs; no path means /sdk
///   datacenter: DC0
///   credentials:
///     username: administrator@vsphere.local  # or usernameEnv: VCENTER_USER
///     passwordEnv: VCENTER_PASSWORD          # or passwordFile: /run/secrets/vcenter-password
///   tls:
///     insecureSkipVerify: false              # true accepts a self-signed certificate
///     caFile: /etc/converge/vcenter-ca.pem   # an extra trust root (PEM)
///   snapshotRetention: 24h                   # whole hours, 1h to 99h
/// ```
/// The password is never part of the manifests: it comes from the environment or a file of
/// the machine Converge runs on, so a repository never holds it.
public struct VCenterSpec: ResourceSpec, WorkerPoolTarget, Equatable {
    public static let kind = "VCenter"
    public static let isLiveObject = false

    /// The SDK endpoint, normalized: scheme lowercased, `/sdk` when the manifest gave no path.
    public var url: String
    public var datacenter: String
    public var credentials: VCenterCredentials
    /// True: a certificate that does not verify (self-signed) is accepted for this target.
    public var insecureSkipVerify: Bool
    /// A PEM file of extra trust roots for this target's certificate.
    public var caFile: String?
    /// How long the snapshots taken as step guards are kept (the retention pass).
    public var snapshotRetention: RetentionHours
    /// The workers that reach it, when not the controller's (`pool: mgmt`).
    public var pool: String?

    public init(spec: MappingReader, metadata: Metadata) {
        pool = spec.workerPool()
        url = spec.required("url", hint: "the vCenter's SDK URL, e.g. https://vcenter.example.com/sdk").flatMap(Self.decodeURL) ?? ""
        datacenter = ""
        if let node = spec.required("datacenter", hint: "the datacenter's name as the vSphere Client shows it, e.g. DC0"),
            let text = node.string
        {
            if text.isEmpty { node.report("must not be empty", hint: "the datacenter's name as the vSphere Client shows it, e.g. DC0") }
            datacenter = text
        }
        credentials =
            spec.required(
                "credentials",
                hint: "give username (or usernameEnv) and passwordEnv (or passwordFile); the password itself is never written in a manifest"
            )?
            .mapping.map(VCenterCredentials.init(reading:))
            // Kept when unreadable (the set is rejected anyway), like the other fields.
            ?? VCenterCredentials(username: .literal(""), password: .environment(""))
        insecureSkipVerify = false
        caFile = nil
        if let tls = spec.optional("tls")?.mapping {
            insecureSkipVerify = tls.optional("insecureSkipVerify")?.bool ?? false
            caFile = tls.optional("caFile")?.string
            if caFile?.isEmpty == true {
                tls.optional("caFile")?.report("must not be empty", hint: "the path of a PEM file, or leave caFile out")
            }
            tls.finish()
        }
        snapshotRetention = spec.optional("snapshotRetention").flatMap(Self.decodeRetention) ?? .standard
    }

    /// `https://host[:port][/path]`; credentials inside the URL are refused like a password.
    private static func decodeURL(_ node: ManifestNode) -> String? {
        guard let text = node.string else { return nil }
        guard var components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            ["https", "http"].contains(scheme), let host = components.host, !host.isEmpty
        else {
            node.report(
                "'\(text)' is not an https:// URL", hint: "write it as https://vcenter.example.com/sdk (http:// is accepted for labs)")
            return nil
        }
        if components.user != nil || components.password != nil {
            node.report("credentials in the URL are never read from Git", hint: "remove them and use spec.credentials")
            return nil
        }
        if components.query != nil || components.fragment != nil {
            node.report("'\(text)' has a query or fragment", hint: "give the SDK endpoint only, e.g. https://vcenter.example.com/sdk")
            return nil
        }
        components.scheme = scheme
        if components.path.isEmpty || components.path == "/" { components.path = "/sdk" }
        return components.string
    }

    private static func decodeRetention(_ node: ManifestNode) -> RetentionHours? {
        guard let text = node.string else { return nil }
        switch RetentionHours.parse(text) {
        case .success(let retention): return retention
        case .failure(let error):
            node.report("'\(text)' \(error)", hint: RetentionHours.hint)
            return nil
        }
    }

    public func references(in set: ManifestSet) -> [Reference] { [] }
    public func target(in set: ManifestSet) -> ResourceID? { nil }
}

/// Who Converge logs in to a vCenter as. The username may be written in the manifest; the
/// password never is: only where to find it on the machine Converge runs on.
public struct VCenterCredentials: Sendable, Hashable {
    /// Where a value comes from when Converge connects.
    public enum Source: Sendable, Hashable {
        /// Written in the manifest (usernames only).
        case literal(String)
        /// The named environment variable of the Converge process.
        case environment(String)
        /// The contents of the file at this path, without a trailing newline.
        case file(String)
    }

    public var username: Source
    public var password: Source

    public init(username: Source, password: Source) {
        self.username = username
        self.password = password
    }

    /// Reads `username`/`usernameEnv` and `passwordEnv`/`passwordFile`, exactly one of each.
    init(reading reader: MappingReader) {
        defer { reader.finish() }
        var passwordRefused = false
        if reader.keys.contains("password") {
            _ = reader.optional("password")
            passwordRefused = true
            reader.node.collector.report(
                "spec.credentials.password: passwords are never read from Git", at: reader.keyLocation("password"),
                hint: "use passwordEnv (an environment variable) or passwordFile")
        }
        username =
            Self.source(
                reader, [("username", Source.literal), ("usernameEnv", Source.environment)],
                hint: "set username, or usernameEnv to read it from an environment variable") ?? .literal("")
        password =
            Self.source(
                reader, [("passwordEnv", Source.environment), ("passwordFile", Source.file)],
                hint: "set passwordEnv (an environment variable) or passwordFile", reportMissing: !passwordRefused) ?? .environment("")
    }

    /// The one field of `choices` that is set; both or neither are reported.
    private static func source(
        _ reader: MappingReader, _ choices: [(key: String, make: (String) -> Source)], hint: String,
        reportMissing: Bool = true
    ) -> Source? {
        let given = choices.compactMap { choice -> (key: String, node: ManifestNode, make: (String) -> Source)? in
            reader.optional(choice.key).map { (choice.key, $0, choice.make) }
        }
        let names = choices.map(\.key)
        guard let first = given.first else {
            if reportMissing {
                reader.node.collector.report(
                    "spec.credentials: \(names.joined(separator: " or ")) is required", at: reader.location, hint: hint)
            }
            return nil
        }
        if given.count > 1 {
            given[1].node.report("cannot be combined with \(first.key)", hint: "keep one of \(names.joined(separator: " and "))")
        }
        guard let text = first.node.string else { return nil }
        if text.isEmpty {
            first.node.report("must not be empty", hint: hint)
        } else if first.key.hasSuffix("Env"), !isEnvironmentVariableName(text) {
            first.node.report(
                "'\(text)' is not an environment variable name", hint: "use letters, digits and '_', not starting with a digit")
        }
        return first.make(text)
    }

    private static func isEnvironmentVariableName(_ text: String) -> Bool {
        guard let head = text.first, head == "_" || (head.isASCII && head.isLetter) else { return false }
        return text.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }
}

extension TargetReference {
    /// `vcenter:`, naming the VCenter a resource lives on.
    static func vCenter(reading spec: MappingReader) -> TargetReference {
        TargetReference(kind: VCenterSpec.kind, field: "vcenter", example: "spec.url, spec.datacenter and spec.credentials", reading: spec)
    }
}
