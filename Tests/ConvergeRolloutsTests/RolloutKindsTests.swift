import ConvergeCore
import ConvergeDocker
import Foundation
import Testing

@testable import ConvergeRollouts

@Suite struct RolloutKindsTests {
    static let registry = KindRegistry.core.adding(ProviderPlugin.docker.kinds + ProviderPlugin.rollouts.kinds)

    static let base = """
        apiVersion: converge.dev/v1alpha1
        kind: DockerHost
        metadata: {name: local}
        spec: {}
        ---
        apiVersion: converge.dev/v1alpha1
        kind: Network
        metadata: {name: app}
        spec: {subnet: 10.77.0.0/24}
        """

    static func rollout(_ name: String = "web", spec: String) -> String {
        "apiVersion: converge.dev/v1alpha1\nkind: Rollout\nmetadata: {name: \(name)}\nspec:\n" + spec
    }

    static let valid = """
          image: converge-lab/busybox:1
          env: {VERSION: v1}
          replicas: 2
          port: 8080
          networks: [app]
          entryPoint: {port: 80, publish: "127.0.0.1:18080"}
          postPromotion:
            checks: [{http: {path: /status.json, field: healthy, equals: true}}]
        """

    static func load(_ documents: [String]) throws -> ManifestSet {
        let text = ([base] + documents).joined(separator: "\n---\n")
        return try ManifestSet.load([SourceFile(path: "set.yaml", bytes: Array(text.utf8))], registry: registry)
    }

    /// Every diagnostic's message, or none.
    static func problems(_ documents: [String]) -> [String] {
        do {
            _ = try load(documents)
            return []
        } catch let error as ManifestValidationError {
            return error.diagnostics.map(\.message)
        } catch {
            return ["\(error)"]
        }
    }

    @Test func aRolloutDecodesWithItsDefaults() throws {
        let set = try Self.load([Self.rollout(spec: Self.valid)])
        let spec = try #require(set[ResourceID(kind: "Rollout", name: "web")]?.spec(as: RolloutSpec.self))
        #expect(spec.replicas == 2)
        #expect(spec.entryPoint.publish?.address == "127.0.0.1" && spec.entryPoint.publish?.port == 18080)
        #expect(spec.entryPoint.image == RolloutSpec.defaultEntryImage)
        #expect(spec.drainDelay == .seconds(5))
        #expect(spec.autoPromote)
        #expect(spec.postPromotion?.count == 3 && spec.postPromotion?.failureLimit == 0)
        #expect(spec.postPromotion?.checks == [.http(path: "/status.json", status: 200, field: "healthy", equals: .bool(true))])
        #expect(spec.target(in: set) == ResourceID(kind: "DockerHost", name: "local"))
    }

    @Test func badInputIsReportedWhereItIs() {
        let problems = Self.problems([
            Self.rollout(
                spec: """
                      image: converge-lab/busybox:1
                      replicas: 40
                      port: 8080
                      networks: [missing]
                      entryPoint: {port: 80, publish: "localhost"}
                      drainDelay: soon
                      postPromotion: {checks: [{http: {path: /x, field: healthy}}], count: 0}
                    """)
        ])
        #expect(problems.contains { $0.contains("spec.replicas") && $0.contains("1 to 16") }, "\(problems)")
        #expect(problems.contains { $0.contains("publish") && $0.contains("ADDRESS:PORT") }, "\(problems)")
        #expect(problems.contains { $0.contains("spec.drainDelay") }, "\(problems)")
        #expect(problems.contains { $0.contains("field and equals go together") }, "\(problems)")
        #expect(problems.contains { $0.contains("count") && $0.contains("1 to 1000") }, "\(problems)")
        #expect(problems.contains { $0.contains("Network/missing") }, "\(problems)")
    }

    @Test func aRolloutTakesPartInOneWaveOfOnePipeline() {
        let pipeline = """
            apiVersion: converge.dev/v1alpha1
            kind: Pipeline
            metadata: {name: release}
            spec:
              waves: [[web], [web]]
              onFailure: rollbackEverything
            """
        let problems = Self.problems([Self.rollout(spec: Self.valid), pipeline])
        #expect(problems.contains { $0.contains("Rollout/web is already in Pipeline/release") }, "\(problems)")
        #expect(problems.contains { $0.contains("rollbackRollout or rollbackWave") }, "\(problems)")
    }

    @Test func onlyAVersionChangeRunsInPhases() throws {
        let set = try Self.load([Self.rollout(spec: Self.valid + "\n  prePromotion: {checks: [{http: {path: /}}]}\n  autoPromote: false")])
        let spec = try #require(set[ResourceID(kind: "Rollout", name: "web")]?.spec(as: RolloutSpec.self))
        let id = ResourceID(kind: "Rollout", name: "web")
        let image = FieldChange(path: "image", before: .string("a"), after: .string("b"), forcesReplacement: false)
        let phases = spec.phases(of: ResourceChange(resource: id, action: .update, fields: [image]))
        #expect(phases.map(\.name) == ["deploy", "ready", "prePromotion", "switch", "postPromotion", "finalize"])
        #expect(phases.filter(\.awaitsApproval).map(\.name) == ["switch"])
        let first = spec.phases(of: ResourceChange(resource: id, action: .create, fields: []))
        #expect(first.allSatisfy { !$0.awaitsApproval }, "a first version is promoted at once")
        #expect(first.map(\.name) == ["deploy", "ready", "prePromotion", "switch", "postPromotion"], "and has nothing to finalize")
        let entry = FieldChange(path: "entryPoint.publish", before: nil, after: .string("127.0.0.1:1"), forcesReplacement: false)
        #expect(spec.phases(of: ResourceChange(resource: id, action: .update, fields: [entry])).isEmpty)
    }

    @Test func theExampleSetLoads() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("manifests-rollouts")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }.sorted().map { name in
            SourceFile(path: name, bytes: Array(try Data(contentsOf: folder.appendingPathComponent(name))))
        }
        let set = try ManifestSet.load(files, registry: Self.registry)
        #expect(set.resources(ofKind: RolloutSpec.kind).count == 3)
        let pipeline = try #require(set.resources(ofKind: PipelineSpec.kind).first?.spec(as: PipelineSpec.self))
        #expect(pipeline.waves == [["s2-api", "s2-worker"], ["s2-web"]])
    }

    @Test func theEntryPointSwitchesWithOneMapCommandAndKeepsBothSlots() {
        let config = EntryPointConfig(
            listenPort: 80, active: .green,
            servers: [.blue: [.init(address: "10.0.0.2", port: 8080)], .green: [.init(address: "10.0.0.3", port: 8080)]])
        #expect(config.text.contains("use_backend %[str(active),map(/etc/converge/active.map,green)]"))
        #expect(
            config.text.contains("backend blue\n    balance roundrobin\n    server r1 10.0.0.2:8080\n    server r2 127.0.0.1:1 disabled"))
        #expect(config.mapText == "active green\n")
        #expect(EntryPointConfig.switchCommand(to: .blue) == "set map /etc/converge/active.map active blue")
        let fill = EntryPointConfig.fill(.green, with: [.init(address: "10.0.0.4", port: 8080)])
        #expect(
            fill.prefix(3) == [
                "set server green/r1 addr 10.0.0.4 port 8080", "set server green/r1 state ready", "set server green/r2 state maint",
            ])
        #expect(fill.count == 2 + RolloutSpec.maximumReplicas - 1)
    }
}
