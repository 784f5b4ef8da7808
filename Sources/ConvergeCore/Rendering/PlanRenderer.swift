import Foundation

/// Renders a plan for people: the terminal (Terraform-like, coloured when asked) and
/// Markdown for pull-request comments. JSON is `Plan`'s own Codable form.
public enum PlanRenderer {
    public static func text(_ plan: Plan, color: Bool) -> String {
        let style = TextStyle(enabled: color)
        var lines: [String] = []
        lines.append(style.bold("Converge plan") + " for \(describe(plan.source))")
        lines.append("")
        if plan.isEmpty {
            lines.append(style.green("No changes.") + " The live state matches the manifests.")
            if !plan.warnings.isEmpty {
                lines.append("")
                lines.append(style.yellow("Warnings:"))
                lines += plan.warnings.map { "  - \($0)" }
            }
            return lines.joined(separator: "\n") + "\n"
        }
        let guards = stepGuards(plan)
        for change in plan.changes {
            let (symbol, paint, verb) = presentation(change.action, style: style)
            var heading = "  # \(change.resource) \(verb)"
            if let reason = change.reason { heading += " (\(reason))" }
            lines.append(style.dim(heading))
            lines.append(paint("\(symbol.padding(toLength: 3, withPad: " ", startingAt: 0)) \(change.resource)"))
            let fields = displayed(change.fields)
            let width = fields.map(\.path.count).max() ?? 0
            for field in fields {
                lines.append("      " + fieldLine(field, width: width, action: change.action, style: style))
            }
            if let stepGuard = guards[change.resource] {
                let line = "↳ \(describe(stepGuard))" + (stepGuard.warning == nil ? "" : " (see Warnings)")
                lines.append("      " + (stepGuard.warning == nil ? style.dim(line) : style.yellow(line)))
            }
            if let phases = phases(of: change.resource, in: plan) {
                lines.append("      " + style.dim("↳ runs as \(phases)"))
            }
            lines.append("")
        }
        for requirement in plan.approvals {
            lines.append(style.yellow("Approval required by ApprovalPolicy/\(requirement.policy)") + " for " + requirement.resources.map(\.description).joined(separator: ", ")
                + (requirement.approvers.isEmpty ? "" : " (approvers: \(requirement.approvers.joined(separator: ", ")))")
                + (requirement.gate.map { " before step \($0 + 1) (\(plan.steps[$0].phase ?? "start"))" } ?? ""))
        }
        if !plan.approvals.isEmpty { lines.append("") }
        if !plan.warnings.isEmpty {
            lines.append(style.yellow("Warnings:"))
            lines += plan.warnings.map { "  - \($0)" }
            lines.append("")
        }
        lines.append(style.bold("Plan: \(plan.summary.add) to add, \(plan.summary.change) to change, \(plan.summary.destroy) to destroy."))
        lines.append(style.dim("Digest: \(plan.digest)"))
        return lines.joined(separator: "\n") + "\n"
    }

    /// `deploy → ready → switch (waits for approval) → …` for a change that runs in phases.
    private static func phases(of resource: ResourceID, in plan: Plan) -> String? {
        let held = Set(plan.approvals.flatMap(\.beforeSteps))
        let phases = plan.steps.filter { $0.resource == resource && $0.phase != nil }.map { step in
            (step.phase ?? "") + (held.contains(step.index) ? " (waits for approval)" : "")
        }
        return phases.isEmpty ? nil : phases.joined(separator: " → ")
    }

    public static func markdown(_ plan: Plan) -> String {
        var lines: [String] = []
        lines.append("### Converge plan")
        lines.append("")
        lines.append("Source: `\(describe(plan.source))`  ")
        lines.append("Digest: `\(plan.digest)`")
        lines.append("")
        if plan.isEmpty {
            lines.append("**No changes.** The live state matches the manifests.")
            for warning in plan.warnings {
                lines.append("")
                lines.append("> **Warning:** \(warning)")
            }
            return lines.joined(separator: "\n") + "\n"
        }
        lines.append("**Plan: \(plan.summary.add) to add, \(plan.summary.change) to change, \(plan.summary.destroy) to destroy.**")
        lines.append("")
        for requirement in plan.approvals {
            let approvers = requirement.approvers.isEmpty ? "" : " — approvers: \(requirement.approvers.joined(separator: ", "))"
            let held = requirement.gate.map { " before step \($0 + 1) (\(plan.steps[$0].phase ?? "start"))" } ?? ""
            lines.append("> **Approval required** by `ApprovalPolicy/\(requirement.policy)` for \(requirement.resources.map { "`\($0)`" }.joined(separator: ", "))\(held)\(approvers)")
            lines.append("")
        }
        for warning in plan.warnings {
            lines.append("> **Warning:** \(warning)")
            lines.append("")
        }
        let guards = stepGuards(plan)
        lines.append("| | Resource | Action |")
        lines.append("|---|---|---|")
        for change in plan.changes {
            let (symbol, _, verb) = presentation(change.action, style: TextStyle(enabled: false))
            let reason = change.reason.map { " (\($0))" } ?? ""
            let stepGuard = guards[change.resource].map { " (\(describe($0)))" } ?? ""
            let phases = phases(of: change.resource, in: plan).map { "<br>runs as \($0)" } ?? ""
            lines.append("| `\(symbol)` | `\(change.resource)` | \(verb)\(reason)\(stepGuard)\(phases) |")
        }
        lines.append("")
        lines.append("<details><summary>Field changes</summary>")
        lines.append("")
        lines.append("```diff")
        for change in plan.changes {
            let (symbol, _, _) = presentation(change.action, style: TextStyle(enabled: false))
            lines.append("\(symbol) \(change.resource)")
            let fields = displayed(change.fields)
            let width = fields.map(\.path.count).max() ?? 0
            for field in fields {
                lines.append("    " + fieldLine(field, width: width, action: change.action, style: TextStyle(enabled: false)))
            }
        }
        lines.append("```")
        lines.append("")
        lines.append("</details>")
        return lines.joined(separator: "\n") + "\n"
    }

    static func describe(_ source: SourceRevision) -> String {
        var text = source.repository
        if let path = source.path, !path.isEmpty { text += " (\(path))" }
        if let commit = source.commit {
            text += " @ \(commit.prefix(12))"
            if let ref = source.ref, !commit.hasPrefix(ref) { text += " (\(ref))" }
        }
        return text
    }

    /// The guarded steps by resource. Only updates are guarded today, so a resource has at
    /// most one; should a kind guard both steps of a replacement, the first is shown.
    private static func stepGuards(_ plan: Plan) -> [ResourceID: StepGuard] {
        Dictionary(plan.steps.compactMap { step in step.guard.map { (step.resource, $0) } }, uniquingKeysWith: { first, _ in first })
    }

    /// `snapshot before change`, or `no snapshot before change` when it cannot be taken.
    private static func describe(_ stepGuard: StepGuard) -> String {
        switch stepGuard.kind {
        case .snapshot: return stepGuard.warning == nil ? "snapshot before change" : "no snapshot before change"
        }
    }

    private static func presentation(_ action: ChangeAction, style: TextStyle) -> (String, (String) -> String, String) {
        switch action {
        case .create: return ("+", style.green, "will be created")
        case .update: return ("~", style.yellow, "will be updated in place")
        case .replace: return ("-/+", style.red, "must be replaced")
        case .delete: return ("-", style.red, "will be destroyed")
        }
    }

    /// Fields as people read them: a map that appears or disappears whole (a new policy's
    /// rules, a new container's env) is shown one key per line, as changed maps are.
    static func displayed(_ fields: [FieldChange]) -> [FieldChange] {
        fields.flatMap { field -> [FieldChange] in
            switch (field.before, field.after) {
            case (nil, .map(let map)?) where !map.isEmpty:
                return displayed(map.entries.map { FieldChange(path: "\(field.path).\($0.key)", before: nil, after: $0.value, forcesReplacement: field.forcesReplacement) })
            case (.map(let map)?, nil) where !map.isEmpty:
                return displayed(map.entries.map { FieldChange(path: "\(field.path).\($0.key)", before: $0.value, after: nil, forcesReplacement: field.forcesReplacement) })
            default:
                return [field]
            }
        }
    }

    private static func fieldLine(_ field: FieldChange, width: Int, action: ChangeAction, style: TextStyle) -> String {
        let name = field.path.padding(toLength: width, withPad: " ", startingAt: 0)
        switch (field.before, field.after) {
        case (nil, let after?):
            return style.green("+ \(name) = \(after.rendered)")
        case (let before?, nil):
            return style.red("- \(name) = \(before.rendered)")
        case (let before?, let after?):
            let note = field.forcesReplacement && action == .replace ? style.red("  # forces replacement") : ""
            return style.yellow("~ \(name) = \(before.rendered) → \(after.rendered)") + note
        case (nil, nil):
            return "  \(name)"
        }
    }
}

/// ANSI styling that turns itself off when output is not a terminal.
struct TextStyle {
    var enabled: Bool

    private func paint(_ code: String, _ text: String) -> String {
        enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    func bold(_ text: String) -> String { paint("1", text) }
    func dim(_ text: String) -> String { paint("2", text) }
    func green(_ text: String) -> String { paint("32", text) }
    func yellow(_ text: String) -> String { paint("33", text) }
    func red(_ text: String) -> String { paint("31", text) }
}
