import ConvergeCore
import ConvergeDocker
import Dispatch
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `docker`: `converge reconcile` creating 50 containers on 5 networks against
/// `docker-compose up -d` of the same set, alternating, plus the no-op reconcile, and against
/// the floor: the same creates and starts sent straight to the Engine API.
///
/// Converge's manifests are `converge import compose` of the compose file, so every run also
/// checks the round trip: both tools must make the same containers (name, image, command,
/// networks and addresses), or the benchmark fails.
///
/// Everything it makes carries a unique `cvb-<random>` prefix (and the converge objects the
/// `bench-<random>` instance label) and is removed at the end, on failure and on SIGINT/SIGTERM.
final class DockerBenchmark: @unchecked Sendable {
    static let name = "docker"
    static let image = "converge-lab/busybox:1"
    static let networkCount = 5
    static let containersPerNetwork = 10
    /// Five adjacent /24s in 10.213.0.0/16 that no network on the engine overlaps: a private
    /// range no test of the project uses.
    let firstSubnet: Int
    func subnet(_ network: Int) -> String { "10.213.\(firstSubnet + network).0/24" }
    func address(_ network: Int, _ slot: Int) -> String { "10.213.\(firstSubnet + network).\(10 + slot)" }

    let suffix = randomSuffix()
    var prefix: String { "cvb-\(suffix)" }
    var instance: String { "bench-\(suffix)" }
    var composeProject: String { "cvb\(suffix)compose" }
    let root: String
    let converge: String
    /// `--parallelism` for the creating reconcile; nil leaves converge's default.
    let parallelism: Int?
    var parallelismArguments: [String] { parallelism.map { ["--parallelism", String($0)] } ?? [] }
    var manifests: String { root + "/manifests" }
    var emptySet: String { root + "/empty" }
    var composeFile: String { root + "/docker-compose.yml" }
    var composeEnvironment: [String: String] { ["COMPOSE_PROJECT_NAME": composeProject, "COMPOSE_INTERACTIVE_NO_CLI": "1"] }
    private var cleanedUp = false
    private let lock = NSLock()

    init(converge: String, parallelism: Int?) throws {
        self.converge = converge
        self.parallelism = parallelism
        root = try makeTemporaryDirectory(prefix: "cvb-docker-")
        firstSubnet = try freeSubnets(count: Self.networkCount, in: 213)
    }

    static func run(rounds: Int, converge: String?, parallelism: Int?, packagePath: String) throws -> [Row] {
        let binary = try converge ?? buildConverge(packagePath: packagePath)
        let bench = try DockerBenchmark(converge: binary, parallelism: parallelism)
        let signals = bench.cleanUpOnSignals()
        defer {
            signals.forEach { $0.cancel() }
            bench.cleanUp()
        }
        return try bench.measure(rounds: rounds)
    }

    /// `swift build -c release --product converge` in the main package; the binary's path
    /// comes from `--show-bin-path`.
    static func buildConverge(packagePath: String) throws -> String {
        log("docker: swift build -c release --product converge in \(packagePath) (may take a while the first time)")
        let build = try Subprocess.run(["swift", "build", "--package-path", packagePath, "-c", "release", "--product", "converge"])
        guard build.succeeded else { throw Subprocess.Failure(description: build.summary) }
        let binPath = try Subprocess.check(["swift", "build", "--package-path", packagePath, "-c", "release", "--show-bin-path"])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        log("docker: converge binary \(binPath)/converge (build step took \(Table.format(build.seconds, .seconds)))")
        return binPath + "/converge"
    }

    // MARK: Measuring

    func measure(rounds: Int) throws -> [Row] {
        try writeInputs()
        try importCompose()
        try Subprocess.check(["docker", "image", "inspect", Self.image])
        log("docker: prefix \(prefix), converge instance \(instance), compose project \(composeProject), \(rounds) rounds")

        var convergeUp: [Double] = [], composeUp: [Double] = [], floor: [Double] = []
        var convergeShapes: [String]?, composeShapes: [String]?
        var noop: [Double] = [], dryRun: [Double] = []
        var convergeDown: [Double] = [], composeDown: [Double] = []
        var convergeRSS = 0, composeRSS = 0
        var notes: [String] = []
        for round in 0..<rounds {
            // Alternate which goes first, so neither always runs on a just-cleaned engine.
            let order = round % 2 == 0 ? ["converge", "compose", "floor"] : ["floor", "compose", "converge"]
            for tool in order {
                if tool == "floor" {
                    let seconds = try engineFloor()
                    floor.append(seconds)
                    log("docker: round \(round + 1)/\(rounds): Engine API floor \(Table.format(seconds, .seconds))")
                } else if tool == "converge" {
                    let up = try convergeRun([manifests] + parallelismArguments, expect: [0])
                    try expectRunning(label: "converge.dev/managed-by=\(instance)", tool: "converge reconcile")
                    if convergeShapes == nil { convergeShapes = try containerShapes(label: "converge.dev/managed-by=\(instance)") }
                    let again = try convergeRun([manifests], expect: [0])
                    let dry = try convergeRun([manifests, "--dry-run"], expect: [0, 2])
                    if dry.status == 2 { notes.append("round \(round + 1): --dry-run after apply found changes pending (exit 2)") }
                    let down = try convergeRun([emptySet], expect: [0])
                    try sweepConverge()
                    convergeUp.append(up.seconds); noop.append(again.seconds); dryRun.append(dry.seconds); convergeDown.append(down.seconds)
                    convergeRSS = max(convergeRSS, up.maxRSSKiB, again.maxRSSKiB)
                    log(
                        "docker: round \(round + 1)/\(rounds): converge up \(Table.format(up.seconds, .seconds)), no-op \(Table.format(again.seconds, .seconds)), dry-run \(Table.format(dry.seconds, .seconds)), teardown \(Table.format(down.seconds, .seconds))"
                    )
                } else {
                    let up = try compose(["up", "-d"])
                    try expectRunning(label: "com.docker.compose.project=\(composeProject)", tool: "docker-compose up -d")
                    if composeShapes == nil { composeShapes = try containerShapes(label: "com.docker.compose.project=\(composeProject)") }
                    let down = try compose(["down", "--remove-orphans", "--timeout", "1"])
                    composeUp.append(up.seconds); composeDown.append(down.seconds)
                    composeRSS = max(composeRSS, up.maxRSSKiB)
                    log(
                        "docker: round \(round + 1)/\(rounds): docker-compose up \(Table.format(up.seconds, .seconds)), down \(Table.format(down.seconds, .seconds))"
                    )
                }
            }
        }

        try checkRoundTrip(converge: convergeShapes ?? [], compose: composeShapes ?? [])
        let total = Self.networkCount * Self.containersPerNetwork
        let ratio = Stats.median(convergeUp) / Stats.median(composeUp)
        let floorRatio = Stats.median(convergeUp) / Stats.median(floor)
        let what = "\(Self.networkCount) internal networks + \(total) containers"
        return [
            Row(
                Self.name, "converge reconcile: create \(what)", samples: convergeUp,
                note:
                    "release binary \(converge), \(parallelism.map { "--parallelism \($0)" } ?? "default --parallelism (8)"); peak RSS of converge \(String(format: "%.1f", Double(convergeRSS) / 1024)) MiB (wait4)"
            ),
            Row(
                Self.name, "docker-compose up -d: same set", samples: composeUp,
                note:
                    "docker-compose \(composeVersion()) (version \"2.4\" file), peak RSS \(String(format: "%.1f", Double(composeRSS) / 1024)) MiB"
            ),
            Row(
                Self.name, "Engine API floor: the same creates and starts", samples: floor,
                note: "straight to the engine, \(parallelism ?? 8) at a time, as converge's --parallelism; networks first, all at once"),
            Row(Self.name, "ratio converge / compose (medians)", samples: [ratio], unit: .ratio, target: "<= 0.82", bound: 0.82),
            Row(
                Self.name, "ratio converge / Engine API floor (medians)", samples: [floorRatio], unit: .ratio, target: "<= 1.10",
                bound: 1.10),
            Row(
                Self.name, "compose round trip: containers that differ", samples: [0], unit: .count, target: "0", bound: 0,
                note: "converge import compose of the compose file; name, image, command, networks and addresses of all \(total) compared"),
            Row(Self.name, "converge reconcile, no-op (in sync)", samples: noop, target: "< 0.5 s", bound: 0.5),
            Row(
                Self.name, "converge reconcile --dry-run, in sync", samples: dryRun, target: "< 0.5 s", bound: 0.5,
                note: notes.isEmpty ? nil : notes.joined(separator: "; ")),
            Row(Self.name, "converge teardown (reconcile DockerHost-only set)", samples: convergeDown),
            Row(Self.name, "docker-compose down", samples: composeDown),
        ]
    }

    private func convergeRun(_ arguments: [String], expect codes: Set<Int32>) throws -> Subprocess.Result {
        let result = try Subprocess.run(
            [converge, "reconcile"] + arguments + ["--instance", instance, "--color", "never"],
            environment: ["NO_COLOR": "1"])
        guard codes.contains(result.status) else { throw Subprocess.Failure(description: result.summary) }
        return result
    }

    private func compose(_ arguments: [String]) throws -> Subprocess.Result {
        try Subprocess.check(
            ["docker-compose", "-f", composeFile, "-p", composeProject, "--ansi", "never"] + arguments,
            environment: composeEnvironment)
    }

    private func composeVersion() -> String {
        (try? Subprocess.run(["docker-compose", "version", "--short"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?"
    }

    /// Not a benchmark assertion: a run that did not make all containers measured nothing.
    private func expectRunning(label: String, tool: String) throws {
        let running = try Subprocess.check(["docker", "ps", "-q", "--filter", "label=\(label)", "--filter", "status=running"])
            .stdout.split(separator: "\n").count
        let wanted = Self.networkCount * Self.containersPerNetwork
        guard running == wanted else {
            throw Subprocess.Failure(description: "\(tool) left \(running) running containers, expected \(wanted)")
        }
    }

    // MARK: Inputs

    /// The compose file (its containers at fixed addresses on internal networks) and the
    /// DockerHost-only set that tears converge's objects down.
    private func writeInputs() throws {
        let manager = FileManager.default
        try manager.createDirectory(atPath: emptySet, withIntermediateDirectories: true)
        try write(ManifestGenerator.host, to: emptySet + "/host.yaml")

        var compose = "version: \"2.4\"\nnetworks:\n"
        for network in 0..<Self.networkCount {
            compose += """
                  net\(network):
                    driver: bridge
                    internal: true
                    ipam:
                      config:
                        - subnet: \(subnet(network))

                """
        }
        compose += "services:\n"
        for network in 0..<Self.networkCount {
            for slot in 0..<Self.containersPerNetwork {
                let index = network * Self.containersPerNetwork + slot
                let number = index < 10 ? "0\(index)" : "\(index)"
                compose += """
                      c\(number):
                        image: \(Self.image)
                        container_name: \(prefix)-c\(number)
                        command: [sleep, "2147483647"]
                        networks:
                          net\(network):
                            ipv4_address: \(address(network, slot))

                    """
            }
        }
        try write(compose, to: composeFile)
    }

    /// Converge's manifests: `converge import compose` of the compose file, which must
    /// translate all of it.
    private func importCompose() throws {
        let imported = try Subprocess.check([converge, "import", "compose", composeFile, "--out", manifests, "--project", composeProject])
        guard !imported.stderr.contains("not translated") else {
            throw Subprocess.Failure(description: "converge import compose left keys untranslated: \(imported.stderr)")
        }
    }

    /// One line per container with `label`: name, image, command, and networks with addresses.
    private func containerShapes(label: String) throws -> [String] {
        let ids = try Subprocess.check(["docker", "ps", "-q", "--filter", "label=\(label)"]).stdout.split(separator: "\n").map(String.init)
        let format =
            #"{{.Name}} {{.Config.Image}} {{json .Config.Cmd}}{{range $name, $net := .NetworkSettings.Networks}} {{$name}}={{$net.IPAMConfig.IPv4Address}}{{end}}"#
        return try Subprocess.check(["docker", "inspect", "--format", format] + ids).stdout.split(separator: "\n").map(String.init).sorted()
    }

    /// The compose file's round trip: converge made what compose makes.
    private func checkRoundTrip(converge: [String], compose: [String]) throws {
        guard converge == compose else {
            let difference = converge.difference(from: compose).first.map { "\($0)" } ?? "?"
            throw Subprocess.Failure(
                description:
                    "converge import compose did not make the containers docker-compose makes (\(converge.count) against \(compose.count)); first difference: \(difference)"
            )
        }
    }

    /// The same networks, then the same container creates and starts, sent straight to the
    /// Engine API with converge's concurrency; returns the wall time, then removes them.
    private func engineFloor() throws -> Double {
        let prefix = "\(self.prefix)-floor"
        let concurrency = parallelism ?? 8
        let seconds = try blocking {
            let engine = DockerEngine()
            let clock = ContinuousClock()
            let start = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for network in 0..<Self.networkCount {
                    group.addTask {
                        _ = try await engine.createNetwork(
                            NetworkCreate(
                                name: "\(prefix)-net\(network)", internal: true,
                                ipam: DockerIPAM(config: [DockerIPAMPool(subnet: self.subnet(network))])))
                    }
                }
                try await group.waitForAll()
            }
            let slots = (0..<Self.networkCount).flatMap { network in (0..<Self.containersPerNetwork).map { (network, $0) } }
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = 0
                func addNext() {
                    guard next < slots.count else { return }
                    let (network, slot) = slots[next]
                    let name = "\(prefix)-c\(next)"
                    // The service name compose (and so the import) gives each container on its network.
                    let service = "c" + (next < 10 ? "0\(next)" : "\(next)")
                    next += 1
                    group.addTask {
                        let id = try await engine.createContainer(
                            name: name,
                            ContainerCreate(
                                image: Self.image, cmd: ["sleep", "2147483647"],
                                networkingConfig: DockerNetworkingConfig(endpointsConfig: [
                                    "\(prefix)-net\(network)": DockerEndpointSettings(
                                        ipv4Address: self.address(network, slot), aliases: [service])
                                ])))
                        try await engine.startContainer(id)
                    }
                }
                for _ in 0..<concurrency { addNext() }
                while try await group.next() != nil { addNext() }
            }
            let elapsed = (clock.now - start).components
            return Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18
        }
        try removeByName(prefix)
        return seconds
    }

    /// Removes the containers, then the networks, whose names start with `prefix`.
    private func removeByName(_ prefix: String) throws {
        let filter = "name=\(prefix)"
        let containers = try Subprocess.check(["docker", "ps", "-aq", "--filter", filter], evenIfInterrupted: true).stdout
            .split(separator: "\n").map(String.init)
        if !containers.isEmpty { try Subprocess.check(["docker", "rm", "-f"] + containers, evenIfInterrupted: true) }
        let networks = try Subprocess.check(["docker", "network", "ls", "-q", "--filter", filter], evenIfInterrupted: true).stdout
            .split(separator: "\n").map(String.init)
        if !networks.isEmpty { try Subprocess.check(["docker", "network", "rm"] + networks, evenIfInterrupted: true) }
    }

    private func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    // MARK: Cleaning up

    /// Removes whatever converge left under this instance's label.
    private func sweepConverge() throws {
        let label = "label=\(OwnershipLabel.managedBy)=\(instance)"
        let containers = try Subprocess.check(["docker", "ps", "-aq", "--filter", label], evenIfInterrupted: true).stdout.split(
            separator: "\n"
        ).map(String.init)
        if !containers.isEmpty { try Subprocess.check(["docker", "rm", "-f"] + containers, evenIfInterrupted: true) }
        let networks = try Subprocess.check(["docker", "network", "ls", "-q", "--filter", label], evenIfInterrupted: true).stdout.split(
            separator: "\n"
        ).map(String.init)
        if !networks.isEmpty { try Subprocess.check(["docker", "network", "rm"] + networks, evenIfInterrupted: true) }
    }

    /// Everything this run may have made: converge's objects (by label), compose's project,
    /// and any container or network whose name carries the unique prefix; then the temp folder.
    func cleanUp() {
        lock.lock()
        defer { lock.unlock() }
        guard !cleanedUp else { return }
        cleanedUp = true
        try? sweepConverge()
        if FileManager.default.fileExists(atPath: composeFile) {
            _ = try? Subprocess.run(
                [
                    "docker-compose", "-f", composeFile, "-p", composeProject, "--ansi", "never", "down", "--remove-orphans", "--timeout",
                    "1",
                ],
                environment: composeEnvironment, evenIfInterrupted: true)
        }
        for filter in ["label=com.docker.compose.project=\(composeProject)", "name=\(prefix)"] {
            let containers =
                (try? Subprocess.run(["docker", "ps", "-aq", "--filter", filter], evenIfInterrupted: true).stdout.split(separator: "\n")
                    .map(String.init)) ?? []
            if !containers.isEmpty { _ = try? Subprocess.run(["docker", "rm", "-f"] + containers, evenIfInterrupted: true) }
            let networks =
                (try? Subprocess.run(["docker", "network", "ls", "-q", "--filter", filter], evenIfInterrupted: true).stdout.split(
                    separator: "\n"
                ).map(String.init)) ?? []
            if !networks.isEmpty { _ = try? Subprocess.run(["docker", "network", "rm"] + networks, evenIfInterrupted: true) }
        }
        let left = (try? Subprocess.run(["docker", "ps", "-aq", "--filter", "name=\(prefix)"], evenIfInterrupted: true).stdout) ?? ""
        if !left.isEmpty { log("docker: WARNING: containers named \(prefix)* are still there: \(left)") }
        try? FileManager.default.removeItem(atPath: root)
        log("docker: cleaned up \(prefix)*, instance \(instance), project \(composeProject)")
    }

    /// On SIGINT/SIGTERM: clean up, then exit as the signal would have.
    private func cleanUpOnSignals() -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                log("docker: interrupted, cleaning up")
                Subprocess.interrupt()
                cleanUp()
                exit(128 + number)
            }
            source.resume()
            return source
        }
    }
}
