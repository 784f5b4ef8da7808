import Foundation
import Testing

/// The tests' Docker registry (scripts/registry.sh: Debian's docker-registry on loopback, with
/// TLS and htpasswd auth), and the images a test pushes to it under its lab's prefix.
struct TestRegistry {
    /// `127.0.0.1:PORT`.
    let address: String
    let user: String
    let password: String
    /// The registry's log, one line per request it answered.
    let log: String
    /// A docker CLI configuration logged in to the registry, for pushing.
    let dockerConfig: URL

    /// The running registry; without one the test fails (it never skips).
    static func running(in lab: Lab) async throws -> TestRegistry {
        let environment = ProcessInfo.processInfo.environment
        guard let address = environment["CONVERGE_TEST_REGISTRY"], let user = environment["CONVERGE_TEST_REGISTRY_USER"],
            let passwordFile = environment["CONVERGE_TEST_REGISTRY_PASSWORD_FILE"], let log = environment["CONVERGE_TEST_REGISTRY_LOG"],
            let password = try? String(contentsOfFile: passwordFile, encoding: .utf8)
        else {
            Issue.record("CONVERGE_TEST_REGISTRY is not set: run `eval \"$(scripts/registry.sh)\"` first (scripts/test.sh does)")
            throw MissingComponent(name: "the Docker registry")
        }
        let registry = TestRegistry(
            address: address, user: user, password: password.trimmingCharacters(in: .whitespacesAndNewlines), log: log,
            dockerConfig: lab.directory.appendingPathComponent("docker-cli"))
        try FileManager.default.createDirectory(at: registry.dockerConfig, withIntermediateDirectories: true)
        try registry.writeDockerConfig(to: registry.dockerConfig.appendingPathComponent("config.json"))
        return registry
    }

    /// A file in docker's config.json format with this registry's credentials (or `password`).
    func writeDockerConfig(to file: URL, password: String? = nil) throws {
        let auth = Data("\(user):\(password ?? self.password)".utf8).base64EncodedString()
        try #"{"auths": {"\#(address)": {"auth": "\#(auth)"}}}"#.write(to: file, atomically: true, encoding: .utf8)
    }

    /// Builds a new image from the busybox lab image (distinct by a label), pushes it as
    /// `reference`, removes it from the host (so using it means pulling it) and returns its
    /// manifest digest.
    @discardableResult
    func pushNewImage(as reference: String, variant: String) async throws -> String {
        let context = dockerConfig.deletingLastPathComponent().appendingPathComponent("build-\(variant)")
        try FileManager.default.createDirectory(at: context, withIntermediateDirectories: true)
        try "FROM converge-lab/busybox:1\n".write(to: context.appendingPathComponent("Dockerfile"), atomically: true, encoding: .utf8)
        let build = try await run("docker", ["build", "-q", "-t", reference, "--label", "converge.test/variant=\(variant)", context.path])
        try #require(build.exitCode == 0, "docker build: \(build.stderr)")
        let push = try await run("docker", ["--config", dockerConfig.path, "push", reference])
        try #require(push.exitCode == 0, "docker push: \(push.stderr)")
        let digest = try #require(push.stdout.split(separator: " ").first { $0.hasPrefix("sha256:") }.map(String.init))
        _ = try await run("docker", ["rmi", "-f", reference])
        return digest
    }

    /// How many manifest requests (HEAD or GET) for `repository` the registry has answered.
    func manifestRequests(for repository: String) throws -> Int {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let path = "/v2/\(repository)/manifests/"
        return text.split(separator: "\n").filter {
            $0.contains("msg=\"response completed\"") && $0.contains(path)
                && ($0.contains("http.request.method=HEAD") || $0.contains("http.request.method=GET"))
        }.count
    }
}
