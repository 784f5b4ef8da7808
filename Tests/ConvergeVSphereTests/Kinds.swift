import ConvergeCore
import ConvergeTestSupport
import ConvergeVSphere

extension KindRegistry {
    /// Core's kinds and the vSphere plug-in's, as a process with only that plug-in has them.
    static let vSphere = KindRegistry.core.adding(ProviderPlugin.vSphere.kinds)
}

func manifestSet(_ yaml: String, file: String = "test.yaml") throws -> ManifestSet {
    try ConvergeTestSupport.manifestSet(yaml, file: file, registry: .vSphere)
}

func inSyncObservation(of set: ManifestSet) -> [ObservedResource] {
    ConvergeTestSupport.inSyncObservation(of: set, dependencyKinds: [])
}
