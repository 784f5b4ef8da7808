import ConvergeCore
import ConvergeDocker
import ConvergeTestSupport
import Testing

let labYAML = """
    apiVersion: converge.dev/v1alpha1
    kind: DockerHost
    metadata: {name: local}
    spec: {}
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Network
    metadata: {name: net}
    spec: {subnet: 10.10.0.0/24}
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Container
    metadata: {name: web}
    spec:
      image: converge-lab/busybox:1
      env: {MODE: blue}
      networks: [{name: net, ipv4: 10.10.0.10}]
    ---
    apiVersion: converge.dev/v1alpha1
    kind: Container
    metadata: {name: client}
    spec:
      image: converge-lab/busybox:1
      networks: [{name: net}]
      dependsOn: [web]
    """

let planner = Planner(observedKinds: [NetworkSpec.kind, ContainerSpec.kind])

func plan(_ set: ManifestSet, observed: [ObservedResource]) throws -> Plan {
    try planner.plan(desired: set, observed: observed, source: testSource, instance: "test")
}

@Suite struct PlannerTests {
    @Test func createsEverythingInDependencyOrder() throws {
        let set = try manifestSet(labYAML)
        let result = try plan(set, observed: [])
        #expect(result.summary == Plan.Summary(add: 3, change: 0, destroy: 0))
        #expect(result.steps.map(\.resource.description) == ["Network/net", "Container/web", "Container/client"])
        #expect(result.steps[1].dependsOn == [0])
        #expect(result.steps[2].dependsOn == [0, 1])
        #expect(!result.changes.contains { $0.resource.kind == DockerHostSpec.kind })
    }

    @Test func inSyncStateGivesAnEmptyPlan() throws {
        let set = try manifestSet(labYAML)
        let result = try plan(set, observed: inSyncObservation(of: set))
        #expect(result.isEmpty)
        #expect(result.steps.isEmpty)
    }

    @Test func inPlaceChangeIsAnUpdateWithFieldDetail() throws {
        let set = try manifestSet(labYAML)
        var observed = inSyncObservation(of: set)
        let index = observed.firstIndex { $0.id.name == "web" }!
        observed[index].fields["restartPolicy"] = .string("always")
        observed[index].fields["state"] = .string("stopped")
        let result = try plan(set, observed: observed)
        #expect(result.summary == Plan.Summary(add: 0, change: 1, destroy: 0))
        let change = try #require(result.changes.first)
        #expect(change.action == .update)
        #expect(change.fields.map(\.path) == ["restartPolicy", "state"])
        #expect(change.fields[0].before == .string("always") && change.fields[0].after == .string("no"))
    }

    @Test func nestedMapChangesAreShownPerKeyAndForceReplacement() throws {
        let set = try manifestSet(labYAML)
        var observed = inSyncObservation(of: set)
        let index = observed.firstIndex { $0.id.name == "web" }!
        observed[index].fields["env"] = .stringMap(["MODE": "green", "EXTRA": "1"])
        let result = try plan(set, observed: observed)
        let change = try #require(result.changes.first)
        #expect(change.action == .replace)
        #expect(change.fields.map(\.path) == ["env.EXTRA", "env.MODE"])
        #expect(change.fields.allSatisfy { $0.forcesReplacement })
        #expect(result.summary == Plan.Summary(add: 1, change: 0, destroy: 1))
        #expect(result.steps.map(\.action) == [.delete, .create])
    }

    @Test func replacingANetworkReplacesItsContainersAndOrdersDeletesFirst() throws {
        let set = try manifestSet(labYAML)
        var observed = inSyncObservation(of: set)
        let index = observed.firstIndex { $0.id.name == "net" }!
        observed[index].fields["subnet"] = .string("10.20.0.0/24")
        let result = try plan(set, observed: observed)
        #expect(result.changes.map(\.action) == [.replace, .replace, .replace])
        #expect(result.changes.first { $0.resource.name == "web" }?.reason == "Network/net is replaced")
        let position = { (action: PlanStep.Action, name: String) in
            result.steps.firstIndex { $0.action == action && $0.resource.name == name }!
        }
        #expect(position(.delete, "web") < position(.delete, "net"))
        #expect(position(.delete, "client") < position(.delete, "net"))
        #expect(position(.delete, "net") < position(.create, "net"))
        #expect(position(.create, "net") < position(.create, "web"))
        #expect(position(.create, "web") < position(.create, "client"))
    }

    @Test func managedObjectsWithoutManifestArePrunedAfterTheirUsers() throws {
        let set = try manifestSet(labYAML)
        var observed = inSyncObservation(of: set)
        observed.append(ObservedResource(id: ResourceID(kind: "Network", name: "old-net"), fields: FieldMap(), ownership: .managed, externalID: "n2"))
        observed.append(ObservedResource(id: ResourceID(kind: "Container", name: "old"), fields: FieldMap(), ownership: .managed, externalID: "c2",
                                         dependencies: [ResourceID(kind: "Network", name: "old-net")]))
        observed.append(ObservedResource(id: ResourceID(kind: "Container", name: "foreign"), fields: FieldMap(), ownership: .unmanaged, externalID: "c3"))
        let result = try plan(set, observed: observed)
        #expect(result.changes.map(\.resource.description) == ["Container/old", "Network/old-net"])
        #expect(result.changes.allSatisfy { $0.action == .delete })
        #expect(result.steps[1].dependsOn == [0])
    }

    @Test func sameNameWithoutOwnershipIsAConflictNotAChange() throws {
        let set = try manifestSet(labYAML)
        var observed = inSyncObservation(of: set)
        let index = observed.firstIndex { $0.id.name == "web" }!
        observed[index].ownership = .unmanaged
        observed[index].fields["image"] = .string("something-else")
        let other = observed.firstIndex { $0.id.name == "client" }!
        observed[other].ownership = .otherInstance("team-b")
        let error = try #require(throws: OwnershipConflictError.self) { try plan(set, observed: observed) }
        #expect(error.conflicts.map(\.resource.name) == ["client", "web"])
        #expect(error.description.contains("team-b"))
        #expect(error.description.contains("never changes or removes"))
    }

    @Test func digestIsStableAndTracksContent() throws {
        let set = try manifestSet(labYAML)
        let first = try plan(set, observed: [])
        let again = try planner.plan(desired: set, observed: [], source: SourceRevision(repository: "elsewhere", commit: "abc"), instance: "test")
        #expect(first.digest == again.digest)
        #expect(first.digest.hasPrefix("sha256:") && first.digest.count == 71)
        var observed = inSyncObservation(of: set)
        observed[0].fields["state"] = .string("stopped")
        let drifted = try plan(set, observed: observed)
        #expect(drifted.digest != first.digest)
        let reordered = try plan(set, observed: observed.reversed())
        #expect(reordered.digest == drifted.digest)
    }

    @Test func createShowsOnlyTheFieldsThatAreSet() throws {
        let set = try manifestSet(labYAML)
        let result = try plan(set, observed: [])
        let web = try #require(result.changes.first { $0.resource.name == "web" })
        #expect(web.fields.map(\.path) == ["env", "image", "labels", "networks", "restartPolicy", "state"].filter { $0 != "labels" })
    }
}

@Suite struct PlanRenderingTests {
    @Test func textShowsSymbolsFieldsAndSummary() throws {
        let set = try manifestSet(labYAML)
        var observed = inSyncObservation(of: set)
        observed[0].fields["restartPolicy"] = .string("always")
        let text = PlanRenderer.text(try plan(set, observed: observed), color: false)
        #expect(text.contains("~   Container/\(observed[0].id.name)"))
        #expect(text.contains("~ restartPolicy = \"always\" → \"no\""))
        #expect(text.contains("Plan: 0 to add, 1 to change, 0 to destroy."))
        #expect(!text.contains("\u{1B}["))
        let colored = PlanRenderer.text(try plan(set, observed: observed), color: true)
        #expect(colored.contains("\u{1B}[33m"))
    }

    @Test func replacementNamesTheFieldThatForcesIt() throws {
        let set = try manifestSet(labYAML)
        var observed = inSyncObservation(of: set)
        let index = observed.firstIndex { $0.id.name == "web" }!
        observed[index].fields["image"] = .string("converge-lab/busybox:0")
        let text = PlanRenderer.text(try plan(set, observed: observed), color: false)
        #expect(text.contains("-/+ Container/web"))
        #expect(text.contains("~ image = \"converge-lab/busybox:0\" → \"converge-lab/busybox:1\"  # forces replacement"))
        #expect(text.contains("Plan: 1 to add, 0 to change, 1 to destroy."))
    }

    @Test func aNewMapIsShownOneKeyPerLine() throws {
        let set = try manifestSet(labYAML)
        let text = PlanRenderer.text(try plan(set, observed: []), color: false)
        #expect(text.contains("+ env.MODE"))
        #expect(text.contains("+ networks.net.ipv4"))
        #expect(!text.contains("{\"MODE\""), "no map printed whole")
    }

    @Test func markdownIsReadyForAPullRequest() throws {
        let set = try manifestSet(labYAML)
        let markdown = PlanRenderer.markdown(try plan(set, observed: []))
        #expect(markdown.hasPrefix("### Converge plan"))
        #expect(markdown.contains("| `+` | `Container/web` | will be created |"))
        #expect(markdown.contains("```diff"))
        #expect(markdown.contains("**Plan: 3 to add, 0 to change, 0 to destroy.**"))
    }
}

/// The plan JSON schema and digests are a contract: journaled runs and approvals name them.
@Suite struct PlanDigestTests {
    /// Plans without guards are byte-for-byte what they were before guards existed: the
    /// digest of the lab plan was recorded before `PlanStep.guard` was added.
    @Test func digestOfAPlanWithoutGuardsIsUnchanged() throws {
        let set = try manifestSet(labYAML)
        #expect(try plan(set, observed: []).digest == "sha256:af7c58f185aeab7bbd14e78e0eb028b12d6ca46e1274171cd8806b01dfab3ecf")
        var observed = inSyncObservation(of: set)
        let index = observed.firstIndex { $0.id.name == "web" }!
        observed[index].fields["restartPolicy"] = .string("always")
        #expect(try plan(set, observed: observed).digest == "sha256:31f57d8de136e7fc639915136ef3c9430931a193fbd2ddbe10e25d146ce6c63d")
    }
}
