import ConvergeCore
import ConvergeRuntime
import ConvergeStore
import ConvergeTestSupport
import ConvergeWorkflow
import Foundation
import Testing

@testable import ConvergeAnsible

/// The plan pins the playbook's files by digest; a run whose files changed after the plan is
/// refused before ansible-playbook starts.
@Suite struct PinnedPlaybookTests {
    @Test func aPlaybookFileChangedBetweenPlanAndRunIsRefused() async throws {
        let folder = try RepositoryFolder(
            AnsibleKindsTests.playbookFiles.merging([
                "manifests.yaml": AnsibleKindsTests.inventory(
                    """
                        production:
                          groups:
                            web:
                              hosts:
                                web-1: {address: 127.0.0.1, ssh: {port: 1}}
                    """) + AnsibleKindsTests.playbook + AnsibleKindsTests.run("web", target: "web")
            ]) { $1 })
        defer { folder.remove() }
        let database = try await ThrowawayDatabase.make(.sqlite, postgresURL: nil)
        let runtime = Runtime(plugins: [.ansible], instance: "pinned", version: "test")
        do {
            let store = try await database.openMigrated()
            let engine = runtime.engine(store: store, parallelism: 1)
            let snapshot = try await ManifestSource.folder(folder.root.path).load()
            let planned = try await runtime.plan(try runtime.load(snapshot), source: snapshot.revision)
            #expect(planned.plan.steps.map(\.resource.description) == ["PlaybookRun/web"])

            try folder.write(["ansible/roles/base/tasks/main.yml": "- command: rm -rf /important\n"])
            let run = try await engine.start(planned, manifests: snapshot.files, options: WorkflowOptions(rollback: true))
            #expect(run.status == .rolledBack)
            #expect(run.error?.contains("the files of playbook site under ansible/ changed since the plan") == true, "\(run.error ?? "")")
            #expect(run.error?.contains("refused before ansible-playbook started") == true)
            let steps = try await store.steps(run: run.id)
            #expect(steps.first?.report == nil, "ansible-playbook never ran, so nothing was reported")
            #expect(try await store.records(instance: "pinned", prefix: "").isEmpty, "nothing is recorded as applied")
            await runtime.shutdown()
            try await database.destroy()
        } catch {
            await runtime.shutdown()
            try await database.destroy()
            throw error
        }
    }
}
