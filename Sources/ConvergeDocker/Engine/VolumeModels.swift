/// A volume as `GET /volumes` and `GET /volumes/{name}` report it.
public struct VolumeSummary: Codable, Sendable, Hashable {
    public var name: String
    public var driver: String
    public var labels: [String: String]?
    public var options: [String: String]?
    public var mountpoint: String?

    enum CodingKeys: String, CodingKey {
        case name = "Name"
        case driver = "Driver"
        case labels = "Labels"
        case options = "Options"
        case mountpoint = "Mountpoint"
    }
}

/// `POST /volumes/create`.
public struct VolumeCreate: Codable, Sendable, Hashable {
    public var name: String
    public var driver: String
    public var driverOpts: [String: String]?
    public var labels: [String: String]?

    public init(name: String, driver: String, driverOpts: [String: String]?, labels: [String: String]?) {
        self.name = name
        self.driver = driver
        self.driverOpts = driverOpts
        self.labels = labels
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name"
        case driver = "Driver"
        case driverOpts = "DriverOpts"
        case labels = "Labels"
    }
}

/// One entry of `HostConfig.Mounts`: a named volume, a host path or a tmpfs.
public struct DockerMount: Codable, Sendable, Hashable {
    public struct TmpfsOptions: Codable, Sendable, Hashable {
        public var sizeBytes: Int64?

        public init(sizeBytes: Int64?) { self.sizeBytes = sizeBytes }

        enum CodingKeys: String, CodingKey { case sizeBytes = "SizeBytes" }
    }

    /// `volume`, `bind` or `tmpfs`.
    public var type: String
    /// The volume's name or the host path; nil for a tmpfs.
    public var source: String?
    public var target: String
    public var readOnly: Bool?
    public var tmpfsOptions: TmpfsOptions?

    public init(type: String, source: String?, target: String, readOnly: Bool?, tmpfsOptions: TmpfsOptions? = nil) {
        self.type = type
        self.source = source
        self.target = target
        self.readOnly = readOnly
        self.tmpfsOptions = tmpfsOptions
    }

    enum CodingKeys: String, CodingKey {
        case type = "Type"
        case source = "Source"
        case target = "Target"
        case readOnly = "ReadOnly"
        case tmpfsOptions = "TmpfsOptions"
    }
}
