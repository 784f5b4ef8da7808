/// The outcome of one check (a `Probe`): whether the target answered, and whether that is
/// what the check expects.
public struct ProbeResult: Sendable, Codable, Equatable {
    public var probe: String
    /// `icmp s1-client -> 192.168.200.10`.
    public var summary: String
    public var reachable: Bool
    public var expected: Bool
    /// What the check printed or why it failed, for the report.
    public var detail: String

    public init(probe: String, summary: String, reachable: Bool, expected: Bool, detail: String) {
        self.probe = probe
        self.summary = summary
        self.reachable = reachable
        self.expected = expected
        self.detail = detail
    }

    public var passed: Bool { reachable == expected }
}
