import ConvergeCore
import ConvergeDocker
import ConvergeRuntime
import ConvergeTestSupport
import ConvergeVSphere

extension KindRegistry {
    /// The kinds of the `converge` binary: Core's and those of every plug-in it lists.
    static let converge = ProviderRegistry([.docker, .vSphere]).kinds
}

func manifestSet(_ yaml: String, file: String = "test.yaml") throws -> ManifestSet {
    try ConvergeTestSupport.manifestSet(yaml, file: file, registry: .converge)
}

func inSyncObservation(of set: ManifestSet) -> [ObservedResource] {
    ConvergeTestSupport.inSyncObservation(of: set, dependencyKinds: [NetworkSpec.kind])
}
