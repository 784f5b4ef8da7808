import ConvergeTestSupport
import ConvergeVSphere
import Foundation
import Testing

/// A private vCenter simulator (vcsim) on a loopback port, over HTTPS with its self-signed
/// certificate, plus a folder for manifests and a run store. Each test gets its own
/// simulator, so tests never see each other's VMs.
struct VCenterLab {
    let server: BackgroundServer
    let url: String
    let user: String
    let password: String
    let directory: URL

    /// The environment variable the lab's VCenter manifest reads the password from.
    static let passwordVariable = "CVT_VCENTER_PASSWORD"

    static func with(arguments: [String] = [], _ body: (VCenterLab) async throws -> Void) async throws {
        let lab = try await start(arguments: arguments)
        defer { lab.stop() }
        try await body(lab)
    }

    static var binary: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return ProcessInfo.processInfo.environment["CONVERGE_VCSIM"] ?? root.appendingPathComponent(".build-vcsim/vcsim-converge").path
    }

    /// Starts the simulator and waits until it prints that it is ready.
    static func start(arguments: [String] = []) async throws -> VCenterLab {
        let path = binary
        guard FileManager.default.isExecutableFile(atPath: path) else {
            Issue.record("the vCenter simulator is missing at \(path): run scripts/vcsim.sh (scripts/test.sh does)")
            throw MissingComponent(name: "vcsim")
        }
        guard let server = try await BackgroundServer.start(path, ["-listen", "127.0.0.1:0"] + arguments, readyLine: "VCSIM_READY"),
              let url = server.values["VCSIM_URL"] else {
            throw MissingComponent(name: "vcsim (it did not print its URL)")
        }
        let lines = server.values
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cvt-vcenter-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return VCenterLab(server: server, url: url, user: lines["VCSIM_USER"] ?? "user", password: lines["VCSIM_PASSWORD"] ?? "pass", directory: directory)
    }

    func stop() {
        server.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The VCenter manifest pointing at this simulator.
    func vcenterManifest(retention: String = "24h") -> String {
        """
        apiVersion: converge.dev/v1alpha1
        kind: VCenter
        metadata: {name: lab}
        spec:
          url: \(url)
          datacenter: DC0
          credentials:
            username: \(user)
            passwordEnv: \(Self.passwordVariable)
          tls:
            insecureSkipVerify: true
          snapshotRetention: \(retention)
        """
    }

    /// Replaces the manifests folder's contents with the VCenter manifest and `vms`.
    func writeManifests(_ vms: [String]) throws {
        let folder = directory.appendingPathComponent("manifests")
        try? FileManager.default.removeItem(at: folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try vcenterManifest().write(to: folder.appendingPathComponent("vcenter.yaml"), atomically: true, encoding: .utf8)
        for (index, vm) in vms.enumerated() {
            try vm.write(to: folder.appendingPathComponent("vm-\(index).yaml"), atomically: true, encoding: .utf8)
        }
    }

    /// Runs `converge <arguments…>` on the manifests folder with this lab's store and password.
    func converge(_ arguments: [String], password: String? = nil) async throws -> CommandResult {
        var full = arguments
        full.insert(directory.appendingPathComponent("manifests").path, at: arguments.first == "snapshots" ? 2 : 1)
        if ["reconcile", "runs", "snapshots"].contains(arguments.first) {
            full += ["--state", directory.appendingPathComponent("state.db").path]
        }
        return try await run(convergeBinary, full, environment: [Self.passwordVariable: password ?? self.password, "NO_COLOR": "1"])
    }

    /// A client of its own, to look at the simulator the way a test should: from outside.
    func client() async throws -> VimClient {
        guard let endpoint = VimEndpoint(url: url, insecureSkipVerify: true) else { throw MissingComponent(name: "a usable vcsim URL") }
        return try await VimClient.connect(to: endpoint, credentials: VimCredentials(username: user, password: password))
    }

    /// Sets a snapshot's creation time through the simulator's test hook (vcsim stamps the
    /// current time and has no clock to move).
    func setCreationTime(of snapshot: ManagedObjectReference, to date: Date) async throws {
        let base = url.replacingOccurrences(of: "/sdk", with: "")
        let formatter = ISO8601DateFormatter()
        let result = try await run("/usr/bin/curl", ["-sk", "-X", "POST", "\(base)/converge/snapshot-time?snapshot=\(snapshot.value)&time=\(formatter.string(from: date))"])
        #expect(result.stdout.contains("ok"), "snapshot-time hook: \(result.stdout) \(result.stderr)")
    }
}

/// A VirtualMachine manifest with the fields the tests vary.
func vmManifest(_ name: String, cpus: Int = 1, memoryMB: Int = 1024, extra: String = "") -> String {
    """
    apiVersion: converge.dev/v1alpha1
    kind: VirtualMachine
    metadata: {name: \(name)}
    spec:
      template: tmpl-linux
      cluster: DC0_C0
      cpus: \(cpus)
      memoryMB: \(memoryMB)
      allowPowerCycle: true
    \(extra)
    """
}
