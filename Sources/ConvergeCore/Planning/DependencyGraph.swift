/// Who needs whom in a manifest set: an edge from a resource to each resource it references.
public struct DependencyGraph: Sendable {
    /// resource → the resources it depends on, sorted.
    public private(set) var dependencies: [ResourceID: [ResourceID]] = [:]

    public init(_ set: ManifestSet) {
        for resource in set.resources {
            let targets = Set(resource.references(in: set).map(\.target)).filter { set[$0] != nil }
            dependencies[resource.id] = targets.sorted()
        }
    }

    /// Every elementary cycle found by a depth-first walk, each reported once, starting
    /// from its smallest id so the message is stable.
    public func cycles() -> [[ResourceID]] {
        enum Mark { case visiting, done }
        var marks: [ResourceID: Mark] = [:]
        var stack: [ResourceID] = []
        var found: Set<[ResourceID]> = []

        func visit(_ id: ResourceID) {
            marks[id] = .visiting
            stack.append(id)
            for next in dependencies[id] ?? [] {
                switch marks[next] {
                case .visiting:
                    let start = stack.lastIndex(of: next)!
                    var cycle = Array(stack[start...])
                    let smallest = cycle.indices.min { cycle[$0] < cycle[$1] }!
                    cycle = Array(cycle[smallest...] + cycle[..<smallest])
                    found.insert(cycle)
                case .done:
                    continue
                case nil:
                    visit(next)
                }
            }
            stack.removeLast()
            marks[id] = .done
        }

        for id in dependencies.keys.sorted() where marks[id] == nil {
            visit(id)
        }
        return found.sorted { $0.lexicographicallyPrecedes($1) }
    }
}
