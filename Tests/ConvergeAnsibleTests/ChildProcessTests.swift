import Foundation
import Testing

@testable import ConvergeAnsible

/// A timeout or a cancellation stops the whole process group, not only its leader: the
/// workers ansible-playbook forks (and their ssh) must not outlive the run.
@Suite struct ChildProcessTests {
    /// A shell that starts a background sleeper, writes its pid, and waits.
    static func tree(_ folder: URL) -> ChildProcess {
        ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "sleep 60 & echo $! > \(folder.path)/worker; wait"],
            environment: ["PATH": "/usr/bin:/bin"],
            stdoutPath: folder.appendingPathComponent("out").path, stderrPath: folder.appendingPathComponent("err").path)
    }

    static func isRunning(_ pid: pid_t) -> Bool {
        // A zombie has exited; only a live process counts.
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        return !stat.contains(") Z ")
    }

    static func workerPID(in folder: URL) async throws -> pid_t {
        for _ in 0..<50 {
            if let text = try? String(contentsOf: folder.appendingPathComponent("worker"), encoding: .utf8),
                let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
            {
                return pid
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CancellationError()
    }

    static func withFolder(_ body: (URL) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("cvt-child-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await body(folder)
    }

    @Test func aTimeoutKillsTheLeaderAndItsWorkers() async throws {
        try await Self.withFolder { folder in
            let exit = try await Self.tree(folder).run(timeout: .milliseconds(500))
            #expect(exit.timedOut)
            #expect(exit.code == nil, "the leader was killed by a signal, not exited")
            let worker = try await Self.workerPID(in: folder)
            try await Task.sleep(for: .milliseconds(100))
            #expect(!Self.isRunning(worker), "the background worker \(worker) outlived the timeout")
        }
    }

    @Test func cancellingTheTaskKillsTheGroup() async throws {
        try await Self.withFolder { folder in
            let running = Task { try await Self.tree(folder).run(timeout: .seconds(60)) }
            let worker = try await Self.workerPID(in: folder)
            running.cancel()
            let exit = try await running.value
            #expect(exit.signal == SIGTERM)
            try await Task.sleep(for: .milliseconds(100))
            #expect(!Self.isRunning(worker))
        }
    }

    @Test func anExitCodeComesBack() async throws {
        try await Self.withFolder { folder in
            let process = ChildProcess(
                executable: "sh", arguments: ["-c", "echo out; echo err >&2; exit 4"], environment: ["PATH": "/usr/bin:/bin"],
                stdoutPath: folder.appendingPathComponent("out").path, stderrPath: folder.appendingPathComponent("err").path)
            let exit = try await process.run(timeout: .seconds(10))
            #expect(exit.code == 4 && !exit.timedOut)
            #expect(try String(contentsOf: folder.appendingPathComponent("out"), encoding: .utf8) == "out\n")
            #expect(try String(contentsOf: folder.appendingPathComponent("err"), encoding: .utf8) == "err\n")
        }
    }
}
