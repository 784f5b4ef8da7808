import ConvergeCore
import Foundation

/// What planning a pull request's commit gave: a plan, or why there is none.
public enum PullRequestPlan: Sendable, Equatable {
    case planned(Plan)
    /// The manifests do not validate; the diagnostics, with file:line, as the CLI prints them.
    case invalid(String)
    /// Planning failed: a provider could not observe, an object exists that Converge does not own.
    case failed(String)
    /// Not planned against the live systems, and why (the pull request changes a target).
    case withheld(String)

    public var plan: Plan? {
        if case .planned(let plan) = self { return plan }
        return nil
    }
}

/// What a plan comment records about itself, in a hidden marker on its first line, so the
/// comment can be found, updated in place and reviewed again without any state kept outside
/// the forge. Only comments written by Converge's own forge user are read for it.
public struct PlanPosting: Sendable, Codable, Equatable {
    /// The source (instance) the plan is for; a repository may feed several.
    public var source: String
    /// The commit planned: the pull request's head, or after a merge, the merged commit.
    public var commit: String
    /// Nil when there is no plan (invalid manifests, a failed plan).
    public var digest: String?
    public var approvals: [ApprovalRequirement]
    /// The digest this comment showed before, when the plan changed since.
    public var supersedes: String?
    public var part: Int
    public var parts: Int
}

/// Renders a plan as the comment (or comments, past the forge's size limit) posted on a pull
/// request, and reads them back.
public enum PlanComment {
    static let markerPrefix = "<!-- converge:plan "
    static let markerSuffix = " -->"

    /// The comment's Markdown, without its marker: summary, digest and approvals first, then
    /// the plan as `converge reconcile --output markdown` prints it.
    public static func body(_ outcome: PullRequestPlan, posting: PlanPosting, pullRequest: PullRequest, kind: ForgeKind) -> String {
        var lines = ["### Converge plan for `\(posting.source)` at `\(posting.commit.prefix(12))`", ""]
        if pullRequest.state == .merged {
            lines += [
                "This pull request was merged as `\(posting.commit.prefix(12))`, and the plan of the merged commit is not the one "
                    + "reviewed (another merge or drift changed it). It is not applied until it is approved.",
                "",
            ]
        }
        if let supersedes = posting.supersedes {
            lines += [
                "> The plan changed since `\(supersedes)` was posted (a new commit or drift): "
                    + "approvals given for that plan do not carry over to this one.",
                "",
            ]
        }
        switch outcome {
        case .invalid(let diagnostics):
            lines += ["**The manifests at this commit are invalid; nothing can be planned or applied.**", "", "```", diagnostics, "```"]
        case .failed(let error):
            lines += ["**Planning failed; nothing can be applied until this is fixed.**", "", "```", error, "```"]
        case .withheld(let reason):
            lines += ["**Not planned against the live systems:** \(reason)."]
        case .planned(let plan):
            let summary = plan.summary
            lines.append(
                "**Plan:** \(summary.add) to add, \(summary.change) to change, \(summary.destroy) to destroy · digest `\(plan.digest)`")
            lines.append("")
            if plan.isEmpty {
                lines.append("No changes: the live systems already match this commit.")
            } else if plan.approvals.isEmpty {
                lines.append("Nothing in this plan needs an approval.")
            } else {
                lines += approvalSection(plan, commit: pullRequest.headCommit, kind: kind)
            }
            if !plan.isEmpty { lines += ["", PlanRenderer.markdown(plan)] }
        }
        return lines.joined(separator: "\n")
    }

    private static func approvalSection(_ plan: Plan, commit: String, kind: ForgeKind) -> [String] {
        var lines = ["**Approval required** before this plan is applied:", "", "| Policy | Changes | Who may approve |", "|---|---|---|"]
        for requirement in plan.approvals {
            let who = requirement.approvers.isEmpty ? "anyone" : requirement.approvers.map { "`\($0)`" }.joined(separator: ", ")
            let author = requirement.allowSelfApproval ? "" : " (not the author)"
            lines.append(
                "| \(requirement.policy) | \(requirement.resources.map { "`\($0)`" }.joined(separator: ", ")) | \(who)\(author) |")
        }
        let review = kind == .gitlab ? "approve the merge request" : "approve a review of commit `\(commit.prefix(12))`"
        lines += [
            "",
            "To approve exactly this plan, \(review) after this comment was posted, or comment "
                + "`/converge approve \(ApprovalCommand.shortDigest(plan.digest))`. A new commit, or drift that changes the plan, "
                + "needs a new approval. `/converge plan` plans again.",
        ]
        return lines
    }

    /// `body` as comments of at most `limit` characters (UTF-16 code units, the strictest way
    /// forges count), cut at line boundaries; each starts with its marker. The first keeps the
    /// summary, digest and approvals. Removing the markers and continuation lines (`content`)
    /// gives `body` back exactly.
    public static func parts(_ body: String, posting: PlanPosting, limit: Int) -> [String] {
        var widest = posting
        widest.part = 999
        widest.parts = 999
        let reserve = marker(widest).utf16.count + continued(999, of: 999).utf16.count + footer.utf16.count + 8
        let chunks = split(body, budget: max(limit - reserve, 1024))
        return chunks.enumerated().map { index, chunk in
            var part = posting
            part.part = index + 1
            part.parts = chunks.count
            var text = marker(part) + "\n"
            if index > 0 { text += continued(index + 1, of: chunks.count) + "\n" }
            text += chunk
            if index < chunks.count - 1 { text += "\n" + footer }
            return text
        }
    }

    /// The Markdown of comments made by `parts`, in order, without their decorations.
    public static func content(_ parts: [String]) -> String {
        parts.enumerated().map { index, part in
            var text = Substring(part)
            if let newline = text.firstIndex(of: "\n"), text.hasPrefix(markerPrefix) { text = text[text.index(after: newline)...] }
            let heading = continued(index + 1, of: parts.count) + "\n"
            if index > 0, text.hasPrefix(heading) { text = text.dropFirst(heading.count) }
            if index < parts.count - 1, text.hasSuffix("\n" + footer) { text = text.dropLast(footer.count + 1) }
            return String(text)
        }.joined()
    }

    /// The posting recorded in a comment's marker, nil for any other comment.
    public static func posting(in body: String) -> PlanPosting? {
        guard body.hasPrefix(markerPrefix), let end = body.range(of: markerSuffix) else { return nil }
        let encoded = body[body.index(body.startIndex, offsetBy: markerPrefix.count)..<end.lowerBound]
        guard let data = Data(base64Encoded: String(encoded)) else { return nil }
        return try? JSONDecoder().decode(PlanPosting.self, from: data)
    }

    static func marker(_ posting: PlanPosting) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Base64: the marker sits in an HTML comment, which no JSON text may end early.
        let data = (try? encoder.encode(posting)) ?? Data()
        return markerPrefix + data.base64EncodedString() + markerSuffix
    }

    static let footer = "_(the plan continues in the next comment)_"

    static func continued(_ part: Int, of parts: Int) -> String {
        "_(continued: part \(part) of \(parts))_\n"
    }

    /// Consecutive pieces of `text`, each at most `budget` UTF-16 units, ending at a line
    /// break where one falls inside the budget.
    static func split(_ text: String, budget: Int) -> [String] {
        var chunks: [String] = []
        var rest = Substring(text)
        while rest.utf16.count > budget {
            let window = rest.utf16.index(rest.startIndex, offsetBy: budget)
            let limit = rest.rangeOfComposedCharacterSequence(at: window).lowerBound
            var cut = rest[..<limit].lastIndex(of: "\n").map { rest.index(after: $0) } ?? limit
            if cut == rest.startIndex { cut = limit }
            chunks.append(String(rest[..<cut]))
            rest = rest[cut...]
        }
        chunks.append(String(rest))
        return chunks
    }
}
