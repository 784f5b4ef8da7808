/// The HAProxy configuration of a rollout's entry point.
///
/// Two backends, `blue` and `green`, each with one server slot per possible replica; a map
/// (`active.map`, key `active`) says which one the frontend uses. A rollout fills the idle
/// backend's slots with the new version's addresses, then switches with one runtime-API
/// command (`set map … active green`): atomic, no reload, keep-alive clients switch at their
/// next request, requests in flight finish on the old version. The file is rewritten after
/// each change so a restarted proxy comes back as it was.
struct EntryPointConfig: Sendable, Equatable {
    enum Slot: String, Sendable, Codable, CaseIterable {
        case blue, green
        var other: Slot { self == .blue ? .green : .blue }
    }

    /// A replica's address in a slot.
    struct Server: Sendable, Equatable, Codable {
        var address: String
        var port: Int
    }

    static let directory = "/etc/converge"
    static let configPath = "\(directory)/haproxy.cfg"
    static let mapPath = "\(directory)/active.map"
    /// Where the runtime API's socket is, in the container (a host directory is mounted there).
    static let socketDirectory = "/run/converge-entry"
    static let socketName = "admin.sock"

    var listenPort: Int
    var active: Slot
    var servers: [Slot: [Server]]

    /// The server name of slot `index` (0-based) of `slot`.
    static func serverName(_ slot: Slot, _ index: Int) -> String { "\(slot.rawValue)/r\(index + 1)" }

    var text: String {
        var lines = [
            "global",
            "    stats socket \(Self.socketDirectory)/\(Self.socketName) mode 600 level admin",
            "    stats timeout 10s",
            "defaults",
            "    mode http",
            "    timeout connect 2s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    timeout http-keep-alive 10s",
            // A replica that refuses a connection (just removed) is retried on another.
            "    retries 3",
            "    option redispatch 1",
            "    retry-on conn-failure empty-response response-timeout",
            "frontend entry",
            "    bind :\(listenPort)",
            "    use_backend %[str(active),map(\(Self.mapPath),\(active.rawValue))]",
        ]
        for slot in Slot.allCases {
            lines.append("backend \(slot.rawValue)")
            lines.append("    balance roundrobin")
            let servers = self.servers[slot] ?? []
            for index in 0..<RolloutSpec.maximumReplicas {
                if index < servers.count {
                    lines.append("    server r\(index + 1) \(servers[index].address):\(servers[index].port)")
                } else {
                    lines.append("    server r\(index + 1) 127.0.0.1:1 disabled")
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    var mapText: String { "active \(active.rawValue)\n" }

    /// The runtime-API commands that put `servers` in `slot`'s slots, and every other slot of
    /// it in maintenance.
    static func fill(_ slot: Slot, with servers: [Server]) -> [String] {
        (0..<RolloutSpec.maximumReplicas).flatMap { index -> [String] in
            let name = serverName(slot, index)
            guard index < servers.count else { return ["set server \(name) state maint"] }
            return ["set server \(name) addr \(servers[index].address) port \(servers[index].port)", "set server \(name) state ready"]
        }
    }

    static func switchCommand(to slot: Slot) -> String { "set map \(mapPath) active \(slot.rawValue)" }
}
