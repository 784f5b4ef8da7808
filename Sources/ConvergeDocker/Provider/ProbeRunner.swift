import ConvergeCore
import Foundation

/// Runs `Probe` manifests inside their source container through the Engine API's exec
/// endpoints, with the tools of the lab images (busybox ping, nc, wget).
public struct ProbeRunner: Sendable {
    public let engine: DockerEngine

    public init(engine: DockerEngine) {
        self.engine = engine
    }

    public func run(_ probe: Resource, in set: ManifestSet) async throws -> ProbeResult {
        guard let spec = probe.spec(as: ProbeSpec.self), let address = spec.destinationAddress(in: set) else {
            throw ProbeError.unresolved(probe.id)
        }
        let source = spec.source(in: set).name
        var result = ProbeResult(probe: probe.id.name, summary: spec.summary(in: set), reachable: false, expected: spec.expectReachable, detail: "")
        for attempt in 0...max(0, spec.retries) {
            let outcome = try await attemptOnce(spec, from: source, to: address)
            result.reachable = outcome.reachable
            result.detail = outcome.detail
            // Retries are for a flaky path, in the direction the probe expects.
            if result.passed || attempt == spec.retries { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        return result
    }

    private func attemptOnce(_ spec: ProbeSpec, from source: String, to address: IPv4Address) async throws -> (reachable: Bool, detail: String) {
        let timeout = String(spec.timeoutSeconds)
        switch spec.type {
        case .icmp:
            let result = try await engine.exec(container: source, command: ["ping", "-c", "1", "-W", timeout, address.description])
            return (result.exitCode == 0, result.exitCode == 0 ? "reply received" : "no reply within \(timeout)s")
        case .tcp:
            let port = String(spec.port ?? 0)
            let result = try await engine.exec(container: source, command: ["sh", "-c", "nc -w \(timeout) \(address) \(port) </dev/null"])
            return (result.exitCode == 0, result.exitCode == 0 ? "connected to port \(port)" : "no connection to port \(port) within \(timeout)s")
        case .http:
            // Static busybox's wget crashes on its own -T and on resolving the "http" service
            // name: the port is always written out and `timeout` bounds the request.
            let url = "http://\(address):\(spec.port ?? 80)\(spec.path)"
            let result = try await engine.exec(container: source, command: ["timeout", timeout, "wget", "-S", "-O", "/dev/null", url])
            let status = result.stderr.split(separator: "\n").compactMap { line -> Int? in
                let words = line.split(separator: " ")
                guard words.count >= 2, words[0].hasPrefix("HTTP/") else { return nil }
                return Int(words[1])
            }.last
            guard let status else { return (false, "no HTTP answer from \(url) within \(timeout)s") }
            return (status == spec.expectStatus, "HTTP \(status) from \(url)")
        }
    }
}

public enum ProbeError: Error, CustomStringConvertible {
    case unresolved(ResourceID)

    public var description: String {
        switch self {
        case .unresolved(let id): return "\(id) has no address to probe"
        }
    }
}
