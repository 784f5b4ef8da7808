/// A position in a manifest file, 1-based, as editors and `grep -n` count.
public struct SourceLocation: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }

    public static func < (lhs: SourceLocation, rhs: SourceLocation) -> Bool {
        (lhs.file, lhs.line, lhs.column) < (rhs.file, rhs.line, rhs.column)
    }
}

/// One problem found in a manifest set: what is wrong, where, and what to do about it.
///
/// Validation collects every diagnostic before reporting, so a person fixes a broken
/// manifest set in one pass instead of one error per run.
public struct Diagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public var location: SourceLocation?
    public var resource: ResourceID?
    public var message: String
    public var hint: String?

    public init(_ message: String, at location: SourceLocation?, resource: ResourceID? = nil, hint: String? = nil) {
        self.location = location
        self.resource = resource
        self.message = message
        self.hint = hint
    }

    public var description: String {
        var text = location.map { "\($0): " } ?? ""
        text += "error: "
        if let resource { text += "\(resource): " }
        text += message
        if let hint { text += " (\(hint))" }
        return text
    }
}

/// The manifest set is invalid; nothing was changed. Carries every problem found.
public struct ManifestValidationError: Error, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) {
        self.diagnostics = diagnostics.sorted { lhs, rhs in
            switch (lhs.location, rhs.location) {
            case let (l?, r?): return l < r
            case (nil, _?): return false
            case (_?, nil): return true
            case (nil, nil): return lhs.message < rhs.message
            }
        }
    }

    public var description: String {
        let count = diagnostics.count
        let header = "the manifest set has \(count) problem\(count == 1 ? "" : "s"); nothing was changed:"
        return ([header] + diagnostics.map { "  \($0)" }).joined(separator: "\n")
    }
}
