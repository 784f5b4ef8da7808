import Foundation
import Testing

/// `charts/converge` with Helm's own library (PyPI's helm-sdkpy, scripts/helm-sdk.sh) on the
/// test kube-apiserver: lint, install, then the controller run out of the cluster as the
/// chart's ServiceAccount (a TokenRequest token), and RBAC that grants nothing more.
@Suite("charts/converge", .serialized)
struct ChartTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("the chart lints and installs; the controller reconciles a ConvergeSource as its ServiceAccount, which RBAC limits")
    func chart() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let kubeconfig = environment["CONVERGE_TEST_KUBECONFIG"], let server = environment["CONVERGE_TEST_KUBE_URL"],
            let ca = environment["CONVERGE_TEST_KUBE_CA"]
        else {
            Issue.record(
                "CONVERGE_TEST_KUBECONFIG, _URL and _CA are not set: run `eval \"$(scripts/kube-apiserver.sh --start)\"` first (scripts/test.sh does)"
            )
            throw MissingComponent(name: "kube-apiserver")
        }
        let python = try await run("/bin/bash", [Self.root.appendingPathComponent("scripts/helm-sdk.sh").path])
        guard python.exitCode == 0 else {
            Issue.record("scripts/helm-sdk.sh failed: \(python.stderr)")
            throw MissingComponent(name: "helm-sdkpy")
        }
        let helm = { (arguments: [String]) in
            try await run(
                python.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                [Self.root.appendingPathComponent("scripts/helm-chart.py").path] + arguments)
        }
        let kubectl = { (arguments: [String]) in try await run("/usr/bin/kubectl", ["--kubeconfig", kubeconfig] + arguments) }
        let chart = Self.root.appendingPathComponent("charts/converge").path

        let lint = try await helm(["lint", chart])
        #expect(lint.exitCode == 0, "\(lint.stderr)")
        let linted = try JSONSerialization.jsonObject(with: Data(lint.stdout.utf8)) as? [String: Any]
        #expect(linted?["Errors"] is NSNull, "helm lint: \(lint.stdout)")

        try await ControllerLab.with { lab in
            let namespace = lab.lab.prefix
            let release = lab.lab.prefix
            let installed = try await helm(["install", chart, release, namespace, kubeconfig, #"{"replicaCount": 2}"#])
            #expect(installed.exitCode == 0, "\(installed.stderr)")
            let manifest =
                (try JSONSerialization.jsonObject(with: Data(installed.stdout.utf8)) as? [String: Any])?["manifest"] as? String ?? ""
            for kind in ["Deployment", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "Service"] {
                #expect(manifest.contains("kind: \(kind)\n"), "the release renders a \(kind)")
            }
            #expect(manifest.contains("replicas: 2"))
            #expect(try await kubectl(["get", "crd", "convergesources.converge.dev"]).exitCode == 0)

            // The chart's ServiceAccount, as the controller would run in a pod: a TokenRequest token.
            let account = "\(release)-converge"
            let token = try await kubectl(["-n", namespace, "create", "token", account, "--duration", "1h"])
            #expect(token.exitCode == 0, "\(token.stderr)")
            let accountConfig = lab.lab.directory.appendingPathComponent("serviceaccount.kubeconfig")
            try """
            apiVersion: v1
            kind: Config
            clusters: [{name: test, cluster: {server: "\(server)", certificate-authority: "\(ca)"}}]
            users: [{name: \(account), user: {token: "\(token.stdout.trimmingCharacters(in: .whitespacesAndNewlines))"}}]
            contexts: [{name: test, context: {cluster: test, user: \(account), namespace: \(namespace)}}]
            current-context: test
            """.write(to: accountConfig, atomically: true, encoding: .utf8)
            let canI = { (arguments: [String]) in
                try await run("/usr/bin/kubectl", ["--kubeconfig", accountConfig.path, "auth", "can-i"] + arguments).stdout
                    .trimmingCharacters(in: .whitespacesAndNewlines)
            }
            #expect(try await canI(["patch", "convergesources", "--subresource", "status", "-n", namespace]) == "yes")
            #expect(try await canI(["create", "leases", "-n", namespace]) == "yes")
            #expect(try await canI(["create", "deployments", "-n", namespace]) == "no", "only the kinds of values.managedKinds")
            #expect(try await canI(["get", "secrets", "-n", "default"]) == "no", "Secrets of its own namespace only")
            #expect(try await canI(["delete", "convergesources", "-n", namespace]) == "no")

            let commit = try await lab.push([
                "cluster.yaml": """
                apiVersion: converge.dev/v1alpha1
                kind: KubernetesCluster
                metadata: {name: test}
                spec: {kubeconfig: "\(accountConfig.path)", namespace: \(namespace)}
                """,
                "settings.yaml": """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: settings, namespace: \(namespace)}
                data: {mode: chart-test}
                """,
            ])
            let source = lab.lab.directory.appendingPathComponent("source.yaml")
            try """
            apiVersion: converge.dev/v1alpha1
            kind: ConvergeSource
            metadata: {name: \(lab.lab.instance), namespace: \(namespace)}
            spec: {repo: "\(lab.repositoryURL)", interval: 10m}
            """.write(to: source, atomically: true, encoding: .utf8)
            #expect(try await kubectl(["apply", "-f", source.path]).exitCode == 0)
            _ = try await lab.startController(
                ["--kubeconfig", accountConfig.path, "--namespace", namespace, "--lease-name", account], name: "chart",
                withoutRepository: true)
            try await eventually("the ConfigMap is applied", timeout: .seconds(60)) {
                try await kubectl(["-n", namespace, "get", "configmap", "settings", "-o", "jsonpath={.data.mode}"]).stdout == "chart-test"
            }
            try await eventually("the ConvergeSource is Ready", timeout: .seconds(30)) {
                try await kubectl([
                    "-n", namespace, "get", "convergesource", lab.lab.instance, "-o",
                    #"jsonpath={.status.conditions[?(@.type=="Ready")].status}"#,
                ]).stdout == "True"
            }
            #expect(
                try await kubectl([
                    "-n", namespace, "get", "convergesource", lab.lab.instance, "-o", "jsonpath={.status.lastAppliedRevision}",
                ]).stdout
                    == commit)
            #expect(try await kubectl(["-n", namespace, "get", "lease", account, "-o", "jsonpath={.spec.holderIdentity}"]).stdout != "")

            _ = try await helm(["uninstall", release, namespace, kubeconfig])
            _ = try await kubectl(["delete", "namespace", namespace, "--wait=false"])
        }
    }
}
