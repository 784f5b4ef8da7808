import ConvergeHTTP
import Foundation
import NIOCore
import NIOHTTP1

/// A client of one Docker Engine's HTTP API over its unix socket.
///
/// A value type that is cheap to copy and safe to share between tasks; calls may run
/// concurrently over pooled connections (``HTTPTransport/unixSocket(path:hostHeader:maxResponseBodySize:)``:
/// nothing to shut down). The API version is negotiated once, lazily: the
/// lower of the engine's `ApiVersion` and ``maximumAPIVersion`` (unless one was given to `init`).
///
/// Failures throw ``DockerEngineError``, which names the operation, the object, the engine's
/// message and whether a retry may help.
public struct DockerEngine: Sendable {
    /// The newest API version this client speaks; the models follow this version.
    public static let maximumAPIVersion = "1.41"
    public static let defaultSocketPath = "/var/run/docker.sock"

    public let socketPath: String
    /// Deadline of an ordinary call. Calls that wait on the engine by design (`stopContainer`,
    /// `exec`) extend it.
    public let requestTimeout: Duration
    let http: HTTPTransport
    private let negotiator: APIVersionNegotiator

    /// - Parameters:
    ///   - socketPath: Path of the engine's unix socket.
    ///   - apiVersion: A fixed API version such as `"1.41"`; `nil` negotiates with the engine on first use.
    ///   - requestTimeout: Deadline for each ordinary call, connect to last byte.
    public init(
        socketPath: String = DockerEngine.defaultSocketPath,
        apiVersion: String? = nil,
        requestTimeout: Duration = .seconds(60)
    ) {
        self.socketPath = socketPath
        self.requestTimeout = requestTimeout
        self.http = .unixSocket(path: socketPath)
        self.negotiator = APIVersionNegotiator(fixed: apiVersion)
    }

    /// Accepts a `DOCKER_HOST`-style address. Only `unix://` is supported.
    public init(host: String, apiVersion: String? = nil, requestTimeout: Duration = .seconds(60)) throws {
        guard host.hasPrefix("unix://"), host.count > "unix://".count else {
            throw DockerEngineError(
                .transport,
                transport: HTTPTransportError(.invalidAddress, endpoint: host, detail: "only unix:// addresses are supported"),
                operation: "connect to Docker host \(host)", method: "-", path: "-",
                message: "only unix:// addresses are supported", socketPath: host)
        }
        self.init(socketPath: String(host.dropFirst("unix://".count)), apiVersion: apiVersion, requestTimeout: requestTimeout)
    }

    // MARK: - System

    /// `GET /version`: engine and API versions.
    public func version() async throws -> DockerVersion {
        let response = try await send(.GET, "/version", versioned: false, operation: "read the engine version")
        return try decode(DockerVersion.self, response, operation: "read the engine version", method: .GET, path: "/version")
    }

    /// `GET /_ping`: succeeds when the engine answers.
    public func ping() async throws {
        _ = try await send(.GET, "/_ping", versioned: false, operation: "ping the engine")
    }

    /// The API version in use: the lower of the engine's and ``maximumAPIVersion``, asked once.
    public func apiVersion() async throws -> String {
        try await negotiator.version {
            let server = try await self.version()
            return APIVersionNegotiator.lower(server.apiVersion, DockerEngine.maximumAPIVersion)
        }
    }

    // MARK: - Networks

    /// `GET /networks`, filtered by labels (`"key"` or `"key=value"`, all must match) and names
    /// (the engine matches a name filter as a substring of the name, not exactly).
    public func listNetworks(labelFilters: [String] = [], nameFilters: [String] = []) async throws -> [NetworkSummary] {
        let op = "list networks" + Self.describeFilters(labelFilters, nameFilters)
        let path = "/networks" + Self.query(["filters": Self.filters(label: labelFilters, name: nameFilters)])
        return try await get([NetworkSummary].self, path, operation: op)
    }

    /// `GET /networks/{id}`: a network by id or name.
    public func inspectNetwork(_ id: String) async throws -> NetworkInspect {
        try await get(NetworkInspect.self, "/networks/\(Self.segment(id))", operation: "inspect network \(Self.quote(id))")
    }

    /// `POST /networks/create`. Returns the new network's id.
    public func createNetwork(_ network: NetworkCreate) async throws -> String {
        let op = "create network \(Self.quote(network.name))"
        let response = try await send(.POST, "/networks/create", body: try encode(network), operation: op)
        return try decode(IDResponse.self, response, operation: op, method: .POST, path: "/networks/create").id
    }

    // MARK: - Volumes

    /// `GET /volumes`, filtered by labels (`"key"` or `"key=value"`, all must match).
    public func listVolumes(labelFilters: [String] = []) async throws -> [VolumeSummary] {
        struct List: Decodable {
            var volumes: [VolumeSummary]?
            enum CodingKeys: String, CodingKey { case volumes = "Volumes" }
        }
        let op = "list volumes" + Self.describeFilters(labelFilters, [])
        return try await get(List.self, "/volumes" + Self.query(["filters": Self.filters(label: labelFilters, name: [])]), operation: op)
            .volumes ?? []
    }

    /// `GET /volumes/{name}`.
    public func inspectVolume(_ name: String) async throws -> VolumeSummary {
        try await get(VolumeSummary.self, "/volumes/\(Self.segment(name))", operation: "inspect volume \(Self.quote(name))")
    }

    /// `POST /volumes/create`. Creating a volume that exists with the same driver is a no-op
    /// on the engine's side.
    public func createVolume(_ volume: VolumeCreate) async throws {
        _ = try await send(.POST, "/volumes/create", body: try encode(volume), operation: "create volume \(Self.quote(volume.name))")
    }

    /// `DELETE /volumes/{name}`: refused (409) while a container uses it.
    public func removeVolume(_ name: String) async throws {
        _ = try await send(.DELETE, "/volumes/\(Self.segment(name))", operation: "remove volume \(Self.quote(name))")
    }

    /// `DELETE /networks/{id}`.
    public func removeNetwork(_ id: String) async throws {
        _ = try await send(.DELETE, "/networks/\(Self.segment(id))", operation: "remove network \(Self.quote(id))")
    }

    /// `POST /networks/{id}/connect`: attaches a container, optionally with a static IPv4 address and aliases.
    public func connect(network: String, container: String, ipv4: String? = nil, aliases: [String]? = nil) async throws {
        struct Body: Encodable {
            var container: String
            var endpointConfig: DockerEndpointSettings
            enum CodingKeys: String, CodingKey {
                case container = "Container"
                case endpointConfig = "EndpointConfig"
            }
        }
        let body = Body(container: container, endpointConfig: DockerEndpointSettings(ipv4Address: ipv4, aliases: aliases))
        _ = try await send(
            .POST, "/networks/\(Self.segment(network))/connect", body: try encode(body),
            operation: "connect container \(Self.quote(container)) to network \(Self.quote(network))")
    }

    /// `POST /networks/{id}/disconnect`.
    public func disconnect(network: String, container: String, force: Bool = false) async throws {
        struct Body: Encodable {
            var container: String
            var force: Bool
            enum CodingKeys: String, CodingKey {
                case container = "Container"
                case force = "Force"
            }
        }
        _ = try await send(
            .POST, "/networks/\(Self.segment(network))/disconnect",
            body: try encode(Body(container: container, force: force)),
            operation: "disconnect container \(Self.quote(container)) from network \(Self.quote(network))")
    }

    // MARK: - Containers

    /// `GET /containers/json`, filtered by labels (`"key"` or `"key=value"`, all must match) and
    /// names (the engine matches a name filter as a regular expression on the name, unanchored).
    /// - Parameter all: include stopped containers.
    public func listContainers(all: Bool = true, labelFilters: [String] = [], nameFilters: [String] = []) async throws
        -> [ContainerSummary]
    {
        let op = "list containers" + Self.describeFilters(labelFilters, nameFilters)
        let path =
            "/containers/json"
            + Self.query(["all": all ? "true" : "false", "filters": Self.filters(label: labelFilters, name: nameFilters)])
        return try await get([ContainerSummary].self, path, operation: op)
    }

    /// `GET /containers/{id}/json`: a container by id or name.
    public func inspectContainer(_ id: String) async throws -> ContainerInspect {
        try await get(
            ContainerInspect.self, "/containers/\(Self.segment(id))/json", operation: "inspect container \(Self.quote(id))")
    }

    /// `POST /containers/create?name=`. Returns the new container's id.
    public func createContainer(name: String?, _ container: ContainerCreate) async throws -> String {
        let op = name.map { "create container \(Self.quote($0)) from image \(Self.quote(container.image))" }
            ?? "create a container from image \(Self.quote(container.image))"
        let path = "/containers/create" + Self.query(["name": name])
        let response = try await send(.POST, path, body: try encode(container), operation: op)
        return try decode(IDResponse.self, response, operation: op, method: .POST, path: path).id
    }

    /// `POST /containers/{id}/start`. Starting a running container is not an error (304).
    public func startContainer(_ id: String) async throws {
        _ = try await send(
            .POST, "/containers/\(Self.segment(id))/start", accept: [304], operation: "start container \(Self.quote(id))")
    }

    /// `POST /containers/{id}/stop`. Stopping a stopped container is not an error (304).
    /// - Parameter timeoutSeconds: grace period before SIGKILL; `nil` uses the container's own.
    public func stopContainer(_ id: String, timeoutSeconds: Int? = nil) async throws {
        _ = try await send(
            .POST, "/containers/\(Self.segment(id))/stop" + Self.query(["t": timeoutSeconds.map(String.init)]),
            accept: [304], timeout: requestTimeout + .seconds(timeoutSeconds ?? 10),
            operation: "stop container \(Self.quote(id))")
    }

    /// `POST /containers/{id}/restart`.
    public func restartContainer(_ id: String, timeoutSeconds: Int? = nil) async throws {
        _ = try await send(
            .POST, "/containers/\(Self.segment(id))/restart" + Self.query(["t": timeoutSeconds.map(String.init)]),
            timeout: requestTimeout + .seconds(timeoutSeconds ?? 10),
            operation: "restart container \(Self.quote(id))")
    }

    /// `DELETE /containers/{id}`.
    /// - Parameters:
    ///   - force: kill it first if it is running (otherwise a running container is a 409).
    ///   - removeVolumes: also remove its anonymous volumes.
    public func removeContainer(_ id: String, force: Bool = false, removeVolumes: Bool = false) async throws {
        _ = try await send(
            .DELETE,
            "/containers/\(Self.segment(id))"
                + Self.query(["force": force ? "true" : nil, "v": removeVolumes ? "true" : nil]),
            operation: "remove container \(Self.quote(id))")
    }

    /// `POST /containers/{id}/update`: changes the restart policy of an existing container in place.
    public func updateContainer(_ id: String, restartPolicy: DockerRestartPolicy) async throws {
        struct Body: Encodable {
            var restartPolicy: DockerRestartPolicy
            enum CodingKeys: String, CodingKey { case restartPolicy = "RestartPolicy" }
        }
        _ = try await send(
            .POST, "/containers/\(Self.segment(id))/update", body: try encode(Body(restartPolicy: restartPolicy)),
            operation: "update restart policy of container \(Self.quote(id))")
    }

    // MARK: - Images

    /// `GET /images/{name}/json`: the image's defaults, so callers can tell them from requested values.
    public func inspectImage(_ reference: String) async throws -> ImageInspect {
        try await get(
            ImageInspect.self, "/images/\(Self.segment(reference, allowSlash: true))/json",
            operation: "inspect image \(Self.quote(reference))")
    }

    /// Whether the image is present locally (no registry is asked).
    public func imageExists(_ reference: String) async throws -> Bool {
        do {
            _ = try await inspectImage(reference)
            return true
        } catch let error as DockerEngineError where error.isNotFound {
            return false
        }
    }

    /// `POST /images/create`: pulls `repository@digest` (or `repository:tag`), reporting the
    /// bytes fetched so far to `progress` as the engine streams them. The engine reports a
    /// failure inside a 200 stream; it is thrown like any other.
    public func pullImage(
        _ repository: String, reference: String, auth: String?, timeout: Duration = .seconds(1800),
        progress: @escaping @Sendable (PullProgress) -> Void = { _ in }
    ) async throws {
        let path = "/images/create" + Self.query(["fromImage": repository, "tag": reference])
        let op = "pull image \(Self.quote(repository + (reference.hasPrefix("sha256:") ? "@" : ":") + reference))"
        var reader = PullProgress.Reader()
        _ = try await send(
            .POST, path, headers: auth.map { ["X-Registry-Auth": $0] } ?? [:], timeout: timeout, operation: op,
            consume: { chunk in
                for update in try reader.feed(chunk.readableBytesView) { progress(update) }
            })
        if let failure = reader.failure {
            throw DockerEngineError(
                .http, status: 200, operation: op, method: "POST", path: try await versioned(path), message: failure, socketPath: socketPath)
        }
    }

    /// `POST /images/{name}/tag`: gives image `source` the name `repository:tag`.
    public func tagImage(_ source: String, repository: String, tag: String) async throws {
        _ = try await send(
            .POST, "/images/\(Self.segment(source, allowSlash: true))/tag" + Self.query(["repo": repository, "tag": tag]),
            operation: "tag image \(Self.quote(source)) as \(Self.quote(repository + ":" + tag))")
    }

    // MARK: - Exec

    /// Runs a command in a running container and waits for it: `POST /containers/{id}/exec`,
    /// `POST /exec/{id}/start` (output demultiplexed as it streams in, until the engine closes
    /// the stream), `GET /exec/{id}/json`.
    ///
    /// A command that cannot be started (not found, not executable) is not an error: the engine
    /// reports exit code 126 or 127 and its message on stderr.
    /// - Parameters:
    ///   - environment: extra `KEY=value` entries.
    ///   - privileged: give the command every capability, even ones the container lacks
    ///     (setting routes in a container's namespace without widening the container).
    ///   - timeout: deadline for the command to finish; ``requestTimeout`` by default.
    public func exec(
        container: String, command: [String], environment: [String]? = nil, user: String? = nil,
        workingDir: String? = nil, privileged: Bool = false, timeout: Duration? = nil
    ) async throws -> ExecResult {
        struct CreateBody: Encodable {
            var attachStdin = false
            var attachStdout = true
            var attachStderr = true
            var tty = false
            var cmd: [String]
            var env: [String]?
            var user: String?
            var workingDir: String?
            var privileged: Bool
            enum CodingKeys: String, CodingKey {
                case privileged = "Privileged"
                case attachStdin = "AttachStdin"
                case attachStdout = "AttachStdout"
                case attachStderr = "AttachStderr"
                case tty = "Tty"
                case cmd = "Cmd"
                case env = "Env"
                case user = "User"
                case workingDir = "WorkingDir"
            }
        }
        struct StartBody: Encodable {
            var detach = false
            var tty = false
            enum CodingKeys: String, CodingKey {
                case detach = "Detach"
                case tty = "Tty"
            }
        }
        struct ExecInspect: Decodable {
            var running: Bool?
            var exitCode: Int?
            enum CodingKeys: String, CodingKey {
                case running = "Running"
                case exitCode = "ExitCode"
            }
        }

        let commandText = command.joined(separator: " ")
        let op = "run \(Self.quote(commandText)) in container \(Self.quote(container))"
        let createPath = "/containers/\(Self.segment(container))/exec"
        let created = try await send(
            .POST, createPath,
            body: try encode(CreateBody(cmd: command, env: environment, user: user, workingDir: workingDir, privileged: privileged)),
            operation: op)
        let execID = try decode(IDResponse.self, created, operation: op, method: .POST, path: createPath).id

        let startPath = "/exec/\(Self.segment(execID))/start"
        // Fed chunk by chunk as the output arrives (in this task), checked once the stream ended.
        var demultiplexer = StdcopyDemultiplexer()
        let output: StdcopyDemultiplexer.Output
        do {
            _ = try await send(
                .POST, startPath, body: try encode(StartBody()), timeout: timeout ?? requestTimeout, operation: op,
                consume: { chunk in try demultiplexer.feed(chunk.readableBytesView) })
            output = try demultiplexer.finish()
        } catch let error as StdcopyDemultiplexer.Failure {
            throw DockerEngineError(
                .invalidResponse, operation: op, method: "POST", path: try await versioned(startPath),
                message: "\(error)", socketPath: socketPath)
        }

        // The stream ends when the process exits; the engine may record the exit code a moment later.
        let inspectPath = "/exec/\(Self.segment(execID))/json"
        var attempt = 0
        while true {
            let state = try await get(ExecInspect.self, inspectPath, operation: op)
            if state.running != true, let exitCode = state.exitCode {
                var stdout = output.stdout
                var stderr = output.stderr
                stderr.append(contentsOf: output.systemError)
                // When the command cannot be started, the engine writes its own error on the
                // *stdout* stream ("OCI runtime exec failed: …", exit code 126/127). It belongs
                // on stderr, where callers look for reasons.
                if stderr.isEmpty, exitCode == 126 || exitCode == 127,
                    stdout.starts(with: Array("OCI runtime exec failed".utf8))
                {
                    swap(&stdout, &stderr)
                }
                return ExecResult(
                    exitCode: exitCode, stdout: String(decoding: stdout, as: UTF8.self),
                    stderr: String(decoding: stderr, as: UTF8.self))
            }
            attempt += 1
            if attempt > 100 {
                throw DockerEngineError(
                    .invalidResponse, operation: op, method: "GET", path: try await versioned(inspectPath),
                    message: "the output stream ended but the engine still reports the command as running",
                    socketPath: socketPath)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: - Plumbing

    private struct IDResponse: Decodable {
        var id: String
        enum CodingKeys: String, CodingKey { case id = "Id" }
    }

    private struct ErrorBody: Decodable {
        var message: String?
    }

    private func versioned(_ path: String) async throws -> String {
        "/v\(try await apiVersion())\(path)"
    }

    private func get<T: Decodable>(_ type: T.Type, _ path: String, operation: String) async throws -> T {
        let response = try await send(.GET, path, operation: operation)
        return try decode(type, response, operation: operation, method: .GET, path: path)
    }

    /// Sends a request; returns the response if its status is 2xx or listed in `accept`, throws otherwise.
    /// With `consume`, a 2xx body is streamed to it instead of being collected.
    private func send(
        _ method: HTTPMethod, _ path: String, body: ByteBuffer? = nil, headers extraHeaders: [String: String] = [:], accept: Set<Int> = [],
        timeout: Duration? = nil, versioned: Bool = true, operation: String,
        consume: ((ByteBuffer) throws -> Void)? = nil
    ) async throws -> HTTPTransportResponse {
        let target: String
        do {
            target = versioned ? try await self.versioned(path) : path
        } catch let error as DockerEngineError {
            // Negotiation failed: report it as a failure of this operation, with its cause.
            var error = error
            error.operation = operation
            error.method = method.rawValue
            error.path = path
            throw error
        }
        var headers = HTTPHeaders()
        headers.add(name: "User-Agent", value: "converge")
        headers.add(name: "Accept", value: "application/json")
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }

        let response: HTTPTransportResponse
        do {
            response = try await http.execute(
                method, target, headers: headers, body: body, timeout: timeout ?? requestTimeout, consume: consume)
        } catch let error as HTTPTransportError {
            throw DockerEngineError(
                .transport, transport: error, operation: operation, method: method.rawValue, path: target,
                message: error.description, socketPath: socketPath)
        }

        let status = Int(response.status.code)
        if (200..<300).contains(status) || accept.contains(status) {
            return response
        }
        throw DockerEngineError(
            .http, status: status, operation: operation, method: method.rawValue, path: target,
            message: Self.errorMessage(response), socketPath: socketPath)
    }

    private func encode(_ value: some Encodable) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return ByteBuffer(bytes: try encoder.encode(value))
    }

    private func decode<T: Decodable>(
        _ type: T.Type, _ response: HTTPTransportResponse, operation: String, method: HTTPMethod, path: String
    ) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(response.body.readableBytesView))
        } catch {
            let snippet = String(response.bodyString.prefix(200))
            throw DockerEngineError(
                .invalidResponse, operation: operation, method: method.rawValue, path: path,
                message: "cannot decode \(T.self): \(Self.describe(decodingError: error)); body starts: \(snippet)",
                socketPath: socketPath)
        }
    }

    static func errorMessage(_ response: HTTPTransportResponse) -> String {
        let bytes = Data(response.body.readableBytesView)
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: bytes),
            let message = body.message?.trimmingCharacters(in: .whitespacesAndNewlines), !message.isEmpty
        {
            return message
        }
        let text = response.bodyString.trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? response.status.reasonPhrase : String(text.prefix(500))
    }

    static func describe(decodingError error: any Error) -> String {
        guard let error = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "top level" : keys.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "expected \(type) at \(path(context)): \(context.debugDescription)"
        case .valueNotFound(let type, let context):
            return "missing \(type) value at \(path(context))"
        case .keyNotFound(let key, let context):
            return "missing key \(key.stringValue) at \(path(context))"
        case .dataCorrupted(let context):
            return "invalid data at \(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    // MARK: - Encoding helpers

    static func quote(_ s: String) -> String { "\"\(s)\"" }

    static func describeFilters(_ labels: [String], _ names: [String]) -> String {
        var parts: [String] = []
        if !labels.isEmpty { parts.append("label " + labels.joined(separator: ", ")) }
        if !names.isEmpty { parts.append("name " + names.joined(separator: ", ")) }
        return parts.isEmpty ? "" : " with " + parts.joined(separator: " and ")
    }

    /// The engine's `filters` parameter: a JSON map of filter name to values; `nil` when empty.
    static func filters(label: [String], name: [String]) -> String? {
        var map: [String: [String]] = [:]
        if !label.isEmpty { map["label"] = label }
        if !name.isEmpty { map["name"] = name }
        if map.isEmpty { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(map) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// `?k=v&…` from the non-nil values, in key order; `""` when there are none.
    static func query(_ items: KeyValuePairs<String, String?>) -> String {
        let parts = items.compactMap { key, value in
            value.map { "\(percentEncode(key))=\(percentEncode($0))" }
        }
        return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
    }

    /// Percent-encodes one path segment (object ids, names, image references).
    static func segment(_ s: String, allowSlash: Bool = false) -> String {
        percentEncode(s, extra: allowSlash ? [UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "@")] : [UInt8(ascii: ":"), UInt8(ascii: "@")])
    }

    static func percentEncode(_ s: String, extra: Set<UInt8> = []) -> String {
        let hex: [Character] = Array("0123456789ABCDEF")
        var out = ""
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(Character(Unicode.Scalar(byte)))
            case _ where extra.contains(byte):
                out.append(Character(Unicode.Scalar(byte)))
            default:
                out.append("%")
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return out
    }
}

/// Asks the engine for its API version once and remembers the answer (not a failure).
actor APIVersionNegotiator {
    private let fixed: String?
    private var cached: String?
    private var inFlight: Task<String, any Error>?

    init(fixed: String?) {
        self.fixed = fixed
    }

    func version(_ fetch: @escaping @Sendable () async throws -> String) async throws -> String {
        if let fixed { return fixed }
        if let cached { return cached }
        let task: Task<String, any Error>
        if let inFlight {
            task = inFlight
        } else {
            // A task, not a child: the answer is shared by every call that asks while it is in
            // flight, so it must not end when the first of them is cancelled.
            task = Task { try await fetch() }
            inFlight = task
        }
        do {
            let value = try await task.value
            cached = value
            inFlight = nil
            return value
        } catch {
            if inFlight == task { inFlight = nil }
            throw error
        }
    }

    /// The lower of two `major.minor` versions.
    static func lower(_ a: String, _ b: String) -> String {
        func parts(_ v: String) -> [Int] { v.split(separator: ".").map { Int($0) ?? 0 } }
        return parts(a).lexicographicallyPrecedes(parts(b)) ? a : b
    }
}
