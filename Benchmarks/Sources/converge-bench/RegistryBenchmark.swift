import ConvergeTestSupport
import Foundation

/// `registry`: planning 50 containers whose registry images (5 distinct ones, pushed to the
/// test registry, with credentials) are all on the host, by pull policy: how many manifest
/// requests the registry answers per plan (counted in its own log) and how many of them were in
/// flight at once, and the plan's wall time.
/// - `ifNotPresent`: the local images' digests are used: no registry request at all.
/// - `always`: one manifest request per distinct image, sent concurrently.
///
/// Needs the registry of `scripts/registry.sh` (its variables in the environment). Its images
/// are named `<registry>/cvb-reg-<random>/img<k>:1` and removed from the host at the end.
enum RegistryBenchmark {
    static let name = "registry"
    static let containers = 50
    static let images = 5

    static func run(runs: Int, converge: String?, packagePath: String) throws -> [Row] {
        let environment = ProcessInfo.processInfo.environment
        guard let registry = environment["CONVERGE_TEST_REGISTRY"], let user = environment["CONVERGE_TEST_REGISTRY_USER"],
            let passwordFile = environment["CONVERGE_TEST_REGISTRY_PASSWORD_FILE"], let log = environment["CONVERGE_TEST_REGISTRY_LOG"]
        else {
            throw Subprocess.Failure(description: "no test registry: run `eval \"$(bash scripts/registry.sh)\"` first")
        }
        let converge = try converge ?? DockerBenchmark.buildConverge(packagePath: packagePath)
        let prefix = "cvb-reg-\(randomSuffix())"
        let directory = try makeTemporaryDirectory(prefix: "cvb-reg-")
        let references = (0..<images).map { "\(registry)/\(prefix)/img\($0):1" }
        defer {
            _ = try? Subprocess.run(["docker", "rmi", "-f"] + references, evenIfInterrupted: true)
            try? FileManager.default.removeItem(atPath: directory)
        }
        let password = try String(contentsOfFile: passwordFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let auth = Data("\(user):\(password)".utf8).base64EncodedString()
        try #"{"auths": {"\#(registry)": {"auth": "\#(auth)"}}}"#.write(
            toFile: directory + "/config.json", atomically: true, encoding: .utf8)
        try pushImages(references, directory: directory)

        var rows: [Row] = []
        for policy in ["ifNotPresent", "always"] {
            let set = directory + "/" + policy
            try FileManager.default.createDirectory(atPath: set, withIntermediateDirectories: true)
            try manifests(prefix: prefix, registry: registry, references: references, policy: policy, config: directory + "/config.json")
                .write(toFile: set + "/set.yaml", atomically: true, encoding: .utf8)
            var seconds: [Double] = [], requests: [Double] = [], inFlight: [Double] = []
            for _ in 0..<max(runs, 3) {
                let before = RegistryLog(path: log).manifestRequests(under: "/v2/\(prefix)/")
                let plan = try Subprocess.run(
                    [converge, "reconcile", set, "--dry-run", "--instance", prefix, "--state", directory + "/state.db", "--color", "never"])
                guard plan.status == 2 else {
                    throw Subprocess.Failure(description: "the plan did not show the 50 creates: \(plan.summary)")
                }
                let new = Array(RegistryLog(path: log).manifestRequests(under: "/v2/\(prefix)/").dropFirst(before.count))
                seconds.append(plan.seconds)
                requests.append(Double(new.count))
                inFlight.append(Double(RegistryLog.mostAtOnce(new)))
            }
            let target = policy == "always" ? images : 0
            rows += [
                Row(
                    name, "plan of \(containers) containers, \(images) images present, pull: \(policy)", samples: seconds,
                    note: "converge reconcile --dry-run (release binary), registry with TLS and htpasswd on loopback"),
                Row(
                    name, "manifest requests per plan, pull: \(policy)", samples: requests, unit: .count, target: "\(target)",
                    bound: Double(target), note: "counted in the registry's log"),
            ]
            if policy == "always" {
                rows.append(
                    Row(
                        name, "manifest requests in flight at once, pull: always", samples: inFlight, unit: .count,
                        note: "from the registry's log (each request's end time less its duration)"))
            }
        }
        return rows
    }

    /// Builds `references.count` distinct images from the busybox lab image and pushes them.
    private static func pushImages(_ references: [String], directory: String) throws {
        try "FROM converge-lab/busybox:1\n".write(toFile: directory + "/Dockerfile", atomically: true, encoding: .utf8)
        for (index, reference) in references.enumerated() {
            try Subprocess.check(["docker", "build", "-q", "-t", reference, "--label", "converge.bench/image=\(index)", directory])
            try Subprocess.check(["docker", "--config", directory, "push", reference])
        }
    }

    private static func manifests(prefix: String, registry: String, references: [String], policy: String, config: String) -> String {
        var documents = [
            localDockerNetwork("\(prefix)-net", subnet: "10.214.0.0/24"),
            """
            apiVersion: converge.dev/v1alpha1
            kind: RegistryCredentials
            metadata: {name: bench-registry}
            spec: {registry: "\(registry)", dockerConfig: \(config)}
            """,
        ]
        for index in 0..<containers {
            documents.append(
                """
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: \(prefix)-c\(index)}
                spec:
                  image: \(references[index % references.count])
                  pull: \(policy)
                  command: [sleep, "2147483647"]
                  networks: [{name: \(prefix)-net}]
                """)
        }
        return documents.joined(separator: "\n---\n")
    }
}

/// The requests a docker-registry answered, read from its log (`msg="response completed"` lines).
struct RegistryLog {
    struct Request {
        var end: Double
        var duration: Double
    }

    let path: String

    /// HEAD and GET requests of manifests whose path starts with `prefix`, in log order.
    func manifestRequests(under prefix: String) -> [Request] {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line -> Request? in
            guard line.contains("msg=\"response completed\""),
                line.contains("http.request.uri=\"\(prefix)") || line.contains("http.request.uri=\(prefix)"),
                line.contains("/manifests/"), line.contains("http.request.method=HEAD") || line.contains("http.request.method=GET"),
                let end = Self.value(of: "time", in: line).flatMap(Self.seconds),
                let duration = Self.value(of: "http.response.duration", in: line)
            else { return nil }
            return Request(end: end, duration: Self.durationSeconds(duration))
        }
    }

    /// The most requests that were being answered at the same moment.
    static func mostAtOnce(_ requests: [Request]) -> Int {
        let events = requests.flatMap { [($0.end - $0.duration, 1), ($0.end, -1)] }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        var current = 0, most = 0
        for (_, change) in events {
            current += change
            most = max(most, current)
        }
        return most
    }

    private static func value(of key: String, in line: Substring) -> String? {
        guard let range = line.range(of: " \(key)=") ?? (line.hasPrefix("\(key)=") ? line.range(of: "\(key)=") : nil) else { return nil }
        let rest = line[range.upperBound...]
        if rest.hasPrefix("\"") { return rest.dropFirst().split(separator: "\"", maxSplits: 1).first.map(String.init) }
        return rest.split(separator: " ", maxSplits: 1).first.map(String.init)
    }

    private static func seconds(_ timestamp: String) -> Double? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        // The registry writes nanoseconds; ISO8601DateFormatter reads milliseconds at most.
        let trimmed = timestamp.replacingOccurrences(of: #"(\.\d{3})\d*"#, with: "$1", options: .regularExpression)
        return formatter.date(from: trimmed)?.timeIntervalSince1970
    }

    /// `2.639699ms`, `845.2µs`, `1.2s`.
    private static func durationSeconds(_ text: String) -> Double {
        for (suffix, scale) in [("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)] where text.hasSuffix(suffix) {
            return (Double(text.dropLast(suffix.count)) ?? 0) * scale
        }
        return 0
    }
}
