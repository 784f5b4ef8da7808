import ConvergeCore
import ConvergeDocker
import Foundation

extension RolloutProvider {
    // MARK: Entry point

    /// Makes the entry point if it is missing (or, with `recreate`, when its settings
    /// changed), configured with what the live replicas and the old entry point say serves.
    func ensureEntry(_ rollout: Rollout, recreate: Bool) async throws {
        let live = try await live(rollout.name, instance: rollout.instance)
        let fields = Self.encodeFields(rollout.spec.entryFields)
        if let entry = live.entry, !recreate || entry.labels?[Label.fields] == fields {
            if entry.state != "running" { try await engine.startContainer(entry.id) }
            try await waitForRuntime(rollout.name, instance: rollout.instance)
            return
        }
        var active = EntryPointConfig.Slot.blue
        if let entry = live.entry {
            active = (try? runtime(rollout.name, instance: rollout.instance).activeSlot()) ?? active
            try await engine.removeContainer(entry.id, force: true)
        }
        let directory = socketDirectory(rollout.name, instance: rollout.instance)
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try? FileManager.default.removeItem(atPath: "\(directory)/\(EntryPointConfig.socketName)")
        let network = rollout.spec.networks[0]
        let config = configuration(live: live, listenPort: rollout.spec.entryPoint.port, active: active)
        let script = """
            mkdir -p \(EntryPointConfig.directory)
            [ -f \(EntryPointConfig.configPath) ] || printf '%s' "$CONVERGE_HAPROXY_CFG" > \(EntryPointConfig.configPath)
            [ -f \(EntryPointConfig.mapPath) ] || printf '%s' "$CONVERGE_HAPROXY_MAP" > \(EntryPointConfig.mapPath)
            rm -f \(EntryPointConfig.socketDirectory)/\(EntryPointConfig.socketName)
            exec haproxy -db -f \(EntryPointConfig.configPath)
            """
        let exposed = "\(rollout.spec.entryPoint.port)/tcp"
        let publish = rollout.spec.entryPoint.publish.map { [exposed: [DockerPortBinding(hostIP: $0.address, hostPort: String($0.port))]] }
        let request = ContainerCreate(
            image: rollout.spec.entryPoint.image, cmd: ["sh", "-c", script],
            env: ["CONVERGE_HAPROXY_CFG=\(config.text)", "CONVERGE_HAPROXY_MAP=\(config.mapText)"],
            labels: labels(rollout.name, instance: rollout.instance, role: .entry, extra: [Label.fields: fields]),
            exposedPorts: DockerPortSet([exposed]), hostname: Self.entryName(rollout.name),
            // HAProxy's graceful stop: it closes its listeners and lets the requests in flight finish.
            stopSignal: "SIGUSR1",
            hostConfig: DockerHostConfig(
                networkMode: network, portBindings: publish, restartPolicy: DockerRestartPolicy(name: "unless-stopped"),
                binds: ["\(directory):\(EntryPointConfig.socketDirectory)"]),
            networkingConfig: DockerNetworkingConfig(endpointsConfig: [
                network: DockerEndpointSettings(ipv4Address: nil, aliases: [rollout.name])
            ]))
        let id = try await engine.createContainer(name: Self.entryName(rollout.name), request)
        try await engine.startContainer(id)
        try await waitForRuntime(rollout.name, instance: rollout.instance)
    }

    /// Waits (up to 10 s) until the entry point's runtime API answers.
    func waitForRuntime(_ rollout: String, instance: String) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while true {
            do {
                _ = try runtime(rollout, instance: instance).activeSlot()
                return
            } catch {
                guard clock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
    }

    /// The entry point's configuration for the live replicas: each slot's servers are the
    /// running replicas of its version, at their address on their version's first network.
    nonisolated func configuration(live: LiveRollout, listenPort: Int, active: EntryPointConfig.Slot) -> EntryPointConfig {
        var servers: [EntryPointConfig.Slot: [EntryPointConfig.Server]] = [:]
        for slot in EntryPointConfig.Slot.allCases {
            guard let version = live.version(in: slot) else { continue }
            let replicas = live.replicas(in: slot).filter { $0.labels?[Label.version] == version && $0.state == "running" }
            servers[slot] = replicas.compactMap { replica in
                guard let fields = Self.decodeFields(replica).flatMap(VersionFields.init), let network = fields.networks.first,
                    let address = replica.networkSettings?.networks?[network]?.ipAddress, !address.isEmpty
                else { return nil }
                return EntryPointConfig.Server(address: address, port: fields.port)
            }
        }
        return EntryPointConfig(listenPort: listenPort, active: active, servers: servers)
    }

    /// Rewrites the entry point's files to what it runs now, so a restart brings it back as it is.
    func persist(_ rollout: String, instance: String) async throws {
        let live = try await live(rollout, instance: instance)
        guard let entry = live.entry, case .int(let listenPort)? = Self.decodeFields(entry)?["port"] else { return }
        let active = try runtime(rollout, instance: instance).activeSlot() ?? .blue
        let config = configuration(live: live, listenPort: listenPort, active: active)
        let result = try await engine.exec(
            container: entry.id,
            command: [
                "sh", "-c",
                "printf '%s' \"$CFG\" > \(EntryPointConfig.configPath).new && mv -f \(EntryPointConfig.configPath).new \(EntryPointConfig.configPath)"
                    + " && printf '%s' \"$MAP\" > \(EntryPointConfig.mapPath)",
            ],
            environment: ["CFG=\(config.text)", "MAP=\(config.mapText)"])
        guard result.succeeded else {
            throw RolloutError("cannot save the entry point's configuration: \(result.stderr)", hint: nil)
        }
    }

    func labels(_ rollout: String, instance: String, role: Role, extra: [String: String]) -> [String: String] {
        [
            OwnershipLabel.managedBy: instance, OwnershipLabel.resource: "\(RolloutSpec.kind)/\(rollout)", Label.role: role.rawValue,
        ].merging(extra) { _, new in new }
    }

    // MARK: Deploy

    func deploy(_ rollout: Rollout) async throws {
        try await ensureEntry(rollout, recreate: false)
        var live = try await live(rollout.name, instance: rollout.instance)
        // A version on another first network: the entry point joins it, and keeps the old one
        // while the old version serves.
        if let entry = live.entry, entry.networkSettings?.networks?[rollout.spec.networks[0]] == nil {
            try await engine.connect(network: rollout.spec.networks[0], container: entry.id, aliases: [rollout.name])
            live = try await self.live(rollout.name, instance: rollout.instance)
        }
        let active = try runtime(rollout.name, instance: rollout.instance).activeSlot()
        let version = rollout.spec.version
        let slot = targetSlot(for: version, live: live, active: active)
        // What an interrupted rollout of another version left in the slot.
        for stale in live.replicas(in: slot) where stale.labels?[Label.version] != version {
            try await engine.removeContainer(stale.id, force: true)
        }
        let fields = VersionFields(rollout.spec)
        let existing = live.replicas(of: version)
        var names: [String] = []
        for index in 0..<fields.replicas {
            let name = Self.replicaName(rollout.name, version: version, index: index)
            names.append(name)
            if let replica = existing.first(where: { $0.name == name }) {
                if replica.state != "running" { try await engine.startContainer(replica.id) }
                continue
            }
            try await createReplica(rollout.name, name: name, version: version, slot: slot, fields: fields, instance: rollout.instance)
        }
        for extra in existing where !names.contains(extra.name ?? "") {
            try await engine.removeContainer(extra.id, force: true)
        }
        report("version \(version) (\(fields.image)) deployed in slot \(slot.rawValue): \(names.joined(separator: ", "))")
    }

    /// The slot a version goes to: the one it already fills, else the one not serving.
    func targetSlot(for version: String, live: LiveRollout, active: EntryPointConfig.Slot?) -> EntryPointConfig.Slot {
        if let slot = live.replicas(of: version).first?.labels?[Label.slot].flatMap(EntryPointConfig.Slot.init) { return slot }
        return active?.other ?? .green
    }

    func createReplica(
        _ rollout: String, name: String, version: String, slot: EntryPointConfig.Slot, fields: VersionFields, instance: String
    ) async throws {
        var versionFields = FieldMap()
        versionFields["image"] = .string(fields.image)
        if let command = fields.command { versionFields["command"] = .strings(command) }
        versionFields["env"] = .stringMap(fields.env)
        versionFields["replicas"] = .int(fields.replicas)
        versionFields["port"] = .int(fields.port)
        versionFields["networks"] = .strings(fields.networks)
        let network = fields.networks[0]
        let request = ContainerCreate(
            image: fields.image, cmd: fields.command,
            env: fields.env.isEmpty ? nil : fields.env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
            labels: labels(
                rollout, instance: instance, role: .replica,
                extra: [Label.version: version, Label.slot: slot.rawValue, Label.fields: Self.encodeFields(versionFields)]),
            hostname: name,
            hostConfig: DockerHostConfig(networkMode: network, restartPolicy: DockerRestartPolicy(name: "unless-stopped")),
            networkingConfig: DockerNetworkingConfig(endpointsConfig: [network: DockerEndpointSettings(ipv4Address: nil, aliases: nil)]))
        let id = try await engine.createContainer(name: name, request)
        for other in fields.networks.dropFirst() {
            try await engine.connect(network: other, container: id)
        }
        try await engine.startContainer(id)
    }

    // MARK: Ready, analyses

    /// The running replicas of `version`, at their address on the rollout's first network.
    func replicaEndpoints(_ rollout: Rollout, version: String) async throws -> [Endpoint] {
        let network = rollout.spec.networks[0]
        var endpoints: [Endpoint] = []
        for replica in try await live(rollout.name, instance: rollout.instance).replicas(of: version) {
            let inspect = try await engine.inspectContainer(replica.id)
            guard inspect.state?.running == true, let address = inspect.networkSettings?.networks?[network]?.ipAddress, !address.isEmpty
            else {
                throw RolloutError(
                    "replica \(replica.name ?? replica.id) is not running on network \(network)",
                    hint: "check its logs: docker logs \(replica.name ?? replica.id)")
            }
            endpoints.append(Endpoint(name: replica.name ?? replica.id, address: address, port: rollout.spec.port))
        }
        guard endpoints.count == rollout.spec.replicas else {
            throw RolloutError("version \(version) has \(endpoints.count) of \(rollout.spec.replicas) replicas", hint: "reconcile again")
        }
        return endpoints
    }

    func entryEndpoint(_ rollout: Rollout) async throws -> Endpoint {
        let network = rollout.spec.networks[0]
        guard let entry = try await live(rollout.name, instance: rollout.instance).entry,
            let address = try await engine.inspectContainer(entry.id).networkSettings?.networks?[network]?.ipAddress, !address.isEmpty
        else {
            throw RolloutError(
                "the entry point of \(RolloutSpec.kind)/\(rollout.name) is not running", hint: "reconcile again to repair it")
        }
        return Endpoint(name: Self.entryName(rollout.name), address: address, port: rollout.spec.entryPoint.port)
    }

    /// Waits for every replica of the new version, then puts them in their slot's servers
    /// (not yet serving: the map still names the other slot).
    func waitReady(_ rollout: Rollout) async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let endpoints = try await replicaEndpoints(rollout, version: rollout.spec.version)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for endpoint in endpoints {
                group.addTask {
                    try await AnalysisRunner.waitReady(endpoint, path: rollout.spec.readiness.path, timeout: rollout.spec.readiness.timeout)
                }
            }
            try await group.waitForAll()
        }
        let live = try await live(rollout.name, instance: rollout.instance)
        let slot = targetSlot(for: rollout.spec.version, live: live, active: nil)
        try runtime(rollout.name, instance: rollout.instance).send(
            EntryPointConfig.fill(slot, with: endpoints.map { EntryPointConfig.Server(address: $0.address, port: $0.port) }))
        let seconds = String(format: "%.1f", (clock.now - started).timeInterval)
        report(
            "\(endpoints.count) replica\(endpoints.count == 1 ? "" : "s") ready in \(seconds) s: \(endpoints.map(\.description).joined(separator: ", "))"
        )
    }

    /// Runs `analysis` (none: nothing to do); throws when it fails.
    func analyse(_ analysis: Analysis?, named title: String, on endpoints: [Endpoint], rollout: Rollout) async throws {
        guard let analysis else { return }
        var failures = 0
        var measurements: [JSONValue] = []
        var lines: [String] = []
        for number in 1...analysis.count {
            if number > 1 { try await Task.sleep(for: analysis.interval) }
            var problems: [String] = []
            for check in analysis.checks {
                switch check {
                case .http(let path, let status, let field, let equals):
                    for endpoint in endpoints {
                        if let problem = await AnalysisRunner.http(endpoint, path: path, status: status, field: field, equals: equals) {
                            problems.append(problem)
                        }
                    }
                case .probe(let name):
                    let result = await context.check(ResourceID(kind: "Probe", name: name), rollout.set)
                    if let result, result.reachable == result.expected { continue }
                    problems.append("probe \(name): \(result?.detail ?? "no plug-in runs Probe checks here")")
                }
            }
            if !problems.isEmpty { failures += 1 }
            let at = Date()
            measurements.append(
                .object([
                    "at": .string(Self.timestamp(at)), "ok": .bool(problems.isEmpty), "problems": .array(problems.map(JSONValue.string)),
                ]))
            lines.append("measurement \(number): " + (problems.isEmpty ? "ok" : problems.joined(separator: "; ")))
            if failures > analysis.failureLimit {
                report(
                    "\(title) failed after \(number) of \(analysis.count) measurements\n" + lines.joined(separator: "\n"),
                    measurements: measurements)
                throw RolloutError(
                    "\(title) of \(RolloutSpec.kind)/\(rollout.name) failed: \(failures) failed measurement\(failures == 1 ? "" : "s"), at most \(analysis.failureLimit) allowed (\(problems.joined(separator: "; ")))",
                    hint: nil)
            }
        }
        report(
            "\(title): \(analysis.count - failures) of \(analysis.count) measurements passed\n" + lines.joined(separator: "\n"),
            measurements: measurements)
    }

    // MARK: Switch

    func switchTraffic(_ rollout: Rollout) async throws {
        let live = try await live(rollout.name, instance: rollout.instance)
        let version = rollout.spec.version
        guard let slot = live.replicas(of: version).first?.labels?[Label.slot].flatMap(EntryPointConfig.Slot.init) else {
            throw RolloutError(
                "version \(version) of \(RolloutSpec.kind)/\(rollout.name) has no replicas to switch to", hint: "reconcile again")
        }
        let api = runtime(rollout.name, instance: rollout.instance)
        let previous = try api.activeSlot()
        let clock = ContinuousClock()
        let started = clock.now
        try api.send([EntryPointConfig.switchCommand(to: slot)])
        let took = clock.now - started
        let at = Date()
        try await persist(rollout.name, instance: rollout.instance)
        let from = previous.flatMap { live.version(in: $0) }.map { describe($0, in: live) } ?? "nothing"
        report(
            "traffic: \(from) → \(describe(version, in: live)) at \(Self.timestamp(at)) (switched in \(String(format: "%.2f", took.timeInterval * 1000)) ms)",
            measurements: [.object(["from": .string(from), "to": .string(describe(version, in: live)), "at": .string(Self.timestamp(at))])])
    }

    func switchBack(_ rollout: String, to previous: EntryPointConfig.Slot?, instance: String) async throws {
        let live = try await live(rollout, instance: instance)
        guard let previous, let version = live.version(in: previous), live.entry != nil else {
            report("traffic: no earlier version to return to")
            return
        }
        try runtime(rollout, instance: instance).send([EntryPointConfig.switchCommand(to: previous)])
        let at = Date()
        try await persist(rollout, instance: instance)
        report("traffic: back to \(describe(version, in: live)) at \(Self.timestamp(at))")
    }

    /// `version 1a2b3c4d5e6f (image)`.
    nonisolated func describe(_ version: String, in live: LiveRollout) -> String {
        let image = Self.decodeFields(live.replicas(of: version).first).flatMap(VersionFields.init)?.image
        return "version \(version)" + (image.map { " (\($0))" } ?? "")
    }

    // MARK: Finalize

    func finalize(_ rollout: Rollout) async throws {
        let version = rollout.spec.version
        let live = try await live(rollout.name, instance: rollout.instance)
        let retired = live.replicas.filter { $0.labels?[Label.version] != version }
        if !retired.isEmpty { try await Task.sleep(for: rollout.spec.drainDelay) }
        if let slot = live.replicas(of: version).first?.labels?[Label.slot].flatMap(EntryPointConfig.Slot.init) {
            try runtime(rollout.name, instance: rollout.instance).send(EntryPointConfig.fill(slot.other, with: []))
        }
        for replica in retired { try await engine.removeContainer(replica.id, force: true) }
        try await persist(rollout.name, instance: rollout.instance)
        // The entry point leaves networks only the old version used, and settings changed with
        // the version apply once the new version alone serves.
        if let entry = live.entry {
            for network in entry.networkSettings?.networks?.keys.sorted() ?? [] where network != rollout.spec.networks[0] {
                try await engine.disconnect(network: network, container: entry.id)
            }
        }
        try await ensureEntry(rollout, recreate: true)
        let names = retired.compactMap(\.name).sorted()
        report(
            names.isEmpty
                ? "nothing to remove"
                : "removed after a drain of \(DurationText.format(nanoseconds: Int64(rollout.spec.drainDelay.timeInterval * 1e9))): \(names.joined(separator: ", "))"
        )
    }

    /// The version finalize will remove (the one not serving), to bring it back on rollback.
    nonisolated func retiredVersion(_ live: LiveRollout, keeping version: String) -> Retired? {
        guard let replica = live.replicas.first(where: { $0.labels?[Label.version] != version }),
            let retiredVersion = replica.labels?[Label.version], let slot = replica.labels?[Label.slot].flatMap(EntryPointConfig.Slot.init),
            let fields = replica.labels?[Label.fields]
        else { return nil }
        return Retired(version: retiredVersion, slot: slot, fields: fields)
    }

    // MARK: Undo

    /// Removes the replicas a deploy made (and an entry point made for a first version),
    /// unless they serve.
    func undeploy(_ rollout: String, version: String?, entryExisted: Bool, instance: String) async throws {
        let live = try await live(rollout, instance: instance)
        guard let version else { return }
        let replicas = live.replicas(of: version)
        let active = live.entry == nil ? nil : try? runtime(rollout, instance: instance).activeSlot()
        if let slot = replicas.first?.labels?[Label.slot].flatMap(EntryPointConfig.Slot.init), live.entry != nil {
            if slot == active, live.replicas.contains(where: { $0.labels?[Label.version] != version }) {
                throw RolloutError(
                    "version \(version) still serves; traffic was not switched back", hint: "switch it back by hand, then reconcile")
            }
            // Emptying the idle slot is tidiness: an entry point that cannot be told still
            // never sends traffic to a slot the map does not name.
            _ = try? runtime(rollout, instance: instance).send(EntryPointConfig.fill(slot, with: []))
        }
        for replica in replicas { try await engine.removeContainer(replica.id, force: true) }
        if !entryExisted, live.replicas.allSatisfy({ $0.labels?[Label.version] == version }), let entry = live.entry {
            try await engine.removeContainer(entry.id, force: true)
            try? FileManager.default.removeItem(atPath: socketDirectory(rollout, instance: instance))
        } else if live.entry != nil {
            try await persist(rollout, instance: instance)
        }
        report("removed version \(version): \(replicas.compactMap(\.name).sorted().joined(separator: ", "))")
    }

    /// Brings back a version finalize removed, in its slot, ready to serve again.
    func restore(_ retired: Retired, rollout: String, instance: String) async throws {
        guard let value = try? JSONDecoder().decode(FieldValue.self, from: Data(retired.fields.utf8)), case .map(let map) = value,
            let fields = VersionFields(map)
        else { return }
        let live = try await live(rollout, instance: instance)
        var endpoints: [Endpoint] = []
        for index in 0..<fields.replicas {
            let name = Self.replicaName(rollout, version: retired.version, index: index)
            if !live.replicas.contains(where: { $0.name == name }) {
                try await createReplica(
                    rollout, name: name, version: retired.version, slot: retired.slot, fields: fields, instance: instance)
            }
            let inspect = try await engine.inspectContainer(name)
            if let address = inspect.networkSettings?.networks?[fields.networks[0]]?.ipAddress, !address.isEmpty {
                endpoints.append(Endpoint(name: name, address: address, port: fields.port))
            }
        }
        for endpoint in endpoints { try await AnalysisRunner.waitReady(endpoint, path: nil, timeout: .seconds(60)) }
        try runtime(rollout, instance: instance).send(
            EntryPointConfig.fill(retired.slot, with: endpoints.map { EntryPointConfig.Server(address: $0.address, port: $0.port) }))
        try await persist(rollout, instance: instance)
        report("brought back version \(retired.version) (\(fields.image)) in slot \(retired.slot.rawValue)")
    }

    /// Removes a rollout's containers.
    func remove(_ live: LiveRollout, keepEntry: Bool) async throws {
        for replica in live.replicas { try await engine.removeContainer(replica.id, force: true) }
        if !keepEntry, let entry = live.entry { try await engine.removeContainer(entry.id, force: true) }
    }

    /// Times in reports, to the millisecond: which version served when.
    nonisolated static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    /// Reports `text` (and structured details) as the step's report.
    nonisolated func report(_ text: String, measurements: [JSONValue] = []) {
        var fields: [String: JSONValue] = ["text": .string(text)]
        if !measurements.isEmpty { fields["details"] = .array(measurements) }
        StepReporter.current?.report(JSONValue.object(fields).serialized)
    }
}
