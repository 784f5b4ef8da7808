import ConvergeCore
import Foundation
import Testing

@testable import ConvergeDocker

/// Image references as Docker reads them, the pull progress stream, and registry credentials.
@Suite struct ImageReferenceTests {
    @Test func referencesSplitIntoRegistryRepositoryTagAndDigest() throws {
        let digest = "sha256:" + String(repeating: "ab", count: 32)
        let full = try #require(ImageReference("registry.example:5000/team/app:1.4@\(digest)"))
        #expect(full.registry == "registry.example:5000")
        #expect(full.repository == "registry.example:5000/team/app")
        #expect(full.tag == "1.4")
        #expect(full.digest == digest)
        #expect(full.pinned(to: digest) == "registry.example:5000/team/app:1.4@\(digest)")

        let hub = try #require(ImageReference("busybox"))
        #expect(hub.registry == "docker.io")
        #expect(hub.tagged == "busybox:latest")
        #expect(hub.canonicalRepository == "busybox")
        #expect(ImageReference("docker.io/library/busybox:1")?.canonicalRepository == "busybox")
        #expect(ImageReference("team/app:2")?.registry == "docker.io")
        #expect(ImageReference("localhost/app")?.registry == "localhost")
        #expect(ImageReference("127.0.0.1:5000/app")?.tag == nil, "a port is not a tag")

        #expect(full.registryPath == "team/app")
        #expect(hub.registryHost == "registry-1.docker.io" && hub.registryPath == "library/busybox")
        #expect(ImageReference("team/app:2")?.registryPath == "team/app")
        #expect(
            RegistryClient.parameters(of: #"Bearer realm="https://auth.example/token",service="registry.example",scope="x:y:pull""#)
                == ["realm": "https://auth.example/token", "service": "registry.example", "scope": "x:y:pull"])

        for bad in ["", "App:1", "app:", "app@sha256:12", "/app", "app//x", "app:1 2", "registry.example:5000/Team/app"] {
            #expect(ImageReference(bad) == nil, "\(bad)")
        }
        #expect(ImageReference("Registry.Example:5000/team/app") != nil, "a host name may have capitals")
    }

    @Test func theDigestOfARepositoryIsFoundAmongAnImagesRepoDigests() {
        let mine = "sha256:" + String(repeating: "1", count: 64)
        let other = "sha256:" + String(repeating: "2", count: 64)
        let reference = ImageReference("127.0.0.1:5000/team/app:1")!
        #expect(reference.digest(among: ["127.0.0.1:5000/other@\(other)", "127.0.0.1:5000/team/app@\(mine)"]) == mine)
        #expect(reference.digest(among: ["127.0.0.1:5000/other@\(other)"]) == nil, "another repository's digest is not this tag's")
        #expect(ImageReference("busybox:1")!.digest(among: ["busybox@\(mine)"]) == mine)

        // What a container observes: pinned when its image came from the registry, as written otherwise.
        #expect(
            ContainerMapping.observedImage("127.0.0.1:5000/team/app:1", repoDigests: ["127.0.0.1:5000/team/app@\(mine)"])
                == "127.0.0.1:5000/team/app:1@\(mine)")
        #expect(
            ContainerMapping.observedImage("converge-lab/busybox:1", repoDigests: ["127.0.0.1:5000/team/app@\(mine)"])
                == "converge-lab/busybox:1")
    }

    @Test func pullProgressIsSummedOverLayersWhateverTheChunksCuts() throws {
        let stream = """
            {"status":"Pulling from team/app","id":"1"}
            {"status":"Already exists","id":"aaa"}
            {"status":"Downloading","progressDetail":{"current":500000,"total":2000000},"id":"bbb"}
            {"status":"Downloading","progressDetail":{"current":2000000,"total":2000000},"id":"bbb"}
            {"status":"Pull complete","id":"bbb"}
            {"status":"Digest: sha256:00"}

            """
        var reader = PullProgress.Reader()
        let bytes = Array(stream.utf8)
        var updates: [PullProgress] = []
        for start in stride(from: 0, to: bytes.count, by: 7) {
            updates += try reader.feed(bytes[start..<min(start + 7, bytes.count)])
        }
        #expect(updates.count == 4)
        #expect(updates[1].summary == "0.5 of 2.0 MB, 1 of 2 layers")
        #expect(updates.last?.summary == "2.0 of 2.0 MB, 2 of 2 layers")
        #expect(reader.failure == nil)

        var failing = PullProgress.Reader()
        _ = try failing.feed(Array(#"{"error":"manifest unknown","errorDetail":{"message":"manifest unknown"}}"#.utf8) + [10])
        #expect(failing.failure == "manifest unknown")
    }

    @Test func credentialsAreReadFromADockerConfigOrTheEnvironmentAndNeverShown() throws {
        let id = ResourceID(kind: RegistryCredentialsSpec.kind, name: "lab")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cvt-creds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("config.json")
        let encoded = Data("robot:example-only".utf8).base64EncodedString()
        try #"{"auths": {"https://127.0.0.1:5000/v2/": {"auth": "\#(encoded)"}}, "credHelpers": {"ghcr.io": "desktop"}}"#
            .write(to: file, atomically: true, encoding: .utf8)

        let fromFile = try DockerConfigFile.credentials(for: "127.0.0.1:5000", file: file.path, id: id)
        #expect(fromFile.username == "robot" && fromFile.password == "example-only")
        #expect(!fromFile.description.contains("example-only"))
        let header = try #require(
            Data(base64Encoded: fromFile.header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")))
        #expect(
            String(decoding: header, as: UTF8.self) == #"{"password":"example-only","serveraddress":"127.0.0.1:5000","username":"robot"}"#)

        #expect(throws: RegistryAuthError.self) { try DockerConfigFile.credentials(for: "ghcr.io", file: file.path, id: id) }
        do {
            _ = try DockerConfigFile.credentials(for: "ghcr.io", file: file.path, id: id)
        } catch {
            #expect("\(error)".contains("credential helper 'desktop', which Converge does not run"))
        }

        let set = try manifestSet(
            """
            apiVersion: converge.dev/v1alpha1
            kind: RegistryCredentials
            metadata: {name: lab}
            spec: {registry: "127.0.0.1:5000", env: {username: CVT_USER, password: CVT_PASSWORD}}
            """)
        let spec = try #require(set[id]?.spec(as: RegistryCredentialsSpec.self))
        #expect(try spec.load(as: id, environment: ["CVT_USER": "robot", "CVT_PASSWORD": "example-only"]).password == "example-only")
        #expect(throws: RegistryAuthError.self) { try spec.load(as: id, environment: ["CVT_USER": "robot"]) }
    }

    @Test func badCredentialsManifestsAreReportedWhereTheyAreWritten() {
        func problems(_ spec: String) -> [String] {
            do {
                _ = try manifestSet("apiVersion: converge.dev/v1alpha1\nkind: RegistryCredentials\nmetadata: {name: lab}\nspec: \(spec)\n")
                return []
            } catch let error as ManifestValidationError {
                return error.diagnostics.map(\.message)
            } catch {
                return ["\(error)"]
            }
        }
        #expect(problems("{registry: r.example}").contains { $0.contains("give exactly one of dockerConfig and env") })
        #expect(
            problems("{registry: r.example, dockerConfig: config.json}").contains { $0.contains("'config.json' is not an absolute path") })
        #expect(problems("{registry: https://r.example/v2, dockerConfig: /c.json}").contains { $0.contains("is not a registry host") })
        let twice = try? manifestSet(
            """
            apiVersion: converge.dev/v1alpha1
            kind: RegistryCredentials
            metadata: {name: one}
            spec: {registry: r.example, dockerConfig: /c.json}
            ---
            apiVersion: converge.dev/v1alpha1
            kind: RegistryCredentials
            metadata: {name: two}
            spec: {registry: r.example, dockerConfig: /d.json}
            """)
        #expect(twice == nil, "two credentials for one registry are refused")
    }
}
