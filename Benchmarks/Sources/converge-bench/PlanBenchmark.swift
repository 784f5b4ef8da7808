import ConvergeCore
import ConvergeDocker

/// `plan`: the plan engine alone, no I/O. 10,000 resources as YAML in memory; times
/// `ManifestSet.load` (decode + validate) and `Planner.plan` against a live state with 10% drift.
enum PlanBenchmark {
    static let name = "plan"

    static func run(runs: Int) throws -> [Row] {
        let generator = ManifestGenerator()
        let files = generator.files()
        let bytes = files.reduce(0) { $0 + $1.bytes.count }
        log("plan: \(files.count) files, \(bytes / 1024) KiB of YAML, \(generator.resourceCount) resources")

        // The live state, built once from a first load (not timed).
        let reference = try ManifestSet.load(files, registry: benchKinds)
        let inSync = observation(of: reference)
        let (drifted, expected) = drift(inSync, set: reference)
        let planner = Planner(observedKinds: [NetworkSpec.kind, ContainerSpec.kind])
        let source = SourceRevision(repository: "memory", commit: String(repeating: "0", count: 40))
        let inputRSS = currentRSSMiB()

        var loadTimes: [Double] = []
        var planTimes: [Double] = []
        var totals: [Double] = []
        var noopTimes: [Double] = []
        var summary = ""
        for run in 1...runs {
            let (set, loadTime) = try Clock.time { try ManifestSet.load(files, registry: benchKinds) }
            let (plan, planTime) = try Clock.time {
                try planner.plan(desired: set, observed: drifted, source: source, instance: "bench")
            }
            let (noop, noopTime) = try Clock.time {
                try planner.plan(desired: set, observed: inSync, source: source, instance: "bench")
            }
            precondition(noop.isEmpty, "an in-sync observation must give an empty plan")
            summary = "+\(plan.summary.add) ~\(plan.summary.change) -\(plan.summary.destroy), \(plan.steps.count) steps"
            loadTimes.append(loadTime)
            planTimes.append(planTime)
            noopTimes.append(noopTime)
            totals.append(loadTime + planTime)
            log("plan: run \(run)/\(runs): load \(Table.format(loadTime, .seconds)), plan \(Table.format(planTime, .seconds)) (\(summary))")
        }

        let peak = peakRSSMiB()
        return [
            Row(
                name, "(a) ManifestSet.load: decode+validate \(files.count) files", samples: loadTimes,
                note:
                    "\(generator.resourceCount) resources (\(generator.networks) Networks, \(generator.networks * generator.containersPerNetwork) Containers) + 1 DockerHost, \(bytes / 1024) KiB of YAML"
            ),
            Row(
                name, "(b) Planner.plan, 10% drift", samples: planTimes,
                note: "plan \(summary); drift: \(expected)"),
            Row(name, "(a)+(b) load + plan", samples: totals, target: "< 1 s", bound: 1.0),
            Row(name, "Planner.plan, in sync (empty plan)", samples: noopTimes),
            Row(
                name, "peak RSS (getrusage ru_maxrss)", samples: [peak], unit: .mebibytes, target: "< 200 MB",
                bound: 200_000_000 / 1_048_576,
                note:
                    "whole child process: \(String(format: "%.1f", inputRSS)) MiB resident after making the input and the observed state, before the timed runs"
            ),
        ]
    }

    /// The live state that matches `set` exactly, as a provider would report it (the same
    /// shape as `inSyncObservation` in Tests/ConvergeCoreTests/PlannerTests.swift).
    static func observation(of set: ManifestSet) -> [ObservedResource] {
        set.resources.filter { $0.isLiveObject }.map { resource in
            ObservedResource(
                id: resource.id, fields: resource.spec.desiredFields(metadata: resource.metadata),
                ownership: .managed, externalID: "id-\(resource.id.name)",
                dependencies: resource.spec.references(in: set).map(\.target).filter { $0.kind == NetworkSpec.kind })
        }
    }

    /// 10% of containers drift (restart policy, run state or env, in turn), one network in
    /// 400 has another subnet (replaced with its containers), and managed objects no
    /// manifest describes are to be pruned; a few unmanaged strangers are ignored.
    static func drift(_ observed: [ObservedResource], set: ManifestSet) -> ([ObservedResource], String) {
        var observed = observed
        var restart = 0, state = 0, env = 0, subnets = 0
        for index in observed.indices {
            let id = observed[index].id
            guard let number = Int(id.name.drop { !$0.isNumber }) else { continue }
            if id.kind == ContainerSpec.kind, number % 10 == 0 {
                switch (number / 10) % 3 {
                case 0:
                    observed[index].fields["restartPolicy"] = .string("always"); restart += 1
                case 1:
                    observed[index].fields["state"] = .string("stopped"); state += 1
                default:
                    observed[index].fields["env"] = .stringMap(["MODE": "green", "INDEX": "\(number)", "REGION": "eu-9"]); env += 1
                }
            } else if id.kind == NetworkSpec.kind, number % 400 == 7 {
                observed[index].fields["subnet"] = .string("10.250.\(number % 256).0/24"); subnets += 1
            }
        }
        let orphanNetworks = 10, orphanContainers = 40, strangers = 25
        for network in 0..<orphanNetworks {
            observed.append(
                ObservedResource(
                    id: ResourceID(kind: NetworkSpec.kind, name: "old-net-\(network)"),
                    fields: FieldMap(["driver": .string("bridge"), "subnet": .string("10.251.\(network).0/24")]),
                    ownership: .managed, externalID: "old-net-\(network)"))
        }
        for container in 0..<orphanContainers {
            observed.append(
                ObservedResource(
                    id: ResourceID(kind: ContainerSpec.kind, name: "old-app-\(container)"),
                    fields: FieldMap(["image": .string("converge-lab/busybox:1")]),
                    ownership: .managed, externalID: "old-app-\(container)",
                    dependencies: [ResourceID(kind: NetworkSpec.kind, name: "old-net-\(container % orphanNetworks)")]))
        }
        for stranger in 0..<strangers {
            observed.append(
                ObservedResource(
                    id: ResourceID(kind: ContainerSpec.kind, name: "someone-else-\(stranger)"),
                    fields: FieldMap(), ownership: .unmanaged, externalID: "x-\(stranger)"))
        }
        let text =
            "\(restart) restartPolicy + \(state) state (updates), \(env) env (replaces), \(subnets) subnets (replace + their containers), \(orphanNetworks + orphanContainers) managed orphans to prune, \(strangers) unmanaged ignored"
        return (observed, text)
    }
}
