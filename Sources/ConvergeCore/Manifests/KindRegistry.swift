/// The kinds Converge understands, by `kind:`. Adding a kind is adding a type to this list.
public struct KindRegistry: Sendable {
    public static let apiVersion = "converge.dev/v1alpha1"

    private var kinds: [String: any ResourceSpec.Type]

    public init(_ kinds: [any ResourceSpec.Type]) {
        self.kinds = Dictionary(uniqueKeysWithValues: kinds.map { ($0.kind, $0) })
    }

    public static let builtIn = KindRegistry([
        DockerHostSpec.self,
        NetworkSpec.self,
        ContainerSpec.self,
        ApprovalPolicySpec.self,
        RouterSpec.self,
        ProbeSpec.self,
        FirewallPolicySpec.self,
        VCenterSpec.self,
        VirtualMachineSpec.self,
    ])

    public func type(forKind kind: String) -> (any ResourceSpec.Type)? { kinds[kind] }

    public var kindNames: [String] { kinds.keys.sorted() }
}
