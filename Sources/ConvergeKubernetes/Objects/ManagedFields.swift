import ConvergeCore
/// The fields of a live object that one field manager owns, read from its `managedFields`
/// (server-side apply's `FieldsV1` sets), and the object cut down to them.
///
/// This is how a plan compares without asking the server per object: the live values of the
/// fields Converge applied are compared with the manifest's. Fields the server defaulted
/// belong to no manager and fields others set belong to them, so neither shows as a change;
/// a field Converge set and the manifest dropped is still Converge's, so its removal shows.
struct ManagedFields: Sendable {
    /// A `FieldsV1` tree: `f:name` members, `k:{…}` list entries by key, `v:…` set values,
    /// `i:N` positions; `.` marks the node itself.
    private var tree: JSONValue

    static let empty = ManagedFields(tree: .object([:]))

    init(tree: JSONValue) {
        self.tree = tree
    }

    /// The set `manager` owns through apply operations in `object`'s managedFields, or nil
    /// when it owns nothing there.
    init?(of object: JSONValue, manager: String) {
        var merged: JSONValue?
        for entry in object["metadata"]?["managedFields"]?.array ?? []
        where entry["manager"]?.string == manager && entry["operation"]?.string == "Apply" {
            if let fields = entry["fieldsV1"] { merged = merged.map { Self.union($0, fields) } ?? fields }
        }
        guard let merged else { return nil }
        tree = merged
    }

    /// The managers (and their operations) that own any field, except `manager`.
    static func others(in object: JSONValue, except manager: String) -> [(manager: String, operation: String)] {
        (object["metadata"]?["managedFields"]?.array ?? []).compactMap { entry in
            guard let name = entry["manager"]?.string, name != manager else { return nil }
            return (name, entry["operation"]?.string ?? "")
        }
    }

    func union(_ other: ManagedFields) -> ManagedFields {
        ManagedFields(tree: Self.union(tree, other.tree))
    }

    private static func union(_ a: JSONValue, _ b: JSONValue) -> JSONValue {
        guard case .object(var left) = a, case .object(let right) = b else { return a }
        for (key, value) in right { left[key] = left[key].map { union($0, value) } ?? value }
        return .object(left)
    }

    /// `object` with only the owned fields, under the same keys (`metadata` included).
    func project(_ object: JSONValue) -> JSONValue? {
        Self.project(object, tree)
    }

    private static func project(_ value: JSONValue, _ fields: JSONValue) -> JSONValue? {
        guard case .object(let members) = fields, members.contains(where: { $0.key != "." }) else {
            return value  // a leaf: the whole value (an atomic map or list too)
        }
        switch value {
        case .object(let object):
            var projected: [String: JSONValue] = [:]
            for (key, child) in members where key.hasPrefix("f:") {
                let name = String(key.dropFirst(2))
                if let member = object[name], let kept = project(member, child) { projected[name] = kept }
            }
            return .object(projected)
        case .array(let items):
            var kept: [JSONValue] = []
            for (index, item) in items.enumerated() where owns(item, at: index, in: members) {
                let child = members.first { matches(item, index: index, key: $0.key) }?.value ?? .object([:])
                if let projected = project(item, child) { kept.append(projected) }
            }
            return .array(kept)
        default:
            return value
        }
    }

    private static func owns(_ item: JSONValue, at index: Int, in members: [String: JSONValue]) -> Bool {
        members.keys.contains { matches(item, index: index, key: $0) }
    }

    /// Whether a list entry is the one a `k:`, `v:` or `i:` member names.
    private static func matches(_ item: JSONValue, index: Int, key: String) -> Bool {
        if key.hasPrefix("i:") { return Int(key.dropFirst(2)) == index }
        guard key.hasPrefix("k:") || key.hasPrefix("v:"), let wanted = try? JSONValue.parse(Array(key.dropFirst(2).utf8)) else {
            return false
        }
        if key.hasPrefix("v:") { return item == wanted }
        guard case .object(let keyFields) = wanted else { return false }
        return keyFields.allSatisfy { name, value in
            // The server writes key numbers as integers; a live value may decode as either.
            item[name] == value || (item[name]?.int != nil && item[name]?.int == value.int)
        }
    }
}
