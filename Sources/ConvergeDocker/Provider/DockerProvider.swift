import ConvergeCore

/// Manages the `Network` and `Container` manifests of one `DockerHost` through the Engine API.
public struct DockerProvider: Provider {
    public let host: ResourceID
    public let engine: DockerEngine
    /// How many engine calls observation runs at once (container inspects, image lookups).
    public var concurrency = 16

    public init(host: ResourceID, engine: DockerEngine) {
        self.host = host
        self.engine = engine
    }

    public var managedKinds: Set<String> { [NetworkSpec.kind, ContainerSpec.kind] }

    private static func ownerFilter(_ instance: String) -> String { "\(OwnershipLabel.managedBy)=\(instance)" }

    // MARK: Observe

    public func observe(desired: [Resource], instance: String) async throws -> [ObservedResource] {
        async let networks = observeNetworks(desired: desired.filter { $0.id.kind == NetworkSpec.kind }, instance: instance)
        async let containers = observeContainers(desired: desired.filter { $0.id.kind == ContainerSpec.kind }, instance: instance)
        try await checkImagesExist(desired)
        return try await networks + containers
    }

    private func observeNetworks(desired: [Resource], instance: String) async throws -> [ObservedResource] {
        let specs = Dictionary(desired.map { ($0.metadata.name, $0.spec(as: NetworkSpec.self)) }, uniquingKeysWith: { first, _ in first })
        var found = try await engine.listNetworks(labelFilters: [Self.ownerFilter(instance)])
        let ownedNames = Set(found.map(\.name))
        let missing = specs.keys.filter { !ownedNames.contains($0) }.sorted()
        if !missing.isEmpty {
            // Docker's name filter matches substrings; keep exact matches only.
            found += try await engine.listNetworks(nameFilters: missing).filter { missing.contains($0.name) }
        }
        return found.map { network in
            let id = resourceID(network.labels, kind: NetworkSpec.kind, name: network.name)
            return ObservedResource(
                id: id,
                fields: NetworkMapping.observedFields(network, desired: specs[network.name] ?? nil),
                ownership: ownership(of: network.labels, instance: instance),
                externalID: network.id)
        }
    }

    private func observeContainers(desired: [Resource], instance: String) async throws -> [ObservedResource] {
        var summaries = try await engine.listContainers(all: true, labelFilters: [Self.ownerFilter(instance)])
        let ownedNames = Set(summaries.compactMap(\.name))
        let missing = desired.map(\.metadata.name).filter { !ownedNames.contains($0) }.sorted()
        if !missing.isEmpty {
            summaries += try await engine.listContainers(all: true, nameFilters: missing).filter { missing.contains($0.name ?? "") }
        }
        let engine = self.engine
        let inspected = try await concurrentMap(summaries, limit: concurrency) { summary in
            try await engine.inspectContainer(summary.id)
        }
        let images = Set(inspected.compactMap { $0.config?.image })
        let imageConfigs = try await Dictionary(uniqueKeysWithValues: concurrentMap(Array(images), limit: concurrency) { image in
            (image, try await imageConfig(image))
        })
        return inspected.map { container in
            let name = container.plainName ?? container.id
            let labels = container.config?.labels
            let networkNames = (container.networkSettings?.networks ?? [:]).keys.filter { !ContainerMapping.builtInNetworks.contains($0) }
            return ObservedResource(
                id: resourceID(labels, kind: ContainerSpec.kind, name: name),
                fields: ContainerMapping.observedFields(container, image: container.config?.image.flatMap { imageConfigs[$0] ?? nil }),
                ownership: ownership(of: labels, instance: instance),
                externalID: container.id,
                dependencies: networkNames.sorted().map { ResourceID(kind: NetworkSpec.kind, name: $0) })
        }
    }

    /// The image's own config, to tell its defaults from what a manifest set; nil when the
    /// image is gone (then nothing is subtracted).
    private func imageConfig(_ image: String) async throws -> DockerContainerConfig? {
        do {
            return try await engine.inspectImage(image).config
        } catch let error as DockerEngineError where error.isNotFound {
            return nil
        }
    }

    /// No registry is assumed: a container whose image is not on the host fails the plan
    /// before any change, instead of halfway through it.
    private func checkImagesExist(_ desired: [Resource]) async throws {
        let images = Set(desired.compactMap { $0.spec(as: ContainerSpec.self)?.image }).sorted()
        let engine = self.engine
        let missing = try await concurrentMap(images, limit: concurrency) { image in
            try await engine.imageExists(image) ? nil : image
        }.compactMap { $0 }
        guard missing.isEmpty else {
            throw DockerProviderError.missingImages(host: host, images: missing, users: desired.filter {
                missing.contains($0.spec(as: ContainerSpec.self)?.image ?? "")
            }.map(\.id))
        }
    }

    private func resourceID(_ labels: [String: String]?, kind: String, name: String) -> ResourceID {
        labels?[OwnershipLabel.resource].flatMap(ResourceID.init) ?? ResourceID(kind: kind, name: name)
    }

    // MARK: Execute

    public func execute(_ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, instance: String) async throws {
        switch (step.resource.kind, step.action) {
        case (NetworkSpec.kind, .create):
            guard let desired else { throw DockerProviderError.unsupported(step) }
            try await createNetwork(desired, instance: instance)
        case (NetworkSpec.kind, .delete):
            // No observation: the object is already gone (a resumed run deleted it before).
            guard let observed else { return }
            try await ignoringNotFound { try await engine.removeNetwork(observed.externalID) }
        case (ContainerSpec.kind, .create):
            guard let desired else { throw DockerProviderError.unsupported(step) }
            try await createContainer(desired, instance: instance)
        case (ContainerSpec.kind, .delete):
            guard let observed else { return }
            try await ignoringNotFound { try await engine.removeContainer(observed.externalID, force: true) }
        case (ContainerSpec.kind, .update):
            guard let desired, let observed else { throw DockerProviderError.unsupported(step) }
            try await updateContainer(desired, observed: observed, change: change)
        default:
            throw DockerProviderError.unsupported(step)
        }
    }

    private func createNetwork(_ resource: Resource, instance: String) async throws {
        let labels = ["\(OwnershipLabel.resource)=\(resource.id)", Self.ownerFilter(instance)]
        // A create cut off by a crash may have finished on the engine: reuse what it made.
        if try await !engine.listNetworks(labelFilters: labels).isEmpty { return }
        _ = try await engine.createNetwork(NetworkMapping.create(resource, spec: resource.spec(as: NetworkSpec.self)!, instance: instance))
    }

    private func createContainer(_ resource: Resource, instance: String) async throws {
        let spec = resource.spec(as: ContainerSpec.self)!
        let labels = ["\(OwnershipLabel.resource)=\(resource.id)", Self.ownerFilter(instance)]
        let existing = try await engine.listContainers(all: true, labelFilters: labels).first
        let id: String
        if let existing {
            // Made by an attempt that was cut off: finish its network attachments.
            id = existing.id
            let attached = Set((existing.networkSettings?.networks ?? [:]).keys)
            for attachment in spec.networks where !attached.contains(attachment.network) {
                try await engine.connect(network: attachment.network, container: id, ipv4: attachment.ipv4?.description, aliases: attachment.aliases)
            }
        } else {
            let (request, additional) = ContainerMapping.create(resource, spec: spec, instance: instance)
            id = try await engine.createContainer(name: resource.metadata.name, request)
            for attachment in additional {
                try await engine.connect(network: attachment.network, container: id, ipv4: attachment.ipv4?.description, aliases: attachment.aliases)
            }
        }
        if spec.state == "running" {
            try await engine.startContainer(id)
        }
    }

    /// Applies the in-place changes: networks, restart policy and run state.
    private func updateContainer(_ resource: Resource, observed: ObservedResource, change: ResourceChange) async throws {
        let spec = resource.spec(as: ContainerSpec.self)!
        let id = observed.externalID
        let changed = Set(change.fields.map { String($0.path.split(separator: ".").first ?? "") })
        if changed.contains("networks") {
            guard case .map(let live)? = observed.fields["networks"] else { return }
            let wanted = Dictionary(uniqueKeysWithValues: spec.networks.map { ($0.network, $0) })
            for name in live.keys where wanted[name] == nil {
                try await ignoringNotFound { try await engine.disconnect(network: name, container: id, force: true) }
            }
            for attachment in spec.networks {
                let fields = FieldValue.map(ContainerSpec.attachmentFields(ipv4: attachment.ipv4?.description, aliases: attachment.aliases))
                guard live[attachment.network] != fields else { continue }
                if live[attachment.network] != nil {
                    try await engine.disconnect(network: attachment.network, container: id, force: true)
                }
                try await engine.connect(network: attachment.network, container: id, ipv4: attachment.ipv4?.description, aliases: attachment.aliases)
            }
        }
        if changed.contains("restartPolicy") {
            try await engine.updateContainer(id, restartPolicy: ContainerMapping.restartPolicy(spec.restartPolicy))
        }
        if changed.contains("state") {
            if spec.state == "running" {
                try await engine.startContainer(id)
            } else {
                try await engine.stopContainer(id, timeoutSeconds: 10)
            }
        }
    }

    func ignoringNotFound(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as DockerEngineError where error.isNotFound {
            // Already gone: the desired outcome of a delete.
        }
    }
}

public enum DockerProviderError: Error, CustomStringConvertible {
    case missingImages(host: ResourceID, images: [String], users: [ResourceID])
    case unsupported(PlanStep)

    public var description: String {
        switch self {
        case .missingImages(let host, let images, let users):
            return "image\(images.count == 1 ? "" : "s") \(images.map { "'\($0)'" }.joined(separator: ", ")) not found on \(host) (needed by \(users.map(\.description).joined(separator: ", "))); nothing was changed. Build or load the image on that host first (scripts/lab-images.sh builds the lab images)."
        case .unsupported(let step):
            return "internal error: the Docker provider cannot \(step.action) \(step.resource)"
        }
    }
}

/// Maps `items` through `transform` with at most `limit` calls in flight, keeping order.
func concurrentMap<Item: Sendable, Result: Sendable>(
    _ items: [Item], limit: Int, _ transform: @escaping @Sendable (Item) async throws -> Result
) async throws -> [Result] {
    try await withThrowingTaskGroup(of: (Int, Result).self) { group in
        var results = [Result?](repeating: nil, count: items.count)
        var next = 0
        func addNext() {
            guard next < items.count else { return }
            let index = next
            let item = items[index]
            group.addTask { (index, try await transform(item)) }
            next += 1
        }
        for _ in 0..<min(limit, items.count) { addNext() }
        while let (index, result) = try await group.next() {
            results[index] = result
            addNext()
        }
        return results.map { $0! }
    }
}
