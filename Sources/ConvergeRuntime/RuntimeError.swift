/// An error of the runtime itself (not of a provider, a store or a run): what went wrong, for
/// a person. The code lets callers (the CLI, the controller's API) react without parsing
/// text; codes can be added without breaking them.
public struct RuntimeError: Error, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }

        /// A store URL with a scheme no backend serves.
        public static let unsupportedStore = Code("unsupportedStore")
        /// A manifest folder or file that does not exist.
        public static let missingSource = Code("missingSource")
        /// A manifest file that exists but cannot be read.
        public static let unreadableSource = Code("unreadableSource")
        /// A run id the store does not hold.
        public static let noSuchRun = Code("noSuchRun")
        /// The manifest set has no target that keeps snapshots.
        public static let noSnapshotTargets = Code("noSnapshotTargets")
        /// No runs to report.
        public static let noRuns = Code("noRuns")

        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
