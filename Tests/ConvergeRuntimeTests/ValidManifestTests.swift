import ConvergeCore
import ConvergeDocker
import Foundation
import Testing

@Suite("Valid manifests")
struct ValidManifestTests {
    private static func file(_ path: String, _ text: String) -> SourceFile {
        SourceFile(path: path, bytes: Array(text.utf8))
    }

    private static let host = file("host.yaml", """
        apiVersion: converge.dev/v1alpha1
        kind: DockerHost
        metadata:
          name: local
        spec: {}

        """)

    @Test("the repository's manifests/ folder loads")
    func repositoryManifestsLoad() throws {
        let folder = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("manifests", isDirectory: true)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
            .sorted()
        #expect(!names.isEmpty, "no manifest in \(folder.path)")
        let files = try names.map { name in
            SourceFile(path: name, bytes: Array(try Data(contentsOf: folder.appendingPathComponent(name))))
        }

        let set: ManifestSet
        do {
            set = try ManifestSet.load(files, registry: .converge)
        } catch let error as ManifestValidationError {
            Issue.record("manifests/ does not load:\n\(error)")
            return
        }
        #expect(set.resources(ofKind: "DockerHost").count == 1)
        #expect(!set.resources(ofKind: "Network").isEmpty)
        #expect(!set.resources(ofKind: "Container").isEmpty)
        // Every network and container resolves to the one host.
        let host = try #require(set.defaultTarget(kind: "DockerHost"))
        for resource in set.resources where resource.isLiveObject {
            #expect(resource.spec.target(in: set) == host, "\(resource.id) is not on \(host)")
        }
    }

    @Test("defaults: the only DockerHost, its default socket, state running, restart policy no")
    func defaultsAreApplied() throws {
        let set = try ManifestSet.load([
            Self.host,
            Self.file("web.yaml", """
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata:
                  name: web
                spec:
                  image: busybox

                """),
        ], registry: .converge)
        let hostID = ResourceID(kind: "DockerHost", name: "local")
        let host = try #require(set[hostID]?.spec(as: DockerHostSpec.self))
        #expect(host.socketPath == "/var/run/docker.sock")

        let web = try #require(set[ResourceID(kind: "Container", name: "web")])
        let spec = try #require(web.spec(as: ContainerSpec.self))
        #expect(spec.target(in: set) == hostID)
        #expect(spec.state == "running")
        #expect(spec.restartPolicy == "no")
        #expect(spec.ports.isEmpty && spec.networks.isEmpty && spec.env.isEmpty)
        #expect(spec.command == nil && spec.healthcheck == nil)
        #expect(web.location == SourceLocation(file: "web.yaml", line: 2, column: 7))
    }

    @Test("a network without gateway, internal or driver gets bridge, not internal")
    func networkDefaults() throws {
        let set = try ManifestSet.load([
            Self.host,
            Self.file("net.yaml", """
                apiVersion: converge.dev/v1alpha1
                kind: Network
                metadata: {name: net}
                spec: {subnet: 10.20.0.0/16}

                """),
        ], registry: .converge)
        let net = try #require(set[ResourceID(kind: "Network", name: "net")]?.spec(as: NetworkSpec.self))
        #expect(net.driver == "bridge")
        #expect(net.isInternal == false)
        #expect(net.gateway == nil)
        #expect(net.subnet?.description == "10.20.0.0/16")
    }

    @Test("every problem in one file is reported together")
    func independentErrorsAreAllReported() throws {
        let web = Self.file("web.yaml", """
            apiVersion: converge.dev/v1alpha1
            kind: Container
            metadata:
              name: web
            spec:
              image: busybox
              restartPolicy: sometimes
              state: paused
              ports:
                - containerPort: 70000

            """)
        let error = #expect(throws: ManifestValidationError.self) {
            _ = try ManifestSet.load([Self.host, web], registry: .converge)
        }
        let failure = try #require(error)
        let diagnostics = failure.diagnostics
        #expect(diagnostics.count == 3, "\(failure)")
        #expect(diagnostics.map(\.location) == [
            SourceLocation(file: "web.yaml", line: 7, column: 18),
            SourceLocation(file: "web.yaml", line: 8, column: 10),
            SourceLocation(file: "web.yaml", line: 10, column: 22),
        ])
        #expect(diagnostics.allSatisfy { $0.resource == ResourceID(kind: "Container", name: "web") })
    }

    @Test("problems in several files are reported together, sorted by place")
    func errorsAcrossFilesAreAllReported() throws {
        let net = Self.file("net.yaml", """
            apiVersion: converge.dev/v1alpha1
            kind: Network
            metadata: {name: net}
            spec: {subnet: 10.20.0.0/33}

            """)
        let web = Self.file("a-web.yaml", """
            apiVersion: converge.dev/v1alpha1
            kind: Container
            metadata: {name: web}
            spec: {image: busybox, state: paused}

            """)
        let error = #expect(throws: ManifestValidationError.self) {
            _ = try ManifestSet.load([net, Self.host, web], registry: .converge)
        }
        let failure = try #require(error)
        #expect(failure.diagnostics.map { $0.location?.file } == ["a-web.yaml", "net.yaml"], "\(failure)")
    }
}
