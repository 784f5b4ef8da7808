import ConvergeAnsible
import ConvergeCore
import ConvergeDocker
import ConvergeKubernetes
import ConvergeRollouts
import ConvergeVSphere

extension ConvergeCommand {
    /// The providers this binary serves. A new provider module is one more entry here.
    static let plugins: [ProviderPlugin] = [.docker, .rollouts, .vSphere, .kubernetes, .ansible]
}
