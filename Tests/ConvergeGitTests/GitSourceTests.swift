import ConvergeCore
import Foundation
import Testing

@testable import ConvergeGit

/// The files of the first commit of `makeSampleRepository`.
private let sampleFiles: [String: String?] = [
    "root.yaml": "kind: Root\n",
    "manifests/app.yaml": "kind: App\n",
    "manifests/nested/db.yml": "kind: Database\n",
    "manifests/nested/deeper/Cache.YAML": "kind: Cache\n",
    "manifests/README.md": "# not a manifest\n",
    "manifests/values.json": "{}\n",
    "manifests/app.yaml.orig": "kind: Old\n",
    "scripts/deploy.sh": "#!/bin/sh\n",
    "notes.txt": "hello\n",
    // Hidden files and folders hold tool configuration, never manifests.
    ".github/workflows/ci.yml": "on: push\n",
    ".gitlab-ci.yml": "stages: []\n",
    "manifests/.drafts/wip.yaml": "kind: Draft\n",
]

private func paths(_ snapshot: GitSnapshot) -> [String] {
    snapshot.files.map(\.path)
}

private func content(_ snapshot: GitSnapshot, _ path: String) -> String? {
    snapshot.files.first { $0.path == path }.map { String(decoding: $0.bytes, as: UTF8.self) }
}

/// Runs `body` and returns the `GitSourceError` it threw; records an issue when it did not.
private func gitError(_ body: () throws -> GitSnapshot) -> GitSourceError? {
    do {
        let snapshot = try body()
        Issue.record("expected a GitSourceError, got a snapshot at \(snapshot.revision.commit ?? "?")")
        return nil
    } catch let error as GitSourceError {
        return error
    } catch {
        Issue.record("expected a GitSourceError, got \(error)")
        return nil
    }
}

@Suite("GitSource on a local repository")
struct LocalRepositoryTests {
    @Test func defaultHEADReadsEveryYAMLFileSortedAndIgnoresOthers() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        let commit = try fixture.commit(sampleFiles, in: repo)

        let snapshot = try GitSource.load(GitSourceRequest(repository: repo))

        #expect(paths(snapshot) == [
            "manifests/app.yaml",
            "manifests/nested/db.yml",
            "manifests/nested/deeper/Cache.YAML",
            "root.yaml",
        ])
        #expect(content(snapshot, "manifests/nested/db.yml") == "kind: Database\n")
        #expect(snapshot.revision == SourceRevision(repository: repo, ref: nil, commit: commit, path: nil))
        #expect(commit.count == 40)
    }

    @Test func readsTheCommitNotTheWorkingTree() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(sampleFiles, in: repo)
        // Uncommitted edits and new files must not show up.
        try Data("kind: Edited\n".utf8).write(to: URL(fileURLWithPath: repo + "/root.yaml"))
        try Data("kind: New\n".utf8).write(to: URL(fileURLWithPath: repo + "/untracked.yaml"))

        let snapshot = try GitSource.load(GitSourceRequest(repository: repo))

        #expect(content(snapshot, "root.yaml") == "kind: Root\n")
        #expect(!paths(snapshot).contains("untracked.yaml"))
    }

    @Test func loadsByBranch() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        let mainCommit = try fixture.commit(sampleFiles, in: repo)
        try fixture.git(["checkout", "--quiet", "-b", "feature"], in: repo)
        let featureCommit = try fixture.commit(
            ["manifests/feature.yaml": "kind: Feature\n", "root.yaml": nil], in: repo)
        try fixture.git(["checkout", "--quiet", "main"], in: repo)

        let feature = try GitSource.load(GitSourceRequest(repository: repo, ref: "feature"))
        #expect(feature.revision.commit == featureCommit)
        #expect(feature.revision.ref == "feature")
        #expect(paths(feature).contains("manifests/feature.yaml"))
        #expect(!paths(feature).contains("root.yaml"))

        let main = try GitSource.load(GitSourceRequest(repository: repo, ref: "main"))
        #expect(main.revision.commit == mainCommit)
        #expect(!paths(main).contains("manifests/feature.yaml"))

        let qualified = try GitSource.load(GitSourceRequest(repository: repo, ref: "refs/heads/feature"))
        #expect(qualified.revision.commit == featureCommit)
    }

    @Test func loadsByLightweightAndAnnotatedTag() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        let first = try fixture.commit(sampleFiles, in: repo)
        try fixture.git(["tag", "v1"], in: repo)
        let second = try fixture.commit(["manifests/v2.yaml": "kind: V2\n"], in: repo)
        try fixture.git(["tag", "-a", "v2", "-m", "release 2"], in: repo)
        try fixture.commit(["manifests/later.yaml": "kind: Later\n"], in: repo)

        let v1 = try GitSource.load(GitSourceRequest(repository: repo, ref: "v1"))
        #expect(v1.revision.commit == first)
        #expect(!paths(v1).contains("manifests/v2.yaml"))

        let v2 = try GitSource.load(GitSourceRequest(repository: repo, ref: "v2"))
        #expect(v2.revision.commit == second)  // the annotated tag is peeled to its commit
        #expect(paths(v2).contains("manifests/v2.yaml"))
        #expect(!paths(v2).contains("manifests/later.yaml"))
    }

    @Test func loadsByFullAndAbbreviatedCommitID() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        let first = try fixture.commit(sampleFiles, in: repo)
        let head = try fixture.commit(["manifests/second.yaml": "kind: Second\n"], in: repo)
        #expect(first != head)

        let full = try GitSource.load(GitSourceRequest(repository: repo, ref: first))
        #expect(full.revision.commit == first)
        #expect(!paths(full).contains("manifests/second.yaml"))

        let short = try GitSource.load(GitSourceRequest(repository: repo, ref: String(first.prefix(7))))
        #expect(short.revision.commit == first)  // always the full id
        #expect(short.revision.ref == String(first.prefix(7)))

        let defaultHead = try GitSource.load(GitSourceRequest(repository: repo))
        #expect(defaultHead.revision.commit == head)
        #expect(paths(defaultHead).contains("manifests/second.yaml"))
    }

    @Test func defaultHEADFollowsTheCheckedOutBranch() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(sampleFiles, in: repo)
        try fixture.git(["checkout", "--quiet", "-b", "other"], in: repo)
        let other = try fixture.commit(["other.yaml": "kind: Other\n"], in: repo)

        let snapshot = try GitSource.load(GitSourceRequest(repository: repo))
        #expect(snapshot.revision.commit == other)
    }

    @Test func pathSelectsASubfolderRecursivelyWithRootRelativePaths() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        let commit = try fixture.commit(sampleFiles, in: repo)

        let manifests = try GitSource.load(GitSourceRequest(repository: repo, path: "manifests"))
        #expect(paths(manifests) == [
            "manifests/app.yaml",
            "manifests/nested/db.yml",
            "manifests/nested/deeper/Cache.YAML",
        ])
        #expect(manifests.revision.path == "manifests")
        #expect(manifests.revision.commit == commit)

        // Leading "./", doubled and trailing slashes are tolerated and normalised.
        let nested = try GitSource.load(GitSourceRequest(repository: repo, path: "./manifests//nested/"))
        #expect(paths(nested) == ["manifests/nested/db.yml", "manifests/nested/deeper/Cache.YAML"])
        #expect(nested.revision.path == "manifests/nested")

        let root = try GitSource.load(GitSourceRequest(repository: repo, path: "."))
        #expect(paths(root).count == 4)
        #expect(root.revision.path == nil)
    }

    @Test func hiddenEntriesAreSkippedUnlessPathNamesThem() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(sampleFiles, in: repo)

        let root = try GitSource.load(GitSourceRequest(repository: repo))
        #expect(!paths(root).contains { $0.split(separator: "/").contains { $0.hasPrefix(".") } })

        let explicit = try GitSource.load(GitSourceRequest(repository: repo, path: "manifests/.drafts"))
        #expect(paths(explicit) == ["manifests/.drafts/wip.yaml"])
        let file = try GitSource.load(GitSourceRequest(repository: repo, path: ".gitlab-ci.yml"))
        #expect(paths(file) == [".gitlab-ci.yml"])
    }

    @Test func pathNamingOneYAMLFileReturnsThatFile() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(sampleFiles, in: repo)

        let single = try GitSource.load(GitSourceRequest(repository: repo, path: "manifests/nested/db.yml"))
        #expect(paths(single) == ["manifests/nested/db.yml"])
        #expect(content(single, "manifests/nested/db.yml") == "kind: Database\n")
    }

    @Test func pathNamingANonYAMLFileIsAnError() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        let commit = try fixture.commit(sampleFiles, in: repo)

        let error = gitError { try GitSource.load(GitSourceRequest(repository: repo, path: "manifests/README.md")) }
        #expect(error?.kind == .unsupportedPath)
        #expect(error?.message.contains("path 'manifests/README.md' at commit \(commit.prefix(7))") == true)
    }

    @Test func pathWithDotDotIsRejected() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(sampleFiles, in: repo)
        let error = gitError { try GitSource.load(GitSourceRequest(repository: repo, path: "manifests/../../etc")) }
        #expect(error?.kind == .unsupportedPath)
    }

    @Test func emptyFolderAndEmptyFilesAreFine() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(["only-docs/README.md": "x\n", "empty.yaml": ""], in: repo)

        let docs = try GitSource.load(GitSourceRequest(repository: repo, path: "only-docs"))
        #expect(docs.files.isEmpty)

        let root = try GitSource.load(GitSourceRequest(repository: repo))
        #expect(root.files == [SourceFile(path: "empty.yaml", bytes: [])])
    }

    @Test func symbolicLinksAreNotFollowed() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(["real.yaml": "kind: Real\n"], in: repo)
        try FileManager.default.createSymbolicLink(atPath: repo + "/link.yaml", withDestinationPath: "real.yaml")
        try fixture.commit([:], in: repo)

        let snapshot = try GitSource.load(GitSourceRequest(repository: repo))
        #expect(paths(snapshot) == ["real.yaml"])
    }

    @Test func bareRepositoryOpensDirectly() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        let commit = try fixture.commit(sampleFiles, in: repo)
        try fixture.git(["clone", "--quiet", "--bare", repo, fixture.path("bare.git")], in: fixture.root.path)

        let snapshot = try GitSource.load(GitSourceRequest(repository: fixture.path("bare.git"), ref: "main"))
        #expect(snapshot.revision.commit == commit)
        #expect(paths(snapshot).count == 4)
    }

    @Test func missingRefIsAClearError() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(sampleFiles, in: repo)

        let error = gitError { try GitSource.load(GitSourceRequest(repository: repo, ref: "no-such-branch")) }
        #expect(error?.kind == .refNotFound)
        #expect(
            error?.message.hasPrefix(
                "ref 'no-such-branch' not found in \(repo): expected a branch, tag or commit id") == true,
            "\(error?.message ?? "")")
    }

    @Test func refToATreeIsNotACommit() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(sampleFiles, in: repo)
        let tree = try fixture.git(["rev-parse", "HEAD^{tree}"], in: repo)

        let error = gitError { try GitSource.load(GitSourceRequest(repository: repo, ref: tree)) }
        #expect(error?.kind == .notACommit)
        #expect(error?.message.contains("names a tree") == true, "\(error?.message ?? "")")
    }

    @Test func missingPathIsAClearError() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        let commit = try fixture.commit(sampleFiles, in: repo)

        let error = gitError { try GitSource.load(GitSourceRequest(repository: repo, path: "clusters/prod")) }
        #expect(error?.kind == .pathNotFound)
        #expect(
            error?.message.hasPrefix(
                "path 'clusters/prod' does not exist at commit \(commit.prefix(7)) of \(repo)") == true,
            "\(error?.message ?? "")")
    }

    @Test func folderThatIsNotARepositoryIsAClearError() throws {
        let fixture = try GitFixture()
        let plain = fixture.path("plain")
        try FileManager.default.createDirectory(atPath: plain, withIntermediateDirectories: true)

        let error = gitError { try GitSource.load(GitSourceRequest(repository: plain)) }
        #expect(error?.kind == .notARepository)
        #expect(error?.message.hasPrefix("'\(plain)' is not a Git repository") == true, "\(error?.message ?? "")")
    }

    @Test func subfolderOfARepositoryIsNotTakenForTheRepository() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("work")
        try fixture.commit(sampleFiles, in: repo)

        let error = gitError { try GitSource.load(GitSourceRequest(repository: repo + "/manifests")) }
        #expect(error?.kind == .notARepository)
    }

    @Test func missingFolderIsAClearError() throws {
        let fixture = try GitFixture()
        let missing = fixture.path("does-not-exist")

        let error = gitError { try GitSource.load(GitSourceRequest(repository: missing)) }
        #expect(error?.kind == .repositoryNotFound)
        #expect(error?.message.hasPrefix("repository '\(missing)' not found") == true, "\(error?.message ?? "")")
    }

    @Test func repositoryWithoutCommitsIsAClearError() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("empty")

        let error = gitError { try GitSource.load(GitSourceRequest(repository: repo)) }
        #expect(error?.kind == .emptyRepository)
        #expect(error?.message.contains("has no commits yet") == true, "\(error?.message ?? "")")
    }

    @Test func tenThousandManifestsLoadQuickly() throws {
        let fixture = try GitFixture()
        let repo = try fixture.makeRepository("big")
        // One commit of 10,000 small files in 100 folders, written with fast-import (a few
        // hundred milliseconds, unlike `git add` of 10,000 files).
        var stream = "commit refs/heads/main\ncommitter T <t@t.invalid> 1700000000 +0000\ndata 3\nbig\n"
        for index in 0..<10_000 {
            let body = "apiVersion: converge.dev/v1alpha1\nkind: Container\nmetadata:\n  name: c\(index)\n"
            stream += "M 100644 inline apps/group-\(index / 100)/app-\(index).yaml\ndata \(body.utf8.count)\n\(body)\n"
        }
        stream += "M 100644 inline apps/README.md\ndata 2\nx\n\n"
        let streamFile = fixture.root.appendingPathComponent("stream.txt")
        try Data(stream.utf8).write(to: streamFile)
        try fixture.git(["fast-import", "--quiet"], in: repo, input: streamFile)

        let snapshot: GitSnapshot? = try GitSource.load(GitSourceRequest(repository: repo, ref: "main", path: "apps"))

        #expect(snapshot?.files.count == 10_000)
        #expect(snapshot?.files.first?.path == "apps/group-0/app-0.yaml")
        #expect(content(snapshot!, "apps/group-99/app-9999.yaml")?.hasSuffix("name: c9999\n") == true)
        let sortedPaths = snapshot!.files.map(\.path)
        #expect(sortedPaths == sortedPaths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    }
}

@Suite("GitSource on a remote repository (file:// clone into the cache)")
struct RemoteRepositoryTests {
    @Test func clonesThenFetchesNewCommitsBranchesAndTags() throws {
        let fixture = try GitFixture()
        let upstream = try fixture.makeRepository("upstream")
        let first = try fixture.commit(sampleFiles, in: upstream)
        let url = "file://" + upstream
        let cache = fixture.path("cache")

        let initial = try GitSource.load(GitSourceRequest(repository: url, cacheDirectory: cache))
        #expect(initial.revision.commit == first)
        #expect(initial.revision.repository == url)
        #expect(paths(initial).count == 4)

        // The cache holds one bare clone, with no working tree.
        let entries = try FileManager.default.contentsOfDirectory(atPath: cache).filter { !$0.hasSuffix(".lock") }
        #expect(entries.count == 1)
        #expect(entries.first?.hasPrefix("upstream-") == true)
        let clone = cache + "/" + (entries.first ?? "")
        #expect(FileManager.default.fileExists(atPath: clone + "/HEAD"))
        #expect(!FileManager.default.fileExists(atPath: clone + "/root.yaml"))

        // New commit on main, a new branch and a new tag upstream: the next load sees them.
        let second = try fixture.commit(["manifests/new.yaml": "kind: New\n"], in: upstream)
        try fixture.git(["tag", "-a", "v2", "-m", "two"], in: upstream)
        try fixture.git(["checkout", "--quiet", "-b", "feature"], in: upstream)
        let feature = try fixture.commit(["manifests/feature.yaml": "kind: Feature\n"], in: upstream)
        try fixture.git(["checkout", "--quiet", "main"], in: upstream)

        let updated = try GitSource.load(GitSourceRequest(repository: url, cacheDirectory: cache))
        #expect(updated.revision.commit == second)
        #expect(content(updated, "manifests/new.yaml") == "kind: New\n")

        let byBranch = try GitSource.load(GitSourceRequest(repository: url, ref: "main", cacheDirectory: cache))
        #expect(byBranch.revision.commit == second)
        let byFeature = try GitSource.load(GitSourceRequest(repository: url, ref: "feature", cacheDirectory: cache))
        #expect(byFeature.revision.commit == feature)
        let byTag = try GitSource.load(GitSourceRequest(repository: url, ref: "v2", cacheDirectory: cache))
        #expect(byTag.revision.commit == second)
        let byShortID = try GitSource.load(
            GitSourceRequest(repository: url, ref: String(first.prefix(8)), path: "manifests", cacheDirectory: cache))
        #expect(byShortID.revision.commit == first)
        #expect(paths(byShortID) == ["manifests/app.yaml", "manifests/nested/db.yml", "manifests/nested/deeper/Cache.YAML"])
        let relative = try GitSource.load(GitSourceRequest(repository: url, ref: "feature~1", cacheDirectory: cache))
        #expect(relative.revision.commit == second)

        // Still one clone: later loads fetch into it.
        let after = try FileManager.default.contentsOfDirectory(atPath: cache).filter { !$0.hasSuffix(".lock") }
        #expect(after == entries)
    }

    @Test func branchMovedUpstreamIsNotReadFromAStaleLocalBranch() throws {
        let fixture = try GitFixture()
        let upstream = try fixture.makeRepository("upstream")
        try fixture.commit(sampleFiles, in: upstream)
        let url = "file://" + upstream
        let cache = fixture.path("cache")
        _ = try GitSource.load(GitSourceRequest(repository: url, ref: "main", cacheDirectory: cache))

        // Rewrite main upstream (force-push style): the cache must follow it.
        try fixture.git(["checkout", "--quiet", "--orphan", "rewritten"], in: upstream)
        try fixture.git(["rm", "-r", "--quiet", "-f", "."], in: upstream)
        let rewritten = try fixture.commit(["fresh.yaml": "kind: Fresh\n"], in: upstream)
        try fixture.git(["branch", "--quiet", "-f", "main", "rewritten"], in: upstream)
        try fixture.git(["checkout", "--quiet", "main"], in: upstream)
        try fixture.git(["branch", "--quiet", "-D", "rewritten"], in: upstream)

        let snapshot = try GitSource.load(GitSourceRequest(repository: url, ref: "main", cacheDirectory: cache))
        #expect(snapshot.revision.commit == rewritten)
        #expect(paths(snapshot) == ["fresh.yaml"])
    }

    @Test func deletedBranchesArePrunedAndDefaultBranchFollowsTheRemote() throws {
        let fixture = try GitFixture()
        let upstream = try fixture.makeRepository("upstream")
        try fixture.commit(sampleFiles, in: upstream)
        try fixture.git(["branch", "short-lived"], in: upstream)
        let url = "file://" + upstream
        let cache = fixture.path("cache")
        _ = try GitSource.load(GitSourceRequest(repository: url, ref: "short-lived", cacheDirectory: cache))

        try fixture.git(["branch", "--quiet", "-D", "short-lived"], in: upstream)
        try fixture.git(["checkout", "--quiet", "-b", "trunk"], in: upstream)
        let trunk = try fixture.commit(["trunk.yaml": "kind: Trunk\n"], in: upstream)

        let error = gitError {
            try GitSource.load(GitSourceRequest(repository: url, ref: "short-lived", cacheDirectory: cache))
        }
        #expect(error?.kind == .refNotFound)
        #expect(error?.message.hasPrefix("ref 'short-lived' not found in \(url)") == true, "\(error?.message ?? "")")

        // Upstream HEAD now points at `trunk`.
        let head = try GitSource.load(GitSourceRequest(repository: url, cacheDirectory: cache))
        #expect(head.revision.commit == trunk)
    }

    @Test func missingRefAndPathInARemoteAreClearErrors() throws {
        let fixture = try GitFixture()
        let upstream = try fixture.makeRepository("upstream")
        let commit = try fixture.commit(sampleFiles, in: upstream)
        let url = "file://" + upstream
        let cache = fixture.path("cache")

        let ref = gitError { try GitSource.load(GitSourceRequest(repository: url, ref: "nope", cacheDirectory: cache)) }
        #expect(ref?.kind == .refNotFound)
        #expect(ref?.message.contains("expected a branch, tag or commit id") == true)

        let path = gitError { try GitSource.load(GitSourceRequest(repository: url, path: "nope", cacheDirectory: cache)) }
        #expect(path?.kind == .pathNotFound)
        #expect(path?.message.hasPrefix("path 'nope' does not exist at commit \(commit.prefix(7)) of \(url)") == true)
    }

    @Test func unreachableRemoteIsAFetchError() throws {
        let fixture = try GitFixture()
        let url = "file://" + fixture.path("nowhere")

        let error = gitError {
            try GitSource.load(GitSourceRequest(repository: url, cacheDirectory: fixture.path("cache")))
        }
        #expect(error?.kind == .fetchFailed)
        #expect(error?.message.hasPrefix("could not fetch \(url)") == true, "\(error?.message ?? "")")
    }

    @Test func emptyRemoteHasNoDefaultBranch() throws {
        let fixture = try GitFixture()
        let upstream = try fixture.makeRepository("upstream", bare: true)

        let error = gitError {
            try GitSource.load(GitSourceRequest(repository: "file://" + upstream, cacheDirectory: fixture.path("cache")))
        }
        #expect(error?.kind == .emptyRepository)
    }

    @Test func concurrentLoadsOfOneURLShareTheCacheSafely() async throws {
        let fixture = try GitFixture()
        let upstream = try fixture.makeRepository("upstream")
        let commit = try fixture.commit(sampleFiles, in: upstream)
        let request = GitSourceRequest(repository: "file://" + upstream, cacheDirectory: fixture.path("cache"))

        let commits = try await withThrowingTaskGroup(of: String?.self) { group in
            for _ in 0..<6 {
                group.addTask { try GitSource.load(request).revision.commit }
            }
            return try await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(commits == Array(repeating: commit, count: 6))
    }
}

@Suite("Credentials and redaction")
struct CredentialTests {
    @Test func credentialsAreRemovedFromTheRepositoryShownToPeople() {
        #expect(URLRedaction.redact("https://x-access-token:s3cret@example.com/org/repo.git")
            == "https://example.com/org/repo.git")
        #expect(URLRedaction.redact("https://example.com/org/repo.git") == "https://example.com/org/repo.git")
        #expect(URLRedaction.redact("https://example.com/a@b") == "https://example.com/a@b")
        #expect(URLRedaction.redact("/srv/git/repo") == "/srv/git/repo")
        #expect(URLRedaction.redactURLs(in: "failed to reach 'https://u:p@h/x': 401")
            == "failed to reach 'https://h/x': 401")
    }

    @Test func cacheFolderNamesAreStableReadableAndDistinct() {
        let a = RemoteCache.folderName(for: "https://example.com/org/app-config.git")
        let b = RemoteCache.folderName(for: "https://example.com/other/app-config.git")
        #expect(a.hasPrefix("app-config-"))
        #expect(a == RemoteCache.folderName(for: "https://example.com/org/app-config.git"))
        #expect(a == RemoteCache.folderName(for: "https://user:token@example.com/org/app-config.git"))
        #expect(a != b)
    }

    @Test func tokenIsNeverSentOverPlainHTTPNorShown() throws {
        let server = try LoopbackHTTPServer(.unauthorized)
        defer { server.stop() }
        let fixture = try GitFixture()
        let variable = "CONVERGE_GIT_TEST_TOKEN_\(UUID().uuidString.prefix(8))"
        let secret = "tok-\(UUID().uuidString)"
        setenv(variable, secret, 1)
        defer { unsetenv(variable) }

        let url = "http://127.0.0.1:\(server.port)/org/repo.git"
        let error = gitError {
            try GitSource.load(GitSourceRequest(
                repository: url, tokenEnvironmentVariable: variable, cacheDirectory: fixture.path("cache")))
        }
        #expect(error?.kind == .fetchFailed)
        #expect(error?.message.contains(secret) == false)
        #expect(error?.message.contains("only over https://") == true, "\(error?.message ?? "")")
        #expect(server.requests.count >= 1)
        #expect(server.requests.allSatisfy { !$0.lowercased().contains("authorization:") })
    }

    @Test func missingTokenIsExplained() throws {
        let server = try LoopbackHTTPServer(.unauthorized)
        defer { server.stop() }
        let fixture = try GitFixture()
        let variable = "CONVERGE_GIT_TEST_UNSET_\(UUID().uuidString.prefix(8))"

        let error = gitError {
            try GitSource.load(GitSourceRequest(
                repository: "http://127.0.0.1:\(server.port)/repo.git",
                tokenEnvironmentVariable: variable,
                cacheDirectory: fixture.path("cache")))
        }
        #expect(error?.kind == .fetchFailed)
        #expect(error?.message.contains("\(variable) is not set") == true, "\(error?.message ?? "")")
    }
}
