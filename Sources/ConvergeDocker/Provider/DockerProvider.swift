import ConvergeCore
import Foundation

/// Manages the `Network` and `Container` manifests of one `DockerHost` through the Engine API.
public struct DockerProvider: Provider {
    public let host: ResourceID
    public let engine: DockerEngine
    /// How many engine calls observation runs at once (container inspects, image lookups).
    public var concurrency = 16
    let firewallBackends = FirewallBackendCache()
    /// The store's provider records: which containers Converge gave routes to, so a manifest
    /// that drops them all is seen without reading every container's namespace.
    let context: ProviderContext

    public init(host: ResourceID, engine: DockerEngine, context: ProviderContext = .isolated) {
        self.host = host
        self.engine = engine
        self.context = context
    }

    /// The record of the routes Converge set in container `name`.
    static func routesRecord(_ name: String) -> String { "\(ContainerSpec.kind)/\(name)/routes" }

    public var managedKinds: Set<String> {
        [NetworkSpec.kind, VolumeSpec.kind, ContainerSpec.kind, RouterSpec.kind, FirewallPolicySpec.kind]
    }

    /// Kinds carried by a container on the engine.
    static let containerKinds: Set<String> = [ContainerSpec.kind, RouterSpec.kind]

    private static func ownerFilter(_ instance: String) -> String { "\(OwnershipLabel.managedBy)=\(instance)" }

    // MARK: Observe

    public func observe(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] {
        async let networks = observeNetworks(desired: desired.filter { $0.id.kind == NetworkSpec.kind }, instance: instance)
        async let volumes = observeVolumes(desired: desired.filter { $0.id.kind == VolumeSpec.kind }, instance: instance)
        async let containers = observeContainers(
            desired: desired.filter { Self.containerKinds.contains($0.id.kind) }, in: set, instance: instance)
        try await checkImagesExist(desired)
        let policies = try await FirewallApplier(engine: engine, instance: instance, backends: firewallBackends)
            .observe(desired.filter { $0.id.kind == FirewallPolicySpec.kind }, in: set)
        return try await networks + volumes + containers + policies
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

    private func observeContainers(desired: [Resource], in set: ManifestSet, instance: String) async throws -> [ObservedResource] {
        var summaries = try await engine.listContainers(all: true, labelFilters: [Self.ownerFilter(instance)])
        let ownedNames = Set(summaries.compactMap(\.name))
        let missing = desired.map(\.metadata.name).filter { !ownedNames.contains($0) }.sorted()
        if !missing.isEmpty {
            summaries += try await engine.listContainers(all: true, nameFilters: missing).filter { missing.contains($0.name ?? "") }
        }
        let engine = self.engine
        // A container removed between the listing and its inspection is simply gone.
        let inspected = try await concurrentMap(summaries, limit: concurrency) { summary -> ContainerInspect? in
            do {
                return try await engine.inspectContainer(summary.id)
            } catch let error as DockerEngineError where error.isNotFound {
                return nil
            }
        }.compactMap { $0 }
        // Each container's own image (by id, not by a tag that may have moved since).
        let imageIDs = Set(inspected.compactMap(\.image))
        let images = try await Dictionary(
            uniqueKeysWithValues: concurrentMap(Array(imageIDs), limit: concurrency) { id in
                (id, try await inspectIfPresent(id))
            })
        let desiredByName = Dictionary(desired.map { ($0.metadata.name, $0) }, uniquingKeysWith: { first, _ in first })
        let routes = NamespaceRoutes(engine: engine)
        let routed = Set(try await context.records()?.records(prefix: "\(ContainerSpec.kind)/").map(\.key) ?? [])
        return try await concurrentMap(inspected, limit: concurrency) { container in
            let name = container.plainName ?? container.id
            let labels = container.config?.labels
            let kind = labels?[OwnershipLabel.resource].flatMap(ResourceID.init)?.kind ?? desiredByName[name]?.id.kind ?? ContainerSpec.kind
            let networkNames = (container.networkSettings?.networks ?? [:]).keys.filter { !ContainerMapping.builtInNetworks.contains($0) }
            let running = container.state?.running == true
            var fields: FieldMap
            if kind == RouterSpec.kind {
                // The router's own routes are those `ip route` added (proto boot); FRR's are
                // compared under `frr`, read only where a manifest declares FRR.
                let own = running ? try await routes.readOwn(container.id) : []
                let wantsFRR = desiredByName[name]?.spec(as: RouterSpec.self)?.frr != nil
                let frr = wantsFRR ? (running ? try await FRRConfigurator(engine: engine).running(container.id) ?? [] : []) : nil
                fields = RouterMapping.observedFields(container, routes: own, frr: frr)
            } else {
                fields = ContainerMapping.observedFields(container, image: container.image.flatMap { images[$0] ?? nil })
                // Routes are read only where a manifest declares some or Converge set some: an
                // exec per container is the cost, and other tables are the engine's business.
                if let spec = desiredByName[name]?.spec(as: ContainerSpec.self), !spec.routes.isEmpty {
                    fields["routes"] = .strings(running ? spec.observedRoutes(try await routes.read(container.id), in: set) : [])
                } else if running, routed.contains(Self.routesRecord(name)) {
                    fields["routes"] = .strings(try await routes.read(container.id).map { "\($0.destination) via \($0.gateway)" }.sorted())
                } else {
                    fields["routes"] = .strings([])
                }
            }
            return ObservedResource(
                id: resourceID(labels, kind: kind, name: name),
                fields: fields,
                ownership: ownership(of: labels, instance: instance),
                externalID: container.id,
                dependencies: networkNames.sorted().map { ResourceID(kind: NetworkSpec.kind, name: $0) }
                    + (container.hostConfig?.mounts ?? []).filter { $0.type == "volume" }.compactMap(\.source).sorted()
                    .map { ResourceID(kind: VolumeSpec.kind, name: $0) })
        }
    }

    /// The image, to tell its defaults from what a manifest set and read its digest; nil when
    /// it is gone (then nothing is subtracted).
    func inspectIfPresent(_ image: String) async throws -> ImageInspect? {
        do {
            return try await engine.inspectImage(image)
        } catch let error as DockerEngineError where error.isNotFound {
            return nil
        }
    }

    /// Routers' images and the route helper's come from the lab, never from a registry: one
    /// that is not on the host fails the plan before any change, instead of halfway through it.
    /// (Containers' images are resolved, and pulled when missing: `resolve`.)
    private func checkImagesExist(_ desired: [Resource]) async throws {
        var images = Set(desired.compactMap { $0.spec(as: RouterSpec.self)?.image })
        if desired.contains(where: { !($0.spec(as: ContainerSpec.self)?.routes.isEmpty ?? true) }) {
            images.insert(NamespaceRoutes.helperImage)
        }
        let wanted = images.sorted()
        let engine = self.engine
        let missing = try await concurrentMap(wanted, limit: concurrency) { image in
            try await engine.imageExists(image) ? nil : image
        }.compactMap { $0 }
        guard missing.isEmpty else {
            throw DockerProviderError.missingImages(
                host: host, images: missing,
                users: desired.filter {
                    missing.contains($0.spec(as: RouterSpec.self)?.image ?? NamespaceRoutes.helperImage)
                }.map(\.id))
        }
    }

    private func resourceID(_ labels: [String: String]?, kind: String, name: String) -> ResourceID {
        labels?[OwnershipLabel.resource].flatMap(ResourceID.init) ?? ResourceID(kind: kind, name: name)
    }

    // MARK: Execute

    public func execute(
        _ step: PlanStep, change: ResourceChange, desired: Resource?, observed: ObservedResource?, in set: ManifestSet, instance: String
    ) async throws {
        switch (step.resource.kind, step.action) {
        case (NetworkSpec.kind, .create):
            guard let desired else { throw DockerProviderError.unsupported(step) }
            try await createNetwork(desired, instance: instance)
        case (VolumeSpec.kind, .create):
            guard let desired, let spec = desired.spec(as: VolumeSpec.self) else { throw DockerProviderError.unsupported(step) }
            try await createVolume(desired, spec: spec, instance: instance)
        case (VolumeSpec.kind, .update):
            guard let spec = desired?.spec(as: VolumeSpec.self) else { throw DockerProviderError.unsupported(step) }
            try await recordReclaimPolicy(step.resource.name, spec.reclaimPolicy)
        case (VolumeSpec.kind, .delete):
            guard let observed else { return }
            try await deleteVolume(step, observed: observed)
        case (NetworkSpec.kind, .delete):
            // No observation: the object is already gone (a resumed run deleted it before).
            guard let observed else { return }
            try await ignoringNotFound { try await engine.removeNetwork(observed.externalID) }
        case (ContainerSpec.kind, .create):
            guard let desired, var spec = desired.spec(as: ContainerSpec.self) else { throw DockerProviderError.unsupported(step) }
            for dependency in spec.healthyDependencies {
                try await waitUntilHealthy(dependency.name, timeout: dependency.timeout, for: desired.id)
            }
            spec.image = try await prepareImage(for: desired, spec: spec, pinned: change.resolved?["image"], in: set)
            let directory = set[host]?.spec(as: DockerHostSpec.self)?.filesDirectory ?? "/var/lib/converge/files"
            let files = try spec.files.map { try $0.mount(in: set, directory: "\(directory)/\(instance)") }
            let (request, additional) = ContainerMapping.create(
                desired, spec: spec, instance: instance, files: files, fileSummaries: ContainerFile.summaries(spec.files, in: set))
            let id = try await createContainer(
                desired, request: request, attachments: additional.map { ($0.network, $0.ipv4?.description, $0.aliases) },
                start: spec.state == "running", instance: instance)
            if spec.state == "running", !spec.routes.isEmpty {
                try await NamespaceRoutes(engine: engine).converge(id, to: spec.resolvedRoutes(in: set))
                try await recordRoutes(of: desired.metadata.name, spec.routes)
            }
        case (RouterSpec.kind, .create):
            guard let desired, let spec = desired.spec(as: RouterSpec.self) else { throw DockerProviderError.unsupported(step) }
            let (request, additional) = RouterMapping.create(desired, spec: spec, instance: instance)
            let id = try await createContainer(
                desired, request: request, attachments: additional.map { ($0.network, $0.ipv4.description, []) },
                start: true, instance: instance)
            try await NamespaceRoutes(engine: engine).converge(id, to: Self.routeTable(spec), router: true)
            if let frr = spec.frr { try await FRRConfigurator(engine: engine).converge(id, to: frr) }
        case (ContainerSpec.kind, .delete), (RouterSpec.kind, .delete):
            if step.resource.kind == ContainerSpec.kind { try await recordRoutes(of: step.resource.name, []) }
            guard let observed else { return }
            // A container that says how it stops is stopped that way first (its signal, then
            // its timeout); others are removed at once, as before.
            if observed.fields["stopSignal"] != nil || observed.fields["stopTimeout"] != nil {
                var seconds: Int?
                if case .string(let text)? = observed.fields["stopTimeout"], let nanoseconds = DurationText.nanoseconds(text) {
                    seconds = Int(nanoseconds / 1_000_000_000)
                }
                try await ignoringNotFound { try await engine.stopContainer(observed.externalID, timeoutSeconds: seconds) }
            }
            try await ignoringNotFound { try await engine.removeContainer(observed.externalID, force: true) }
        case (FirewallPolicySpec.kind, .create), (FirewallPolicySpec.kind, .update):
            guard let desired else { throw DockerProviderError.unsupported(step) }
            try await FirewallApplier(engine: engine, instance: instance, backends: firewallBackends).apply(desired, in: set)
        case (FirewallPolicySpec.kind, .delete):
            guard let observed else { return }
            try await FirewallApplier(engine: engine, instance: instance, backends: firewallBackends).remove(
                policy: step.resource.name, router: observed.externalID)
        case (ContainerSpec.kind, .update):
            guard let desired, let observed else { throw DockerProviderError.unsupported(step) }
            try await updateContainer(desired, observed: observed, change: change, in: set)
        case (RouterSpec.kind, .update):
            guard let desired, let spec = desired.spec(as: RouterSpec.self), let observed else {
                throw DockerProviderError.unsupported(step)
            }
            try await attach(
                observed.externalID, live: observed.fields["interfaces"],
                wanted: spec.interfaces.map {
                    ($0.network, FieldValue.string($0.ipv4.description), $0.ipv4.description, [String]())
                })
            try await NamespaceRoutes(engine: engine).converge(observed.externalID, to: Self.routeTable(spec), router: true)
            if let frr = spec.frr { try await FRRConfigurator(engine: engine).converge(observed.externalID, to: frr) }
        default:
            throw DockerProviderError.unsupported(step)
        }
    }

    private func createNetwork(_ resource: Resource, instance: String) async throws {
        let labels = ["\(OwnershipLabel.resource)=\(resource.id)", Self.ownerFilter(instance)]
        _ = try await createOrAdopt(labels) {
            try await engine.createNetwork(NetworkMapping.create(resource, spec: resource.spec(as: NetworkSpec.self)!, instance: instance))
        } find: {
            try await engine.listNetworks(labelFilters: labels).first?.id
        }
    }

    /// Runs `create`; on a name conflict, looks (`find`) for the object by its ownership
    /// labels: a create cut off by a crash may have finished on the engine, or still be
    /// completing there, and that object is this step's own. Creating first and looking only
    /// on a conflict spares every create a listing of the engine's objects. A conflict with an
    /// object that never shows up with the labels is someone else's.
    private func createOrAdopt(
        _ labels: [String], create: () async throws -> String, find: () async throws -> String?
    ) async throws -> (id: String, adopted: Bool) {
        do {
            return (try await create(), false)
        } catch let error as DockerEngineError where error.isConflict {
            for _ in 0..<10 {
                if let id = try await find() { return (id, true) }
                try await Task.sleep(for: .milliseconds(300))
            }
            throw error
        }
    }

    /// Creates (or, after a cut-off attempt, finishes) the container carrying `resource`,
    /// attaches its other networks and starts it; returns its id.
    private func createContainer(
        _ resource: Resource, request: ContainerCreate, attachments: [(network: String, ipv4: String?, aliases: [String])],
        start: Bool, instance: String
    ) async throws -> String {
        let labels = ["\(OwnershipLabel.resource)=\(resource.id)", Self.ownerFilter(instance)]
        let made = try await createOrAdopt(labels) {
            try await engine.createContainer(name: resource.metadata.name, request)
        } find: {
            try await engine.listContainers(all: true, labelFilters: labels).first?.id
        }
        let id = made.id
        var attached: Set<String> = []
        if made.adopted { attached = Set((try await engine.inspectContainer(id).networkSettings?.networks ?? [:]).keys) }
        // A container made by an attempt that was cut off may lack some of its networks.
        for attachment in attachments where !attached.contains(attachment.network) {
            try await engine.connect(network: attachment.network, container: id, ipv4: attachment.ipv4, aliases: attachment.aliases)
        }
        if start { try await engine.startContainer(id) }
        return id
    }

    /// A router's own routes, destination → gateway.
    static func routeTable(_ spec: RouterSpec) -> [String: String] {
        Dictionary(spec.routes.map { ($0.destination.description, $0.gateway.description) }, uniquingKeysWith: { first, _ in first })
    }

    /// Makes a container's networks the `wanted` ones: detaches the others, re-attaches
    /// those whose settings (`fields`, in the observed shape) differ.
    private func attach(_ id: String, live: FieldValue?, wanted: [(network: String, fields: FieldValue, ipv4: String?, aliases: [String])])
        async throws
    {
        guard case .map(let current)? = live else { return }
        let names = Set(wanted.map(\.network))
        for name in current.keys where !names.contains(name) {
            try await ignoringNotFound { try await engine.disconnect(network: name, container: id, force: true) }
        }
        for attachment in wanted where current[attachment.network] != attachment.fields {
            if current[attachment.network] != nil {
                try await engine.disconnect(network: attachment.network, container: id, force: true)
            }
            try await engine.connect(network: attachment.network, container: id, ipv4: attachment.ipv4, aliases: attachment.aliases)
        }
    }

    /// Waits until container `name` reports its healthcheck passing; throws once it reports
    /// failing, or after `timeout`.
    private func waitUntilHealthy(_ name: String, timeout: Duration, for dependent: ResourceID) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            let health = try await engine.inspectContainer(name).state?.health
            switch health?.status {
            case "healthy": return
            case nil, "none":
                throw DockerProviderError.dependencyUnhealthy(dependent, dependency: name, detail: "it has no healthcheck")
            case "unhealthy":
                let output = health?.log?.last?.output?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                throw DockerProviderError.dependencyUnhealthy(
                    dependent, dependency: name, detail: "it is unhealthy" + (output.isEmpty ? "" : ": \(output)"))
            default:
                guard clock.now < deadline else {
                    throw DockerProviderError.dependencyUnhealthy(
                        dependent, dependency: name,
                        detail: "it was not healthy after \(DurationText.format(nanoseconds: Int64(timeout.timeInterval * 1e9)))")
                }
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Applies the in-place changes: networks, restart policy, run state and routes.
    private func updateContainer(_ resource: Resource, observed: ObservedResource, change: ResourceChange, in set: ManifestSet) async throws
    {
        let spec = resource.spec(as: ContainerSpec.self)!
        let id = observed.externalID
        let changed = Set(change.fields.map { String($0.path.split(separator: ".").first ?? "") })
        if changed.contains("networks") {
            try await attach(
                id, live: observed.fields["networks"],
                wanted: spec.networks.map {
                    (
                        $0.network, FieldValue.map(ContainerSpec.attachmentFields(ipv4: $0.ipv4?.description, aliases: $0.aliases)),
                        $0.ipv4?.description, $0.aliases
                    )
                })
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
        // A restart gives the container a fresh namespace, so routes follow any state change;
        // a manifest that dropped its routes removes the ones Converge set.
        if spec.state == "running", !spec.routes.isEmpty || changed.contains("routes"),
            changed.contains("routes") || changed.contains("state") || changed.contains("networks")
        {
            try await NamespaceRoutes(engine: engine).converge(id, to: spec.resolvedRoutes(in: set))
            try await recordRoutes(of: resource.metadata.name, spec.routes)
        }
    }

    /// Remembers that container `name` has `routes` from Converge (forgets it when none).
    private func recordRoutes(of name: String, _ routes: [ContainerSpec.RouteRequest]) async throws {
        guard let records = context.records() else { return }
        if routes.isEmpty {
            try await records.remove(Self.routesRecord(name))
        } else {
            try await records.put(Self.routesRecord(name), value: routes.map(\.canonical).sorted().joined(separator: "\n"))
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

/// Errors of the Docker provider, each saying what and what to do.
///
/// A struct with a ``Code``, so that codes can be added without breaking code that reads them.
public struct DockerProviderError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        enum Base: Sendable, Hashable {
            case missingImages, unsupported, command, dependencyUnhealthy, volumeRetained, fileMissing, unresolvableImages, imageMoved
        }

        let base: Base

        private init(_ base: Base) { self.base = base }

        /// Images the manifests need are not on the host; found before any change.
        public static let missingImages = Self(.missingImages)
        /// A step the provider does not know how to carry out (a bug).
        public static let unsupported = Self(.unsupported)
        /// A command run in a container failed (``DockerProviderError/result``).
        public static let command = Self(.command)
        /// A dependency a container waits for (`condition: healthy`) did not get healthy.
        public static let dependencyUnhealthy = Self(.dependencyUnhealthy)
        /// A retained volume would have been deleted (replaced); nothing was.
        public static let volumeRetained = Self(.volumeRetained)
        /// A container's file is not among the files the run read (a damaged journal).
        public static let fileMissing = Self(.fileMissing)
        /// The plan could not read the digest of some images (unknown, refused, registry down).
        public static let unresolvableImages = Self(.unresolvableImages)
        /// An image's tag points elsewhere than when the plan was made; nothing ran it.
        public static let imageMoved = Self(.imageMoved)

        public var description: String { "\(base)" }
    }

    public var code: Code
    /// The whole message, as `description` gives it.
    public var message: String
    /// The failed command's exit code and output, for ``Code/command``.
    public var result: ExecResult?

    public init(_ code: Code, message: String, result: ExecResult? = nil) {
        self.code = code
        self.message = message
        self.result = result
    }

    public var description: String { message }

    public static func missingImages(host: ResourceID, images: [String], users: [ResourceID]) -> Self {
        let names = images.map { "'\($0)'" }.joined(separator: ", ")
        let needed = users.map(\.description).joined(separator: ", ")
        return Self(
            .missingImages,
            message: "image\(images.count == 1 ? "" : "s") \(names) not found on \(host) (needed by \(needed)); nothing was changed. "
                + "Build or load the image on that host first.")
    }

    static func unresolvableImages(host: ResourceID, _ failures: [(image: String, users: [Resource], error: ImageLookupError)]) -> Self {
        let lines = failures.map { failure in
            let users = failure.users.map { "\($0.id) (\($0.spec(as: ContainerSpec.self)?.imageLocation ?? $0.location))" }.joined(
                separator: ", ")
            return "  image '\(failure.image)' of \(users): \(failure.error)"
        }
        return Self(
            .unresolvableImages,
            message:
                "cannot pin \(failures.count == 1 ? "an image" : "\(failures.count) images") on \(host) to a digest; nothing was changed:\n"
                + lines.joined(separator: "\n"))
    }

    public static func imageMoved(_ container: ResourceID, image: String, planned: String, detail: String) -> Self {
        Self(
            .imageMoved,
            message: "\(container): the plan pinned image '\(image)' to \(planned), but \(detail) (the tag was pushed again after the plan "
                + "was made); the container was not created with another image. Reconcile again to plan the image the tag has now.")
    }

    public static func dependencyUnhealthy(_ dependent: ResourceID, dependency: String, detail: String) -> Self {
        Self(
            .dependencyUnhealthy,
            message: "\(dependent) waits for Container/\(dependency) to be healthy, but \(detail); "
                + "check its healthcheck (docker inspect \(dependency)), or use condition: started")
    }

    public static func unsupported(_ step: PlanStep) -> Self {
        Self(.unsupported, message: "internal error: the Docker provider cannot \(step.action) \(step.resource)")
    }

    public static func command(container: String, command: String, result: ExecResult) -> Self {
        let output = (result.stderr + result.stdout).trimmingCharacters(in: .whitespacesAndNewlines)
        return Self(
            .command, message: "`\(command)` in container \(container.prefix(12)) exited \(result.exitCode): \(output)", result: result)
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
