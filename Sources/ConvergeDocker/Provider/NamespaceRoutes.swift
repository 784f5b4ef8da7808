import ConvergeCore

/// Static routes inside a container's network namespace, through the Engine API only (so it
/// works against any engine Converge can reach, not just a local one).
///
/// Reading uses `/proc/net/route`, which every image can `cat`. Writing runs `ip route` in a
/// short-lived helper container that joins the target's namespace with NET_ADMIN: the
/// target needs neither the capability nor the `ip` tool (a privileged exec cannot add
/// capabilities a container was started without).
struct NamespaceRoutes {
    let engine: DockerEngine
    /// Image of the helper: it needs iproute2 (the lab router image has it).
    static let helperImage = RouterSpec.defaultImage

    /// `destination via gateway` pairs: routes through a gateway, except the default route.
    func read(_ container: String) async throws -> [(destination: String, gateway: String)] {
        let result = try await engine.exec(container: container, command: ["cat", "/proc/net/route"])
        guard result.exitCode == 0 else { throw DockerProviderError.command(container: container, command: "cat /proc/net/route", result: result) }
        return Self.parseProcRoutes(result.stdout)
    }

    /// The gateway routes a router's namespace got from `ip route` itself (protocol `boot`),
    /// leaving out those a routing daemon installed.
    func readOwn(_ router: String) async throws -> [(destination: String, gateway: String)] {
        let result = try await engine.exec(container: router, command: ["ip", "-4", "route", "show", "proto", "boot"])
        guard result.exitCode == 0 else { throw DockerProviderError.command(container: router, command: "ip -4 route show proto boot", result: result) }
        return result.stdout.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ").map(String.init)
            guard let via = words.firstIndex(of: "via"), via + 1 < words.count, words[0] != "default" else { return nil }
            return (words[0], words[via + 1])
        }
    }

    /// Parses `/proc/net/route`: hexadecimal, little-endian IPv4 fields per line.
    static func parseProcRoutes(_ text: String) -> [(destination: String, gateway: String)] {
        text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 8, let destination = UInt32(fields[1], radix: 16), let gateway = UInt32(fields[2], radix: 16),
                  let mask = UInt32(fields[7], radix: 16), gateway != 0, mask != 0 else { return nil }
            let prefix = mask.nonzeroBitCount
            return ("\(IPv4Address(destination.byteSwapped))/\(prefix)", IPv4Address(gateway.byteSwapped).description)
        }
    }

    /// Makes the namespace hold exactly `wanted` (destination → gateway) among its gateway
    /// routes; for a router (`router: true`), among the routes `ip route` added, so FRR's stay.
    func converge(_ container: String, to wanted: [String: String], router: Bool = false) async throws {
        let live = router ? try await readOwn(container) : try await read(container)
        let current = Dictionary(live.map { ($0.destination, $0.gateway) }, uniquingKeysWith: { first, _ in first })
        var commands: [[String]] = []
        for destination in current.keys.sorted() where wanted[destination] == nil {
            commands.append(["ip", "route", "del", destination])
        }
        for (destination, gateway) in wanted.sorted(by: { $0.key < $1.key }) where current[destination] != gateway {
            commands.append(["ip", "route", "replace", destination, "via", gateway])
        }
        guard !commands.isEmpty else { return }
        try await inNamespace(of: container) { helper in
            for command in commands {
                let result = try await engine.exec(container: helper, command: command)
                guard result.exitCode == 0 else {
                    throw DockerProviderError.command(container: container, command: command.joined(separator: " "), result: result)
                }
            }
        }
    }

    /// Runs `body` with a helper container in `container`'s network namespace, removed after.
    private func inNamespace(of container: String, _ body: (String) async throws -> Void) async throws {
        let helper = try await engine.createContainer(name: nil, ContainerCreate(
            image: Self.helperImage, cmd: ["sleep", "300"], labels: ["\(OwnershipLabel.prefix)helper": "netns"],
            hostConfig: DockerHostConfig(networkMode: "container:\(container)", capAdd: ["NET_ADMIN"])))
        do {
            try await engine.startContainer(helper)
            try await body(helper)
        } catch {
            try? await engine.removeContainer(helper, force: true)
            throw error
        }
        try await engine.removeContainer(helper, force: true)
    }
}

extension ContainerSpec {
    /// Destination → gateway address of every route, resolved against `set`.
    func resolvedRoutes(in set: ManifestSet) -> [String: String] {
        Dictionary(routes.compactMap { route in
            gateway(for: route, in: set).map { (route.destination.description, $0.description) }
        }, uniquingKeysWith: { first, _ in first })
    }

    /// Live routes in the manifest's words: a gateway that is the address the manifest's
    /// router resolves to is shown by the router's name.
    func observedRoutes(_ live: [(destination: String, gateway: String)], in set: ManifestSet) -> [String] {
        let names = Dictionary(routes.compactMap { route in
            gateway(for: route, in: set).map { ("\(route.destination) \($0)", route.via) }
        }, uniquingKeysWith: { first, _ in first })
        return live.map { "\($0.destination) via \(names["\($0.destination) \($0.gateway)"] ?? $0.gateway)" }.sorted()
    }
}
