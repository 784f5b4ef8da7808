import ConvergeCore
import Foundation
import Testing

@testable import ConvergeGit

@Suite("GitSource from async code, off the cooperative pool")
struct GitSourceThreadTests {
    @Test func loadsThroughTheAsyncEntryPoint() async throws {
        let fixture = try GitFixture()
        let upstream = try fixture.makeRepository("upstream")
        let commit = try fixture.commit(
            ["manifests/app.yaml": "kind: App\n", "manifests/db.yml": "kind: Database\n", "notes.txt": "hi\n"],
            in: upstream)

        let local = try await GitSource.loadOnDedicatedThread(GitSourceRequest(repository: upstream, path: "manifests"))
        #expect(local.revision.commit == commit)
        #expect(local.files.map(\.path) == ["manifests/app.yaml", "manifests/db.yml"])
        #expect(local.files.first.map { String(decoding: $0.bytes, as: UTF8.self) } == "kind: App\n")

        let url = "file://" + upstream
        let remote = try await GitSource.loadOnDedicatedThread(
            GitSourceRequest(repository: url, cacheDirectory: fixture.path("cache")))
        #expect(remote.revision == SourceRevision(repository: url, ref: nil, commit: commit, path: nil))
        #expect(remote.files.map(\.path) == ["manifests/app.yaml", "manifests/db.yml"])

        // Errors arrive as `load` throws them.
        let error = await #expect(throws: GitSourceError.self) {
            try await GitSource.loadOnDedicatedThread(GitSourceRequest(repository: upstream, ref: "no-such-branch"))
        }
        #expect(error?.kind == .refNotFound)
    }

    /// More fetches than the cooperative pool has threads hang on a server that never
    /// answers; tasks on the pool must still run. Were the fetches on the pool, the server
    /// would reach its time limit first and give up on them.
    @Test func hangingFetchesLeaveTheCooperativePoolFree() async throws {
        let server = try LoopbackHTTPServer(.silent(giveUpAfter: 20))
        defer { server.stop() }
        let fixture = try GitFixture()
        let cache = fixture.path("cache")
        let hanging = ProcessInfo.processInfo.activeProcessorCount + 2

        // One URL each: loads of one URL wait for each other on the cache's lock.
        let loads = (0..<hanging).map { index in
            let request = GitSourceRequest(repository: "http://127.0.0.1:\(server.port)/repo\(index).git", cacheDirectory: cache)
            return Task { try await GitSource.loadOnDedicatedThread(request) }
        }
        let allInside = try await server.waitForRequests(hanging, timeout: .seconds(15))
        #expect(allInside, "only \(server.requests.count) of \(hanging) fetches reached the server")

        let sum = await withTaskGroup(of: Int.self) { group in
            for value in 1...100 { group.addTask { value } }
            return await group.reduce(0, +)
        }
        #expect(sum == 5050)
        #expect(!server.gaveUp, "tasks on the pool ran only after the hanging fetches were cut off")

        // The server goes away: every fetch fails and says so.
        server.stop()
        for load in loads {
            let error = await #expect(throws: GitSourceError.self) { try await load.value }
            #expect(error?.kind == .fetchFailed, "\(error?.message ?? "")")
        }
    }
}
