/// The kinds a process understands, by `kind:`. Core knows only its own (`ApprovalPolicy`);
/// provider plug-ins bring theirs, and the runtime joins them into one registry.
public struct KindRegistry: Sendable {
    public static let apiVersion = "converge.dev/v1alpha1"

    private var kinds: [String: any ResourceSpec.Type]

    public init(_ kinds: [any ResourceSpec.Type]) {
        self.kinds = Dictionary(kinds.map { ($0.kind, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The kinds every set may use, whichever providers are plugged in.
    public static let core = KindRegistry([ApprovalPolicySpec.self])

    /// This registry with `others` added; a kind already known keeps its first type.
    public func adding(_ others: [any ResourceSpec.Type]) -> KindRegistry {
        var joined = self
        for kind in others where joined.kinds[kind.kind] == nil { joined.kinds[kind.kind] = kind }
        return joined
    }

    public func type(forKind kind: String) -> (any ResourceSpec.Type)? { kinds[kind] }

    public var kindNames: [String] { kinds.keys.sorted() }
}
