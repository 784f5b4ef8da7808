import ConvergeCore
import ConvergeDocker
import ConvergeKubernetes
import ConvergeTestSupport
import Testing

/// Kubernetes objects in a manifest set, without a cluster: ids, validation, ordering.
@Suite struct KubernetesKindsTests {
    static let registry = KindRegistry.core.adding(ProviderPlugin.docker.kinds + ProviderPlugin.kubernetes.kinds)

    static func diagnostics(_ yaml: String) -> [Diagnostic] {
        do {
            _ = try manifestSet(yaml, registry: registry)
            return []
        } catch let error as ManifestValidationError {
            return error.diagnostics
        } catch {
            Issue.record("unexpected \(error)")
            return []
        }
    }

    static let cluster = """
        apiVersion: converge.dev/v1alpha1
        kind: KubernetesCluster
        metadata: {name: prod}
        spec: {kubeconfig: /nonexistent/kubeconfig}

        """

    @Test func objectsOfOtherAPIVersionsAreNamedByGroupNamespaceAndName() throws {
        let set = try manifestSet(
            Self.cluster + """
                ---
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: web, namespace: shop}
                spec: {replicas: 2}
                ---
                apiVersion: v1
                kind: Namespace
                metadata: {name: shop}
                """, registry: Self.registry)
        #expect(set[ResourceID(kind: "Deployment.apps", name: "shop/web")] != nil)
        let deployment = try #require(set[ResourceID(kind: "Deployment.apps", name: "shop/web")])
        #expect(deployment.references(in: set).map(\.target).contains(ResourceID(kind: "Namespace", name: "shop")))
        #expect(deployment.spec.target(in: set) == ResourceID(kind: "KubernetesCluster", name: "prod"))
    }

    @Test func anObjectWithoutAClusterIsAnErrorAtItsLine() {
        let found = Self.diagnostics("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a}\ndata: {k: v}\n")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("no KubernetesCluster") == true)
        #expect(found.first?.location?.line == 2)
    }

    @Test func twoClustersNeedTheAnnotationAndANamedOneMustExist() {
        let two = Self.cluster + "---\n" + Self.cluster.replacingOccurrences(of: "name: prod", with: "name: staging")
        let ambiguous = Self.diagnostics(two + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a}\ndata: {k: v}\n")
        #expect(ambiguous.contains { $0.hint?.contains("converge.dev/cluster") == true })
        let named = Self.diagnostics(
            two
                + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a, annotations: {converge.dev/cluster: qa}}\ndata: {k: v}\n"
        )
        #expect(named.contains { $0.message.contains("KubernetesCluster/qa, which is not defined") })
    }

    @Test func dependsOnNamesResourcesOfAnyKindAndRejectsWhatIsNotAnID() {
        let bad = Self.diagnostics(
            Self.cluster
                + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a, annotations: {converge.dev/depends-on: 'db'}}\ndata: {k: v}\n"
        )
        #expect(bad.contains { $0.message.contains("'db' is not a resource id") })
        let missing = Self.diagnostics(
            Self.cluster
                + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: a, annotations: {converge.dev/depends-on: Container/db}}\ndata: {k: v}\n"
        )
        #expect(missing.contains { $0.message.contains("refers to Container/db, which is not defined") })
    }

    @Test func aSecretsValuesAreDigestsInTheDiff() throws {
        let set = try manifestSet(
            Self.cluster
                + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: a}\nstringData: {password: plain-test-value}\n",
            registry: Self.registry)
        let secret = try #require(set[ResourceID(kind: "Secret", name: "a/s")])
        let fields = secret.spec.desiredFields(metadata: secret.metadata)
        #expect(fields["stringData"] == nil)
        guard case .map(let data)? = fields["data"], case .string(let shown)? = data["password"] else {
            Issue.record("expected data.password, got \(fields)")
            return
        }
        #expect(shown.hasPrefix("(sensitive, sha256:"))
        #expect(!shown.contains("plain-test-value"))
    }
}
