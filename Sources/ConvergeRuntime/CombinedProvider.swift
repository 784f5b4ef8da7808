import ConvergeCore

/// The providers several plug-ins made for one target (the Docker plug-in's and the rollouts
/// plug-in's for a `DockerHost`), seen as one: each serves the kinds it manages, and the
/// first, the target kind's own plug-in, everything else.
struct CombinedProvider: Provider {
    let parts: [any Provider]

    init(_ parts: [any Provider]) {
        precondition(!parts.isEmpty, "a combined provider needs at least one part")
        self.parts = parts
    }

    var managedKinds: Set<String> { parts.reduce(into: []) { $0.formUnion($1.managedKinds) } }

    /// The part that serves resources of `kind`.
    private func part(for kind: String) -> any Provider {
        parts.dropFirst().first { $0.managedKinds.contains(kind) } ?? parts[0]
    }

    /// `desired` split by the part that serves each resource.
    private func byPart(_ desired: [Resource]) -> [(provider: any Provider, resources: [Resource])] {
        let extensions = parts.dropFirst()
        return parts.enumerated().map { index, provider in
            (provider, desired.filter { resource in
                let kind = resource.id.kind
                return index == 0 ? !extensions.contains { $0.managedKinds.contains(kind) } : provider.managedKinds.contains(kind)
            })
        }
    }

    func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] {
        var observed: [ObservedResource] = []
        for (provider, own) in byPart(desired) {
            observed += try await provider.observe(desired: own, in: set, instance: instance)
        }
        return observed
    }

    func resolve(desired: [Resource], in set: ManifestSet) async throws -> [ResourceID: [String: String]] {
        var resolved: [ResourceID: [String: String]] = [:]
        for (provider, own) in byPart(desired) {
            resolved.merge(try await provider.resolve(desired: own, in: set)) { first, _ in first }
        }
        return resolved
    }

    func execute(
        _ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String
    ) async throws {
        try await part(for: step.resource.kind).execute(
            step, change: change, desired: desired, observed: observed, in: set, instance: instance)
    }

    func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? {
        try await part(for: step.resource.kind).snapshot(step, observed: observed, in: set, instance: instance)
    }

    func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {
        try await part(for: step.resource.kind).compensate(step, snapshot: snapshot, instance: instance)
    }

    func run() async {
        await withDiscardingTaskGroup { group in
            for provider in parts { group.addTask { await provider.run() } }
        }
    }

    func shutdown() async {
        for provider in parts { await provider.shutdown() }
    }
}
