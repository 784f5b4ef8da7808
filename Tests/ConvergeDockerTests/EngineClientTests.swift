import ConvergeHTTP
import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import ConvergeDocker

/// Talks to the real dockerd on /var/run/docker.sock. Every object is named with a unique
/// `cvt-eng-<random>` prefix and removed by that prefix when the test ends, pass or fail.
/// A missing socket is a failure, not a skip.
@Suite("Docker Engine client")
struct EngineClientTests {
    static let image = "converge-lab/busybox:1"
    let engine = DockerEngine(requestTimeout: .seconds(30))

    // MARK: - Against the engine

    @Test func socketIsPresent() throws {
        #expect(
            FileManager.default.fileExists(atPath: DockerEngine.defaultSocketPath),
            "dockerd must be running with its socket at \(DockerEngine.defaultSocketPath)")
    }

    @Test func pingAndVersion() async throws {
        try await engine.ping()
        let version = try await engine.version()
        #expect(!version.apiVersion.isEmpty)
        #expect(version.os == "linux")
        let negotiated = try await engine.apiVersion()
        #expect(negotiated == APIVersionNegotiator.lower(version.apiVersion, DockerEngine.maximumAPIVersion))
    }

    @Test func networkCreateListInspectRemove() async throws {
        try await withScratch { scratch in
            let (id, subnet) = try await scratch.createNetwork(suffix: "net")
            // A second, differently labelled network must not show up in the label query.
            let other = try await engine.createNetwork(
                NetworkCreate(name: scratch.name("other"), labels: ["converge.test/run": scratch.prefix + "-other"]))

            let listed = try await engine.listNetworks(labelFilters: [scratch.label])
            #expect(listed.map(\.id) == [id])
            #expect(listed.first?.name == scratch.name("net"))
            #expect(listed.first?.labels?["converge.test/run"] == scratch.prefix)

            let byName = try await engine.listNetworks(nameFilters: [scratch.prefix])
            #expect(Set(byName.map(\.id)) == [id, other])

            let inspected = try await engine.inspectNetwork(id)
            #expect(inspected.name == scratch.name("net"))
            #expect(inspected.driver == "bridge")
            #expect(inspected.ipam?.config?.first?.subnet == subnet)

            try await engine.removeNetwork(other)
            await #expect(throws: DockerEngineError.self) { try await engine.inspectNetwork(other) }
        }
    }

    @Test func containerWithStaticIPRunsExecsAndConflicts() async throws {
        try await withScratch { scratch in
            let (_, subnet) = try await scratch.createNetwork(suffix: "net")
            let networkName = scratch.name("net")
            let ip = subnet.replacingOccurrences(of: ".0/24", with: ".10")
            let name = scratch.name("box")
            let labels = [scratch.labelKey: scratch.prefix, "converge.test/role": "box"]
            let create = ContainerCreate(
                image: Self.image, cmd: ["sleep", "3600"], env: ["GREETING=hi"], labels: labels,
                hostConfig: DockerHostConfig(networkMode: networkName, restartPolicy: .no),
                networkingConfig: DockerNetworkingConfig(endpointsConfig: [
                    networkName: DockerEndpointSettings(ipv4Address: ip, aliases: ["box"])
                ]))
            let id = try await engine.createContainer(name: name, create)
            try await engine.startContainer(id)
            try await engine.startContainer(id)  // already running: 304, not an error

            let inspected = try await engine.inspectContainer(name)
            #expect(inspected.id == id)
            #expect(inspected.plainName == name)
            #expect(inspected.state?.running == true)
            #expect(inspected.state?.status == "running")
            #expect(inspected.config?.labels?["converge.test/role"] == "box")
            #expect(inspected.config?.env?.contains("GREETING=hi") == true)
            #expect(inspected.config?.cmd == ["sleep", "3600"])
            let endpoint = try #require(inspected.networkSettings?.networks?[networkName])
            #expect(endpoint.ipAddress == ip)
            #expect(endpoint.ipamConfig?.ipv4Address == ip)
            #expect(endpoint.aliases?.contains("box") == true)

            let listed = try await engine.listContainers(all: true, labelFilters: [scratch.label])
            #expect(listed.map(\.id) == [id])
            #expect(listed.first?.name == name)
            #expect(listed.first?.state == "running")
            #expect(listed.first?.networkSettings?.networks?[networkName]?.ipAddress == ip)

            let result = try await engine.exec(container: id, command: ["sh", "-c", "echo hello; echo err >&2; exit 3"])
            #expect(result == ExecResult(exitCode: 3, stdout: "hello\n", stderr: "err\n"))

            // Output larger than one frame and than a socket buffer.
            let big = try await engine.exec(container: id, command: ["sh", "-c", "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done"])
            #expect(big.exitCode == 0)
            #expect(big.stdout.split(separator: "\n").count == 20000)
            #expect(big.stdout.hasSuffix("line-19999\n"))

            let missing = try await engine.exec(container: id, command: ["/no/such/binary"])
            #expect(missing.exitCode == 126 || missing.exitCode == 127)
            #expect(!missing.stderr.isEmpty)

            // 50 concurrent calls, each on its own connection.
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<50 {
                    group.addTask { try await engine.inspectContainer(id).id }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(ids.count == 50)
            #expect(ids.allSatisfy { $0 == id })

            // A second container with the same name is a conflict, and says so.
            let duplicate = await #expect(throws: DockerEngineError.self) {
                try await engine.createContainer(name: name, ContainerCreate(image: Self.image, labels: labels))
            }
            #expect(duplicate?.isConflict == true)
            #expect(duplicate?.isTransient == false)
            #expect(duplicate?.description.contains(name) == true)
            #expect(duplicate?.message.contains("already in use") == true)

            // Removing a running container without force is a conflict too.
            let running = await #expect(throws: DockerEngineError.self) { try await engine.removeContainer(id) }
            #expect(running?.isConflict == true)

            try await engine.updateContainer(id, restartPolicy: .onFailure(maximumRetryCount: 2))
            let updated = try await engine.inspectContainer(id)
            #expect(updated.hostConfig?.restartPolicy == .onFailure(maximumRetryCount: 2))

            try await engine.stopContainer(id, timeoutSeconds: 1)
            try await engine.stopContainer(id, timeoutSeconds: 1)  // already stopped: 304, not an error
            let stopped = try await engine.inspectContainer(id)
            #expect(stopped.state?.running == false)

            try await engine.removeContainer(id)
            let gone = await #expect(throws: DockerEngineError.self) { try await engine.inspectContainer(id) }
            #expect(gone?.isNotFound == true)
        }
    }

    @Test func connectAndDisconnect() async throws {
        try await withScratch { scratch in
            let (_, subnetA) = try await scratch.createNetwork(suffix: "a")
            let (networkB, subnetB) = try await scratch.createNetwork(suffix: "b")
            let id = try await engine.createContainer(
                name: scratch.name("box"),
                ContainerCreate(
                    image: Self.image, cmd: ["sleep", "3600"], labels: [scratch.labelKey: scratch.prefix],
                    hostConfig: DockerHostConfig(networkMode: scratch.name("a"))))
            try await engine.startContainer(id)
            let ipB = subnetB.replacingOccurrences(of: ".0/24", with: ".20")
            try await engine.connect(network: networkB, container: id, ipv4: ipB, aliases: ["second"])

            let inspected = try await engine.inspectContainer(id)
            #expect(inspected.networkSettings?.networks?[scratch.name("b")]?.ipAddress == ipB)
            let onA = inspected.networkSettings?.networks?[scratch.name("a")]?.ipAddress ?? ""
            #expect(onA.hasPrefix(subnetA.replacingOccurrences(of: ".0/24", with: ".")))

            let network = try await engine.inspectNetwork(networkB)
            #expect(network.containers?[id]?.ipv4Address == ipB + "/24")

            try await engine.disconnect(network: networkB, container: id, force: false)
            let after = try await engine.inspectContainer(id)
            #expect(after.networkSettings?.networks?[scratch.name("b")] == nil)
        }
    }

    @Test func images() async throws {
        #expect(try await engine.imageExists(Self.image))
        #expect(try await engine.imageExists("converge-lab/no-such-image:missing") == false)
        let image = try await engine.inspectImage(Self.image)
        #expect(image.id.hasPrefix("sha256:"))
        #expect(image.repoTags?.contains(Self.image) == true)
        #expect(image.config?.cmd != nil)
    }

    @Test func removingMissingContainerIsNotFound() async throws {
        let name = "cvt-eng-missing-\(UInt32.random(in: 0...UInt32.max))"
        let error = await #expect(throws: DockerEngineError.self) {
            try await engine.removeContainer(name, force: true)
        }
        let e = try #require(error)
        #expect(e.isNotFound)
        #expect(!e.isConflict)
        #expect(!e.isTransient)
        #expect(e.status == 404)
        #expect(e.message.contains("No such container"))
        #expect(e.description.contains("remove container \"\(name)\""))
        #expect(e.description.contains("DELETE /v1.41/containers/\(name)"))
    }

    @Test func missingSocketIsAClearPermanentError() async throws {
        let engine = DockerEngine(socketPath: "/tmp/cvt-eng-no-such-\(UInt32.random(in: 0...UInt32.max)).sock")
        let error = await #expect(throws: DockerEngineError.self) { try await engine.ping() }
        let e = try #require(error)
        #expect(e.code == .transport)
        #expect(e.transport?.code == .socketNotFound)
        #expect(e.transport?.endpoint == engine.socketPath)
        #expect(!e.isTransient)
        #expect(e.description.contains("ping the engine"))
        #expect(e.description.contains(engine.socketPath))
    }

    @Test func slowResponseHitsTheDeadline() async throws {
        try await withScratch { scratch in
            let (_, _) = try await scratch.createNetwork(suffix: "net")
            let id = try await engine.createContainer(
                name: scratch.name("slow"),
                ContainerCreate(
                    image: Self.image, cmd: ["sleep", "3600"], labels: [scratch.labelKey: scratch.prefix],
                    hostConfig: DockerHostConfig(networkMode: scratch.name("net"))))
            try await engine.startContainer(id)
            let error = await #expect(throws: DockerEngineError.self) {
                try await engine.exec(container: id, command: ["sleep", "10"], timeout: .milliseconds(500))
            }
            #expect(error?.transport?.code == .deadlineExceeded)
            #expect(error?.transport?.timeout == .milliseconds(500))
            #expect(error?.isTransient == true)
        }
    }

    @Test func cancellationStopsAWaitingCall() async throws {
        try await withScratch { scratch in
            let id = try await engine.createContainer(
                name: scratch.name("cancel"),
                ContainerCreate(
                    image: Self.image, cmd: ["sleep", "3600"], labels: [scratch.labelKey: scratch.prefix],
                    hostConfig: DockerHostConfig(networkMode: "none")))
            try await engine.startContainer(id)
            let engine = self.engine
            let task = Task { try await engine.exec(container: id, command: ["sleep", "10"]) }
            try await Task.sleep(for: .milliseconds(300))
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
        }
    }

    @Test func theTransportCapsBodiesAndLeavesStatusesToTheClient() async throws {
        let capped = HTTPTransport.unixSocket(path: DockerEngine.defaultSocketPath, maxResponseBodySize: 16)
        let error = await #expect(throws: HTTPTransportError.self) {
            try await capped.execute(.GET, "/version", timeout: .seconds(10))
        }
        #expect(error?.code == .responseTooLarge)
        #expect(error?.isTransient == false)
        // Streamed bodies count against the cap too.
        var streamed = 0
        await #expect(throws: HTTPTransportError.self) {
            try await capped.execute(.GET, "/version", timeout: .seconds(10)) { streamed += $0.readableBytes }
        }
        #expect(streamed <= 16)

        let transport = HTTPTransport.unixSocket(path: DockerEngine.defaultSocketPath)
        let missing = try await transport.execute(.GET, "/v1.41/containers/cvt-eng-no-such-container/json", timeout: .seconds(10))
        #expect(missing.status == .notFound)
        #expect(missing.bodyString.contains("No such container"))
        var chunks = ByteBuffer()
        let version = try await transport.execute(.GET, "/version", timeout: .seconds(10)) { chunk in
            var chunk = chunk
            chunks.writeBuffer(&chunk)
        }
        #expect(version.status == .ok)
        #expect(version.body.readableBytes == 0, "a streamed body is handed to the consumer, not collected")
        #expect(String(buffer: chunks).contains("ApiVersion"))
    }

    // MARK: - Pure

    @Test func transportFailuresAreClassified() {
        for code in [HTTPTransportError.Code.connectionRefused, .connectTimeout, .deadlineExceeded, .connectionClosed, .unavailable] {
            #expect(HTTPTransportError(code, endpoint: "e").isTransient, "\(code)")
        }
        for code in [HTTPTransportError.Code.socketNotFound, .permissionDenied, .responseTooLarge, .invalidAddress, .tls] {
            #expect(!HTTPTransportError(code, endpoint: "e").isTransient, "\(code)")
        }
        func engineError(status: Int, message: String = "") -> DockerEngineError {
            DockerEngineError(.http, status: status, operation: "op", method: "GET", path: "/", message: message, socketPath: "s")
        }
        #expect(engineError(status: 503).isTransient)
        #expect(!engineError(status: 404).isTransient)
        #expect(!engineError(status: 409).isTransient)
        #expect(!engineError(status: 500, message: "No such container: x").isTransient)
    }

    @Test func demultiplexesFramesSplitAnywhere() throws {
        func frame(_ stream: UInt8, _ text: String) -> [UInt8] {
            let bytes = Array(text.utf8)
            let n = UInt32(bytes.count)
            return [stream, 0, 0, 0, UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
                + bytes
        }
        let stream = frame(1, "hel") + frame(2, "oops\n") + frame(1, "lo\n") + frame(1, "")
        for split in 0...stream.count {
            var demux = StdcopyDemultiplexer()
            try demux.feed(stream[..<split])
            try demux.feed(stream[split...])
            let output = try demux.finish()
            #expect(String(decoding: output.stdout, as: UTF8.self) == "hello\n")
            #expect(String(decoding: output.stderr, as: UTF8.self) == "oops\n")
        }
        #expect(throws: StdcopyDemultiplexer.Failure.self) {
            try StdcopyDemultiplexer.demultiplex(frame(1, "abc").dropLast())
        }
        #expect(throws: StdcopyDemultiplexer.Failure.self) {
            try StdcopyDemultiplexer.demultiplex(frame(7, "abc"))
        }
    }

    @Test func encodesFiltersAndPaths() {
        #expect(DockerEngine.filters(label: [], name: []) == nil)
        #expect(
            DockerEngine.filters(label: ["a=b", "c"], name: ["x"]) == #"{"label":["a=b","c"],"name":["x"]}"#)
        #expect(DockerEngine.query(["all": "true", "filters": #"{"label":["a=b"]}"#, "skip": nil])
            == "?all=true&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D")
        #expect(DockerEngine.segment("converge-lab/busybox:1", allowSlash: true) == "converge-lab/busybox:1")
        #expect(DockerEngine.segment("a/b c") == "a%2Fb%20c")
        #expect(APIVersionNegotiator.lower("1.43", "1.41") == "1.41")
        #expect(APIVersionNegotiator.lower("1.40", "1.41") == "1.40")
        #expect(APIVersionNegotiator.lower("1.9", "1.41") == "1.9")
    }

    @Test func encodesCreateRequestsTheEngineWay() throws {
        let create = ContainerCreate(
            image: "img", exposedPorts: ["80/tcp"],
            healthcheck: DockerHealthcheck(test: ["CMD", "true"], interval: .seconds(2)),
            hostConfig: DockerHostConfig(
                portBindings: ["80/tcp": [DockerPortBinding(hostPort: "8080")]], restartPolicy: .unlessStopped))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(create), as: UTF8.self)
        #expect(
            json
                == #"{"ExposedPorts":{"80\/tcp":{}},"Healthcheck":{"Interval":2000000000,"Test":["CMD","true"]},"HostConfig":{"PortBindings":{"80\/tcp":[{"HostPort":"8080"}]},"RestartPolicy":{"Name":"unless-stopped"}},"Image":"img"}"#
        )
        // The engine sends null for empty collections and for unpublished ports.
        let inspect = #"{"Id":"x","Name":"/n","Config":{"Cmd":null,"Env":null,"Labels":null,"ExposedPorts":{"80/tcp":{}}},"HostConfig":{"PortBindings":{"80/tcp":null},"CapAdd":null},"State":{"Status":"exited","Running":false,"ExitCode":0},"NetworkSettings":{"Networks":{"n":{"IPAMConfig":null,"Aliases":null,"IPAddress":""}}}}"#
        let decoded = try JSONDecoder().decode(ContainerInspect.self, from: Data(inspect.utf8))
        #expect(decoded.plainName == "n")
        #expect(decoded.config?.exposedPorts == ["80/tcp"])
        #expect(decoded.hostConfig?.portBindings?["80/tcp"] == [])
        #expect(decoded.networkSettings?.networks?["n"]?.ipamConfig == nil)
    }

    // MARK: - Scratch objects

    /// Runs `body` with a unique prefix and removes every container and network carrying that
    /// prefix afterwards, whether `body` succeeded or threw.
    func withScratch(_ body: (Scratch) async throws -> Void) async throws {
        let scratch = Scratch(engine: engine)
        do {
            try await body(scratch)
        } catch {
            await scratch.removeAll()
            throw error
        }
        await scratch.removeAll()
    }

    struct Scratch: Sendable {
        let engine: DockerEngine
        let prefix = "cvt-eng-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        let labelKey = "converge.test/run"
        var label: String { "\(labelKey)=\(prefix)" }

        func name(_ suffix: String) -> String { "\(prefix)-\(suffix)" }

        /// Creates a labelled bridge network `<prefix>-<suffix>` on an unused 10.231.x.0/24.
        func createNetwork(suffix: String) async throws -> (id: String, subnet: String) {
            var lastError: (any Error)?
            for _ in 0..<8 {
                let subnet = "10.231.\(Int.random(in: 1...254)).0/24"
                let gateway = subnet.replacingOccurrences(of: ".0/24", with: ".1")
                do {
                    let id = try await engine.createNetwork(
                        NetworkCreate(
                            name: name(suffix), labels: [labelKey: prefix],
                            ipam: DockerIPAM(config: [DockerIPAMPool(subnet: subnet, gateway: gateway)])))
                    return (id, subnet)
                } catch let error as DockerEngineError where error.message.contains("overlap") {
                    lastError = error  // another network holds this range: pick again
                }
            }
            throw lastError!
        }

        /// Removes every container, then every network, whose name starts with the prefix.
        /// Retries a few times so that one transient failure does not leave objects behind.
        func removeAll() async {
            var lastError: (any Error)?
            for attempt in 0..<5 {
                do {
                    for container in try await engine.listContainers(all: true, nameFilters: [prefix])
                    where container.name?.hasPrefix(prefix) == true {
                        try await ignoringNotFound { try await engine.removeContainer(container.id, force: true) }
                    }
                    for network in try await engine.listNetworks(nameFilters: [prefix])
                    where network.name.hasPrefix(prefix) {
                        try await ignoringNotFound { try await engine.removeNetwork(network.id) }
                    }
                    return
                } catch {
                    lastError = error
                    try? await Task.sleep(for: .milliseconds(200 * (attempt + 1)))
                }
            }
            Issue.record("cleanup of \(prefix) failed: \(lastError.map { "\($0)" } ?? "?")")
        }

        private func ignoringNotFound(_ body: () async throws -> Void) async throws {
            do {
                try await body()
            } catch let error as DockerEngineError where error.isNotFound {
            }
        }
    }
}
