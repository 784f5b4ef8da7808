import ConvergeCore

/// FRR inside a router container: started on demand, read with `show running-config`, and
/// changed by delta through `vtysh` (as `frr-reload.py` does), touching only the lines
/// Converge manages: `ip route` and the `router ospf` block.
struct FRRConfigurator {
    let engine: DockerEngine

    /// Starts FRR's daemons (zebra, staticd, ospfd) unless they answer already, and waits
    /// until vtysh reaches them.
    func ensureRunning(_ router: String) async throws {
        let script = """
            vtysh -c 'show version' >/dev/null 2>&1 && exit 0
            sed -i 's/^ospfd=no/ospfd=yes/' /etc/frr/daemons
            /usr/lib/frr/frrinit.sh start >/dev/null 2>&1
            for i in 1 2 3 4 5 6 7 8 9 10; do vtysh -c 'show version' >/dev/null 2>&1 && exit 0; sleep 0.5; done
            echo 'FRR did not start' >&2; exit 1
            """
        let result = try await engine.exec(container: router, command: ["sh", "-c", script])
        guard result.exitCode == 0 else { throw DockerProviderError.command(container: router, command: "start FRR", result: result) }
    }

    /// The managed lines of the running configuration; nil when FRR is not running.
    func running(_ router: String) async throws -> [String]? {
        let result = try await engine.exec(container: router, command: ["vtysh", "-c", "show running-config"])
        guard result.exitCode == 0 else { return nil }
        return Self.managedLines(result.stdout)
    }

    func converge(_ router: String, to wanted: RouterSpec.FRRConfig) async throws {
        try await converge(router, toLines: wanted.lines)
    }

    /// Makes the managed lines exactly `wanted` (`managedLines`' form), starting FRR if needed.
    func converge(_ router: String, toLines wanted: [String]) async throws {
        try await ensureRunning(router)
        let current = try await running(router) ?? []
        let commands = Self.commands(from: current, to: wanted)
        guard !commands.isEmpty else { return }
        let result = try await engine.exec(container: router, command: ["vtysh"] + commands.flatMap { ["-c", $0] })
        guard result.exitCode == 0, !result.stdout.contains("% ") else {
            throw DockerProviderError.command(container: router, command: "vtysh " + commands.joined(separator: "; "), result: result)
        }
    }

    /// `ip route …` lines, and the lines of the `router ospf` block as `router ospf/<line>`.
    static func managedLines(_ configuration: String) -> [String] {
        var lines: [String] = []
        var inOSPF = false
        for raw in configuration.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if inOSPF {
                if line == "exit" || line == "!" || !line.hasPrefix(" ") { inOSPF = false } else {
                    lines.append("router ospf/" + line.trimmingCharacters(in: .whitespaces))
                    continue
                }
            }
            if line == "router ospf" {
                inOSPF = true
                lines.append(line)
            } else if line.hasPrefix("ip route ") {
                lines.append(line)
            }
        }
        return lines.sorted()
    }

    /// The vtysh commands that turn `current` into `wanted`: removals (`no …`) first, then
    /// additions; the OSPF block is entered once and removed whole when no longer wanted.
    static func commands(from current: [String], to wanted: [String]) -> [String] {
        let have = Set(current)
        let want = Set(wanted)
        let prefix = "router ospf/"
        var commands: [String] = []
        for line in current.sorted() where !want.contains(line) && line.hasPrefix("ip route ") {
            commands.append("no " + line)
        }
        for line in wanted.sorted() where !have.contains(line) && line.hasPrefix("ip route ") {
            commands.append(line)
        }
        if have.contains("router ospf"), !want.contains("router ospf") {
            commands.append("no router ospf")
        } else if want.contains("router ospf") {
            let removed = current.filter { $0.hasPrefix(prefix) && !want.contains($0) }.sorted()
            let added = wanted.filter { $0.hasPrefix(prefix) && !have.contains($0) }.sorted()
            if !removed.isEmpty || !added.isEmpty || !have.contains("router ospf") {
                commands.append("router ospf")
                commands += removed.map { "no " + $0.dropFirst(prefix.count) }
                commands += added.map { String($0.dropFirst(prefix.count)) }
                commands.append("exit")
            }
        }
        return commands.isEmpty ? [] : ["configure terminal"] + commands
    }
}
