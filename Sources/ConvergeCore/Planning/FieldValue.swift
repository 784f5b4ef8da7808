/// A canonical value of one field of a resource, the unit the diff compares.
///
/// Kinds turn their specs into a map of these, and providers turn what a live system reports
/// into the same shape, so the plan engine compares and renders any kind without knowing it.
/// Maps keep their keys sorted, so equal values are equal structurally and encode the same
/// way (the plan digest depends on that).
public indirect enum FieldValue: Sendable, Hashable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case list([FieldValue])
    case map(FieldMap)
}

/// Field name → value, sorted by name.
public struct FieldMap: Sendable, Hashable, Sequence {
    public private(set) var entries: [(key: String, value: FieldValue)]

    public init() { entries = [] }

    public init(_ dictionary: [String: FieldValue]) {
        entries = dictionary.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
    }

    public subscript(key: String) -> FieldValue? {
        get { index(of: key).flatMap { $0.found ? entries[$0.position].value : nil } }
        set {
            let (position, found) = index(of: key) ?? (entries.count, false)
            switch (found, newValue) {
            case (true, let value?): entries[position].value = value
            case (true, nil): entries.remove(at: position)
            case (false, let value?): entries.insert((key: key, value: value), at: position)
            case (false, nil): break
            }
        }
    }

    public var keys: [String] { entries.map(\.key) }
    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    public func makeIterator() -> IndexingIterator<[(key: String, value: FieldValue)]> {
        entries.makeIterator()
    }

    /// Binary search: the position of `key`, or where it would be inserted.
    private func index(of key: String) -> (position: Int, found: Bool)? {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].key < key { low = middle + 1 } else { high = middle }
        }
        return (low, low < entries.count && entries[low].key == key)
    }

    public static func == (lhs: FieldMap, rhs: FieldMap) -> Bool {
        lhs.entries.elementsEqual(rhs.entries) { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries.count)
        for entry in entries {
            hasher.combine(entry.key)
            hasher.combine(entry.value)
        }
    }
}

extension FieldValue {
    public static func strings(_ values: [String]) -> FieldValue { .list(values.map(FieldValue.string)) }
    public static func stringMap(_ values: [String: String]) -> FieldValue { .map(FieldMap(values.mapValues(FieldValue.string))) }

    /// An empty list or map.
    public var isEmptyCollection: Bool {
        switch self {
        case .list(let items): return items.isEmpty
        case .map(let map): return map.isEmpty
        default: return false
        }
    }

    /// How the plan shows the value: JSON-like, strings quoted.
    public var rendered: String {
        switch self {
        case .string(let text): return quoted(text)
        case .int(let number): return String(number)
        case .bool(let flag): return String(flag)
        case .list(let items): return "[" + items.map(\.rendered).joined(separator: ", ") + "]"
        case .map(let map): return "{" + map.entries.map { "\(quoted($0.key)): \($0.value.rendered)" }.joined(separator: ", ") + "}"
        }
    }
}

private func quoted(_ text: String) -> String {
    var result = "\""
    for character in text {
        switch character {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\t": result += "\\t"
        default: result.append(character)
        }
    }
    return result + "\""
}

extension FieldValue: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Int.self) {
            self = .int(number)
        } else if let text = try? container.decode(String.self) {
            self = .string(text)
        } else if let items = try? container.decode([FieldValue].self) {
            self = .list(items)
        } else {
            self = .map(FieldMap(try container.decode([String: FieldValue].self)))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let text): try container.encode(text)
        case .int(let number): try container.encode(number)
        case .bool(let flag): try container.encode(flag)
        case .list(let items): try container.encode(items)
        case .map(let map): try container.encode(Dictionary(uniqueKeysWithValues: map.entries.map { ($0.key, $0.value) }))
        }
    }
}
