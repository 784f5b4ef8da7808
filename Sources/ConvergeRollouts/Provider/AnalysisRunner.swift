import AsyncHTTPClient
import ConvergeCore
import Foundation
import NIOCore

/// Where a check or a readiness probe is sent: a replica, or the entry point.
struct Endpoint: Sendable {
    var name: String
    var address: String
    var port: Int

    var description: String { "\(name) (\(address):\(port))" }
}

/// Runs analyses and readiness probes over HTTP from Converge's process.
enum AnalysisRunner {
    static let requestTimeout: TimeAmount = .seconds(2)
    static let bodyLimit = 64 * 1024

    /// The outcome of one check on one endpoint: nil when it passed, else why not.
    static func http(_ endpoint: Endpoint, path: String, status: Int?, field: String?, equals: JSONValue?) async -> String? {
        let url = "http://\(endpoint.address):\(endpoint.port)\(path.hasPrefix("/") ? path : "/" + path)"
        do {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: requestTimeout)
            let body = try await response.body.collect(upTo: bodyLimit)
            if let status, Int(response.status.code) != status {
                return "GET \(path) on \(endpoint.description): status \(response.status.code), expected \(status)"
            }
            guard let field, let equals else { return nil }
            guard let document = try? JSONValue.parse(body.readableBytesView) else {
                return "GET \(path) on \(endpoint.description): the body is not JSON"
            }
            let found = document[path: field]
            if found != equals {
                return
                    "GET \(path) on \(endpoint.description): \(field) is \(found?.serialized ?? "missing"), expected \(equals.serialized)"
            }
            return nil
        } catch {
            return "GET \(path) on \(endpoint.description): \(error)"
        }
    }

    /// Waits until `endpoint` answers: `path` with a 2xx or 3xx, or any HTTP answer without
    /// one. Throws once `timeout` has passed.
    static func waitReady(_ endpoint: Endpoint, path: String?, timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last = "no answer yet"
        while true {
            let url = "http://\(endpoint.address):\(endpoint.port)\(path ?? "/")"
            do {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: requestTimeout)
                _ = try await response.body.collect(upTo: bodyLimit)
                if path == nil || (200..<400).contains(Int(response.status.code)) { return }
                last = "status \(response.status.code)"
            } catch {
                last = "\(error)"
            }
            guard clock.now < deadline else {
                throw RolloutError(
                    "replica \(endpoint.description) was not ready after \(DurationText.format(nanoseconds: Int64(timeout.timeInterval * 1e9))): \(last)",
                    hint: "check the replica's logs (docker logs \(endpoint.name)) and spec.readiness")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }
}
