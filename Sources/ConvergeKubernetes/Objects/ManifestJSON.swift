import ConvergeCore
import Yams

/// Turns a manifest's YAML into the JSON the API server takes, remembering where each field
/// is written so the server's complaints about a field can point at its line.
struct ManifestJSON {
    /// Field path as the decoder writes it (`spec.template.spec.containers[0].image`) →
    /// where it is written.
    private(set) var locations: [String: SourceLocation] = [:]

    /// The value of `node` (see `ManifestNode.jsonValue`), noting where each field is written.
    mutating func value(of node: ManifestNode) -> JSONValue {
        var locations = self.locations
        defer { self.locations = locations }
        return node.jsonValue { locations[$0.path] = $0.location }
    }

    /// Where the server's field path (`.spec.template.spec.containers[name="web"].image` or
    /// `spec.template.spec.containers[0].image`) is written, or the closest enclosing field.
    func location(ofServerPath serverPath: String, in object: JSONValue) -> SourceLocation? {
        var path = ""
        var best = locations[""]
        var current: JSONValue? = object
        var remaining = Substring(serverPath.hasPrefix(".") ? String(serverPath.dropFirst()) : serverPath)
        while !remaining.isEmpty {
            if remaining.hasPrefix("[") {
                guard let close = remaining.firstIndex(of: "]") else { break }
                let selector = remaining[remaining.index(after: remaining.startIndex)..<close]
                remaining = remaining[remaining.index(after: close)...]
                guard let items = current?.array, let index = Self.index(of: selector, in: items) else { break }
                path += "[\(index)]"
                current = items[index]
            } else {
                if remaining.hasPrefix(".") { remaining = remaining.dropFirst() }
                let end = remaining.firstIndex { $0 == "." || $0 == "[" } ?? remaining.endIndex
                let key = String(remaining[..<end])
                remaining = remaining[end...]
                path += path.isEmpty ? key : ".\(key)"
                current = current?[key]
            }
            if let location = locations[path] { best = location } else { break }
        }
        return best
    }

    /// `0`, or `name="web"` / `containerPort=80,protocol="TCP"` (server-side apply's keys).
    private static func index(of selector: Substring, in items: [JSONValue]) -> Int? {
        if let index = Int(selector) { return items.indices.contains(index) ? index : nil }
        let pairs = selector.split(separator: ",").compactMap { pair -> (String, String)? in
            guard let equals = pair.firstIndex(of: "=") else { return nil }
            let value = pair[pair.index(after: equals)...].trimmingQuotes
            return (String(pair[..<equals]), value)
        }
        return items.firstIndex { item in
            pairs.allSatisfy { key, value in
                switch item[key] {
                case .string(let text)?: return text == value
                case .int(let number)?: return String(number) == value
                default: return false
                }
            }
        }
    }
}

extension Substring {
    fileprivate var trimmingQuotes: String {
        hasPrefix("\"") && hasSuffix("\"") && count >= 2 ? String(dropFirst().dropLast()) : String(self)
    }
}
