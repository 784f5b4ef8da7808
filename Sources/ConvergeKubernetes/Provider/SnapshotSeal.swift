import ConvergeCore
import Crypto
import Foundation

/// Seals a Secret's data before it goes into a step's journaled snapshot, so the state store
/// never holds it in clear: AES-GCM with a key kept in the cluster itself (the Secret
/// `converge-snapshot-key-<instance>` in the cluster's default namespace, made on first
/// use). Whoever can read the journal but not the cluster's Secrets learns nothing; a
/// rollback, which runs against the cluster anyway, opens it.
struct SnapshotSeal {
    let client: KubernetesClient
    let namespace: String
    let instance: String

    private var keyName: String { "converge-snapshot-key-\(instance)" }
    private var collection: String { "/api/v1/namespaces/\(KubernetesClient.escape(namespace))/secrets" }
    private var action: KubernetesClient.Action { .init(verb: "read or create", resource: "secrets", namespace: namespace, name: keyName) }

    func seal(_ plaintext: String) async throws -> String {
        let box = try AES.GCM.seal(Data(plaintext.utf8), using: try await key())
        guard let combined = box.combined else { throw KubernetesError(.configuration, "cannot seal a snapshot") }
        return combined.base64EncodedString()
    }

    func open(_ sealed: String) async throws -> String {
        guard let data = Data(base64Encoded: sealed) else { throw KubernetesError(.configuration, "a sealed snapshot is damaged") }
        do {
            return String(decoding: try AES.GCM.open(AES.GCM.SealedBox(combined: data), using: try await key()), as: UTF8.self)
        } catch let error as KubernetesError {
            throw error
        } catch {
            throw KubernetesError(
                .configuration, "the snapshot of a Secret cannot be opened with the key in \(namespace)/\(keyName)",
                hint: "the key Secret was replaced since the snapshot was taken; restore the Secret by hand")
        }
    }

    /// The instance's key, created when missing (a concurrent creator wins; its key is read).
    private func key() async throws -> SymmetricKey {
        let existing = try await client.send(.GET, "\(collection)/\(keyName)", action: action, allowing: [404])
        if existing.status == 200, let text = existing.body["data"]?["key"]?.string, let bytes = Data(base64Encoded: text) {
            return SymmetricKey(data: bytes)
        }
        let key = SymmetricKey(size: .bits256)
        let encoded = key.withUnsafeBytes { Data($0).base64EncodedString() }
        let secret = JSONValue.object([
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": .object(["name": .string(keyName), "labels": .object(["converge.dev/snapshot-key-of": .string(instance)])]),
            "data": .object(["key": .string(encoded)]),
        ])
        let created = try await client.send(.POST, collection, body: secret.serialized, action: action, allowing: [409])
        if created.status == 409 { return try await self.key() }
        return key
    }
}
