/// Which `metadata.name`s a kind accepts: names become object names on live systems, and each
/// system has its own alphabet and length.
public struct NameRule: Sendable {
    /// Checks a name; returns nil when it is acceptable, or what to write instead.
    public var check: @Sendable (String) -> String?

    public init(check: @escaping @Sendable (String) -> String?) {
        self.check = check
    }

    /// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 128 characters: accepted by Docker for containers
    /// and networks, and safe as a file name, a label value or a table name suffix. The rule a
    /// kind gets unless it says otherwise.
    public static let portable = NameRule { name in
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F
        }
        let startsWell = name.first.map { $0.isLetter || $0.isNumber } ?? false
        guard !allowed || !startsWell || name.count > 128 else { return nil }
        return "use letters, digits, '-', '_' or '.', starting with a letter or digit, at most 128 characters"
    }
}
