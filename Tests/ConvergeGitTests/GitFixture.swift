import Foundation
import Testing

/// A temporary folder holding real Git repositories made with the `git` command, removed when
/// the fixture goes away. Each fixture has its own folder (unique prefix + UUID), so tests
/// run in parallel without sharing anything.
final class GitFixture {
    let root: URL

    init() throws {
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("converge-git-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: root)
    }

    func path(_ relative: String) -> String {
        root.appendingPathComponent(relative).path
    }

    /// Creates an empty repository (branch `main`) at `relative` and returns its path.
    @discardableResult
    func makeRepository(_ relative: String, bare: Bool = false) throws -> String {
        let directory = path(relative)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try git(["init", "--quiet", "--initial-branch=main"] + (bare ? ["--bare"] : []), in: directory)
        return directory
    }

    /// Writes files (path → content; nil content deletes), commits them, returns the commit id.
    @discardableResult
    func commit(_ files: [String: String?], in repository: String, message: String = "change") throws -> String {
        for (relative, content) in files {
            let url = URL(fileURLWithPath: repository).appendingPathComponent(relative)
            if let content {
                try FileManager.default.createDirectory(
                    at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(content.utf8).write(to: url)
            } else {
                try FileManager.default.removeItem(at: url)
            }
        }
        try git(["add", "--all"], in: repository)
        try git(["commit", "--quiet", "--allow-empty", "-m", message], in: repository)
        return try git(["rev-parse", "HEAD"], in: repository)
    }

    /// Runs `git` with a clean, deterministic environment and returns its trimmed stdout.
    @discardableResult
    func git(_ arguments: [String], in directory: String, input: URL? = nil) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "HOME": root.path,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Converge Tests",
            "GIT_AUTHOR_EMAIL": "tests@converge.invalid",
            "GIT_COMMITTER_NAME": "Converge Tests",
            "GIT_COMMITTER_EMAIL": "tests@converge.invalid",
        ]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        if let input {
            process.standardInput = try FileHandle(forReadingFrom: input)
        }
        try process.run()
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureError(
                "git \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)): "
                    + String(decoding: stderr, as: UTF8.self))
        }
        return String(decoding: stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
