import AsyncHTTPClient
import ConvergeDocker
import ConvergeTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

/// A lab for rollouts: a DockerHost, one bridge network, and `Rollout` manifests whose
/// replicas (busybox httpd) serve their version on `/` and `{"healthy": …}` on `/status.json`.
struct RolloutLab {
    let lab: Lab

    static func with(_ body: (RolloutLab) async throws -> Void) async throws {
        try await Lab.with { lab in
            try await body(RolloutLab(lab: lab))
            // The entry points' socket folders of this instance.
            try? FileManager.default.removeItem(atPath: "/run/converge/entrypoints/\(lab.instance)")
        }
    }

    var network: String { "\(lab.prefix)-app" }

    func name(_ service: String) -> String { "\(lab.prefix)-\(service)" }

    var base: String {
        localDockerNetwork(network, subnet: "\(lab.subnetA)0/24")
            + "\n---\napiVersion: converge.dev/v1alpha1\nkind: Network\nmetadata: {name: \(otherNetwork)}\nspec: {subnet: \(lab.subnetB)0/24}"
    }

    /// A second network, for a version that moves.
    var otherNetwork: String { "\(lab.prefix)-app2" }

    /// A rollout of `service` at `version`; `healthy: false` makes its post-promotion analysis fail.
    func rollout(
        _ service: String, version: String, healthy: Bool = true, drainDelay: String = "1s", autoPromote: Bool = true,
        analysisCount: Int = 3
    ) -> String {
        """
        apiVersion: converge.dev/v1alpha1
        kind: Rollout
        metadata: {name: \(name(service))}
        spec:
          image: converge-lab/busybox:1
          command: [sh, -c, 'echo "$VERSION" > /www/index.html && printf "{\\"healthy\\": %s}" "$HEALTHY" > /www/status.json && exec httpd -f -p 8080 -h /www']
          env: {VERSION: \(version), HEALTHY: "\(healthy)"}
          replicas: 2
          port: 8080
          networks: [\(network)]
          entryPoint: {port: 80}
          readiness: {path: /status.json, timeout: 30s}
          postPromotion:
            interval: 300ms
            count: \(analysisCount)
            checks:
              - http: {path: /status.json, status: 200, field: healthy, equals: true}
          drainDelay: \(drainDelay)
          autoPromote: \(autoPromote)
        """
    }

    func write(_ documents: [String]) throws {
        try lab.write(["manifests.yaml": ([base] + documents).joined(separator: "\n---\n")], into: "repo")
    }

    /// The entry point's address on the lab network.
    func entryAddress(_ service: String) async throws -> String {
        let inspect = try await lab.engine.inspectContainer("\(name(service))-entry")
        return try #require(inspect.networkSettings?.networks?[network]?.ipAddress)
    }

    /// The names of the lab's running replicas of `service` (entry point excluded).
    func replicas(_ service: String) async throws -> [String] {
        try await lab.managedContainers().compactMap(\.name).filter { $0.hasPrefix(name(service) + "-") && !$0.hasSuffix("-entry") }
            .sorted()
    }
}

/// A client sending GET / to an entry point at a steady rate, recording every answer.
final class TrafficClient: Sendable {
    struct Answer: Sendable {
        var at: Date
        /// The body (a version), or nil for a failed request.
        var body: String?
        var error: String?
    }

    let url: String
    let interval: Duration
    private let answers = Mutex<[Answer]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(address: String, port: Int = 80, requestsPerSecond: Int = 200) {
        url = "http://\(address):\(port)/"
        interval = .microseconds(1_000_000 / requestsPerSecond)
    }

    func start() {
        let running = Task { [self] in
            let clock = ContinuousClock()
            var next = clock.now
            while !Task.isCancelled {
                next += interval
                let started = Date()
                do {
                    let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(2))
                    let body = String(buffer: try await response.body.collect(upTo: 4096)).trimmingCharacters(in: .whitespacesAndNewlines)
                    let answer =
                        response.status.code == 200
                        ? Answer(at: started, body: body) : Answer(at: started, body: nil, error: "status \(response.status.code)")
                    record(answer)
                } catch {
                    // The request stop() cut short is not an answer.
                    if Task.isCancelled { break }
                    record(Answer(at: started, body: nil, error: "\(error)"))
                }
                try? await Task.sleep(until: next)
            }
        }
        task.withLock { $0 = running }
    }

    private func record(_ answer: Answer) {
        answers.withLock { $0.append(answer) }
    }

    /// Stops and returns every answer, in order.
    func stop() async -> [Answer] {
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
        return answers.withLock { $0 }
    }
}
