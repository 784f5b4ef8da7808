import ConvergeTestSupport
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

let usage = """
    usage: converge-bench <plan|git-load|journal|resume|docker|firewall|vsphere|kubernetes|kubernetes-scale|ansible|controller|rollout|registry|workers|all> [options]

      plan       plan engine alone: ManifestSet.load + Planner.plan of 10,000 resources (no I/O)
      git-load   GitSource.load of a commit with 10,000 manifest files (local and file://)
      journal    workflow journal overhead per step: 1,000 no-op steps, SQLite and PostgreSQL
      resume     resume of a 1,000-step run killed after 999 steps, to its first new step
      docker     converge reconcile vs docker-compose up -d, 50 containers on 5 networks (converge's
                 manifests are `converge import compose` of compose's file: the round trip is
                 checked), and vs the same creates and starts sent straight to the Engine API
      firewall   one rule change in scenario S1, reconcile to verified; a 1,000-rule policy in
                 one nft transaction vs the seed's 1,000 x docker exec iptables -A
      vsphere    observe 1,000 VMs on govmomi's vCenter simulator: Converge's client and provider
                 vs pyVmomi reading the same properties through a ContainerView (round trips, time)
      kubernetes converge reconcile vs kubectl apply --server-side, 1,000 ConfigMaps in 10
                 namespaces on the test kube-apiserver; the in-sync dry-run and its API requests
      kubernetes-scale
                 peak RSS of a reconcile of 10,000 ConfigMaps
      ansible    converge playbooks run on 20 sshd containers vs 1 (ratio), Converge's overhead over a
                 bare ansible-playbook of the same play (1 and 20 hosts), and the controller's
                 schedule firing latency (20 one-time schedules, due time to run start)
      controller converge controller as a process: webhook to applied (one env field), idle RSS and
                 CPU with 1,000 containers, an in-sync interval of 10,000 ConfigMaps, leader
                 takeover after kill -9 on PostgreSQL
      rollout    blue-green rollouts through the HAProxy entry point under 200 requests/s: the
                 switch (step start to every request on the new version), failed requests; the
                 same switch by nftables DNAT in a router container, for comparison
      registry   plan of 50 containers whose 5 registry images are present: manifest requests to
                 the registry (counted in its log) with pull: ifNotPresent and pull: always
                 (needs scripts/registry.sh's registry in the environment)
      workers    the workers' PostgreSQL queue: claim throughput of no-op jobs with 4 workers,
                 pickup latency of idle workers (NOTIFY), takeover of a dead worker's job
      all        the fourteen, in that order

    options:
      --runs N            timed runs for plan, git-load, journal, resume, firewall, vsphere and registry (default 5)
      --seed-runs N       firewall: runs of the seed's 1,000 iptables -A, CLI and Engine API
                          (default 1; each takes a minute or so)
      --rounds N          rounds for docker, kubernetes, ansible and rollout, each tool once per round (default 3)
      --json              print the figures as JSON on stdout instead of a table
      --converge PATH     converge binary for docker and firewall (default: build it with
                          `swift build -c release --product converge` in the main package)
      --parallelism N     passed to the creating `converge reconcile` (default: converge's own)
      --package-path DIR  the main Converge package (default: the folder above Benchmarks/)
      --store NAME        journal and resume on one store only: sqlite or postgres (default both)
      --postgres-url URL  PostgreSQL server for journal and resume, which create and drop a
                          database of their own on it (default: $CONVERGE_TEST_POSTGRES_URL,
                          as `eval "$(scripts/postgres.sh)"` exports it)

    Each benchmark runs in a fresh child process of this one, so its peak memory is its own.
    Figures are printed next to their targets; nothing fails on a target.
    """

struct Options {
    var benchmarks: [String] = []
    var runs = 5
    var rounds = 3
    var seedRuns = 1
    var json = false
    var child = false
    var converge: String?
    var parallelism: Int?
    var postgresURL: String?
    var stores = StoreBackend.allCases
    var packagePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The arguments a child gets: the same options, one benchmark, `--child`.
    func childArguments(for benchmark: String) -> [String] {
        var arguments = [
            benchmark, "--child", "--runs", String(runs), "--rounds", String(rounds), "--seed-runs", String(seedRuns), "--package-path",
            packagePath,
        ]
        if let converge { arguments += ["--converge", converge] }
        if let parallelism { arguments += ["--parallelism", String(parallelism)] }
        if stores.count == 1 { arguments += ["--store", stores[0].rawValue] }
        return arguments
    }
}

func parse(_ arguments: [String]) -> Options {
    var options = Options()
    var iterator = arguments.makeIterator()
    func value(_ flag: String) -> String {
        guard let next = iterator.next() else { fail("\(flag) needs a value") }
        return next
    }
    func count(_ flag: String) -> Int {
        guard let number = Int(value(flag)), number > 0 else { fail("\(flag) needs a positive number") }
        return number
    }
    while let argument = iterator.next() {
        switch argument {
        case "plan", "git-load", "journal", "resume", "docker", "firewall", VSphereBenchmark.name, ResumeBenchmark.prepareCommand,
            KubernetesBenchmark.name, KubernetesBenchmark.scaleName, AnsibleBenchmark.name, ControllerBenchmark.name, RolloutBenchmark.name, RegistryBenchmark.name, WorkerBenchmark.name:
            options.benchmarks.append(argument)
        case "all":
            options.benchmarks += [
                "plan", "git-load", "journal", "resume", "docker", "firewall", VSphereBenchmark.name, KubernetesBenchmark.name,
                KubernetesBenchmark.scaleName, AnsibleBenchmark.name, ControllerBenchmark.name, RolloutBenchmark.name, RegistryBenchmark.name, WorkerBenchmark.name,
            ]
        case "--runs": options.runs = count(argument)
        case "--rounds": options.rounds = count(argument)
        case "--seed-runs": options.seedRuns = count(argument)
        case "--parallelism": options.parallelism = count(argument)
        case "--json": options.json = true
        case "--child": options.child = true
        case "--postgres-url": options.postgresURL = value(argument)
        case "--store":
            guard let store = StoreBackend(rawValue: value(argument)) else { fail("--store is sqlite or postgres") }
            options.stores = [store]
        case "--converge": options.converge = URL(fileURLWithPath: value(argument)).standardizedFileURL.path
        case "--package-path": options.packagePath = URL(fileURLWithPath: value(argument)).standardizedFileURL.path
        case "-h", "--help", "help":
            print(usage)
            exit(0)
        default: fail("unknown argument '\(argument)'")
        }
    }
    if options.benchmarks.isEmpty { fail("name a benchmark") }
    return options
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("converge-bench: \(message)\n\n\(usage)\n".utf8))
    exit(64)
}

/// In the child: run one benchmark and print its rows as JSON.
func runChild(_ options: Options) -> Int32 {
    let benchmark = options.benchmarks[0]
    do {
        let rows: [Row]
        switch benchmark {
        case "plan": rows = try PlanBenchmark.run(runs: options.runs)
        case "git-load": rows = try GitBenchmark.run(runs: options.runs)
        case "journal":
            rows = try JournalBenchmark.run(runs: options.runs, stores: options.stores, postgresURL: benchPostgresURL(options.postgresURL))
        case "resume":
            rows = try ResumeBenchmark.run(runs: options.runs, stores: options.stores, postgresURL: benchPostgresURL(options.postgresURL))
        case ResumeBenchmark.prepareCommand: try ResumeBenchmark.prepare(postgresURL: benchPostgresURL(options.postgresURL))
        case VSphereBenchmark.name: rows = try VSphereBenchmark.run(runs: options.runs, packagePath: options.packagePath)
        case KubernetesBenchmark.name:
            rows = try KubernetesBenchmark.run(runs: options.runs, rounds: options.rounds, packagePath: options.packagePath)
        case KubernetesBenchmark.scaleName: rows = try KubernetesBenchmark.runScale(packagePath: options.packagePath)
        case WorkerBenchmark.name:
            rows = try WorkerBenchmark.run(runs: options.runs, postgresURL: options.postgresURL)
        case RegistryBenchmark.name:
            rows = try RegistryBenchmark.run(runs: options.runs, converge: options.converge, packagePath: options.packagePath)
        case RolloutBenchmark.name:
            rows = try RolloutBenchmark.run(rounds: options.rounds, converge: options.converge, packagePath: options.packagePath)
        case AnsibleBenchmark.name:
            rows = try AnsibleBenchmark.run(rounds: options.rounds, converge: options.converge, packagePath: options.packagePath)
        case ControllerBenchmark.name:
            rows = try ControllerBenchmark.run(
                rounds: options.rounds, converge: options.converge, packagePath: options.packagePath,
                postgresURL: benchPostgresURL(options.postgresURL))
        case "firewall":
            rows = try FirewallBenchmark.run(
                runs: options.runs, seedRuns: options.seedRuns, converge: options.converge, packagePath: options.packagePath)
        default:
            rows = try DockerBenchmark.run(
                rounds: options.rounds, converge: options.converge, parallelism: options.parallelism, packagePath: options.packagePath)
        }
        let data = try ChildReport.encoder().encode(ChildReport(rows: rows))
        FileHandle.standardOutput.write(data)
        return 0
    } catch {
        // Interrupted: the failure is the clean-up closing the stores; the handler exits.
        Interruption.waitForCleanUpIfInterrupted()
        log("\(benchmark): ERROR: \(error)")
        return 1
    }
}

/// In the parent: one fresh child per benchmark, then the table.
func runParent(_ options: Options) -> Int32 {
    var rows: [Row] = []
    var failed: [String] = []
    for benchmark in options.benchmarks {
        log("\(benchmark): starting a child process")
        do {
            // The PostgreSQL URL goes through the environment, not argv: it may hold a password.
            let environment = options.postgresURL.map { ["CONVERGE_TEST_POSTGRES_URL": $0] } ?? [:]
            let result = try Subprocess.run(
                [Subprocess.selfPath] + options.childArguments(for: benchmark),
                environment: environment, inheritStderr: true)
            guard result.succeeded, let report = try? ChildReport.decoder().decode(ChildReport.self, from: Data(result.stdout.utf8)) else {
                log("\(benchmark): the child failed (exit \(result.status)); its figures are missing")
                failed.append(benchmark)
                continue
            }
            rows += report.rows
        } catch {
            log("\(benchmark): \(error)")
            failed.append(benchmark)
        }
    }
    if options.json {
        struct Output: Encodable {
            var date: String
            var cpus: Int
            var memoryGiB: Double
            var rows: [Row]
            var failed: [String]
        }
        let encoder = ChildReport.encoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let output = Output(
            date: ISO8601DateFormatter().string(from: Date()), cpus: ProcessInfo.processInfo.activeProcessorCount,
            memoryGiB: (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824 * 10).rounded() / 10,
            rows: rows, failed: failed)
        let data = (try? encoder.encode(output)) ?? Data()
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    } else {
        print(Table.render(rows))
        if !failed.isEmpty { print("\nfailed (no figures): \(failed.joined(separator: ", "))") }
    }
    return failed.isEmpty ? 0 : 1
}

let options = parse(Array(CommandLine.arguments.dropFirst()))
if options.child {
    let status = runChild(options)
    Interruption.waitForCleanUpIfInterrupted()
    exit(status)
} else {
    exit(runParent(options))
}
