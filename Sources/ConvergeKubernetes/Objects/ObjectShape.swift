import ConvergeCore
import Crypto
import Foundation

/// The two shapes an object takes besides its manifest: the body Converge applies (with its
/// ownership marks) and, for a live object, the fields the diff compares.
enum ObjectShape {
    /// The server-side apply body of `spec` in `namespace`: the manifest as written, the
    /// ownership labels added (`converge.dev/resource` as a label-safe value, the id itself as
    /// an annotation), a Secret's `stringData` folded into `data` so Converge owns `data`.
    static func applyBody(_ spec: KubernetesObjectSpec, id: ResourceID, namespace: String?, instance: String) -> JSONValue {
        var labels = spec.labels.mapValues(JSONValue.string)
        labels[OwnershipLabel.managedBy] = .string(instance)
        labels[OwnershipLabel.resource] = .string(resourceLabel(id))
        var annotations = spec.annotations.mapValues(JSONValue.string)
        annotations[OwnershipLabel.resource] = .string(id.description)
        var metadata: [String: JSONValue] = ["name": .string(spec.name), "labels": .object(labels), "annotations": .object(annotations)]
        if let namespace { metadata["namespace"] = .string(namespace) }
        var body = spec.content
        if spec.type.isSecret {
            body["stringData"] = nil
            body["data"] = .object(spec.secretData.mapValues(JSONValue.string))
        }
        body["apiVersion"] = .string(spec.type.apiVersion)
        body["kind"] = .string(spec.type.kind)
        body["metadata"] = .object(metadata)
        return .object(body)
    }

    /// A label value naming `id`: `/` is not allowed in label values and `_` is not allowed in
    /// kinds or names, so `Deployment.apps_shop_web` reads back unambiguously. Ids too long
    /// for a label (63 characters) get a digest; the annotation always has the id itself.
    static func resourceLabel(_ id: ResourceID) -> String {
        let text = id.description.replacingOccurrences(of: "/", with: "_")
        let valid =
            text.count <= 63 && text.first?.isLetter == true && text.last.map { $0.isLetter || $0.isNumber } == true
            && !text.contains(":")
        return valid ? text : "sha256-" + String(sha256Hex(Data(id.description.utf8)).prefix(40))
    }

    /// A live object (or a projection of it) in the diff's shape: what `desiredFields` gives
    /// for a manifest. `metadata` is left out except labels and annotations, and Converge's own
    /// marks are hidden; a Secret's values become digests.
    static func fields(of object: JSONValue, type: GroupVersionKind) -> FieldMap {
        var fields = FieldMap()
        for (key, value) in object.objectFields ?? [:] where !["apiVersion", "kind", "metadata", "status"].contains(key) {
            fields[key] = value.fieldValue
        }
        if type.isSecret {
            let data = (object["data"]?.objectFields ?? [:]).compactMapValues(\.string)
            fields["data"] = data.isEmpty ? nil : KubernetesObjectSpec.maskedSecretData(data)
        }
        let labels = (object["metadata"]?["labels"]?.objectFields ?? [:]).compactMapValues(\.string)
            .filter { !$0.key.hasPrefix(OwnershipLabel.prefix) }
        let annotations = (object["metadata"]?["annotations"]?.objectFields ?? [:]).compactMapValues(\.string)
            .filter { !$0.key.hasPrefix(OwnershipLabel.prefix) }
        if !labels.isEmpty { fields["labels"] = .stringMap(labels) }
        if !annotations.isEmpty { fields["annotations"] = .stringMap(annotations) }
        return fields
    }

    /// What can be applied again to bring `object` back: its identity, labels, annotations
    /// and content, without what the server owns (`status`, uid, resourceVersion, managedFields).
    static func restorable(_ object: JSONValue) -> JSONValue {
        var body = object.objectFields ?? [:]
        body["status"] = nil
        var metadata: [String: JSONValue] = [:]
        for key in ["name", "namespace", "labels", "annotations"] {
            metadata[key] = object["metadata"]?[key]
        }
        body["metadata"] = .object(metadata)
        return .object(body)
    }

    static func sha256Hex(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
