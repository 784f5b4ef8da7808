import ConvergeCore
import Foundation

/// Opens sessions to the vCenter a `VCenter` manifest describes, reading its credentials from
/// the environment or a file at that moment: they never come from Git and are never logged.
public enum VCenterConnection {
    public static func connect(_ spec: VCenterSpec, target: ResourceID) async throws -> VimClient {
        guard let endpoint = VimEndpoint(url: spec.url, insecureSkipVerify: spec.insecureSkipVerify, caFile: spec.caFile) else {
            throw VSphereProviderError.unsupported("\(target): cannot use URL '\(spec.url)'", hint: "write it as https://vcenter.example/sdk")
        }
        let credentials = VimCredentials(
            username: try read(spec.credentials.username, what: "user name", field: "username", target: target),
            password: try read(spec.credentials.password, what: "password", field: "password", target: target))
        return try await VimClient.connect(to: endpoint, credentials: credentials)
    }

    static func read(_ source: VCenterCredentials.Source, what: String, field: String, target: ResourceID) throws -> String {
        switch source {
        case .literal(let value):
            return value
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw VSphereProviderError.credentials("\(target): the environment variable \(name) (spec.credentials.\(field)Env) holding the vCenter \(what) is not set in the environment Converge runs in")
            }
            return value
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw VSphereProviderError.credentials("\(target): cannot read the vCenter \(what) from \(path) (spec.credentials.\(field)File); check that the file exists and this user may read it")
            }
            let value = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            guard !value.isEmpty else {
                throw VSphereProviderError.credentials("\(target): \(path) (spec.credentials.\(field)File) is empty")
            }
            return value
        }
    }
}
