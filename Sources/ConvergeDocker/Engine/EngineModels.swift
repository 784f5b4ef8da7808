// Codable models of the Docker Engine API (v1.41) shared by containers, networks and images.
//
// Property names are Swift-style; CodingKeys carry the engine's PascalCase names. Everything the
// engine may omit or send as `null` is optional (it sends `null` for many empty arrays and maps),
// and `nil` properties are left out of request bodies so the engine applies its own defaults.

/// A string-keyed coding key for maps whose keys are data (port sets).
struct DynamicCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { return nil }
}

/// An empty JSON object, `{}`.
struct EmptyJSONObject: Codable, Sendable {}

/// A set of ports such as `"80/tcp"`, encoded the engine's way: `{"80/tcp": {}}`.
public struct DockerPortSet: Codable, Sendable, Hashable, ExpressibleByArrayLiteral {
    public var ports: Set<String>

    public init(_ ports: some Sequence<String>) { self.ports = Set(ports) }
    public init(arrayLiteral elements: String...) { self.ports = Set(elements) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: DynamicCodingKey.self)
        self.ports = Set(container.allKeys.map(\.stringValue))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: DynamicCodingKey.self)
        for port in ports.sorted() {
            try container.encode(EmptyJSONObject(), forKey: DynamicCodingKey(stringValue: port))
        }
    }
}

/// `HostConfig.RestartPolicy`.
public struct DockerRestartPolicy: Codable, Sendable, Hashable {
    /// `""`/`"no"`, `"always"`, `"unless-stopped"` or `"on-failure"`. The engine reports `"no"` when none was set
    /// (and `""` in some versions).
    public var name: String?
    /// Only meaningful with `"on-failure"`.
    public var maximumRetryCount: Int?

    public init(name: String?, maximumRetryCount: Int? = nil) {
        self.name = name
        self.maximumRetryCount = maximumRetryCount
    }

    public static let no = DockerRestartPolicy(name: "no")
    public static let always = DockerRestartPolicy(name: "always")
    public static let unlessStopped = DockerRestartPolicy(name: "unless-stopped")
    public static func onFailure(maximumRetryCount: Int) -> DockerRestartPolicy {
        DockerRestartPolicy(name: "on-failure", maximumRetryCount: maximumRetryCount)
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name"
        case maximumRetryCount = "MaximumRetryCount"
    }
}

/// A container health check. Durations are in nanoseconds, as the engine expects.
public struct DockerHealthcheck: Codable, Sendable, Hashable {
    /// `["NONE"]` disables the image's check; `["CMD", args...]` or `["CMD-SHELL", command]`.
    public var test: [String]?
    public var interval: Int64?
    public var timeout: Int64?
    public var retries: Int?
    public var startPeriod: Int64?

    public init(
        test: [String]?, interval: Int64? = nil, timeout: Int64? = nil, retries: Int? = nil,
        startPeriod: Int64? = nil
    ) {
        self.test = test
        self.interval = interval
        self.timeout = timeout
        self.retries = retries
        self.startPeriod = startPeriod
    }

    /// Builds a check from `Duration`s, converted to the engine's nanoseconds.
    public init(
        test: [String], interval: Duration? = nil, timeout: Duration? = nil, retries: Int? = nil,
        startPeriod: Duration? = nil
    ) {
        self.init(
            test: test, interval: interval.map(Self.nanoseconds), timeout: timeout.map(Self.nanoseconds),
            retries: retries, startPeriod: startPeriod.map(Self.nanoseconds))
    }

    public static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    enum CodingKeys: String, CodingKey {
        case test = "Test"
        case interval = "Interval"
        case timeout = "Timeout"
        case retries = "Retries"
        case startPeriod = "StartPeriod"
    }
}

/// One host binding of a container port.
public struct DockerPortBinding: Codable, Sendable, Hashable {
    public var hostIP: String?
    public var hostPort: String?

    public init(hostIP: String? = nil, hostPort: String?) {
        self.hostIP = hostIP
        self.hostPort = hostPort
    }

    enum CodingKeys: String, CodingKey {
        case hostIP = "HostIp"
        case hostPort = "HostPort"
    }
}

/// The part of `HostConfig` Converge manages. Fields not modelled here are ignored when decoding.
public struct DockerHostConfig: Codable, Sendable, Hashable {
    /// `"bridge"`, `"host"`, `"none"`, `"container:<id>"` or a network name. The engine reports
    /// `"default"` when none was given at creation.
    public var networkMode: String?
    /// `"80/tcp": [binding]`. A `null` binding list from the engine decodes as an empty list.
    public var portBindings: [String: [DockerPortBinding]]?
    public var capAdd: [String]?
    public var capDrop: [String]?
    public var sysctls: [String: String]?
    public var restartPolicy: DockerRestartPolicy?
    public var privileged: Bool?
    /// `host-path:container-path[:ro]` bind mounts.
    public var binds: [String]?
    /// Memory limit in bytes; 0 or nil for none.
    public var memory: Int64?
    /// CPU quota in billionths of a CPU; 0 or nil for none.
    public var nanoCpus: Int64?
    /// Process limit; 0, -1 or nil for none.
    public var pidsLimit: Int64?
    public var readonlyRootfs: Bool?
    public var securityOpt: [String]?
    public var logConfig: DockerLogConfig?
    public var mounts: [DockerMount]?

    public init(
        networkMode: String? = nil, portBindings: [String: [DockerPortBinding]]? = nil, capAdd: [String]? = nil,
        capDrop: [String]? = nil, sysctls: [String: String]? = nil, restartPolicy: DockerRestartPolicy? = nil,
        privileged: Bool? = nil, binds: [String]? = nil, memory: Int64? = nil, nanoCpus: Int64? = nil, pidsLimit: Int64? = nil,
        readonlyRootfs: Bool? = nil, securityOpt: [String]? = nil, logConfig: DockerLogConfig? = nil, mounts: [DockerMount]? = nil
    ) {
        self.mounts = mounts
        self.binds = binds
        self.memory = memory
        self.nanoCpus = nanoCpus
        self.pidsLimit = pidsLimit
        self.readonlyRootfs = readonlyRootfs
        self.securityOpt = securityOpt
        self.logConfig = logConfig
        self.networkMode = networkMode
        self.portBindings = portBindings
        self.capAdd = capAdd
        self.capDrop = capDrop
        self.sysctls = sysctls
        self.restartPolicy = restartPolicy
        self.privileged = privileged
    }

    enum CodingKeys: String, CodingKey {
        case networkMode = "NetworkMode"
        case portBindings = "PortBindings"
        case capAdd = "CapAdd"
        case capDrop = "CapDrop"
        case sysctls = "Sysctls"
        case restartPolicy = "RestartPolicy"
        case privileged = "Privileged"
        case binds = "Binds"
        case memory = "Memory"
        case nanoCpus = "NanoCpus"
        case pidsLimit = "PidsLimit"
        case readonlyRootfs = "ReadonlyRootfs"
        case securityOpt = "SecurityOpt"
        case logConfig = "LogConfig"
        case mounts = "Mounts"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        networkMode = try c.decodeIfPresent(String.self, forKey: .networkMode)
        portBindings = try c.decodeIfPresent([String: [DockerPortBinding]?].self, forKey: .portBindings)?
            .mapValues { $0 ?? [] }
        capAdd = try c.decodeIfPresent([String].self, forKey: .capAdd)
        capDrop = try c.decodeIfPresent([String].self, forKey: .capDrop)
        sysctls = try c.decodeIfPresent([String: String].self, forKey: .sysctls)
        restartPolicy = try c.decodeIfPresent(DockerRestartPolicy.self, forKey: .restartPolicy)
        privileged = try c.decodeIfPresent(Bool.self, forKey: .privileged)
        binds = try c.decodeIfPresent([String].self, forKey: .binds)
        memory = try c.decodeIfPresent(Int64.self, forKey: .memory)
        nanoCpus = try c.decodeIfPresent(Int64.self, forKey: .nanoCpus)
        pidsLimit = try c.decodeIfPresent(Int64.self, forKey: .pidsLimit)
        readonlyRootfs = try c.decodeIfPresent(Bool.self, forKey: .readonlyRootfs)
        securityOpt = try c.decodeIfPresent([String].self, forKey: .securityOpt)
        logConfig = try c.decodeIfPresent(DockerLogConfig.self, forKey: .logConfig)
        mounts = try c.decodeIfPresent([DockerMount].self, forKey: .mounts)
    }
}

/// A container's logging driver and its options (`HostConfig.LogConfig`).
public struct DockerLogConfig: Codable, Sendable, Hashable {
    public var type: String
    public var config: [String: String]?

    public init(type: String, config: [String: String]?) {
        self.type = type
        self.config = config
    }

    enum CodingKeys: String, CodingKey {
        case type = "Type"
        case config = "Config"
    }
}

/// Static addresses of a container on one network.
public struct DockerEndpointIPAMConfig: Codable, Sendable, Hashable {
    public var ipv4Address: String?
    public var ipv6Address: String?

    public init(ipv4Address: String? = nil, ipv6Address: String? = nil) {
        self.ipv4Address = ipv4Address
        self.ipv6Address = ipv6Address
    }

    enum CodingKeys: String, CodingKey {
        case ipv4Address = "IPv4Address"
        case ipv6Address = "IPv6Address"
    }
}

/// A container's endpoint on one network: what to request when creating or connecting
/// (`ipamConfig`, `aliases`), and what the engine reports back (the rest).
public struct DockerEndpointSettings: Codable, Sendable, Hashable {
    /// Requested static addresses. The engine reports `null` when none were requested.
    public var ipamConfig: DockerEndpointIPAMConfig?
    /// DNS aliases on this network. On user-defined networks the engine adds the container's
    /// 12-character short id to what was requested.
    public var aliases: [String]?
    public var networkID: String?
    public var endpointID: String?
    public var gateway: String?
    /// The address in use (`""` while the container is not running).
    public var ipAddress: String?
    public var ipPrefixLen: Int?
    public var macAddress: String?

    public init(ipamConfig: DockerEndpointIPAMConfig? = nil, aliases: [String]? = nil) {
        self.ipamConfig = ipamConfig
        self.aliases = aliases
    }

    /// Settings that request a static IPv4 address and aliases.
    public init(ipv4Address: String?, aliases: [String]? = nil) {
        self.ipamConfig = ipv4Address.map { DockerEndpointIPAMConfig(ipv4Address: $0) }
        self.aliases = aliases
    }

    enum CodingKeys: String, CodingKey {
        case ipamConfig = "IPAMConfig"
        case aliases = "Aliases"
        case networkID = "NetworkID"
        case endpointID = "EndpointID"
        case gateway = "Gateway"
        case ipAddress = "IPAddress"
        case ipPrefixLen = "IPPrefixLen"
        case macAddress = "MacAddress"
    }
}

/// `NetworkingConfig` of a container create request.
public struct DockerNetworkingConfig: Codable, Sendable, Hashable {
    /// Network name (or id) to endpoint settings. API 1.41 accepts only one entry at creation;
    /// connect further networks afterwards.
    public var endpointsConfig: [String: DockerEndpointSettings]?

    public init(endpointsConfig: [String: DockerEndpointSettings]?) {
        self.endpointsConfig = endpointsConfig
    }

    enum CodingKeys: String, CodingKey {
        case endpointsConfig = "EndpointsConfig"
    }
}

/// A container's or an image's configuration (`Config` in inspect answers).
public struct DockerContainerConfig: Codable, Sendable, Hashable {
    public var image: String?
    public var cmd: [String]?
    public var entrypoint: [String]?
    /// `KEY=value` entries; for a container this includes those inherited from the image.
    public var env: [String]?
    /// For a container this includes the image's labels.
    public var labels: [String: String]?
    public var healthcheck: DockerHealthcheck?
    public var exposedPorts: DockerPortSet?
    public var hostname: String?
    public var user: String?
    public var workingDir: String?
    public var stopSignal: String?
    /// Seconds `docker stop` waits before SIGKILL; nil for the engine's default (10).
    public var stopTimeout: Int?

    public init(
        image: String? = nil, cmd: [String]? = nil, entrypoint: [String]? = nil, env: [String]? = nil,
        labels: [String: String]? = nil, healthcheck: DockerHealthcheck? = nil, exposedPorts: DockerPortSet? = nil,
        hostname: String? = nil, user: String? = nil, workingDir: String? = nil, stopSignal: String? = nil, stopTimeout: Int? = nil
    ) {
        self.stopSignal = stopSignal
        self.stopTimeout = stopTimeout
        self.image = image
        self.cmd = cmd
        self.entrypoint = entrypoint
        self.env = env
        self.labels = labels
        self.healthcheck = healthcheck
        self.exposedPorts = exposedPorts
        self.hostname = hostname
        self.user = user
        self.workingDir = workingDir
    }

    enum CodingKeys: String, CodingKey {
        case image = "Image"
        case cmd = "Cmd"
        case entrypoint = "Entrypoint"
        case env = "Env"
        case labels = "Labels"
        case healthcheck = "Healthcheck"
        case exposedPorts = "ExposedPorts"
        case hostname = "Hostname"
        case user = "User"
        case workingDir = "WorkingDir"
        case stopSignal = "StopSignal"
        case stopTimeout = "StopTimeout"
    }
}

/// `GET /version`.
public struct DockerVersion: Codable, Sendable, Hashable {
    public var version: String?
    public var apiVersion: String
    public var minAPIVersion: String?
    public var os: String?
    public var arch: String?
    public var kernelVersion: String?
    public var gitCommit: String?
    public var goVersion: String?

    enum CodingKeys: String, CodingKey {
        case version = "Version"
        case apiVersion = "ApiVersion"
        case minAPIVersion = "MinAPIVersion"
        case os = "Os"
        case arch = "Arch"
        case kernelVersion = "KernelVersion"
        case gitCommit = "GitCommit"
        case goVersion = "GoVersion"
    }
}

/// `GET /images/{name}/json`, the parts needed to tell engine defaults from requested values.
public struct ImageInspect: Codable, Sendable, Hashable {
    public var id: String
    public var repoTags: [String]?
    /// The manifest digests the image was pulled or pushed as (`registry/app@sha256:…`);
    /// empty for an image built or loaded locally.
    public var repoDigests: [String]?
    public var created: String?
    /// The image's defaults (`Env`, `Cmd`, `Entrypoint`, `Labels`, …). `null` for some imported images.
    public var config: DockerContainerConfig?

    enum CodingKeys: String, CodingKey {
        case id = "Id"
        case repoTags = "RepoTags"
        case repoDigests = "RepoDigests"
        case created = "Created"
        case config = "Config"
    }
}
