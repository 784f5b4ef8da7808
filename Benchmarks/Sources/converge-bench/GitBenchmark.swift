import ConvergeCore
import ConvergeGit
import Foundation

/// `git-load`: a real repository with 10,000 manifest files in one commit, read back with
/// `GitSource.load` in place, and through a `file://` URL (cold clone into an empty cache,
/// then a warm load that only fetches).
enum GitBenchmark {
    static let name = "git-load"
    static let gitConfig = [
        "-c", "gc.auto=0", "-c", "core.hooksPath=/dev/null", "-c", "user.name=Converge Bench", "-c", "user.email=bench@converge.invalid",
    ]
    static let gitEnvironment = ["GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"]

    static func run(runs: Int) throws -> [Row] {
        let root = try makeTemporaryDirectory(prefix: "cvb-git-")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = ManifestGenerator().files()
        var rows: [Row] = []

        // Packed repository, as after a clone or a gc: `git fast-import` writes one pack.
        let packed = root + "/packed"
        let (_, importTime) = try Clock.time { try makePackedRepository(at: packed, files: files, scratch: root) }
        log("git-load: fast-import of \(files.count) files took \(Table.format(importTime, .seconds))")
        let commit = try Subprocess.check(["git", "-C", packed, "rev-parse", "HEAD"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let local = try measure(runs: runs, label: "local, packed") {
            try GitSource.load(GitSourceRequest(repository: packed, path: "manifests", cacheDirectory: root + "/unused-cache"))
        }
        check(local.snapshot, files: files, commit: commit)
        rows.append(
            Row(
                name, "GitSource.load, local repo (packed), \(files.count) files", samples: local.times,
                target: "< 2 s", bound: 2.0,
                note:
                    "repository made with git fast-import in \(Table.format(importTime, .seconds)) (not timed); commit \(commit.prefix(12))"
            ))

        // Cold: a new cache folder each run, so each load clones; warm: the same cache again.
        var coldTimes: [Double] = []
        var warmTimes: [Double] = []
        for run in 1...runs {
            let cache = root + "/cache-\(run)"
            let request = GitSourceRequest(repository: "file://" + packed, path: "manifests", cacheDirectory: cache)
            let (cold, coldTime) = try Clock.time { try GitSource.load(request) }
            let (warm, warmTime) = try Clock.time { try GitSource.load(request) }
            check(cold, files: files, commit: commit)
            check(warm, files: files, commit: commit)
            coldTimes.append(coldTime)
            warmTimes.append(warmTime)
            log("git-load: file:// run \(run)/\(runs): first \(Table.format(coldTime, .seconds)), warm \(Table.format(warmTime, .seconds))")
            try? FileManager.default.removeItem(atPath: cache)
        }
        rows.append(Row(name, "GitSource.load, file:// URL, first load (clone)", samples: coldTimes, target: "< 2 s", bound: 2.0))
        rows.append(Row(name, "GitSource.load, file:// URL, warm (fetch + read)", samples: warmTimes, target: "< 2 s", bound: 2.0))

        // Loose objects, as right after `git add` + `git commit` in a working copy.
        let loose = root + "/loose"
        let (_, commitTime) = try Clock.time { try makeLooseRepository(at: loose, files: files) }
        let looseCommit = try Subprocess.check(["git", "-C", loose, "rev-parse", "HEAD"]).stdout.trimmingCharacters(
            in: .whitespacesAndNewlines)
        let looseLoad = try measure(runs: runs, label: "local, loose") {
            try GitSource.load(GitSourceRequest(repository: loose, path: "manifests", cacheDirectory: root + "/unused-cache"))
        }
        check(looseLoad.snapshot, files: files, commit: looseCommit)
        rows.append(
            Row(
                name, "GitSource.load, local repo (loose objects)", samples: looseLoad.times, target: "< 2 s", bound: 2.0,
                note: "written as files, then git add -A + git commit in \(Table.format(commitTime, .seconds)) (not timed)"))

        // What a reconcile does next with the snapshot (for scale; no target of its own).
        let (_, validateTime) = try Clock.time { try ManifestSet.load(local.snapshot.files, registry: benchKinds) }
        rows.append(Row(name, "then ManifestSet.load of the snapshot", samples: [validateTime]))

        rows.append(Row(name, "peak RSS (getrusage ru_maxrss)", samples: [peakRSSMiB()], unit: .mebibytes))
        return rows
    }

    private static func measure(runs: Int, label: String, _ body: () throws -> GitSnapshot) throws -> (
        snapshot: GitSnapshot, times: [Double]
    ) {
        var times: [Double] = []
        var last: GitSnapshot?
        for run in 1...runs {
            let (snapshot, time) = try Clock.time(body)
            times.append(time)
            last = snapshot
            log("git-load: \(label) run \(run)/\(runs): \(Table.format(time, .seconds))")
        }
        return (last!, times)
    }

    /// Not an assertion on speed: a wrong snapshot would make every figure meaningless.
    private static func check(_ snapshot: GitSnapshot, files: [SourceFile], commit: String) {
        precondition(snapshot.revision.commit == commit, "loaded \(snapshot.revision.commit ?? "nil"), expected \(commit)")
        precondition(snapshot.files == files, "the snapshot's files differ from those committed")
    }

    static func makePackedRepository(at path: String, files: [SourceFile], scratch: String) throws {
        try Subprocess.check(["git"] + gitConfig + ["init", "-q", "-b", "main", path], environment: gitEnvironment)
        var stream = Data()
        for (index, file) in files.enumerated() {
            stream.append(Data("blob\nmark :\(index + 1)\ndata \(file.bytes.count)\n".utf8))
            stream.append(contentsOf: file.bytes)
            stream.append(0x0A)
        }
        let message = "\(files.count) generated manifests\n"
        stream.append(
            Data(
                """
                commit refs/heads/main
                author Converge Bench <bench@converge.invalid> 1700000000 +0000
                committer Converge Bench <bench@converge.invalid> 1700000000 +0000
                data \(message.utf8.count)
                \(message)
                """.utf8))
        for (index, file) in files.enumerated() {
            stream.append(Data("M 100644 :\(index + 1) \(file.path)\n".utf8))
        }
        stream.append(Data("\n".utf8))
        let streamPath = scratch + "/fast-import.stream"
        try stream.write(to: URL(fileURLWithPath: streamPath))
        defer { try? FileManager.default.removeItem(atPath: streamPath) }
        try Subprocess.check(
            ["git"] + gitConfig + ["-C", path, "fast-import", "--quiet"], environment: gitEnvironment, stdinPath: streamPath)
    }

    static func makeLooseRepository(at path: String, files: [SourceFile]) throws {
        try Subprocess.check(["git"] + gitConfig + ["init", "-q", "-b", "main", path], environment: gitEnvironment)
        let manager = FileManager.default
        for file in files {
            let target = path + "/" + file.path
            try manager.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            guard manager.createFile(atPath: target, contents: Data(file.bytes)) else {
                throw Subprocess.Failure(description: "cannot write \(target)")
            }
        }
        try Subprocess.check(["git"] + gitConfig + ["-C", path, "add", "-A"], environment: gitEnvironment)
        try Subprocess.check(
            ["git"] + gitConfig + ["-C", path, "commit", "-q", "--no-verify", "-m", "\(files.count) generated manifests"],
            environment: gitEnvironment)
    }
}
