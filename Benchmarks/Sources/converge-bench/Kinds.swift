import ConvergeCore
import ConvergeDocker
import ConvergeVSphere

/// The kinds of the `converge` binary, which the benchmarks' manifests use.
let benchKinds = KindRegistry.core.adding(ProviderPlugin.docker.kinds + ProviderPlugin.vSphere.kinds)
