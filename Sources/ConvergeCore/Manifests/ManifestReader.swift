import Yams

/// Collects the problems found while decoding a manifest set, so all of them are reported
/// together rather than one per run.
public final class DiagnosticCollector {
    public private(set) var diagnostics: [Diagnostic] = []
    /// The resource being decoded; stamped on every diagnostic reported meanwhile.
    var currentResource: ResourceID?
    /// Resources whose kind and name are known but whose spec could not be decoded: they
    /// exist in the manifests, so references to them are not reported as undefined.
    var undecodable: Set<ResourceID> = []
    /// Files that could not be read as YAML, so whatever they define is unknown.
    var unreadableFiles: [String] = []

    public init() {}

    public func report(_ message: String, at location: SourceLocation?, hint: String? = nil) {
        diagnostics.append(Diagnostic(message, at: location, resource: currentResource, hint: hint))
    }

    public func report(_ diagnostic: Diagnostic) {
        diagnostics.append(diagnostic)
    }

    /// Takes what `other` collected (one file's decoding).
    func absorb(_ other: DiagnosticCollector) {
        diagnostics += other.diagnostics
        undecodable.formUnion(other.undecodable)
        unreadableFiles += other.unreadableFiles
    }
}

/// A YAML node with the file it came from and its field path (`spec.networks[0].ipv4`),
/// so every complaint about it can say exactly where it is.
public struct ManifestNode {
    public let node: Node
    public let file: String
    public let path: String
    public let collector: DiagnosticCollector

    public var location: SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    public func report(_ message: String, hint: String? = nil) {
        collector.report(path.isEmpty ? message : "\(path): \(message)", at: location, hint: hint)
    }

    private var typeName: String {
        switch node {
        case .scalar(let scalar): return scalar.isNull ? "null" : "a \(scalar.typeName)"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// Any scalar as text (YAML reads `80` or `1` as numbers; fields that want text accept them).
    public var string: String? {
        if case .scalar(let scalar) = node, !scalar.isNull { return scalar.string }
        report("expected a string, found \(typeName)")
        return nil
    }

    public var int: Int? {
        if case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) { return value }
        report("expected an integer, found \(typeName)")
        return nil
    }

    public var bool: Bool? {
        if case .scalar(let scalar) = node, scalar.style == .plain {
            switch scalar.string {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default:
                // `yes`, `on`, `1`…: show the text itself, not what YAML 1.1 would call it.
                if !scalar.isNull {
                    report("expected true or false, found '\(scalar.string)'", hint: "write true or false")
                    return nil
                }
            }
        }
        report("expected true or false, found \(typeName)")
        return nil
    }

    public var mapping: MappingReader? {
        if case .mapping(let mapping) = node {
            return MappingReader(mapping: mapping, node: self)
        }
        report("expected a mapping, found \(typeName)")
        return nil
    }

    public var list: [ManifestNode]? {
        if case .sequence(let sequence) = node {
            return sequence.enumerated().map { index, child in
                ManifestNode(node: child, file: file, path: "\(path)[\(index)]", collector: collector)
            }
        }
        report("expected a list, found \(typeName)")
        return nil
    }

    public var stringList: [String]? {
        guard let items = list else { return nil }
        let strings = items.compactMap(\.string)
        return strings.count == items.count ? strings : nil
    }

    /// A mapping of text to text (labels, env, sysctls); keys come out sorted.
    public var stringMap: [String: String]? {
        guard let reader = mapping else { return nil }
        var result: [String: String] = [:]
        for key in reader.keys {
            if let value = reader.required(key)?.string { result[key] = value }
        }
        return result
    }
}

extension Node.Scalar {
    fileprivate var isNull: Bool { Node.scalar(self).null != nil && style == .plain }
    fileprivate var typeName: String {
        let node = Node.scalar(self)
        guard style == .plain else { return "string" }
        if node.int != nil || node.float != nil { return "number" }
        if node.bool != nil { return "boolean" }
        return "string"
    }
}

/// Reads the fields of one YAML mapping; keys never read are reported as unknown fields
/// when `finish()` is called, with the closest known name as a hint.
public final class MappingReader {
    public let node: ManifestNode
    private let pairs: [(key: String, keyNode: Node, value: Node)]
    /// Key → position in `pairs`: kinds read many keys, so lookups must not scan.
    private let positions: [String: Int]
    private var consumed: Set<String> = []
    private var known: [String] = []

    init(mapping: Node.Mapping, node: ManifestNode) {
        self.node = node
        var pairs: [(key: String, keyNode: Node, value: Node)] = []
        for (key, value) in mapping {
            if case .scalar(let scalar) = key {
                pairs.append((scalar.string, key, value))
            } else {
                ManifestNode(node: key, file: node.file, path: node.path, collector: node.collector)
                    .report("mapping keys must be plain strings")
            }
        }
        self.pairs = pairs
        self.positions = Dictionary(pairs.enumerated().map { ($0.element.key, $0.offset) }, uniquingKeysWith: { first, _ in first })
    }

    public var keys: [String] {
        pairs.map(\.key)
    }

    public var location: SourceLocation { node.location }

    private func childPath(_ key: String) -> String {
        node.path.isEmpty ? key : "\(node.path).\(key)"
    }

    /// The value under `key`, or nil (silently) when absent or null.
    public func optional(_ key: String) -> ManifestNode? {
        if consumed.insert(key).inserted { known.append(key) }
        guard let pair = positions[key].map({ pairs[$0] }) else { return nil }
        if case .scalar(let scalar) = pair.value, scalar.isNull { return nil }
        return ManifestNode(node: pair.value, file: node.file, path: childPath(key), collector: node.collector)
    }

    /// The value under `key`; reports a missing required field when absent.
    public func required(_ key: String, hint: String? = nil) -> ManifestNode? {
        if let value = optional(key) { return value }
        node.collector.report("\(childPath(key)): required field is missing", at: location, hint: hint)
        return nil
    }

    /// Where `key` itself is written, for problems about a field found later in validation.
    public func keyLocation(_ key: String) -> SourceLocation {
        guard let pair = positions[key].map({ pairs[$0] }), let mark = pair.keyNode.mark else { return location }
        return SourceLocation(file: node.file, line: mark.line, column: mark.column)
    }

    /// Reports every key that no accessor asked for.
    public func finish() {
        for pair in pairs where !consumed.contains(pair.key) {
            let mark = pair.keyNode.mark
            let location = SourceLocation(file: node.file, line: mark?.line ?? 1, column: mark?.column ?? 1)
            let suggestion = closestName(to: pair.key, among: known)
            let hint = suggestion.map { "did you mean '\($0)'?" } ?? (known.isEmpty ? nil : "known fields: \(known.joined(separator: ", "))")
            node.collector.report("\(childPath(pair.key)): unknown field", at: location, hint: hint)
        }
    }
}

/// The known name within edit distance 2 of `name`, if any: the usual typo.
public func closestName(to name: String, among candidates: [String]) -> String? {
    let lowered = Array(name.lowercased())
    var best: (name: String, distance: Int)?
    for candidate in candidates {
        let distance = editDistance(lowered, Array(candidate.lowercased()))
        if distance <= 2, distance < (best?.distance ?? .max) { best = (candidate, distance) }
    }
    return best?.name
}

private func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

extension ManifestNode {
    /// The value as JSON, for fields that take any shape (a Kubernetes object's body, a
    /// playbook's extra vars): plain scalars read as YAML 1.2 core types (`true`, `3`, `0.5`,
    /// `null`), quoted ones as strings. `visit` sees every node on the way.
    public func jsonValue(visit: (ManifestNode) -> Void = { _ in }) -> JSONValue {
        visit(self)
        switch node {
        case .scalar(let scalar):
            guard scalar.style == .plain else { return .string(scalar.string) }
            let text = scalar.string
            switch text {
            case "", "~", "null", "Null", "NULL": return .null
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if let number = Int(text) { return .int(number) }
            if text.first.map({ $0.isNumber || $0 == "-" || $0 == "." || $0 == "+" }) == true, let number = Double(text) {
                return .double(number)
            }
            return .string(text)
        case .mapping:
            guard let reader = mapping else { return .null }
            var fields: [String: JSONValue] = [:]
            for key in reader.keys {
                guard let child = reader.optional(key) else { continue }
                fields[key] = child.jsonValue(visit: visit)
            }
            return .object(fields)
        case .sequence:
            return .array((list ?? []).map { $0.jsonValue(visit: visit) })
        case .alias:
            report("YAML aliases are not supported here", hint: "write the value out")
            return .null
        }
    }
}
