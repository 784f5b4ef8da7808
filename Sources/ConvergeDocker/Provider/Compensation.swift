import ConvergeCore
import Foundation

extension DockerEngineError: TransientClassifying {}

/// The state a step needs to undo itself, journaled before the step runs: the engine's own
/// description of the object, enough to recreate or restore it.
enum DockerSnapshot: Codable {
    case container(ContainerInspect)
    case network(NetworkInspect)
    /// A router before an in-place update: the container, and what lives in its namespace
    /// and FRR, which the engine does not describe. `frr` is nil when FRR was not running.
    case router(ContainerInspect, routes: [String: String], frr: [String]?)
    /// A volume before it is deleted or its reclaim policy changed.
    case volume(VolumeSummary, reclaimPolicy: String)

    func encoded() throws -> String {
        String(decoding: try JSONEncoder().encode(self), as: UTF8.self)
    }

    static func decode(_ text: String) throws -> DockerSnapshot {
        try JSONDecoder().decode(DockerSnapshot.self, from: Data(text.utf8))
    }
}

extension DockerProvider {
    public func snapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? {
        if step.resource.kind == FirewallPolicySpec.kind {
            return try await firewallSnapshot(step, observed: observed, in: set, instance: instance)
        }
        guard step.action != .create, let observed else { return nil }
        switch step.resource.kind {
        case RouterSpec.kind where step.action == .update:
            let container = try await engine.inspectContainer(observed.externalID)
            guard container.state?.running == true else { return try DockerSnapshot.container(container).encoded() }
            let routes = try await NamespaceRoutes(engine: engine).readOwn(container.id)
            return try DockerSnapshot.router(
                container, routes: Dictionary(routes.map { ($0.destination, $0.gateway) }, uniquingKeysWith: { first, _ in first }),
                frr: try await FRRConfigurator(engine: engine).running(container.id)
            ).encoded()
        case ContainerSpec.kind, RouterSpec.kind:
            return try await DockerSnapshot.container(engine.inspectContainer(observed.externalID)).encoded()
        case NetworkSpec.kind:
            return try await DockerSnapshot.network(engine.inspectNetwork(observed.externalID)).encoded()
        case VolumeSpec.kind:
            guard case .string(let policy)? = observed.fields["reclaimPolicy"] else { return nil }
            return try await DockerSnapshot.volume(engine.inspectVolume(observed.externalID), reclaimPolicy: policy).encoded()
        default:
            return nil
        }
    }

    public func compensate(_ step: PlanStep, snapshot: String?, instance: String) async throws {
        if step.resource.kind == FirewallPolicySpec.kind {
            guard let snapshot else { return }
            return try await FirewallApplier(engine: engine, instance: instance, backends: firewallBackends).restore(from: snapshot, policy: step.resource.name)
        }
        switch step.action {
        case .create:
            try await removeOwned(step.resource, instance: instance)
        case .delete:
            guard let snapshot else { return }
            try await recreate(try DockerSnapshot.decode(snapshot), resource: step.resource, instance: instance)
        case .update:
            guard let snapshot else { return }
            switch try DockerSnapshot.decode(snapshot) {
            case .container(let before):
                try await restore(before)
            case .volume(let volume, let policy):
                try await recordReclaimPolicy(volume.name, policy)
            case .router(let before, let routes, let frr):
                try await restore(before)
                try await NamespaceRoutes(engine: engine).converge(before.id, to: routes, router: true)
                let configurator = FRRConfigurator(engine: engine)
                // FRR that was not running keeps running, without the lines the update added.
                var lines = frr
                if lines == nil, try await configurator.running(before.id) != nil { lines = [] }
                if let lines { try await configurator.converge(before.id, toLines: lines) }
            case .network:
                return
            }
        }
    }

    /// The router's table before a policy step, wherever the router is (a create has no
    /// observation: the router is found by its ownership label).
    private func firewallSnapshot(_ step: PlanStep, observed: ObservedResource?, in set: ManifestSet, instance: String) async throws -> String? {
        var router = observed?.externalID
        if router == nil, let spec = set[step.resource]?.spec(as: FirewallPolicySpec.self) {
            router = try await engine.listContainers(all: true, labelFilters: [
                "\(OwnershipLabel.managedBy)=\(instance)", "\(OwnershipLabel.resource)=\(RouterSpec.kind)/\(spec.router)",
            ]).first?.id
        }
        guard let router else { return nil }
        return try await FirewallApplier(engine: engine, instance: instance, backends: firewallBackends).snapshot(policy: step.resource.name, router: router)
    }

    /// Removes what a create made, found by its ownership labels (the id may never have been
    /// journaled if the process died right after creating it).
    private func removeOwned(_ resource: ResourceID, instance: String) async throws {
        let labels = ["\(OwnershipLabel.resource)=\(resource)", "\(OwnershipLabel.managedBy)=\(instance)"]
        switch resource.kind {
        case ContainerSpec.kind, RouterSpec.kind:
            for container in try await engine.listContainers(all: true, labelFilters: labels) {
                try await ignoringNotFound { try await engine.removeContainer(container.id, force: true) }
            }
        case NetworkSpec.kind:
            for network in try await engine.listNetworks(labelFilters: labels) {
                try await ignoringNotFound { try await engine.removeNetwork(network.id) }
            }
        case VolumeSpec.kind:
            // Made by this run a moment ago: it holds only what the run's containers wrote.
            for volume in try await engine.listVolumes(labelFilters: labels) {
                try await ignoringNotFound { try await engine.removeVolume(volume.name) }
                if let records = context.records() { try await records.remove(Self.reclaimRecord(volume.name)) }
            }
        default:
            throw DockerProviderError.unsupported(PlanStep(index: 0, resource: resource, action: .create, dependsOn: []))
        }
    }

    /// Makes an object the run deleted again, as the engine described it before.
    private func recreate(_ snapshot: DockerSnapshot, resource: ResourceID, instance: String) async throws {
        let labels = ["\(OwnershipLabel.resource)=\(resource)", "\(OwnershipLabel.managedBy)=\(instance)"]
        switch snapshot {
        case .router(let container, _, _):
            // Taken only before an update, never a delete; recreating needs the container alone.
            try await recreate(.container(container), resource: resource, instance: instance)
        case .volume(let volume, let policy):
            // Its data went with it (its policy was delete): it comes back empty.
            if try await !engine.listVolumes(labelFilters: labels).isEmpty { return }
            try await engine.createVolume(VolumeCreate(name: volume.name, driver: volume.driver, driverOpts: volume.options, labels: volume.labels))
            try await recordReclaimPolicy(volume.name, policy)
        case .network(let network):
            if try await !engine.listNetworks(labelFilters: labels).isEmpty { return }
            _ = try await engine.createNetwork(NetworkCreate(
                name: network.name, driver: network.driver, internal: network.internal, attachable: network.attachable,
                labels: network.labels, ipam: network.ipam, options: network.options))
        case .container(let container):
            if try await !engine.listContainers(all: true, labelFilters: labels).isEmpty { return }
            let endpoints = ContainerMapping.userNetworks(container)
            let first = endpoints.first
            var hostConfig = container.hostConfig ?? DockerHostConfig()
            hostConfig.networkMode = first?.name ?? hostConfig.networkMode
            let config = container.config
            let request = ContainerCreate(
                image: config?.image ?? container.image ?? "", cmd: config?.cmd, entrypoint: config?.entrypoint,
                env: config?.env, labels: config?.labels, exposedPorts: config?.exposedPorts, healthcheck: config?.healthcheck,
                hostname: config?.hostname, user: config?.user, workingDir: config?.workingDir, stopSignal: config?.stopSignal,
                stopTimeout: config?.stopTimeout, hostConfig: hostConfig,
                networkingConfig: first.map { DockerNetworkingConfig(endpointsConfig: [$0.name: $0.endpoint]) })
            let id = try await engine.createContainer(name: container.plainName, request)
            for other in endpoints.dropFirst() {
                try await engine.connect(network: other.name, container: id, ipv4: other.endpoint.ipamConfig?.ipv4Address, aliases: other.endpoint.aliases)
            }
            if container.state?.running == true { try await engine.startContainer(id) }
        }
    }

    /// Puts back what an in-place update changed: networks, restart policy, run state.
    private func restore(_ before: ContainerInspect) async throws {
        let now = try await engine.inspectContainer(before.id)
        let wanted = Dictionary(uniqueKeysWithValues: ContainerMapping.userNetworks(before).map { ($0.name, $0.endpoint) })
        let current = Dictionary(uniqueKeysWithValues: ContainerMapping.userNetworks(now).map { ($0.name, $0.endpoint) })
        for name in current.keys where wanted[name] == nil {
            try await ignoringNotFound { try await engine.disconnect(network: name, container: before.id, force: true) }
        }
        for (name, endpoint) in wanted.sorted(by: { $0.key < $1.key }) {
            let currentEndpoint = current[name]
            if let currentEndpoint, currentEndpoint.ipamConfig?.ipv4Address == endpoint.ipamConfig?.ipv4Address,
               Set(currentEndpoint.aliases ?? []) == Set(endpoint.aliases ?? []) { continue }
            if currentEndpoint != nil {
                try await engine.disconnect(network: name, container: before.id, force: true)
            }
            try await engine.connect(network: name, container: before.id, ipv4: endpoint.ipamConfig?.ipv4Address, aliases: endpoint.aliases)
        }
        if let policy = before.hostConfig?.restartPolicy, policy != now.hostConfig?.restartPolicy {
            try await engine.updateContainer(before.id, restartPolicy: policy)
        }
        let wasRunning = before.state?.running == true
        if wasRunning, now.state?.running != true { try await engine.startContainer(before.id) }
        if !wasRunning, now.state?.running == true { try await engine.stopContainer(before.id, timeoutSeconds: 10) }
    }
}
