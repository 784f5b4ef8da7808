import ConvergeCore

/// One rule of a `FirewallPolicy`, in a canonical form shared by both sides of the diff: the
/// manifest decodes into it, the live nftables ruleset (`nft -j list table`) parses back into
/// it, and the same text is rendered from either. Two rules that filter the same traffic the
/// same way are equal values, however they were written (`[80, 81]` and `80-81`, sets in any
/// order), because nftables itself rewrites them that way when it stores them: comparing
/// text as written would report drift that is not there.
public struct FirewallRule: Sendable, Hashable {
    /// What a matching packet gets. `reject` answers with ICMP port-unreachable (nftables'
    /// default), so a client fails at once instead of waiting for a timeout.
    public enum Action: String, Sendable, Hashable, CaseIterable {
        case accept, drop, reject
    }

    /// The layer-4 protocol a rule matches; `any` adds no match.
    public enum IPProtocol: String, Sendable, Hashable, CaseIterable {
        case any, icmp, tcp, udp
    }

    /// A destination port or an inclusive range, 1–65535.
    public struct PortRange: Sendable, Hashable, Comparable, CustomStringConvertible {
        public let lower: Int
        public let upper: Int

        public static let valid = 1...65535

        public init?(lower: Int, upper: Int) {
            guard Self.valid.contains(lower), Self.valid.contains(upper), lower <= upper else { return nil }
            self.lower = lower
            self.upper = upper
        }

        public init?(_ port: Int) {
            self.init(lower: port, upper: port)
        }

        /// `80` or `8000-8080`, as nftables writes them.
        public var description: String { lower == upper ? String(lower) : "\(lower)-\(upper)" }

        public static func < (lhs: PortRange, rhs: PortRange) -> Bool {
            (lhs.lower, lhs.upper) < (rhs.lower, rhs.upper)
        }

        /// Sorted, with overlapping and adjacent ranges merged: nftables stores a port set that
        /// holds a range as an interval set and merges `{ 80, 81, 8000-8080 }` into
        /// `{ 80-81, 8000-8080 }`, so the model does the same. A set of single ports that
        /// nftables keeps apart (`{ 80, 81 }`) is merged here too; both mean the same ports.
        public static func normalised(_ ranges: [PortRange]) -> [PortRange] {
            var merged: [PortRange] = []
            for range in ranges.sorted() {
                if let last = merged.last, range.lower <= last.upper + 1 {
                    if range.upper > last.upper, let joined = PortRange(lower: last.lower, upper: range.upper) {
                        merged[merged.count - 1] = joined
                    }
                } else {
                    merged.append(range)
                }
            }
            return merged
        }
    }

    /// The ICMP (v4) types nftables knows by name, with their codes: sets are ordered by code,
    /// as nftables lists them.
    public enum ICMPType: String, Sendable, Hashable, CaseIterable {
        case echoReply = "echo-reply"
        case destinationUnreachable = "destination-unreachable"
        case sourceQuench = "source-quench"
        case redirect = "redirect"
        case echoRequest = "echo-request"
        case routerAdvertisement = "router-advertisement"
        case routerSolicitation = "router-solicitation"
        case timeExceeded = "time-exceeded"
        case parameterProblem = "parameter-problem"
        case timestampRequest = "timestamp-request"
        case timestampReply = "timestamp-reply"
        case infoRequest = "info-request"
        case infoReply = "info-reply"
        case addressMaskRequest = "address-mask-request"
        case addressMaskReply = "address-mask-reply"

        public var code: Int {
            switch self {
            case .echoReply: return 0
            case .destinationUnreachable: return 3
            case .sourceQuench: return 4
            case .redirect: return 5
            case .echoRequest: return 8
            case .routerAdvertisement: return 9
            case .routerSolicitation: return 10
            case .timeExceeded: return 11
            case .parameterProblem: return 12
            case .timestampRequest: return 13
            case .timestampReply: return 14
            case .infoRequest: return 15
            case .infoReply: return 16
            case .addressMaskRequest: return 17
            case .addressMaskReply: return 18
            }
        }

        public init?(code: Int) {
            guard let match = Self.allCases.first(where: { $0.code == code }) else { return nil }
            self = match
        }
    }

    /// Connection-tracking states (`ct state`), ordered by their bit as nftables lists them.
    public enum ConnectionState: String, Sendable, Hashable, CaseIterable {
        case invalid, established, related, new, untracked

        public var bit: Int {
            switch self {
            case .invalid: return 1
            case .established: return 2
            case .related: return 4
            case .new: return 8
            case .untracked: return 64
            }
        }
    }

    /// Names the rule; carried on the live rule as its nftables comment, which is how a live
    /// rule is matched back to the manifest.
    public let name: String
    public let action: Action
    public let ipProtocol: IPProtocol
    /// A /32 is a single address.
    public let source: IPv4Network?
    public let destination: IPv4Network?
    /// Destination ports, normalised (see `PortRange.normalised`); only for tcp and udp.
    public let ports: [PortRange]
    /// Only for icmp; sorted by code, no repeats.
    public let icmpTypes: [ICMPType]
    /// Sorted by bit, no repeats; empty means any state.
    public let states: [ConnectionState]

    /// Puts ports, types and states in canonical order, so equal rules are equal values.
    public init(
        name: String, action: Action, ipProtocol: IPProtocol = .any, source: IPv4Network? = nil,
        destination: IPv4Network? = nil, ports: [PortRange] = [], icmpTypes: [ICMPType] = [],
        states: [ConnectionState] = []
    ) {
        self.name = name
        self.action = action
        self.ipProtocol = ipProtocol
        self.source = source
        self.destination = destination
        self.ports = PortRange.normalised(ports)
        self.icmpTypes = Set(icmpTypes).sorted { $0.code < $1.code }
        self.states = Set(states).sorted { $0.bit < $1.bit }
    }

    /// The rule as nftables syntax without its comment, e.g.
    /// `ip saddr 192.168.100.0/24 tcp dport { 80, 443 } ct state { established, related } accept`.
    ///
    /// Matches come in a fixed order (addresses, protocol, ports or ICMP types, state,
    /// verdict). A tcp/udp rule with ports is written `tcp dport …` alone, because nftables
    /// drops an explicit `meta l4proto tcp` before `tcp dport` when it lists the rule; without
    /// ports it is `meta l4proto tcp`, which matches IPv4 and IPv6 like the table does. This is
    /// also the text the plan shows for the rule.
    public var canonicalText: String {
        var parts: [String] = []
        if let source { parts.append("ip saddr \(Self.addressText(source))") }
        if let destination { parts.append("ip daddr \(Self.addressText(destination))") }
        switch ipProtocol {
        case .any:
            break
        case .icmp:
            parts.append(icmpTypes.isEmpty ? "ip protocol icmp" : "icmp type \(Self.setText(icmpTypes.map(\.rawValue)))")
        case .tcp, .udp:
            parts.append(ports.isEmpty ? "meta l4proto \(ipProtocol.rawValue)" : "\(ipProtocol.rawValue) dport \(Self.setText(ports.map(\.description)))")
        }
        if !states.isEmpty { parts.append("ct state \(Self.setText(states.map(\.rawValue)))") }
        parts.append(action.rawValue)
        return parts.joined(separator: " ")
    }

    /// The full nftables rule statement, carrying the name as its comment.
    public var statement: String { "\(canonicalText) comment \"\(name)\"" }

    /// `10.0.0.1` for a /32 (nftables lists it that way), CIDR otherwise.
    static func addressText(_ network: IPv4Network) -> String {
        network.prefixLength == 32 ? network.address.description : network.description
    }

    /// One element bare, several in braces: the form nftables lists.
    static func setText(_ elements: [String]) -> String {
        elements.count == 1 ? elements[0] : "{ \(elements.joined(separator: ", ")) }"
    }

    /// Rule names become nftables comments (128 bytes at most) and keys in the plan: the
    /// resource-name alphabet, so they never need quoting, and short enough for the comment.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= maximumNameLength else { return false }
        let isAlphanumeric: (Unicode.Scalar) -> Bool = { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }
        return isAlphanumeric(first) && name.unicodeScalars.allSatisfy { isAlphanumeric($0) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    public static let maximumNameLength = 64
}
