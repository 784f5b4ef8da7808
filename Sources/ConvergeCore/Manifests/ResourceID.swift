/// Identifies a resource within a manifest set: its kind and its name, written `Kind/name`.
///
/// The same string is the value of the `converge.dev/resource` ownership label, so an object
/// found on a live system can be matched back to the manifest that owns it.
public struct ResourceID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var kind: String
    public var name: String

    public init(kind: String, name: String) {
        self.kind = kind
        self.name = name
    }

    /// Parses `Kind/name`; nil when the text is not in that form.
    public init?(_ text: String) {
        guard let slash = text.firstIndex(of: "/") else { return nil }
        let kind = String(text[..<slash])
        let name = String(text[text.index(after: slash)...])
        guard !kind.isEmpty, !name.isEmpty else { return nil }
        self.init(kind: kind, name: name)
    }

    public var description: String { "\(kind)/\(name)" }

    public static func < (lhs: ResourceID, rhs: ResourceID) -> Bool {
        (lhs.kind, lhs.name) < (rhs.kind, rhs.name)
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = ResourceID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected Kind/name, got \(text)"))
        }
        self = id
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// The labels Converge puts on every object it creates, and reads back to know what it owns.
public enum OwnershipLabel {
    /// Names the Converge instance that owns the object; observation filters on it.
    public static let managedBy = "converge.dev/managed-by"
    /// Names the manifest (`Kind/name`) the object was made from.
    public static let resource = "converge.dev/resource"
    /// Every label under this prefix belongs to Converge and is hidden from diffs.
    public static let prefix = "converge.dev/"
}
