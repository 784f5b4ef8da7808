import ConvergeForge
import ConvergeGit
import Foundation

/// What the controller does with drift on a source: correct it (Argo CD's self-heal, Flux's
/// default) or only report it (the plan is kept, shown in the status and the metrics, and
/// nothing is changed until the next commit or an explicit reconcile).
public enum DriftPolicy: String, Sendable, Codable, CaseIterable {
    case correct
    case report
}

/// One repository folder the controller keeps applied: `--repo/--ref/--path` on the command
/// line, or a `ConvergeSource` object in a cluster. Its name is the Converge instance its
/// runs are recorded under and its objects are labelled with.
public struct SourceConfiguration: Sendable, Equatable {
    public var name: String
    public var repository: String
    public var ref: String
    public var path: String?
    public var interval: Duration
    public var drift: DriftPolicy
    /// Fetched and reported, never applied.
    public var suspend: Bool
    /// The environment variable holding an HTTPS token for the repository, if it needs one.
    public var tokenEnvironmentVariable: String
    /// The token itself, when it comes from a Kubernetes Secret (a `ConvergeSource`'s
    /// `credentials.secretRef`); never logged.
    public var token: String?
    /// The forge whose pull requests into `ref` get this source's plans and approvals.
    public var forge: ForgeConfiguration?

    public init(
        name: String, repository: String, ref: String = "main", path: String? = nil, interval: Duration = .seconds(60),
        drift: DriftPolicy = .correct, suspend: Bool = false,
        tokenEnvironmentVariable: String = GitSourceRequest.defaultTokenEnvironmentVariable
    ) {
        self.name = name
        self.repository = repository
        self.ref = ref
        self.path = path
        self.interval = interval
        self.drift = drift
        self.suspend = suspend
        self.tokenEnvironmentVariable = tokenEnvironmentVariable
    }

    func gitRequest(cacheDirectory: String) -> GitSourceRequest {
        var request = GitSourceRequest(
            repository: repository, ref: ref, path: path, tokenEnvironmentVariable: tokenEnvironmentVariable, cacheDirectory: cacheDirectory
        )
        request.token = token
        return request
    }
}

/// Durations as Go and Kubernetes write them (`90s`, `5m`, `1h30m`, `500ms`), for
/// `--interval` and a `ConvergeSource`'s `spec.interval`.
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        var total = 0.0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = String(rest.prefix { $0.isNumber || $0 == "." })
            rest = rest.dropFirst(number.count)
            let unit = String(rest.prefix { $0.isLetter })
            rest = rest.dropFirst(unit.count)
            guard let value = Double(number) else { return nil }
            switch unit {
            case "ms": total += value / 1000
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            default: return nil
            }
        }
        guard total > 0 else { return nil }
        return .milliseconds(Int64(total * 1000))
    }
}
