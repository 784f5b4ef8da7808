import ConvergeCore

/// `Container`: a container on a DockerHost, attached to `Network`s at fixed addresses.
///
/// ```yaml
/// kind: Container
/// metadata: {name: web, labels: {tier: front}}
/// spec:
///   image: converge-lab/busybox:1   # or registry.example:5000/team/app:1.4, pinned to its digest by the plan
///   pull: ifNotPresent         # or always (ask the registry at every plan), never (local images only)
///   command: [httpd, -f, -p, "80", -h, /www]
///   env: {MODE: demo}
///   ports: [{containerPort: 80, hostPort: 8080, hostIP: 127.0.0.1}]
///   networks: [{name: server-net, ipv4: 192.168.200.10, aliases: [web]}]
///   capabilities: {add: [NET_ADMIN]}
///   sysctls: {net.ipv4.ip_forward: "1"}
///   restartPolicy: unless-stopped
///   healthcheck: {test: [CMD, wget, -q, -O-, http://127.0.0.1/], interval: 10s}
///   state: running             # or stopped
///   dependsOn: [db, {name: cache, condition: healthy, timeout: 2m}]   # created first; healthy: waited for
///   routes: [{to: 192.168.200.0/24, via: s1-router}]   # via a Router (or an IPv4 gateway)
///   resources: {memory: 256Mi, cpus: 0.5}              # and the other `ContainerSettings`
/// ```
/// Restart policy, networks, routes and state change in place; anything else recreates the
/// container. Routes are set in the container's network namespace, not by the image.
public struct ContainerSpec: ResourceSpec, RepositoryFileUser {
    public static let kind = "Container"

    public struct NetworkAttachment: Sendable, Hashable {
        public var network: String
        public var ipv4: IPv4Address?
        public var aliases: [String]
        var location: SourceLocation
        var ipv4Location: SourceLocation?
    }

    public struct PortBinding: Sendable, Hashable {
        public var containerPort: Int
        public var hostPort: Int?
        public var hostIP: String?
        public var protocolName: String
        var location: SourceLocation

        /// `127.0.0.1:8080->80/tcp`, the form `docker ps` shows.
        public var canonical: String {
            let host = hostPort.map { "\(hostIP ?? "0.0.0.0"):\($0)->" } ?? ""
            return "\(host)\(containerPort)/\(protocolName)"
        }
    }

    /// A static route; `via` names a Router (its address on a shared network is used) or
    /// is an IPv4 gateway.
    public struct RouteRequest: Sendable, Hashable {
        public var destination: IPv4Network
        public var via: String
        var location: SourceLocation

        public var canonical: String { "\(destination) via \(via)" }
    }

    public struct Healthcheck: Sendable, Hashable {
        public var test: [String]
        public var interval: Int64?
        public var timeout: Int64?
        public var startPeriod: Int64?
        public var retries: Int?

        public init(test: [String], interval: Int64?, timeout: Int64?, startPeriod: Int64?, retries: Int?) {
            self.test = test
            self.interval = interval
            self.timeout = timeout
            self.startPeriod = startPeriod
            self.retries = retries
        }
    }

    var host: TargetReference
    public var image: String
    public var pull: ImagePullPolicy
    var imageLocation: SourceLocation
    public var command: [String]?
    public var entrypoint: [String]?
    public var env: [String: String]
    public var ports: [PortBinding]
    public var networks: [NetworkAttachment]
    public var capAdd: [String]
    public var capDrop: [String]
    public var sysctls: [String: String]
    public var restartPolicy: String
    public var healthcheck: Healthcheck?
    public var state: String
    public var routes: [RouteRequest]
    var dependsOn: [Dependency]
    public var settings: ContainerSettings
    public var mounts: [ContainerMount]
    public var files: [ContainerFile]

    /// A container created first; with `healthy`, this one is created only once its
    /// healthcheck passes (docker-compose's `condition: service_healthy`).
    struct Dependency {
        var name: String
        var waitsForHealth: Bool
        var timeout: Duration
        var location: SourceLocation
    }

    /// How long a container waits for a dependency to be healthy unless it says.
    static let defaultHealthTimeout = Duration.seconds(120)

    public static let states = ["running", "stopped"]

    public init(spec: MappingReader, metadata: Metadata) {
        host = .dockerHost(reading: spec)
        let imageNode = spec.required("image", hint: "the image to run, e.g. converge-lab/busybox:1")
        let imageText = imageNode?.string
        image = imageText ?? ""
        imageLocation = imageNode?.location ?? spec.location
        pull = .ifNotPresent
        if let node = spec.optional("pull"), let text = node.string {
            if let policy = ImagePullPolicy(rawValue: text) { pull = policy } else {
                node.report("invalid pull policy '\(text)'", hint: "use ifNotPresent (the default), always or never")
            }
        }
        command = spec.optional("command")?.stringList
        entrypoint = spec.optional("entrypoint")?.stringList
        env = [:]
        if let node = spec.optional("env"), let reader = node.mapping {
            for key in reader.keys {
                guard let value = reader.required(key)?.string else { continue }
                if key.isEmpty || key.contains("=") {
                    collectorReport(reader, "\(node.path).\(key): invalid variable name", at: reader.keyLocation(key), hint: "names may not be empty or contain '='")
                }
                env[key] = value
            }
        }
        ports = (spec.optional("ports")?.list ?? []).compactMap(Self.decodePort)
        networks = (spec.optional("networks")?.list ?? []).compactMap(Self.decodeNetwork)
        capAdd = []
        capDrop = []
        if let caps = spec.optional("capabilities")?.mapping {
            capAdd = Self.decodeCapabilities(caps.optional("add"))
            capDrop = Self.decodeCapabilities(caps.optional("drop"))
            caps.finish()
        }
        sysctls = spec.optional("sysctls")?.stringMap ?? [:]
        restartPolicy = "no"
        if let node = spec.optional("restartPolicy"), let text = node.string {
            if Self.isValidRestartPolicy(text) {
                restartPolicy = text
            } else {
                node.report("invalid restart policy '\(text)'", hint: "use no, always, unless-stopped, on-failure or on-failure:N")
            }
        }
        healthcheck = spec.optional("healthcheck").flatMap(Self.decodeHealthcheck)
        state = "running"
        if let node = spec.optional("state"), let text = node.string {
            if Self.states.contains(text) { state = text } else {
                node.report("invalid state '\(text)'", hint: "use running or stopped")
            }
        }
        routes = (spec.optional("routes")?.list ?? []).compactMap(Self.decodeRoute)
        dependsOn = (spec.optional("dependsOn")?.list ?? []).compactMap(Self.decodeDependency)
        settings = ContainerSettings(reading: spec)
        mounts = (spec.optional("mounts")?.list ?? []).compactMap(ContainerMount.decode)
        files = (spec.optional("files")?.list ?? []).compactMap(ContainerFile.decode)
        if let imageText, ImageReference(imageText) == nil {
            imageNode?.report("invalid image reference '\(imageText)'", hint: "write [registry/]repository[:tag][@sha256:digest], in lower case")
        }
    }

    private static func decodeDependency(_ node: ManifestNode) -> Dependency? {
        if case .scalar = node.node {
            return node.string.map { Dependency(name: $0, waitsForHealth: false, timeout: defaultHealthTimeout, location: node.location) }
        }
        guard let reader = node.mapping else { return nil }
        defer { reader.finish() }
        guard let name = reader.required("name", hint: "the name of a Container manifest")?.string else { return nil }
        var dependency = Dependency(name: name, waitsForHealth: false, timeout: defaultHealthTimeout, location: node.location)
        if let conditionNode = reader.optional("condition"), let condition = conditionNode.string {
            switch condition {
            case "started": dependency.waitsForHealth = false
            case "healthy": dependency.waitsForHealth = true
            default: conditionNode.report("invalid condition '\(condition)'", hint: "use started or healthy")
            }
        }
        if let timeoutNode = reader.optional("timeout"), let text = timeoutNode.string {
            if let nanoseconds = DurationText.nanoseconds(text), nanoseconds > 0 {
                dependency.timeout = .nanoseconds(nanoseconds)
            } else {
                timeoutNode.report("'\(text)' is not a duration", hint: "write it as 30s or 2m")
            }
        }
        return dependency
    }

    /// The dependencies to wait for until they are healthy, with how long.
    public var healthyDependencies: [(name: String, timeout: Duration)] {
        dependsOn.filter(\.waitsForHealth).map { ($0.name, $0.timeout) }
    }

    private static func decodePort(_ node: ManifestNode) -> PortBinding? {
        guard let reader = node.mapping else { return nil }
        defer { reader.finish() }
        let containerPort = reader.required("containerPort")?.int
        let hostPort = reader.optional("hostPort")?.int
        var hostIP: String?
        if let ipNode = reader.optional("hostIP"), let text = ipNode.string {
            if IPv4Address(text) == nil { ipNode.report("'\(text)' is not an IPv4 address") } else { hostIP = text }
        }
        let protocolNode = reader.optional("protocol")
        let protocolName = protocolNode?.string ?? "tcp"
        if !["tcp", "udp", "sctp"].contains(protocolName) {
            protocolNode?.report("invalid protocol '\(protocolName)'", hint: "use tcp, udp or sctp")
        }
        if let port = containerPort, !(1...65535).contains(port) {
            reader.optional("containerPort")?.report("port \(port) is out of range", hint: "use 1-65535")
        }
        if let port = hostPort, !(1...65535).contains(port) {
            reader.optional("hostPort")?.report("port \(port) is out of range", hint: "use 1-65535")
        }
        if hostIP != nil && hostPort == nil {
            reader.optional("hostIP")?.report("hostIP needs a hostPort")
        }
        guard let containerPort else { return nil }
        return PortBinding(containerPort: containerPort, hostPort: hostPort, hostIP: hostIP, protocolName: protocolName, location: node.location)
    }

    private static func decodeRoute(_ node: ManifestNode) -> RouteRequest? {
        guard let reader = node.mapping else { return nil }
        defer { reader.finish() }
        let toNode = reader.required("to", hint: "the destination network, e.g. 192.168.200.0/24")
        let via = reader.required("via", hint: "a Router's name or a gateway address")?.string
        guard let toText = toNode?.string, let via else { return nil }
        guard let destination = IPv4Network(toText), !destination.hasHostBits else {
            toNode?.report("'\(toText)' is not an IPv4 network in CIDR notation", hint: "write it as 192.168.200.0/24")
            return nil
        }
        return RouteRequest(destination: destination, via: via, location: node.location)
    }

    private static func decodeNetwork(_ node: ManifestNode) -> NetworkAttachment? {
        guard let reader = node.mapping else { return nil }
        defer { reader.finish() }
        guard let name = reader.required("name", hint: "the name of a Network manifest")?.string else { return nil }
        var attachment = NetworkAttachment(network: name, ipv4: nil, aliases: [], location: node.location)
        if let ipNode = reader.optional("ipv4"), let text = ipNode.string {
            if let address = IPv4Address(text) {
                attachment.ipv4 = address
                attachment.ipv4Location = ipNode.location
            } else {
                ipNode.report("'\(text)' is not an IPv4 address")
            }
        }
        attachment.aliases = (reader.optional("aliases")?.stringList ?? []).sorted()
        return attachment
    }

    private static func decodeCapabilities(_ node: ManifestNode?) -> [String] {
        guard let node, let items = node.list else { return [] }
        var names: [String] = []
        for item in items {
            guard let text = item.string else { continue }
            let name = text.uppercased().hasPrefix("CAP_") ? String(text.uppercased().dropFirst(4)) : text.uppercased()
            if name == "ALL" || (!name.isEmpty && name.allSatisfy { $0.isLetter || $0 == "_" }) {
                names.append(name)
            } else {
                item.report("invalid capability '\(text)'", hint: "use a Linux capability name such as NET_ADMIN")
            }
        }
        return Array(Set(names)).sorted()
    }

    private static func decodeHealthcheck(_ node: ManifestNode) -> Healthcheck? {
        guard let reader = node.mapping else { return nil }
        defer { reader.finish() }
        var test: [String] = []
        if let testNode = reader.required("test", hint: "a command, e.g. [CMD, wget, -q, -O-, http://127.0.0.1/]") {
            if case .scalar = testNode.node, let text = testNode.string {
                test = ["CMD-SHELL", text]
            } else if let list = testNode.stringList {
                if let first = list.first, ["CMD", "CMD-SHELL", "NONE"].contains(first) { test = list } else { test = ["CMD"] + list }
            }
        }
        func duration(_ key: String) -> Int64? {
            guard let durationNode = reader.optional(key), let text = durationNode.string else { return nil }
            guard let value = DurationText.nanoseconds(text) else {
                durationNode.report("'\(text)' is not a duration", hint: "write it as 30s, 1m30s or 500ms")
                return nil
            }
            return value
        }
        let interval = duration("interval")
        let timeout = duration("timeout")
        let startPeriod = duration("startPeriod")
        let retries = reader.optional("retries")?.int
        if let retries, retries < 0 { reader.optional("retries")?.report("retries must not be negative") }
        return Healthcheck(test: test, interval: interval, timeout: timeout, startPeriod: startPeriod, retries: retries)
    }

    static func isValidRestartPolicy(_ text: String) -> Bool {
        if ["no", "always", "unless-stopped", "on-failure"].contains(text) { return true }
        guard text.hasPrefix("on-failure:"), let count = Int(text.dropFirst("on-failure:".count)) else { return false }
        return count > 0
    }

    public func references(in set: ManifestSet) -> [Reference] {
        var references = host.reference(in: set).map { [$0] } ?? []
        for (index, attachment) in networks.enumerated() {
            references.append(Reference(target: ResourceID(kind: NetworkSpec.kind, name: attachment.network),
                                        field: "spec.networks[\(index)].name", location: attachment.location, bindsLifetime: true))
        }
        for (index, route) in routes.enumerated() where IPv4Address(route.via) == nil {
            references.append(Reference(target: ResourceID(kind: RouterSpec.kind, name: route.via),
                                        field: "spec.routes[\(index)].via", location: route.location))
        }
        for (index, mount) in mounts.enumerated() {
            guard case .volume(let name) = mount.source else { continue }
            // A replaced volume (a new driver) takes the containers mounting it with it.
            references.append(
                Reference(target: ResourceID(kind: VolumeSpec.kind, name: name), field: "spec.mounts[\(index)].volume", location: mount.location,
                          bindsLifetime: true))
        }
        for (index, dependency) in dependsOn.enumerated() {
            references.append(Reference(target: ResourceID(kind: Self.kind, name: dependency.name),
                                        field: "spec.dependsOn[\(index)]", location: dependency.location))
        }
        return references
    }

    public func target(in set: ManifestSet) -> ResourceID? { host.resolve(in: set) }

    public func validate(_ resource: Resource, in set: ManifestSet, collector: DiagnosticCollector) {
        host.validate(in: set, collector: collector)
        var seen: Set<String> = []
        for attachment in networks {
            if !seen.insert(attachment.network).inserted {
                collector.report("spec.networks: network '\(attachment.network)' is listed twice", at: attachment.location, hint: "attach each network once")
            }
            let networkID = ResourceID(kind: NetworkSpec.kind, name: attachment.network)
            guard let network = set[networkID], let networkSpec = network.spec(as: NetworkSpec.self) else { continue }
            // Only when both hosts exist: a missing or unresolved host is reported on its own.
            if let mine = target(in: set), let theirs = networkSpec.target(in: set), set[mine] != nil, set[theirs] != nil, mine != theirs {
                collector.report("spec.networks: \(networkID) is on another DockerHost", at: attachment.location)
            }
            guard let ip = attachment.ipv4 else { continue }
            let where_ = attachment.ipv4Location ?? attachment.location
            guard let subnet = networkSpec.subnet else {
                // A subnet that is written but invalid is reported on the network.
                guard networkSpec.subnetLocation == nil else { continue }
                collector.report("spec.networks: a fixed ipv4 needs a subnet on \(networkID)", at: where_, hint: "add spec.subnet to the network")
                continue
            }
            if !subnet.contains(ip) {
                collector.report("spec.networks: \(ip) is outside subnet \(subnet) of \(networkID)", at: where_)
            } else if !subnet.isUsableHost(ip) {
                collector.report("spec.networks: \(ip) is the network or broadcast address of \(subnet)", at: where_)
            } else if ip == networkSpec.gateway ?? IPv4Address(subnet.address.value + 1), networkSpec.driver == "bridge" {
                collector.report("spec.networks: \(ip) is the gateway of \(networkID)", at: where_, hint: "the bridge takes the gateway address; pick another")
            }
        }
        for route in routes {
            guard gateway(for: route, in: set) == nil else { continue }
            if set[ResourceID(kind: RouterSpec.kind, name: route.via)] != nil {
                collector.report("spec.routes: Router/\(route.via) shares no network with this container", at: route.location,
                                 hint: "attach the container to one of the router's networks")
            } else if let address = IPv4Address(route.via) {
                collector.report("spec.routes: gateway \(address) is on none of this container's networks", at: route.location)
            }
        }
        for dependency in dependsOn where dependency.name == resource.id.name {
            collector.report("spec.dependsOn: a container cannot depend on itself", at: dependency.location)
        }
        var targets: Set<String> = []
        for file in files {
            if !targets.insert(file.target).inserted {
                collector.report("spec.files: \(file.target) is mounted twice", at: file.location)
            }
            // A missing folder is reported where the set reads it; a missing file here.
            if let folder = set.repositoryPath(file.folder), set.repositoryFolders[folder] != nil, file.content(in: set) == nil {
                collector.report(
                    "spec.files: \(file.path) is not in \(folder)/", at: file.location,
                    hint: "add the file beside the manifests, or correct the path")
            }
        }
        for mount in mounts {
            if !targets.insert(mount.target).inserted {
                collector.report("spec.mounts: \(mount.target) is mounted twice", at: mount.location)
            }
            guard case .bind(let path) = mount.source, let host = target(in: set),
                let allowed = set[host]?.spec(as: DockerHostSpec.self)?.allowedBindPaths
            else { continue }
            if !allowed.contains(where: { path == $0 || path.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) {
                collector.report(
                    "spec.mounts: \(path) is not under a folder \(host) allows to mount", at: mount.location,
                    hint: allowed.isEmpty
                        ? "add it to spec.allowedBindPaths of \(host), or use a Volume"
                        : "allowed: \(allowed.joined(separator: ", ")); or use a Volume")
            }
        }

    }

    /// Addresses and host ports are given once: the first holder (by name) keeps them and
    /// every later one is reported.
    public static func validate(_ resources: [Resource], in set: ManifestSet, collector: DiagnosticCollector) {
        var addressHolders: [String: ResourceID] = [:]
        // host/port/protocol → who binds it on which address; 0.0.0.0 takes every address.
        var portHolders: [String: [(ip: String, holder: ResourceID)]] = [:]
        for resource in resources {
            guard let spec = resource.spec(as: ContainerSpec.self) else { continue }
            for attachment in spec.networks {
                guard let ip = attachment.ipv4 else { continue }
                // The same container listing the network twice is reported as such, not here.
                if let holder = addressHolders.claim("\(attachment.network)/\(ip)", for: resource.id) {
                    collector.report(Diagnostic(
                        "spec.networks: \(ip) on Network/\(attachment.network) is also given to \(holder)",
                        at: attachment.ipv4Location ?? attachment.location, resource: resource.id,
                        hint: "each container needs its own address"))
                }
            }
            let host = spec.target(in: set)?.name ?? ""
            for port in spec.ports {
                guard let hostPort = port.hostPort else { continue }
                let key = "\(host)/\(hostPort)/\(port.protocolName)"
                let ip = port.hostIP ?? "0.0.0.0"
                if let holder = portHolders[key]?.first(where: { $0.ip == ip || $0.ip == "0.0.0.0" || ip == "0.0.0.0" })?.holder {
                    let other = holder == resource.id ? "is published twice" : "is also published by \(holder)"
                    collector.report(Diagnostic(
                        "spec.ports: host port \(hostPort)/\(port.protocolName) \(other)",
                        at: port.location, resource: resource.id, hint: "publish each host port from one container"))
                } else {
                    portHolders[key, default: []].append((ip, resource.id))
                }
            }
        }
    }

    public func desiredFields(metadata: Metadata) -> FieldMap {
        var fields = FieldMap()
        fields["image"] = .string(image)
        if let command { fields["command"] = .strings(command) }
        if let entrypoint { fields["entrypoint"] = .strings(entrypoint) }
        fields["env"] = .stringMap(env)
        fields["labels"] = .stringMap(metadata.labels)
        fields["ports"] = .strings(ports.map(\.canonical).sorted())
        fields["networks"] = .map(FieldMap(Dictionary(uniqueKeysWithValues: networks.map { attachment in
            (attachment.network, FieldValue.map(Self.attachmentFields(ipv4: attachment.ipv4?.description, aliases: attachment.aliases)))
        })))
        fields["capAdd"] = .strings(capAdd)
        fields["capDrop"] = .strings(capDrop)
        fields["sysctls"] = .stringMap(sysctls)
        fields["restartPolicy"] = .string(restartPolicy)
        if let healthcheck { fields["healthcheck"] = .map(Self.healthcheckFields(healthcheck)) }
        fields["state"] = .string(state)
        // Always compared: a manifest that drops its routes is a change (the provider reads
        // the tables of the containers it gave routes to).
        fields["routes"] = .strings(routes.map(\.canonical).sorted())
        settings.fields(into: &fields)
        fields["mounts"] = ContainerMount.fields(mounts)
        return fields
    }

    /// With the content hash of each of its `files`, as the set read them.
    public func desiredFields(metadata: Metadata, in set: ManifestSet) -> FieldMap {
        var fields = desiredFields(metadata: metadata)
        fields["files"] = .stringMap(ContainerFile.summaries(files, in: set))
        return fields
    }

    public var repositoryFolders: [(folder: String, field: String, location: SourceLocation)] {
        files.enumerated().compactMap { index, file in
            file.folder.isEmpty ? nil : (file.folder, "spec.files[\(index)].path", file.location)
        }
    }

    /// The gateway address of `route`: the named router's address on a network this
    /// container shares with it, or the literal address when it is on one of its networks.
    public func gateway(for route: RouteRequest, in set: ManifestSet) -> IPv4Address? {
        if let address = IPv4Address(route.via) {
            let reachable = networks.contains { attachment in
                set[ResourceID(kind: NetworkSpec.kind, name: attachment.network)]?.spec(as: NetworkSpec.self)?.subnet?.contains(address) ?? false
            }
            return reachable ? address : nil
        }
        guard let router = set[ResourceID(kind: RouterSpec.kind, name: route.via)]?.spec(as: RouterSpec.self) else { return nil }
        return networks.lazy.compactMap { router.address(on: $0.network) }.first
    }

    /// The shape of one `networks` entry, shared with providers so observed and desired match.
    public static func attachmentFields(ipv4: String?, aliases: [String]) -> FieldMap {
        var fields = FieldMap()
        if let ipv4 { fields["ipv4"] = .string(ipv4) }
        fields["aliases"] = .strings(aliases.sorted())
        return fields
    }

    /// The shape of `healthcheck`, shared with providers; unset durations are left out.
    public static func healthcheckFields(_ check: Healthcheck) -> FieldMap {
        var fields = FieldMap()
        fields["test"] = .strings(check.test)
        if let interval = check.interval { fields["interval"] = .string(DurationText.format(nanoseconds: interval)) }
        if let timeout = check.timeout { fields["timeout"] = .string(DurationText.format(nanoseconds: timeout)) }
        if let startPeriod = check.startPeriod { fields["startPeriod"] = .string(DurationText.format(nanoseconds: startPeriod)) }
        if let retries = check.retries { fields["retries"] = .int(retries) }
        return fields
    }

    public static func changeMode(forField field: String) -> ChangeMode {
        ["restartPolicy", "state", "networks", "routes"].contains(field) ? .inPlace : .replace
    }
}

private func collectorReport(_ reader: MappingReader, _ message: String, at location: SourceLocation, hint: String?) {
    reader.node.collector.report(message, at: location, hint: hint)
}
