/// Why a store operation failed, worded for the person running Converge.
///
/// A struct with a `code` rather than an enum, so that new kinds of failure can be added
/// without breaking code that switches over them. Compare `code` to tell failures apart; the
/// other fields carry what the message is made of and are nil when the code has no use for them.
public struct StoreError: Error, Equatable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: Sendable, Hashable {
            case runNotFound
            case schemaTooNew
            case invalidConfiguration
            case database
            case staleClaim
        }

        private var base: Base

        private init(_ base: Base) { self.base = base }

        /// `updateRun`, `recordStep`, `recordApproval` or `recordProbeResults` named a run that
        /// does not exist (`runID`).
        public static let runNotFound = Self(.runNotFound)
        /// The database was migrated by a newer Converge (`foundVersion` is newer than
        /// `supportedVersion`): an older binary must not write to a schema it does not understand.
        public static let schemaTooNew = Self(.schemaTooNew)
        /// A bad path or URL, or an option the backend does not support (`message` says which).
        public static let invalidConfiguration = Self(.invalidConfiguration)
        /// The database refused or failed an operation (`operation` names it, `message` is the
        /// database's own text). Never contains a password.
        public static let database = Self(.database)
        /// A worker wrote a job's outcome with a claim that is no longer the job's (`operation`
        /// names the job): its lease ran out and another worker took the job over.
        public static let staleClaim = Self(.staleClaim)

        public var description: String {
            switch base {
            case .runNotFound: return "runNotFound"
            case .schemaTooNew: return "schemaTooNew"
            case .invalidConfiguration: return "invalidConfiguration"
            case .database: return "database"
            case .staleClaim: return "staleClaim"
            }
        }
    }

    public var code: Code
    /// The run that was named (`runNotFound`).
    public var runID: Int64?
    /// The newest schema version in the database (`schemaTooNew`).
    public var foundVersion: Int?
    /// The newest schema version this build knows (`schemaTooNew`).
    public var supportedVersion: Int?
    /// Where the store is: a path, or a URL without its password (`schemaTooNew`).
    public var location: String?
    /// What the store was doing (`database`).
    public var operation: String?
    /// What went wrong (`invalidConfiguration`), or the database's own text (`database`).
    public var message: String?

    public init(
        code: Code, runID: Int64? = nil, foundVersion: Int? = nil, supportedVersion: Int? = nil, location: String? = nil,
        operation: String? = nil, message: String? = nil
    ) {
        self.code = code
        self.runID = runID
        self.foundVersion = foundVersion
        self.supportedVersion = supportedVersion
        self.location = location
        self.operation = operation
        self.message = message
    }

    public static func runNotFound(_ id: Int64) -> StoreError {
        StoreError(code: .runNotFound, runID: id)
    }

    public static func schemaTooNew(found: Int, supported: Int, location: String) -> StoreError {
        StoreError(code: .schemaTooNew, foundVersion: found, supportedVersion: supported, location: location)
    }

    public static func invalidConfiguration(_ message: String) -> StoreError {
        StoreError(code: .invalidConfiguration, message: message)
    }

    public static func database(operation: String, message: String) -> StoreError {
        StoreError(code: .database, operation: operation, message: message)
    }

    public static func staleClaim(job: Int64, attempt: Int) -> StoreError {
        StoreError(
            code: .staleClaim, operation: "record the outcome of job \(job)",
            message: "claim \(attempt) of job \(job) is no longer the job's: its lease ran out and it was claimed again")
    }

    public var description: String {
        switch code {
        case .runNotFound:
            return "run \(runID.map(String.init) ?? "?") does not exist in the store"
        case .schemaTooNew:
            return "the store at \(location ?? "?") has schema version \(foundVersion.map(String.init) ?? "?"), "
                + "newer than this Converge supports (\(supportedVersion.map(String.init) ?? "?")): "
                + "upgrade Converge, or point it at another store"
        case .invalidConfiguration, .staleClaim:
            return message ?? "invalid store configuration"
        default:  // .database
            return "store: \(operation ?? "an operation") failed: \(message ?? "unknown error")"
        }
    }
}
