import ConvergeCore
import ConvergeDocker
import ConvergeKubernetes
import ConvergeStore
import Foundation
import Testing

/// Kubernetes objects planned and applied against the real kube-apiserver of
/// scripts/kube-apiserver.sh (no controller-manager: tests write status themselves).
@Suite(.serialized) struct KubernetesProviderTests {
    static func configMap(_ lab: KubeLab, _ name: String, _ data: String, extra: String = "") -> String {
        """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: \(name), namespace: \(lab.namespace)\(extra)}
        data: \(data)

        """
    }

    static func deployment(_ lab: KubeLab, image: String = "nginx:1.25", timeout: String = "20s") -> String {
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          namespace: \(lab.namespace)
          annotations: {converge.dev/health-timeout: \(timeout)}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
              - name: web
                image: \(image)
                resources: {limits: {cpu: "0.5", memory: 1024Mi}}

        """
    }

    static func secret(_ lab: KubeLab, _ value: String) -> String {
        """
        apiVersion: v1
        kind: Secret
        metadata: {name: creds, namespace: \(lab.namespace)}
        stringData: {password: \(value)}

        """
    }

    @Test func oneCommitWithACRDAndItsCustomResourceAppliesAndTheNextPlanIsEmpty() async throws {
        try await KubeLab.with { lab in
            let group = "cvk\(lab.id).example.com"
            let yaml =
                Self.configMap(lab, "settings", "{mode: fast}") + "---\n" + Self.secret(lab, "test-only-value-1") + "---\n"
                + Self.deployment(lab) + """
                    ---
                    apiVersion: apiextensions.k8s.io/v1
                    kind: CustomResourceDefinition
                    metadata: {name: widgets.\(group), labels: {cvk-test: \(lab.id)}}
                    spec:
                      group: \(group)
                      scope: Namespaced
                      names: {plural: widgets, singular: widget, kind: Widget}
                      versions:
                      - name: v1
                        served: true
                        storage: true
                        schema:
                          openAPIV3Schema:
                            type: object
                            properties:
                              spec: {type: object, properties: {size: {type: integer}}}
                    ---
                    apiVersion: \(group)/v1
                    kind: Widget
                    metadata: {name: w1, namespace: \(lab.namespace)}
                    spec: {size: 3}
                    """
            let controller = lab.rollOut(deployment: "web")
            defer { controller.cancel() }
            let first = try await lab.reconcile(yaml)
            #expect(first.run?.status == .succeeded)

            let widget = try lab.json(["widgets.\(group)", "w1", "-n", lab.namespace])
            #expect((widget["spec"] as? [String: Any])?["size"] as? Int == 3)
            let live = try lab.json(["deployment", "web", "-n", lab.namespace])
            let container =
                (((live["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"]
                as? [[String: Any]]
            #expect(container?.first?["imagePullPolicy"] as? String == "IfNotPresent", "the server defaulted fields")
            #expect(((container?.first?["resources"] as? [String: Any])?["limits"] as? [String: Any])?["cpu"] as? String == "500m")

            let second = try await lab.plan(yaml)
            #expect(second.changes.isEmpty, "server defaults and normalized quantities are not changes: \(second.changes.map(\.resource))")
        }
    }

    @Test func aFieldChangedByAnotherManagerIsDriftAndIsTakenBack() async throws {
        try await KubeLab.with { lab in
            let yaml = Self.configMap(lab, "settings", "{mode: fast}")
            #expect(try await lab.reconcile(yaml).run?.status == .succeeded)
            try lab.kubectl(["patch", "configmap", "settings", "-n", lab.namespace, "--type=merge", "-p", #"{"data":{"mode":"slow"}}"#])

            let drift = try await lab.plan(yaml)
            let change = try #require(drift.changes.first { $0.resource.name == "\(lab.namespace)/settings" })
            #expect(change.action == .update)
            #expect(change.fields.map(\.path) == ["data.mode"])
            #expect(change.fields.first?.before == .string("slow") && change.fields.first?.after == .string("fast"))

            #expect(try await lab.reconcile(yaml).run?.status == .succeeded)
            #expect((try lab.json(["configmap", "settings", "-n", lab.namespace])["data"] as? [String: String])?["mode"] == "fast")
            #expect(try await lab.plan(yaml).changes.isEmpty)
        }
    }

    @Test func fieldsOwnedByAnotherManagerAndAbsentFromTheManifestAreLeftAlone() async throws {
        try await KubeLab.with { lab in
            #expect(try await lab.reconcile(Self.configMap(lab, "settings", "{mode: fast}")).run?.status == .succeeded)
            try lab.kubectl([
                "patch", "configmap", "settings", "-n", lab.namespace, "--type=merge", "-p", #"{"data":{"scaledBy":"autoscaler"}}"#,
            ])
            #expect(try await lab.plan(Self.configMap(lab, "settings", "{mode: fast}")).changes.isEmpty)

            #expect(try await lab.reconcile(Self.configMap(lab, "settings", "{mode: slow}")).run?.status == .succeeded)
            let data = try lab.json(["configmap", "settings", "-n", lab.namespace])["data"] as? [String: String]
            #expect(data == ["mode": "slow", "scaledBy": "autoscaler"])
        }
    }

    @Test func aManagedObjectWhoseManifestIsGoneIsPruned() async throws {
        try await KubeLab.with { lab in
            let both = Self.configMap(lab, "keep", "{a: '1'}") + "---\n" + Self.configMap(lab, "drop", "{b: '2'}")
            #expect(try await lab.reconcile(both).run?.status == .succeeded)
            let kept = Self.configMap(lab, "keep", "{a: '1'}")
            let plan = try await lab.plan(kept)
            #expect(plan.changes.map(\.resource.description) == ["ConfigMap/\(lab.namespace)/drop"])
            #expect(plan.changes.first?.action == .delete)

            #expect(try await lab.reconcile(kept).run?.status == .succeeded)
            #expect(try lab.kubectl(["get", "configmap", "-n", lab.namespace, "-o", "name"]).contains("configmap/drop") == false)
            #expect(try lab.kubectl(["get", "configmap", "-n", lab.namespace, "-o", "name"]).contains("configmap/keep"))
            #expect(try await lab.plan(kept).changes.isEmpty)
        }
    }

    @Test func anObjectOfTheSameNameWithoutOwnershipStopsThePlanAndIsNotChanged() async throws {
        try await KubeLab.with { lab in
            try lab.kubectl(["create", "namespace", lab.namespace])
            try lab.kubectl(["create", "configmap", "settings", "-n", lab.namespace, "--from-literal=mode=theirs"])
            await #expect(throws: OwnershipConflictError.self) {
                _ = try await lab.reconcile(Self.configMap(lab, "settings", "{mode: ours}"))
            }
            #expect((try lab.json(["configmap", "settings", "-n", lab.namespace])["data"] as? [String: String]) == ["mode": "theirs"])
        }
    }

    @Test func aFailedHealthGateRollsTheRunBackAndSecretsNeverReachTheJournal() async throws {
        try await KubeLab.with { lab in
            let before = Self.configMap(lab, "settings", "{mode: v1}") + "---\n" + Self.secret(lab, "first-test-value")
            #expect(try await lab.reconcile(before).run?.status == .succeeded)

            // No controller writes the Deployment's status: its gate times out.
            let after =
                Self.configMap(lab, "settings", "{mode: v2}") + "---\n" + Self.secret(lab, "second-test-value") + "---\n"
                + Self.deployment(lab, timeout: "2s")
            let plan = try await lab.plan(after)
            let rendered = PlanRenderer.markdown(plan) + String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
            #expect(!rendered.contains("second-test-value") && !rendered.contains(Data("second-test-value".utf8).base64EncodedString()))
            #expect(rendered.contains("(sensitive, sha256:"))

            let run = try await lab.reconcile(after).run
            #expect(run?.status == .rolledBack)
            #expect((try lab.json(["configmap", "settings", "-n", lab.namespace])["data"] as? [String: String]) == ["mode": "v1"])
            let secret = try lab.json(["secret", "creds", "-n", lab.namespace])["data"] as? [String: String]
            #expect(
                secret?["password"] == Data("first-test-value".utf8).base64EncodedString(),
                "the Secret is restored from its sealed snapshot")
            #expect(try lab.kubectl(["get", "deployment", "-n", lab.namespace, "-o", "name"]).isEmpty, "the created Deployment is removed")

            let journal = try Data(contentsOf: URL(fileURLWithPath: lab.statePath))
            for value in ["first-test-value", "second-test-value"] {
                #expect(journal.range(of: Data(value.utf8)) == nil)
                #expect(journal.range(of: Data(Data(value.utf8).base64EncodedString().utf8)) == nil)
            }
        }
    }

    @Test func aWrongTokenFailsClearlyBeforeAnyChange() async throws {
        try await KubeLab.with { lab in
            let kubeconfig = lab.directory.appendingPathComponent("wrong-token.kubeconfig").path
            let original = try String(contentsOfFile: lab.kubeconfig, encoding: .utf8)
            let tokenLine = try #require(original.split(separator: "\n").first { $0.contains("tokenFile:") })
            try original.replacingOccurrences(of: String(tokenLine), with: "    token: not-the-right-token")
                .write(toFile: kubeconfig, atomically: true, encoding: .utf8)
            let error = await #expect(throws: KubernetesError.self) {
                _ = try await lab.plan(
                    Self.configMap(lab, "settings", "{mode: fast}"), cluster: lab.clusterManifest(kubeconfig: kubeconfig))
            }
            #expect(error?.code == .unauthorized)
            #expect(error?.description.contains("401") == true)
            #expect(error?.description.contains("not-the-right-token") == false)
        }
    }

    @Test func anUnknownKindAndAnInvalidObjectFailWithTheirLinesBeforeAnyChange() async throws {
        try await KubeLab.with { lab in
            let unknown = "apiVersion: v1\nkind: ConfigMapp\nmetadata: {name: x, namespace: \(lab.namespace)}\ndata: {a: b}\n"
            let error = await #expect(throws: KubernetesError.self) { _ = try await lab.reconcile(unknown) }
            #expect(error?.code == .unknownKind)
            #expect(error?.description.contains("objects.yaml:2") == true)
            #expect(error?.description.contains("did you mean kind 'ConfigMap'") == true)

            let invalid = Self.deployment(lab).replacingOccurrences(of: "selector:", with: "replicas: -3\n  selector:")
            let rejected = await #expect(throws: KubernetesError.self) { _ = try await lab.reconcile(invalid) }
            #expect(rejected?.code == .invalid)
            #expect(rejected?.description.contains("objects.yaml:8") == true, "\(rejected?.description ?? "")")
            let namespaces = try lab.kubectl(["get", "namespace", "-o", "name"])
            #expect(!namespaces.contains("namespace/\(lab.namespace)"), "nothing was created")
        }
    }

    @Test func aPlanMixingDockerAndKubernetesOrdersStepsByDependsOn() async throws {
        try await KubeLab.with { lab in
            let yaml = """
                apiVersion: converge.dev/v1alpha1
                kind: DockerHost
                metadata: {name: local}
                spec: {}
                ---
                apiVersion: converge.dev/v1alpha1
                kind: Container
                metadata: {name: cvk-\(lab.id)-db}
                spec: {image: "converge-lab/busybox:1", command: [sleep, "3600"]}
                ---
                apiVersion: v1
                kind: ConfigMap
                metadata:
                  name: db-endpoint
                  namespace: \(lab.namespace)
                  annotations: {converge.dev/depends-on: Container/cvk-\(lab.id)-db}
                data: {host: cvk-\(lab.id)-db}
                """
            let plan = try await lab.plan(yaml, plugins: [.docker, .kubernetes])
            let container = try #require(plan.steps.first { $0.resource.kind == "Container" })
            let configMap = try #require(plan.steps.first { $0.resource.kind == "ConfigMap" })
            let namespace = try #require(plan.steps.first { $0.resource.kind == "Namespace" })
            #expect(configMap.dependsOn.contains(container.index))
            #expect(configMap.dependsOn.contains(namespace.index))
            #expect(container.index < configMap.index)
        }
    }
}
