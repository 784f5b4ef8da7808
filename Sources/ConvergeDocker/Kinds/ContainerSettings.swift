import ConvergeCore

/// The settings of a `Container` that shape its process rather than its network: resource
/// limits, user and working directory, read-only root, security options, logging, how it is
/// stopped. All are set at creation: a change recreates the container (the engine's in-place
/// update cannot lift a limit, and raises one only in a cgroup-dependent order).
///
/// ```yaml
/// resources: {memory: 256Mi, cpus: 0.5, pidsLimit: 200}
/// user: "1000:1000"
/// workingDir: /srv
/// readOnlyRootFilesystem: true
/// securityOpt: [no-new-privileges]
/// logging: {driver: json-file, options: {max-size: 10m}}
/// stopSignal: SIGINT
/// stopTimeout: 30s                # used when the container is replaced or deleted
/// ```
public struct ContainerSettings: Sendable, Hashable {
    /// Bytes; nil for no limit.
    public var memory: Int64?
    /// Billionths of a CPU; nil for no limit.
    public var nanoCPUs: Int64?
    public var pidsLimit: Int64?
    public var user: String?
    public var workingDir: String?
    public var readOnlyRootFilesystem: Bool
    public var securityOpt: [String]
    public var logging: DockerLogConfig?
    public var stopSignal: String?
    /// Whole seconds, as the engine keeps it.
    public var stopTimeout: Int?

    /// The smallest memory limit the engine accepts.
    static let minimumMemory: Int64 = 6 * 1_048_576

    init(reading spec: MappingReader) {
        readOnlyRootFilesystem = spec.optional("readOnlyRootFilesystem")?.bool ?? false
        user = spec.optional("user")?.string
        workingDir = spec.optional("workingDir")?.string
        if let node = spec.optional("workingDir"), let dir = workingDir, !dir.hasPrefix("/") {
            node.report("'\(dir)' is not an absolute path", hint: "write it from the root, e.g. /srv")
        }
        securityOpt = spec.optional("securityOpt")?.stringList ?? []
        if let node = spec.optional("resources"), let reader = node.mapping {
            if let memoryNode = reader.optional("memory"), let text = memoryNode.string {
                memory = Self.bytes(text)
                if memory == nil || memory! < Self.minimumMemory {
                    memoryNode.report("'\(text)' is not a memory size of at least 6Mi", hint: "write it as 512Mi, 2Gi or a number of bytes")
                    memory = nil
                }
            }
            if let cpusNode = reader.optional("cpus"), let text = cpusNode.string {
                if let cpus = Double(text), cpus > 0, cpus <= 1024 {
                    nanoCPUs = Int64((cpus * 1e9).rounded())
                } else {
                    cpusNode.report("'\(text)' is not a number of CPUs", hint: "write it as 0.5 or 2")
                }
            }
            if let pidsNode = reader.optional("pidsLimit"), let value = pidsNode.int {
                if value > 0 { pidsLimit = Int64(value) } else { pidsNode.report("pidsLimit must be at least 1") }
            }
            reader.finish()
        }
        if let node = spec.optional("logging"), let reader = node.mapping {
            if let driver = reader.required("driver", hint: "a logging driver, e.g. json-file or local")?.string {
                logging = DockerLogConfig(type: driver, config: reader.optional("options")?.stringMap ?? [:])
            }
            reader.finish()
        }
        if let node = spec.optional("stopSignal"), let signal = node.string {
            if signal.uppercased().hasPrefix("SIG") || Int(signal) != nil {
                stopSignal = signal
            } else {
                node.report("'\(signal)' is not a signal", hint: "write it as SIGTERM, SIGINT or SIGQUIT")
            }
        }
        if let node = spec.optional("stopTimeout"), let text = node.string {
            if let nanoseconds = DurationText.nanoseconds(text), nanoseconds >= 1_000_000_000, nanoseconds % 1_000_000_000 == 0 {
                stopTimeout = Int(nanoseconds / 1_000_000_000)
            } else {
                node.report("'\(text)' is not a whole number of seconds", hint: "write it as 30s or 2m")
            }
        }
    }

    /// `512Mi`, `2Gi`, `64m`, `1g`, `1048576`: sizes in binary units, as Docker reads them.
    static func bytes(_ text: String) -> Int64? {
        let digits = text.prefix { $0.isNumber }
        guard let number = Int64(digits) else { return nil }
        let unit = text.dropFirst(digits.count).lowercased()
        let shift: Int64
        switch unit {
        case "", "b": shift = 0
        case "k", "ki", "kib", "kb": shift = 10
        case "m", "mi", "mib", "mb": shift = 20
        case "g", "gi", "gib", "gb": shift = 30
        default: return nil
        }
        let (value, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : value
    }

    /// The largest binary unit that divides `bytes` (`256Mi`), or the bytes.
    static func format(bytes: Int64) -> String {
        for (shift, unit) in [(30, "Gi"), (20, "Mi"), (10, "Ki")] where bytes % (1 << shift) == 0 {
            return "\(bytes >> shift)\(unit)"
        }
        return String(bytes)
    }

    /// `0.5`, `2`: a CPU quota as a manifest writes it.
    static func format(nanoCPUs: Int64) -> String {
        var text = String(format: "%.3f", Double(nanoCPUs) / 1e9)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// The `resources` field: the limits that are set.
    static func resourceFields(memory: Int64?, nanoCPUs: Int64?, pidsLimit: Int64?) -> FieldMap {
        var fields = FieldMap()
        if let memory, memory > 0 { fields["memory"] = .string(format(bytes: memory)) }
        if let nanoCPUs, nanoCPUs > 0 { fields["cpus"] = .string(format(nanoCPUs: nanoCPUs)) }
        if let pidsLimit, pidsLimit > 0 { fields["pidsLimit"] = .int(Int(pidsLimit)) }
        return fields
    }

    /// `rootFilesystem.readOnly`: a map, empty for the writable default, so a create shows it
    /// only when it is set and a change back to writable is still seen.
    static func rootFilesystemFields(readOnly: Bool) -> FieldMap {
        var fields = FieldMap()
        if readOnly { fields["readOnly"] = .bool(true) }
        return fields
    }

    static func loggingFields(_ logging: DockerLogConfig) -> FieldMap {
        var fields = FieldMap()
        fields["driver"] = .string(logging.type)
        fields["options"] = .stringMap(logging.config ?? [:])
        return fields
    }

    /// What the diff compares. Limits, the read-only root (as `rootFilesystem.readOnly`) and
    /// security options are always compared (their engine default is none, so a limit set by
    /// hand is drift); the others
    /// only when the manifest sets them, since an image may set its own.
    func fields(into fields: inout FieldMap) {
        fields["resources"] = .map(Self.resourceFields(memory: memory, nanoCPUs: nanoCPUs, pidsLimit: pidsLimit))
        fields["rootFilesystem"] = .map(Self.rootFilesystemFields(readOnly: readOnlyRootFilesystem))
        fields["securityOpt"] = .strings(securityOpt)
        if let user { fields["user"] = .string(user) }
        if let workingDir { fields["workingDir"] = .string(workingDir) }
        if let logging { fields["logging"] = .map(Self.loggingFields(logging)) }
        if let stopSignal { fields["stopSignal"] = .string(stopSignal) }
        if let stopTimeout { fields["stopTimeout"] = .string(DurationText.format(nanoseconds: Int64(stopTimeout) * 1_000_000_000)) }
    }
}
