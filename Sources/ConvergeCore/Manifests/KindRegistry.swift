/// The kinds a process understands, by `kind:`. Core knows only its own (`ApprovalPolicy`);
/// provider plug-ins bring theirs, and the runtime joins them into one registry.
public struct KindRegistry: Sendable {
    public static let apiVersion = "converge.dev/v1alpha1"
    /// Every apiVersion of Converge's own API group starts with it; others are not Converge's.
    public static let apiGroupPrefix = "converge.dev/"

    private var kinds: [String: any ResourceSpec.Type] = [:]
    /// The kind that takes documents of every other apiVersion (Kubernetes objects), if a
    /// plug-in brings one.
    public private(set) var otherAPIVersions: (any APIObjectSpec.Type)?

    public init(_ kinds: [any ResourceSpec.Type]) {
        self = KindRegistry().adding(kinds)
    }

    private init() {}

    /// The kinds every set may use, whichever providers are plugged in.
    public static let core = KindRegistry([ApprovalPolicySpec.self])

    /// This registry with `others` added; a kind already known keeps its first type, and so
    /// does the taker of other apiVersions.
    public func adding(_ others: [any ResourceSpec.Type]) -> KindRegistry {
        var joined = self
        for kind in others {
            if let objects = kind as? any APIObjectSpec.Type {
                if joined.otherAPIVersions == nil { joined.otherAPIVersions = objects }
            } else if joined.kinds[kind.kind] == nil {
                joined.kinds[kind.kind] = kind
            }
        }
        return joined
    }

    public func type(forKind kind: String) -> (any ResourceSpec.Type)? { kinds[kind] }

    public var kindNames: [String] { kinds.keys.sorted() }
}
