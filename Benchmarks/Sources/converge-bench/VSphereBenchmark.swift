import ConvergeCore
import ConvergeTestSupport
import ConvergeVSphere
import Foundation

/// Observing 1,000 VMs on vCenter (govmomi's simulator): Converge's vim25 client and provider
/// against pyVmomi reading the same properties through a ContainerView, the way its users are
/// told to. Both go through `scripts/vcsim/paging_proxy.py`, which pages results at 100 objects
/// as vCenter does (the simulator itself returns everything at once), and both also read the
/// simulator directly over HTTPS.
enum VSphereBenchmark {
    static let name = "vsphere"
    static let vmCount = 1000

    static func run(runs: Int, packagePath: String) throws -> [Row] {
        let simulator = try BackgroundServer.start(
            [try simulatorBinary(packagePath), "-listen", "127.0.0.1:0", "-vm", String(vmCount), "-template", ""],
            readyLine: "VCSIM_READY")
        defer { simulator.stop() }
        guard let direct = simulator.values["VCSIM_URL"] else { throw Subprocess.Failure(description: "vcsim printed no URL") }
        let proxy = try BackgroundServer.start(
            ["/usr/bin/env", "python3", packagePath + "/scripts/vcsim/paging_proxy.py", "--upstream", direct],
            readyLine: "PROXY_READY")
        defer { proxy.stop() }
        guard let paged = proxy.values["PROXY_URL"] else { throw Subprocess.Failure(description: "the paging proxy printed no URL") }
        let python = try Subprocess.run(["/bin/bash", packagePath + "/Benchmarks/pyvmomi/setup.sh"], inheritStderr: true)
        guard python.succeeded else { throw Subprocess.Failure(description: "Benchmarks/pyvmomi/setup.sh failed") }
        let pythonPath = python.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        var rows: [Row] = []
        for (label, url) in [("paged 100, HTTP via proxy", paged), ("one page, HTTPS direct", direct)] {
            let swift = try measureClient(url: url, runs: runs)
            let observe = try measureProvider(url: url, runs: runs)
            let py = try measurePyVmomi(
                python: pythonPath, script: packagePath + "/Benchmarks/pyvmomi/observe_vms.py", url: url, runs: runs)
            guard swift.vms == vmCount, py.vms == vmCount else {
                throw Subprocess.Failure(description: "expected \(vmCount) VMs, Converge read \(swift.vms) and pyVmomi \(py.vms)")
            }
            rows += [
                Row(
                    name, "\(label): Converge client, 1,000 VMs x \(VSphereProvider.observedVMProperties.count) properties",
                    samples: swift.seconds),
                Row(name, "\(label): pyVmomi \(py.version), same read", samples: py.seconds),
                Row(
                    name, "\(label): ratio Converge / pyVmomi (medians)", samples: [Stats.median(swift.seconds) / Stats.median(py.seconds)],
                    unit: .ratio, target: "<= 1.0", bound: 1.0),
                Row(
                    name, "\(label): round trips, Converge client (pyVmomi: \(py.roundTrips))", samples: [Double(swift.roundTrips)],
                    unit: .count,
                    target: "<= 10 + constant", note: "pages of 100 plus CreateContainerView and DestroyView"),
                Row(name, "\(label): provider observe (whole datacenter inventory)", samples: observe.seconds),
                Row(
                    name, "\(label): round trips, provider observe", samples: [Double(observe.roundTrips)], unit: .count,
                    target: "<= 10 + constant"),
            ]
        }
        return rows
    }

    static func simulatorBinary(_ packagePath: String) throws -> String {
        if let path = ProcessInfo.processInfo.environment["CONVERGE_VCSIM"] { return path }
        let built = try Subprocess.run(["/bin/bash", packagePath + "/scripts/vcsim.sh"], inheritStderr: true)
        guard built.succeeded else { throw Subprocess.Failure(description: "scripts/vcsim.sh failed") }
        return built.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func endpoint(_ url: String) throws -> VimEndpoint {
        guard let endpoint = VimEndpoint(url: url, insecureSkipVerify: true) else {
            throw Subprocess.Failure(description: "unusable URL \(url)")
        }
        return endpoint
    }

    /// The same read as the pyVmomi script: one ContainerView over the root folder.
    static func measureClient(url: String, runs: Int) throws -> (seconds: [Double], roundTrips: Int, vms: Int) {
        let endpoint = try endpoint(url)
        return try blocking {
            let client = try await VimClient.connect(to: endpoint, credentials: VimCredentials(username: "user", password: "pass"))
            let root = await client.serviceContent.rootFolder
            var seconds: [Double] = []
            var roundTrips = 0
            var vms = 0
            for run in 0...runs {
                let before = await client.roundTrips
                let start = Clock.now()
                let objects = try await client.retrieve(under: root, properties: ["VirtualMachine": VSphereProvider.observedVMProperties])
                let elapsed = Clock.now() - start
                if run > 0 { seconds.append(elapsed) }
                roundTrips = await client.roundTrips - before
                vms = objects.count
            }
            await client.logout()
            return (seconds, roundTrips, vms)
        }
    }

    /// `VSphereProvider.observe` as `converge reconcile` runs it: the datacenter, every VM,
    /// folder, pool, datastore and network, and the ownership field.
    static func measureProvider(url: String, runs: Int) throws -> (seconds: [Double], roundTrips: Int) {
        let manifest = """
            apiVersion: converge.dev/v1alpha1
            kind: VCenter
            metadata: {name: bench}
            spec:
              url: \(url)
              datacenter: DC0
              credentials: {username: user, passwordEnv: CVB_VCENTER_PASSWORD}
              tls: {insecureSkipVerify: true}
            """
        setenv("CVB_VCENTER_PASSWORD", "pass", 1)
        let set = try ManifestSet.load([SourceFile(path: "bench.yaml", bytes: Array(manifest.utf8))], registry: benchKinds)
        guard let target = set.resources(ofKind: VCenterSpec.kind).first, let spec = target.spec(as: VCenterSpec.self) else {
            throw Subprocess.Failure(description: "the benchmark's VCenter manifest did not load")
        }
        return try blocking {
            let provider = VSphereProvider(target: target.id, spec: spec)
            let client = try await provider.client()
            var seconds: [Double] = []
            var roundTrips = 0
            for run in 0...runs {
                let before = await client.roundTrips
                let start = Clock.now()
                _ = try await provider.observe(desired: [], in: set, instance: "cvb-bench")
                let elapsed = Clock.now() - start
                if run > 0 { seconds.append(elapsed) }
                roundTrips = await client.roundTrips - before
            }
            await provider.shutdown()
            return (seconds, roundTrips)
        }
    }

    static func measurePyVmomi(python: String, script: String, url: String, runs: Int) throws -> (
        seconds: [Double], roundTrips: Int, vms: Int, version: String
    ) {
        var arguments = [
            python, script, url, "user", "pass", "--repeat", String(runs), "--warmup", "1",
            "--properties", VSphereProvider.observedVMProperties.joined(separator: ","),
        ]
        if url.hasPrefix("https://") { arguments.append("--insecure") }
        let result = try Subprocess.run(arguments, inheritStderr: true)
        struct Report: Decodable {
            var vms: Int
            var roundTrips: Int
            var allSeconds: [Double]
            var version: String
        }
        guard result.succeeded, let line = result.stdout.split(separator: "\n").last,
            let report = try? JSONDecoder().decode(Report.self, from: Data(line.utf8))
        else {
            throw Subprocess.Failure(description: "the pyVmomi script failed: \(result.stdout)")
        }
        return (report.allSeconds, report.roundTrips, report.vms, report.version)
    }
}
