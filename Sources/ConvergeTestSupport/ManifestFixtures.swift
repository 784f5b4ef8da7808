import ConvergeCore

/// The source revision of plans made by tests.
public let testSource = SourceRevision(repository: "test")

/// Builds a manifest set from inline YAML documents, with the kinds of `registry`.
public func manifestSet(_ yaml: String, file: String = "test.yaml", registry: KindRegistry) throws -> ManifestSet {
    try ManifestSet.load([SourceFile(path: file, bytes: Array(yaml.utf8))], registry: registry)
}

/// The live state that exactly matches `set`, as a provider would report it; references to
/// resources of `dependencyKinds` are reported as the object's dependencies (a container's
/// networks, as Docker lists them).
public func inSyncObservation(of set: ManifestSet, dependencyKinds: Set<String>) -> [ObservedResource] {
    set.resources.filter { $0.isLiveObject }.map { resource in
        ObservedResource(
            id: resource.id, fields: resource.spec.desiredFields(metadata: resource.metadata, in: set),
            ownership: .managed, externalID: "id-\(resource.id.name)",
            dependencies: resource.references(in: set).map(\.target).filter { dependencyKinds.contains($0.kind) })
    }
}

/// The local Docker engine as a `DockerHost` named `local`, and one bridge `Network` on
/// `subnet`: what the Docker-backed tests and benchmarks start their sets with.
public func localDockerNetwork(_ network: String, subnet: String) -> String {
    """
    apiVersion: converge.dev/v1alpha1
    kind: DockerHost
    metadata: {name: local}
    spec: {endpoint: "unix:///var/run/docker.sock"}
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Network
    metadata: {name: \(network)}
    spec: {subnet: \(subnet)}
    """
}
