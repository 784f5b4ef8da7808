/// The commands people write in pull-request comments: `/converge approve sha256:<prefix>`
/// and `/converge plan`.
public enum ApprovalCommand: Sendable, Equatable {
    case approve(digestPrefix: String)
    case plan

    /// The fewest hex digits an approval must give: 48 bits, so no one can craft a
    /// different plan that shares the prefix.
    public static let minimumDigits = 12

    /// The command on the first non-empty line of `comment`, if any.
    public static func parse(_ comment: String) -> ApprovalCommand? {
        guard let line = comment.split(whereSeparator: \.isNewline).first(where: { !$0.allSatisfy(\.isWhitespace) }) else { return nil }
        let words = line.split(whereSeparator: \.isWhitespace).map { $0.lowercased() }
        guard words.first == "/converge", words.count >= 2 else { return nil }
        switch words[1] {
        case "plan": return .plan
        case "approve":
            var digest = words.count > 2 ? words[2] : ""
            if digest.hasPrefix("sha256:") { digest.removeFirst("sha256:".count) }
            return .approve(digestPrefix: digest)
        default: return nil
        }
    }

    /// How the plan comment asks for a digest: `sha256:` and 16 hex digits.
    public static func shortDigest(_ digest: String) -> String {
        String(digest.prefix("sha256:".count + 16))
    }
}
