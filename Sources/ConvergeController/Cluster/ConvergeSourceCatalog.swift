import ConvergeCore
import ConvergeForge
import ConvergeKubernetes
import Foundation
import Logging

/// The `ConvergeSource` objects of one namespace as the controller's sources (what
/// `converge controller` reconciles when it is given no `--repo`): listed every `resync`,
/// each turned into a `SourceConfiguration` with its Secret's token, and each source's status
/// written back in kstatus form (`conditions`, `observedGeneration`).
///
/// A list every few seconds rather than a watch: the objects are few, a list is one request,
/// and it cannot miss an event the way a broken watch can.
public final class ConvergeSourceCatalog: Sendable {
    /// One object as a source, with the generation its status will name.
    public struct Entry: Sendable, Equatable {
        public var configuration: SourceConfiguration
        public var generation: Int
    }

    public let api: KubernetesAPI
    public let namespace: String
    public let resync: Duration
    private let logger: Logger

    public init(api: KubernetesAPI, namespace: String, resync: Duration = .seconds(10), logger: Logger) {
        self.api = api
        self.namespace = namespace
        self.resync = resync
        self.logger = logger
    }

    private var collection: String { "/apis/converge.dev/v1alpha1/namespaces/\(namespace)/convergesources" }

    /// The valid objects as sources; an invalid one gets a `Stalled` status saying why and is
    /// left out.
    public func entries() async throws -> [Entry] {
        var entries: [Entry] = []
        for object in try await api.list(collection) {
            guard let name = object[path: "metadata.name"]?.string else { continue }
            let generation = object[path: "metadata.generation"]?.int ?? 0
            do {
                entries.append(
                    Entry(configuration: try await configuration(name: name, spec: object["spec"] ?? .object([:])), generation: generation))
            } catch {
                logger.error("ConvergeSource \(namespace)/\(name) is invalid: \(error)")
                var status = SourceStatus(SourceConfiguration(name: name, repository: ""))
                status.stall(reason: "InvalidSpec", message: "\(error)")
                await write(status, name: name, generation: generation)
            }
        }
        return entries.sorted { $0.configuration.name < $1.configuration.name }
    }

    /// The entries now and whenever they change, checked every `resync`, until `stop()`.
    public func updates() -> (stream: AsyncStream<[Entry]>, stop: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<[Entry]>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let task = Task { [self] in
            var last: [Entry]?
            while !Task.isCancelled {
                do {
                    let current = try await entries()
                    if current != last {
                        continuation.yield(current)
                        last = current
                    }
                } catch {
                    logger.error("cannot list the ConvergeSources of \(namespace): \(error)")
                }
                try? await Task.sleep(for: resync)
            }
            continuation.finish()
        }
        return (
            stream,
            {
                task.cancel(); continuation.finish()
            }
        )
    }

    /// Writes `status` as the object's status (a merge patch of the status subresource).
    public func write(_ status: SourceStatus, name: String, generation: Int) async {
        let time = { (date: Date) in JSONValue.string(date.formatted(.iso8601)) }
        var fields: [String: JSONValue] = [
            "observedGeneration": .int(generation),
            "conditions": .array(
                status.conditions.map { condition in
                    var fields: [String: JSONValue] = [
                        "type": .string(condition.type), "status": .string(condition.status), "reason": .string(condition.reason),
                        "lastTransitionTime": time(condition.lastTransitionTime), "observedGeneration": .int(generation),
                    ]
                    // An empty message is left out: the test API server (1.20) reads "" in a
                    // patch as null and rejects it.
                    if !condition.message.isEmpty { fields["message"] = .string(String(condition.message.prefix(2000))) }
                    return .object(fields)
                }),
            "managedResources": .int(status.managedResources),
            "driftedResources": .int(status.driftedResources),
            "pendingApproval": status.pendingApproval.map {
                .object(["runID": .int(Int($0.runID)), "planDigest": .string($0.planDigest)])
            } ?? .null,
        ]
        for (key, value) in [
            ("lastAppliedRevision", status.lastAppliedRevision), ("lastFetchedRevision", status.lastFetchedRevision),
            ("lastPlanDigest", status.lastPlanDigest),
        ] {
            fields[key] = value.map(JSONValue.string) ?? .null
        }
        do {
            _ = try await api.mergePatch("\(collection)/\(name)/status", .object(["status": .object(fields)]))
        } catch {
            logger.warning("cannot write the status of ConvergeSource \(namespace)/\(name): \(error)")
        }
    }

    /// A source from an object's spec: `repo` (required), `ref`, `path`, `interval`, `drift`,
    /// `suspend`, `credentials.secretRef.name` (a Secret of the namespace with a `token` key),
    /// `forge` (where its pull requests are planned).
    private func configuration(name: String, spec: JSONValue) async throws -> SourceConfiguration {
        guard let repository = spec["repo"]?.string, !repository.isEmpty else {
            throw ControllerError("spec.repo is missing", hint: "name the Git repository to watch")
        }
        var source = SourceConfiguration(name: name, repository: repository, ref: spec["ref"]?.string ?? "main", path: spec["path"]?.string)
        if let text = spec["interval"]?.string {
            guard let interval = DurationText.parse(text) else {
                throw ControllerError("spec.interval '\(text)' is not a duration", hint: "write it as 30s, 5m or 1h")
            }
            source.interval = interval
        }
        if let text = spec["drift"]?.string {
            guard let drift = DriftPolicy(rawValue: text) else {
                throw ControllerError("spec.drift '\(text)' is unknown", hint: "use correct or report")
            }
            source.drift = drift
        }
        if case .bool(let suspend)? = spec["suspend"] { source.suspend = suspend }
        if let secret = spec[path: "credentials.secretRef.name"]?.string {
            source.token = try await secretValue(secret, key: "token", field: "spec.credentials.secretRef")
        }
        if let forge = spec["forge"], forge != .null {
            source.forge = try await forgeConfiguration(forge)
        }
        return source
    }

    /// `spec.forge`: `type` (github, gitea, gitlab), `apiURL`, `repository`, and
    /// `tokenSecretRef` (`name`, `key`: token by default).
    private func forgeConfiguration(_ spec: JSONValue) async throws -> ForgeConfiguration {
        guard let type = spec["type"]?.string, let kind = ForgeKind(rawValue: type) else {
            throw ControllerError("spec.forge.type is missing or unknown", hint: "use github, gitea or gitlab")
        }
        guard let repository = spec["repository"]?.string else {
            throw ControllerError("spec.forge.repository is missing", hint: "name the repository on the forge, owner/name")
        }
        guard let secret = spec[path: "tokenSecretRef.name"]?.string else {
            throw ControllerError("spec.forge.tokenSecretRef is missing", hint: "name a Secret holding the forge token")
        }
        let key = spec[path: "tokenSecretRef.key"]?.string ?? "token"
        let token = try ForgeToken(try await secretValue(secret, key: key, field: "spec.forge.tokenSecretRef"))
        do {
            return try ForgeConfiguration(kind: kind, apiURL: spec["apiURL"]?.string, repository: repository, token: token)
        } catch let error as ForgeError {
            throw ControllerError("spec.forge: \(error.message)", hint: "fix the ConvergeSource's spec.forge")
        }
    }

    /// The value under `key` of the namespace's Secret `name`, which `field` names.
    private func secretValue(_ name: String, key: String, field: String) async throws -> String {
        guard let object = try await api.get("/api/v1/namespaces/\(namespace)/secrets/\(name)") else {
            throw ControllerError("the Secret '\(name)' of \(field) does not exist", hint: "create it with a \(key) key")
        }
        guard let encoded = object[path: "data.\(key)"]?.string, let data = Data(base64Encoded: encoded) else {
            throw ControllerError("the Secret '\(name)' of \(field) has no \(key) key", hint: "store the token under the key \(key)")
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
