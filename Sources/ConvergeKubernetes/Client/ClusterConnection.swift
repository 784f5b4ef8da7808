import ConvergeHTTP
import Foundation
import Yams

/// Where an API server is and how to authenticate to it, resolved from a kubeconfig context or
/// from the pod's service account. Holds credentials in memory only; its description names
/// the server and the user, never a token or key.
struct ClusterConnection: Sendable, CustomStringConvertible {
    enum Token: Sendable {
        case literal(String)
        /// Read again when older than a minute: service-account tokens are rotated in place.
        case file(String)
    }

    var server: String
    var tls: HTTPTransport.TLS
    var token: Token?
    /// Where these settings came from, for messages (`kubeconfig /root/.kube/config, context prod`).
    var origin: String

    var description: String { "\(server) (\(origin))" }

    static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    static func resolve(_ source: KubernetesClusterSpec.Source, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> ClusterConnection
    {
        switch source {
        case .inCluster:
            guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
                throw KubernetesError(
                    .configuration, "inCluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set",
                    hint: "inCluster works inside a pod; elsewhere give spec.kubeconfig")
            }
            let directory = serviceAccountDirectory
            return ClusterConnection(
                server: "https://\(host.contains(":") ? "[\(host)]" : host):\(port)",
                tls: HTTPTransport.TLS(caFile: "\(directory)/ca.crt"), token: .file("\(directory)/token"),
                origin: "in-cluster service account")
        case .kubeconfig(let path, let context):
            return try fromKubeconfig(path: expandingHome(path, environment: environment), context: context)
        }
    }

    private static func expandingHome(_ path: String, environment: [String: String]) -> String {
        guard path == "~" || path.hasPrefix("~/") else { return path }
        return (environment["HOME"] ?? NSHomeDirectory()) + path.dropFirst()
    }

    /// A kubeconfig's context, exec-free: tokens, token files and client certificates, as
    /// files or inline data. Relative paths are relative to the kubeconfig's folder.
    static func fromKubeconfig(path: String, context wanted: String?) throws -> ClusterConnection {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw KubernetesError(
                .configuration, "cannot read the kubeconfig \(path): \((error as NSError).localizedDescription)",
                hint: "check spec.kubeconfig of the KubernetesCluster")
        }
        guard let config = (try? Yams.load(yaml: text)) as? [String: Any] else {
            throw KubernetesError(.configuration, "the kubeconfig \(path) is not a YAML mapping")
        }
        func named(_ list: String, _ name: String) -> [String: Any]? {
            (config[list] as? [[String: Any]])?.first { ($0["name"] as? String) == name }
        }
        guard let contextName = wanted ?? (config["current-context"] as? String), !contextName.isEmpty else {
            throw KubernetesError(.configuration, "the kubeconfig \(path) has no current-context", hint: "name one with spec.context")
        }
        guard let context = named("contexts", contextName)?["context"] as? [String: Any] else {
            let known = (config["contexts"] as? [[String: Any]])?.compactMap { $0["name"] as? String } ?? []
            throw KubernetesError(
                .configuration, "the kubeconfig \(path) has no context '\(contextName)'",
                hint: known.isEmpty ? nil : "contexts: \(known.joined(separator: ", "))")
        }
        let origin = "kubeconfig \(path), context \(contextName)"
        guard let clusterName = context["cluster"] as? String, let cluster = named("clusters", clusterName)?["cluster"] as? [String: Any],
            let server = cluster["server"] as? String
        else {
            throw KubernetesError(.configuration, "\(origin): its cluster has no server")
        }
        let folder = (path as NSString).deletingLastPathComponent
        func file(_ value: Any?) -> String? {
            guard let value = value as? String, !value.isEmpty else { return nil }
            return value.hasPrefix("/") ? value : "\(folder)/\(value)"
        }
        func pem(_ value: Any?, _ field: String) throws -> String? {
            guard let value = value as? String else { return nil }
            guard let data = Data(base64Encoded: value, options: .ignoreUnknownCharacters) else {
                throw KubernetesError(.configuration, "\(origin): \(field) is not base64")
            }
            return String(decoding: data, as: UTF8.self)
        }
        var tls = HTTPTransport.TLS(
            insecureSkipVerify: cluster["insecure-skip-tls-verify"] as? Bool ?? false, caFile: file(cluster["certificate-authority"]),
            hint: "check the cluster's certificate-authority in \(path)")
        tls.caPEM = try pem(cluster["certificate-authority-data"], "certificate-authority-data")
        var token: Token?
        if let userName = context["user"] as? String, let user = named("users", userName)?["user"] as? [String: Any] {
            if user["exec"] != nil || user["auth-provider"] != nil {
                throw KubernetesError(
                    .configuration,
                    "\(origin): the user '\(userName)' authenticates through an exec or auth-provider plugin, which Converge does not run",
                    hint: "give the context a user with a token, tokenFile or client certificate (e.g. a service account's token)")
            }
            if let literal = user["token"] as? String {
                token = .literal(literal)
            } else if let tokenFile = file(user["tokenFile"]) {
                token = .file(tokenFile)
            }
            tls.certificateChainFile = file(user["client-certificate"])
            tls.privateKeyFile = file(user["client-key"])
            tls.certificateChainPEM = try pem(user["client-certificate-data"], "client-certificate-data")
            tls.privateKeyPEM = try pem(user["client-key-data"], "client-key-data")
        }
        return ClusterConnection(server: server, tls: tls, token: token, origin: origin)
    }
}
