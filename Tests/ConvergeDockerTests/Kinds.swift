import ConvergeCore
import ConvergeDocker
import ConvergeTestSupport

extension KindRegistry {
    /// Core's kinds and the Docker plug-in's, as a process with only that plug-in has them.
    static let docker = KindRegistry.core.adding(ProviderPlugin.docker.kinds)
}

func manifestSet(_ yaml: String, file: String = "test.yaml") throws -> ManifestSet {
    try ConvergeTestSupport.manifestSet(yaml, file: file, registry: .docker)
}

/// The in-sync live state, with containers depending on their networks as Docker lists them.
func inSyncObservation(of set: ManifestSet) -> [ObservedResource] {
    ConvergeTestSupport.inSyncObservation(of: set, dependencyKinds: [NetworkSpec.kind])
}

func plan(_ set: ManifestSet, observed: [ObservedResource]) throws -> Plan {
    try Planner(observedKinds: [NetworkSpec.kind, ContainerSpec.kind]).plan(
        desired: set, observed: observed, source: testSource, instance: "test")
}
