import ConvergeCore

/// A large, valid manifest set made in memory: `networks` Networks, each with its own /24
/// taken in order from 10.0.0.0/8 (so none overlap), and `containersPerNetwork` Containers
/// on each with static addresses, env and labels. One file per resource, plus the DockerHost.
struct ManifestGenerator {
    var networks = 2_000
    var containersPerNetwork = 4

    var resourceCount: Int { networks * (1 + containersPerNetwork) }

    static func networkName(_ index: Int) -> String { "net-" + padded(index, 4) }
    static func containerName(_ index: Int) -> String { "app-" + padded(index, 5) }

    /// 10.A.B.0/24 with A.B = index; 2,000 networks reach 10.7.207.0/24.
    static func subnet(_ index: Int) -> String { "10.\(index >> 8).\(index & 0xFF).0/24" }
    static func address(network: Int, slot: Int) -> String { "10.\(network >> 8).\(network & 0xFF).\(10 + slot)" }

    static let host = """
        apiVersion: converge.dev/v1alpha1
        kind: DockerHost
        metadata:
          name: local
        spec:
          endpoint: unix:///var/run/docker.sock

        """

    func networkYAML(_ index: Int) -> String {
        """
        apiVersion: converge.dev/v1alpha1
        kind: Network
        metadata:
          name: \(Self.networkName(index))
          labels:
            bench: plan
            zone: z\(index % 8)
        spec:
          subnet: \(Self.subnet(index))
          internal: true

        """
    }

    func containerYAML(_ index: Int) -> String {
        let network = index / containersPerNetwork
        let slot = index % containersPerNetwork
        return """
            apiVersion: converge.dev/v1alpha1
            kind: Container
            metadata:
              name: \(Self.containerName(index))
              labels:
                app: svc-\(index % 97)
                tier: \(slot == 0 ? "front" : "back")
            spec:
              image: converge-lab/busybox:1
              command: [sleep, "2147483647"]
              env:
                MODE: blue
                INDEX: "\(index)"
                REGION: eu-\(index % 3)
              networks:
                - name: \(Self.networkName(network))
                  ipv4: \(Self.address(network: network, slot: slot))
              restartPolicy: unless-stopped

            """
    }

    /// Every file, path relative to the repository root, sorted by path.
    func files(folder: String = "manifests") -> [SourceFile] {
        var files: [SourceFile] = []
        files.reserveCapacity(resourceCount + 1)
        files.append(SourceFile(path: "\(folder)/host.yaml", bytes: Array(Self.host.utf8)))
        for index in 0..<networks {
            files.append(SourceFile(path: "\(folder)/networks/\(Self.networkName(index)).yaml", bytes: Array(networkYAML(index).utf8)))
        }
        for index in 0..<(networks * containersPerNetwork) {
            files.append(
                SourceFile(path: "\(folder)/containers/\(Self.containerName(index)).yaml", bytes: Array(containerYAML(index).utf8)))
        }
        return files.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
    }
}

private func padded(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return String(repeating: "0", count: max(0, width - text.count)) + text
}
