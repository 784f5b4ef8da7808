import ConvergeCore
import Foundation
import Testing

/// A kind as a plug-in would bring it, with a name rule of its own: lowercase DNS labels.
private struct GadgetSpec: ResourceSpec {
    static let kind = "Gadget"
    static let nameRule = NameRule { name in
        name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" } && name.count <= 63 ? nil : "use a DNS label: a-z, 0-9 and '-'"
    }
    var size: Int

    init?(spec: MappingReader, metadata: Metadata) {
        guard let size = spec.required("size")?.int else { return nil }
        self.size = size
    }

    func references(in set: ManifestSet) -> [Reference] { [] }
    func target(in set: ManifestSet) -> ResourceID? { nil }
}

private func load(_ yaml: String, registry: KindRegistry) throws -> ManifestSet {
    try ManifestSet.load([SourceFile(path: "set.yaml", bytes: Array(yaml.utf8))], registry: registry)
}

private func diagnostics(_ yaml: String, registry: KindRegistry) -> [String] {
    do {
        _ = try load(yaml, registry: registry)
        return []
    } catch let error as ManifestValidationError {
        return error.diagnostics.map { "\($0.location?.line ?? 0): \($0.message)\($0.hint.map { " (\($0))" } ?? "")" }
    } catch {
        return ["\(error)"]
    }
}

@Suite struct KindRegistryTests {
    static let gadgets = KindRegistry.core.adding([GadgetSpec.self])

    @Test("a set decodes only the kinds its registry has; Core alone knows ApprovalPolicy")
    func kindsComeFromTheRegistry() throws {
        let yaml = """
            apiVersion: converge.dev/v1alpha1
            kind: Gadget
            metadata: {name: g-1}
            spec: {size: 3}
            """
        #expect(try load(yaml, registry: Self.gadgets).resources.map(\.id.description) == ["Gadget/g-1"])
        #expect(diagnostics(yaml, registry: .core) == ["2: kind: unknown kind 'Gadget' (known kinds: ApprovalPolicy)"])
        #expect(KindRegistry.core.kindNames == ["ApprovalPolicy"])
    }

    @Test("names are checked by each kind's own rule")
    func nameRulesArePerKind() {
        let yaml = """
            apiVersion: converge.dev/v1alpha1
            kind: Gadget
            metadata: {name: Big_Gadget}
            spec: {size: 3}
            ---
            apiVersion: converge.dev/v1alpha1
            kind: ApprovalPolicy
            metadata: {name: Big_Policy}
            spec: {match: {kinds: [Gadget]}}
            """
        // The policy keeps the portable rule, which accepts capitals and '_'.
        #expect(
            diagnostics(yaml, registry: Self.gadgets) == ["3: metadata.name: invalid name 'Big_Gadget' (use a DNS label: a-z, 0-9 and '-')"]
        )
    }

    @Test("an approval policy names kinds of the set's registry, not of a fixed list")
    func policyKindsAreCheckedAgainstTheSetsRegistry() {
        let yaml = """
            apiVersion: converge.dev/v1alpha1
            kind: ApprovalPolicy
            metadata: {name: gadgets}
            spec: {match: {kinds: [Gadgte]}}
            """
        #expect(diagnostics(yaml, registry: Self.gadgets) == ["4: spec.match.kinds: unknown kind 'Gadgte' (did you mean 'Gadget'?)"])
        #expect(diagnostics(yaml.replacingOccurrences(of: "Gadgte", with: "Gadget"), registry: Self.gadgets).isEmpty)
    }
}
