/// One address pool of a network's IPAM configuration.
public struct DockerIPAMPool: Codable, Sendable, Hashable {
    public var subnet: String?
    public var gateway: String?
    public var ipRange: String?

    public init(subnet: String?, gateway: String? = nil, ipRange: String? = nil) {
        self.subnet = subnet
        self.gateway = gateway
        self.ipRange = ipRange
    }

    enum CodingKeys: String, CodingKey {
        case subnet = "Subnet"
        case gateway = "Gateway"
        case ipRange = "IPRange"
    }
}

/// A network's IP address management.
public struct DockerIPAM: Codable, Sendable, Hashable {
    /// `"default"` unless a plugin is used.
    public var driver: String?
    /// Empty when the engine chose a subnet by itself (it may still report the chosen one here).
    public var config: [DockerIPAMPool]?
    public var options: [String: String]?

    public init(driver: String? = nil, config: [DockerIPAMPool]?, options: [String: String]? = nil) {
        self.driver = driver
        self.config = config
        self.options = options
    }

    enum CodingKeys: String, CodingKey {
        case driver = "Driver"
        case config = "Config"
        case options = "Options"
    }
}

/// `POST /networks/create` body.
public struct NetworkCreate: Codable, Sendable, Hashable {
    public var name: String
    /// `"bridge"` by default.
    public var driver: String?
    /// No route to outside the network.
    public var `internal`: Bool?
    public var attachable: Bool?
    public var labels: [String: String]?
    public var ipam: DockerIPAM?
    public var options: [String: String]?
    /// Ask the engine to refuse a second network with the same name (names are not unique otherwise).
    public var checkDuplicate: Bool?

    public init(
        name: String, driver: String? = "bridge", internal: Bool? = nil, attachable: Bool? = nil,
        labels: [String: String]? = nil, ipam: DockerIPAM? = nil, options: [String: String]? = nil,
        checkDuplicate: Bool? = true
    ) {
        self.name = name
        self.driver = driver
        self.internal = `internal`
        self.attachable = attachable
        self.labels = labels
        self.ipam = ipam
        self.options = options
        self.checkDuplicate = checkDuplicate
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name"
        case driver = "Driver"
        case `internal` = "Internal"
        case attachable = "Attachable"
        case labels = "Labels"
        case ipam = "IPAM"
        case options = "Options"
        case checkDuplicate = "CheckDuplicate"
    }
}

/// A container attached to a network, as `GET /networks/{id}` reports it (only running containers
/// appear; `GET /networks` leaves this map empty).
public struct NetworkContainer: Codable, Sendable, Hashable {
    public var name: String?
    public var endpointID: String?
    public var macAddress: String?
    /// With prefix length, e.g. `10.231.7.10/24`.
    public var ipv4Address: String?
    public var ipv6Address: String?

    enum CodingKeys: String, CodingKey {
        case name = "Name"
        case endpointID = "EndpointID"
        case macAddress = "MacAddress"
        case ipv4Address = "IPv4Address"
        case ipv6Address = "IPv6Address"
    }
}

/// A network as `GET /networks` and `GET /networks/{id}` report it.
public struct NetworkInspect: Codable, Sendable, Hashable {
    public var id: String
    public var name: String
    public var driver: String?
    public var scope: String?
    public var created: String?
    public var `internal`: Bool?
    public var attachable: Bool?
    public var labels: [String: String]?
    public var ipam: DockerIPAM?
    public var options: [String: String]?
    /// Container id to endpoint, for running containers. Empty in list answers.
    public var containers: [String: NetworkContainer]?

    enum CodingKeys: String, CodingKey {
        case id = "Id"
        case name = "Name"
        case driver = "Driver"
        case scope = "Scope"
        case created = "Created"
        case `internal` = "Internal"
        case attachable = "Attachable"
        case labels = "Labels"
        case ipam = "IPAM"
        case options = "Options"
        case containers = "Containers"
    }
}

/// `GET /networks` returns the same shape as inspect.
public typealias NetworkSummary = NetworkInspect
