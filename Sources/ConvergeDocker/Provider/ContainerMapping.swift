import ConvergeCore

/// Translates between `Container` manifests and Docker containers.
enum ContainerMapping {
    /// The create request. API 1.41 accepts one network at creation; the others are
    /// connected before the container starts (`additionalNetworks`).
    /// `files` are the container's repository files as written on the host (their mounts), and
    /// `fileSummaries` what the plan showed for them (kept in a label).
    static func create(
        _ resource: Resource, spec: ContainerSpec, instance: String, files: [DockerMount] = [], fileSummaries: [String: String] = [:]
    ) -> (request: ContainerCreate, additionalNetworks: [ContainerSpec.NetworkAttachment]) {
        var exposed: [String] = []
        var bindings: [String: [DockerPortBinding]] = [:]
        for port in spec.ports {
            let key = "\(port.containerPort)/\(port.protocolName)"
            exposed.append(key)
            if let hostPort = port.hostPort {
                bindings[key, default: []].append(DockerPortBinding(hostIP: port.hostIP ?? "", hostPort: String(hostPort)))
            }
        }
        let first = spec.networks.first
        let hostConfig = DockerHostConfig(
            networkMode: first?.network,
            portBindings: bindings.isEmpty ? nil : bindings,
            capAdd: spec.capAdd.isEmpty ? nil : spec.capAdd,
            capDrop: spec.capDrop.isEmpty ? nil : spec.capDrop,
            sysctls: spec.sysctls.isEmpty ? nil : spec.sysctls,
            restartPolicy: restartPolicy(spec.restartPolicy),
            memory: spec.settings.memory, nanoCpus: spec.settings.nanoCPUs, pidsLimit: spec.settings.pidsLimit,
            readonlyRootfs: spec.settings.readOnlyRootFilesystem ? true : nil,
            securityOpt: spec.settings.securityOpt.isEmpty ? nil : spec.settings.securityOpt, logConfig: spec.settings.logging,
            mounts: spec.mounts.isEmpty && files.isEmpty ? nil : spec.mounts.map(\.engineMount) + files)
        let networking = first.map { attachment in
            DockerNetworkingConfig(endpointsConfig: [attachment.network: endpoint(attachment)])
        }
        let request = ContainerCreate(
            image: spec.image,
            cmd: spec.command,
            entrypoint: spec.entrypoint,
            env: spec.env.isEmpty ? nil : spec.env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
            labels: ownedLabels(resource, instance: instance).merging(
                fileSummaries.isEmpty ? [:] : [ContainerFile.label: ContainerFile.encode(fileSummaries)], uniquingKeysWith: { _, new in new }),
            exposedPorts: exposed.isEmpty ? nil : DockerPortSet(exposed),
            healthcheck: spec.healthcheck.map {
                DockerHealthcheck(test: $0.test, interval: $0.interval, timeout: $0.timeout, retries: $0.retries, startPeriod: $0.startPeriod)
            },
            hostname: resource.metadata.name,
            user: spec.settings.user, workingDir: spec.settings.workingDir,
            stopSignal: spec.settings.stopSignal, stopTimeout: spec.settings.stopTimeout,
            hostConfig: hostConfig,
            networkingConfig: networking)
        return (request, Array(spec.networks.dropFirst()))
    }

    static func endpoint(_ attachment: ContainerSpec.NetworkAttachment) -> DockerEndpointSettings {
        DockerEndpointSettings(ipv4Address: attachment.ipv4?.description, aliases: attachment.aliases.isEmpty ? nil : attachment.aliases)
    }

    static func restartPolicy(_ text: String) -> DockerRestartPolicy {
        if text.hasPrefix("on-failure:"), let count = Int(text.dropFirst("on-failure:".count)) {
            return DockerRestartPolicy(name: "on-failure", maximumRetryCount: count)
        }
        return DockerRestartPolicy(name: text, maximumRetryCount: text == "on-failure" ? 0 : nil)
    }

    /// The image a container runs, pinned as a plan pins it (`app:1.4@sha256:…`) when the
    /// image came from its repository's registry, even if the container was made from the bare
    /// tag (by an older Converge, or by hand): what it runs is that digest, and a plan that
    /// pins the same one sees no change.
    static func observedImage(_ configured: String, repoDigests: [String]) -> String {
        guard let reference = ImageReference(configured), reference.digest == nil, let digest = reference.digest(among: repoDigests) else {
            return configured
        }
        return reference.pinned(to: digest)
    }

    /// The container in the `Container` kind's field shape. What the image already sets
    /// (its env, labels, exposed ports) and what the engine adds by itself (the default bridge,
    /// the container-id alias) are left out, so only what a manifest can declare is compared.
    static func observedFields(_ container: ContainerInspect, image inspected: ImageInspect?) -> FieldMap {
        let config = container.config
        let host = container.hostConfig
        let image = inspected?.config
        var fields = FieldMap()
        fields["image"] = .string(observedImage(config?.image ?? container.image ?? "", repoDigests: inspected?.repoDigests ?? []))
        // Reported as the engine holds them; compared only when the manifest sets them.
        if let cmd = config?.cmd { fields["command"] = .strings(cmd) }
        if let entrypoint = config?.entrypoint { fields["entrypoint"] = .strings(entrypoint) }
        let imageEnv = Set(image?.env ?? [])
        var env: [String: String] = [:]
        for entry in config?.env ?? [] where !imageEnv.contains(entry) {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            env[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        fields["env"] = .stringMap(env)
        let imageLabels = image?.labels ?? [:]
        fields["labels"] = .stringMap(userLabels(config?.labels).filter { imageLabels[$0.key] != $0.value })
        var ports: [String] = []
        for (key, bindings) in host?.portBindings ?? [:] {
            let parts = key.split(separator: "/")
            let port = String(parts.first ?? "")
            let proto = parts.count > 1 ? String(parts[1]) : "tcp"
            for binding in bindings {
                let hostIP = (binding.hostIP ?? "").isEmpty ? "0.0.0.0" : binding.hostIP!
                if let hostPort = binding.hostPort, !hostPort.isEmpty {
                    ports.append("\(hostIP):\(hostPort)->\(port)/\(proto)")
                } else {
                    ports.append("\(port)/\(proto)")
                }
            }
        }
        let boundKeys = Set((host?.portBindings ?? [:]).keys)
        for key in config?.exposedPorts?.ports ?? [] where !boundKeys.contains(key) && !(image?.exposedPorts?.ports.contains(key) ?? false) {
            ports.append(key)
        }
        fields["ports"] = .strings(ports.sorted())
        var networks = FieldMap()
        for (name, endpoint) in userNetworks(container) {
            networks[name] = .map(ContainerSpec.attachmentFields(ipv4: endpoint.ipamConfig?.ipv4Address, aliases: endpoint.aliases ?? []))
        }
        fields["networks"] = .map(networks)
        fields["capAdd"] = .strings((host?.capAdd ?? []).map(canonicalCapability).sorted())
        fields["capDrop"] = .strings((host?.capDrop ?? []).map(canonicalCapability).sorted())
        fields["sysctls"] = .stringMap(host?.sysctls ?? [:])
        fields["restartPolicy"] = .string(restartPolicyText(host?.restartPolicy))
        if let check = config?.healthcheck, let test = check.test, !test.isEmpty {
            fields["healthcheck"] = .map(ContainerSpec.healthcheckFields(.init(
                test: test,
                interval: nonZero(check.interval), timeout: nonZero(check.timeout),
                startPeriod: nonZero(check.startPeriod), retries: check.retries.flatMap { $0 == 0 ? nil : $0 })))
        }
        fields["state"] = .string(container.state?.running == true ? "running" : "stopped")
        fields["resources"] = .map(ContainerSettings.resourceFields(memory: host?.memory, nanoCPUs: host?.nanoCpus, pidsLimit: host?.pidsLimit))
        fields["rootFilesystem"] = .map(ContainerSettings.rootFilesystemFields(readOnly: host?.readonlyRootfs ?? false))
        fields["securityOpt"] = .strings(host?.securityOpt ?? [])
        let fileSummaries = ContainerFile.decode(label: config?.labels?[ContainerFile.label])
        fields["files"] = .stringMap(fileSummaries)
        fields["mounts"] = ContainerMount.fields(
            (host?.mounts ?? []).filter { fileSummaries[$0.target] == nil }.compactMap(ContainerMount.init))
        if let user = config?.user, !user.isEmpty { fields["user"] = .string(user) }
        if let workingDir = config?.workingDir, !workingDir.isEmpty { fields["workingDir"] = .string(workingDir) }
        if let logging = host?.logConfig { fields["logging"] = .map(ContainerSettings.loggingFields(logging)) }
        if let stopSignal = config?.stopSignal, !stopSignal.isEmpty { fields["stopSignal"] = .string(stopSignal) }
        if let stopTimeout = config?.stopTimeout {
            fields["stopTimeout"] = .string(DurationText.format(nanoseconds: Int64(stopTimeout) * 1_000_000_000))
        }
        return fields
    }

    /// The user-defined networks a container sits on, with what attaching it again needs:
    /// its fixed address and the aliases a person gave (not the container-id alias the
    /// engine adds).
    static func userNetworks(_ container: ContainerInspect) -> [(name: String, endpoint: DockerEndpointSettings)] {
        let shortID = String(container.id.prefix(12))
        return (container.networkSettings?.networks ?? [:])
            .filter { !builtInNetworks.contains($0.key) }
            .sorted { $0.key < $1.key }
            .map { name, endpoint in
                let aliases = (endpoint.aliases ?? []).filter { $0 != shortID && $0 != container.plainName }
                let ipv4 = endpoint.ipamConfig?.ipv4Address.flatMap { $0.isEmpty ? nil : $0 }
                return (name, DockerEndpointSettings(ipv4Address: ipv4, aliases: aliases.isEmpty ? nil : aliases))
            }
    }

    /// Networks every container may sit on without a manifest saying so.
    static let builtInNetworks: Set<String> = ["bridge", "host", "none"]

    private static func canonicalCapability(_ name: String) -> String {
        let upper = name.uppercased()
        return upper.hasPrefix("CAP_") ? String(upper.dropFirst(4)) : upper
    }

    private static func restartPolicyText(_ policy: DockerRestartPolicy?) -> String {
        guard let name = policy?.name, !name.isEmpty else { return "no" }
        if name == "on-failure", let count = policy?.maximumRetryCount, count > 0 { return "on-failure:\(count)" }
        return name
    }

    private static func nonZero(_ value: Int64?) -> Int64? {
        guard let value, value != 0 else { return nil }
        return value
    }
}
