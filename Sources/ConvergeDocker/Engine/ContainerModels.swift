/// `POST /containers/create` body.
public struct ContainerCreate: Codable, Sendable, Hashable {
    public var image: String
    /// `nil` keeps the image's `Cmd`.
    public var cmd: [String]?
    /// `nil` keeps the image's `Entrypoint`.
    public var entrypoint: [String]?
    /// `KEY=value` entries, merged over the image's.
    public var env: [String]?
    /// Merged over the image's labels.
    public var labels: [String: String]?
    public var exposedPorts: DockerPortSet?
    public var healthcheck: DockerHealthcheck?
    public var hostname: String?
    public var user: String?
    public var workingDir: String?
    /// The signal `docker stop` sends first (`SIGUSR1`: HAProxy's graceful stop).
    public var stopSignal: String?
    /// Seconds `docker stop` waits for it before SIGKILL.
    public var stopTimeout: Int?
    public var hostConfig: DockerHostConfig?
    public var networkingConfig: DockerNetworkingConfig?

    public init(
        image: String, cmd: [String]? = nil, entrypoint: [String]? = nil, env: [String]? = nil,
        labels: [String: String]? = nil, exposedPorts: DockerPortSet? = nil, healthcheck: DockerHealthcheck? = nil,
        hostname: String? = nil, user: String? = nil, workingDir: String? = nil, stopSignal: String? = nil, stopTimeout: Int? = nil,
        hostConfig: DockerHostConfig? = nil, networkingConfig: DockerNetworkingConfig? = nil
    ) {
        self.stopSignal = stopSignal
        self.stopTimeout = stopTimeout
        self.image = image
        self.cmd = cmd
        self.entrypoint = entrypoint
        self.env = env
        self.labels = labels
        self.exposedPorts = exposedPorts
        self.healthcheck = healthcheck
        self.hostname = hostname
        self.user = user
        self.workingDir = workingDir
        self.hostConfig = hostConfig
        self.networkingConfig = networkingConfig
    }

    enum CodingKeys: String, CodingKey {
        case image = "Image"
        case cmd = "Cmd"
        case entrypoint = "Entrypoint"
        case env = "Env"
        case labels = "Labels"
        case exposedPorts = "ExposedPorts"
        case healthcheck = "Healthcheck"
        case hostname = "Hostname"
        case user = "User"
        case workingDir = "WorkingDir"
        case stopSignal = "StopSignal"
        case stopTimeout = "StopTimeout"
        case hostConfig = "HostConfig"
        case networkingConfig = "NetworkingConfig"
    }
}

/// A container as `GET /containers/json` reports it.
public struct ContainerSummary: Codable, Sendable, Hashable {
    public struct NetworkSettings: Codable, Sendable, Hashable {
        /// Network name to endpoint.
        public var networks: [String: DockerEndpointSettings]?

        enum CodingKeys: String, CodingKey {
            case networks = "Networks"
        }
    }

    public var id: String
    /// With a leading slash: `["/web"]`.
    public var names: [String]?
    /// The reference the container was created from (or the image id if that tag moved on).
    public var image: String?
    public var imageID: String?
    public var command: String?
    /// Unix time in seconds.
    public var created: Int64?
    public var labels: [String: String]?
    /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
    public var state: String?
    /// Human text such as `Up 3 minutes`.
    public var status: String?
    public var networkSettings: NetworkSettings?

    /// The first name without its leading slash.
    public var name: String? {
        names?.first.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }
    }

    enum CodingKeys: String, CodingKey {
        case id = "Id"
        case names = "Names"
        case image = "Image"
        case imageID = "ImageID"
        case command = "Command"
        case created = "Created"
        case labels = "Labels"
        case state = "State"
        case status = "Status"
        case networkSettings = "NetworkSettings"
    }
}

/// The state of a container's health check.
public struct DockerHealth: Codable, Sendable, Hashable {
    public struct LogEntry: Codable, Sendable, Hashable {
        public var start: String?
        public var end: String?
        public var exitCode: Int?
        public var output: String?

        enum CodingKeys: String, CodingKey {
            case start = "Start"
            case end = "End"
            case exitCode = "ExitCode"
            case output = "Output"
        }
    }

    /// `starting`, `healthy` or `unhealthy` (`none` when there is no check).
    public var status: String?
    public var failingStreak: Int?
    public var log: [LogEntry]?

    enum CodingKeys: String, CodingKey {
        case status = "Status"
        case failingStreak = "FailingStreak"
        case log = "Log"
    }
}

/// `GET /containers/{id}/json`.
public struct ContainerInspect: Codable, Sendable, Hashable {
    public struct State: Codable, Sendable, Hashable {
        /// `created`, `running`, `paused`, `restarting`, `removing`, `exited` or `dead`.
        public var status: String?
        public var running: Bool?
        public var paused: Bool?
        public var restarting: Bool?
        public var oomKilled: Bool?
        public var dead: Bool?
        public var pid: Int?
        public var exitCode: Int?
        public var error: String?
        public var startedAt: String?
        public var finishedAt: String?
        /// Present only when the container has a health check.
        public var health: DockerHealth?

        enum CodingKeys: String, CodingKey {
            case status = "Status"
            case running = "Running"
            case paused = "Paused"
            case restarting = "Restarting"
            case oomKilled = "OOMKilled"
            case dead = "Dead"
            case pid = "Pid"
            case exitCode = "ExitCode"
            case error = "Error"
            case startedAt = "StartedAt"
            case finishedAt = "FinishedAt"
            case health = "Health"
        }
    }

    public struct NetworkSettings: Codable, Sendable, Hashable {
        /// Network name to endpoint.
        public var networks: [String: DockerEndpointSettings]?

        enum CodingKeys: String, CodingKey {
            case networks = "Networks"
        }
    }

    public var id: String
    /// With a leading slash: `/web`.
    public var name: String?
    /// The image id (`sha256:…`); `config.image` holds the reference used at creation.
    public var image: String?
    public var created: String?
    public var restartCount: Int?
    public var config: DockerContainerConfig?
    public var hostConfig: DockerHostConfig?
    public var state: State?
    public var networkSettings: NetworkSettings?

    /// `name` without its leading slash.
    public var plainName: String? {
        name.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }
    }

    enum CodingKeys: String, CodingKey {
        case id = "Id"
        case name = "Name"
        case image = "Image"
        case created = "Created"
        case restartCount = "RestartCount"
        case config = "Config"
        case hostConfig = "HostConfig"
        case state = "State"
        case networkSettings = "NetworkSettings"
    }
}

/// What `exec` returns once the command has finished.
public struct ExecResult: Sendable, Hashable {
    public var exitCode: Int
    /// Standard output, decoded as UTF-8 (invalid sequences repaired).
    public var stdout: String
    public var stderr: String

    public init(exitCode: Int, stdout: String, stderr: String) {
        self.exitCode = exitCode
        self.stdout = stdout
        self.stderr = stderr
    }

    public var succeeded: Bool { exitCode == 0 }
}
