/// What went wrong in a rollout, and what to do about it.
public struct RolloutError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var hint: String?

    init(_ message: String, hint: String?) {
        self.message = message
        self.hint = hint
    }

    public var description: String { hint.map { "\(message) (\($0))" } ?? message }
}
